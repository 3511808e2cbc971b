"""Turn the lesson scripts into Jupyter notebooks (for JupyterHub), without outputs.

    python lessons/make_notebooks.py [--out-dir lessons/notebooks] [--check] [--execute]

Each `lessons/NN_name.py` is a jupytext "percent" script (`# %%` code cells, `# %% [markdown]`
text cells), so it runs as `python lessons/NN_name.py` and converts cell for cell. The notebooks
are generated, not committed; `--check` verifies that existing notebooks in --out-dir match their
scripts (a stale notebook fails). `--execute` runs each one through a real Jupyter kernel, as a
learner on JupyterHub would, writes it with its outputs, and fails if a cell that makes a figure
shows no image (a figure closed too early, or drawn in a later cell than the one that shows it).
"""
import argparse
import os
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent


def lesson_scripts():
    return sorted(p for p in HERE.glob("[0-9][0-9]_*.py"))


def to_notebook(script):
    import jupytext
    nb = jupytext.read(script, fmt="py:percent")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


# A cell makes a figure when it saves one for the lesson (figure_path) or creates one.
SAVES = re.compile(r"figure_path\(")
CREATES = re.compile(r"\bsubplots\(|plt\.figure\(|\.draw\(|\bplot_(losses|attention|sweep)\(")


def expected_images(source):
    """How many images a code cell must show: one per figure it saves, at least one if it creates one."""
    return max(len(SAVES.findall(source)), 1 if CREATES.search(source) else 0)


def cells_missing_figures(nb):
    """[(cell number, expected, shown)] for each executed code cell that shows fewer images than it makes."""
    missing = []
    for number, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        want = expected_images(cell.source)
        shown = sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))
        if shown < want:
            missing.append((number, want, shown))
    return missing


def execute(nb, cwd, timeout=600):
    """Run `nb` in place through a python3 kernel started in `cwd` (with this process's environment,
    less MPLBACKEND: a kernel must pick its own inline backend, as on JupyterHub)."""
    import nbclient
    saved = os.environ.pop("MPLBACKEND", None)
    try:
        nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        if saved is not None:
            os.environ["MPLBACKEND"] = saved
    return nb


def main(argv=None):
    import jupytext
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default=str(HERE / "notebooks"))
    ap.add_argument("--check", action="store_true", help="fail if a notebook in --out-dir is stale")
    ap.add_argument("--execute", action="store_true",
                    help="run each notebook through a kernel, keep its outputs, fail if a figure does not show")
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out_dir)
    stale = []
    for script in lesson_scripts():
        target = out / (script.stem + ".ipynb")
        nb = to_notebook(script)
        if args.check:
            if target.exists():
                existing = jupytext.read(target)
                if [(c.cell_type, c.source) for c in existing.cells] != [(c.cell_type, c.source) for c in nb.cells]:
                    stale.append(target.name)
            continue
        out.mkdir(parents=True, exist_ok=True)
        if args.execute:
            execute(nb, out)
            for number, want, shown in cells_missing_figures(nb):
                stale.append(f"{script.name} cell {number}: {shown} of {want} figures shown")
        jupytext.write(nb, target, fmt="ipynb")
        print(f"{script.name} -> {target}")
    if stale:
        what = "figures not shown" if args.execute else "stale notebooks (rerun python lessons/make_notebooks.py)"
        print(f"{what}:", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
