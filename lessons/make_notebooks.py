"""Turn the lesson scripts into Jupyter notebooks (for JupyterHub), without outputs.

    python lessons/make_notebooks.py [--out-dir lessons/notebooks] [--check]

Each `lessons/NN_name.py` is a jupytext "percent" script (`# %%` code cells, `# %% [markdown]`
text cells), so it runs as `python lessons/NN_name.py` and converts cell for cell. The notebooks
are generated, not committed; `--check` verifies that existing notebooks in --out-dir match their
scripts (a stale notebook fails).
"""
import argparse
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent


def lesson_scripts():
    return sorted(p for p in HERE.glob("[0-9][0-9]_*.py"))


def to_notebook(script):
    import jupytext
    nb = jupytext.read(script, fmt="py:percent")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def main(argv=None):
    import jupytext
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default=str(HERE / "notebooks"))
    ap.add_argument("--check", action="store_true", help="fail if a notebook in --out-dir is stale")
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
        jupytext.write(nb, target, fmt="ipynb")
        print(f"{script.name} -> {target}")
    if stale:
        print("stale notebooks (rerun python lessons/make_notebooks.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
