"""Every lesson runs end to end in quick mode with its own assertions, as a script and as a notebook
through a real Jupyter kernel; in the notebook every cell that makes a figure shows it inline.
The lessons are whatever `lessons/NN_*.py` holds: a new lesson is picked up without a change here."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

LESSONS = pathlib.Path(__file__).resolve().parent.parent / "lessons"
SCRIPTS = sorted(p.name for p in LESSONS.glob("[0-9][0-9]_*.py"))


def lesson_env(tmp_path):
    from .conftest import SHARED_DATA
    env = dict(os.environ, TINYGRAD_LM_QUICK="1", TINYGRAD_LM_FIGURES=str(tmp_path), MPLBACKEND="Agg")
    if SHARED_DATA is not None:
        env["TINYGRAD_LM_DATA"] = str(SHARED_DATA)
    return env


def make_notebooks():
    sys.path.insert(0, str(LESSONS))
    import make_notebooks as module
    return module


def notebook_tools():
    pytest.importorskip("nbclient", reason="the notebooks extra is not installed")
    pytest.importorskip("jupytext")
    pytest.importorskip("ipykernel")
    return make_notebooks()


def test_the_lessons_are_the_folder_and_the_readme_lists_each():
    numbers = [int(name[:2]) for name in SCRIPTS]
    assert len(SCRIPTS) >= 13 and numbers == sorted(set(numbers))       # one script per number
    table = (LESSONS / "README.md").read_text(encoding="utf-8")
    missing = [name for name in SCRIPTS if f"`{name}`" not in table]
    assert not missing, f"lessons/README.md has no row for {missing}"


@pytest.mark.parametrize("script", SCRIPTS)
def test_lesson_runs_in_quick_mode(script, tmp_path):
    out = subprocess.run([sys.executable, str(LESSONS / script)], cwd=tmp_path, env=lesson_env(tmp_path),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert list(tmp_path.glob("*.png")), "the lesson drew no figure"


def run_notebook(nb, tmp_path):
    module = make_notebooks()
    saved = dict(os.environ)
    os.environ.update(lesson_env(tmp_path))          # the kernel inherits this environment (MPLBACKEND aside)
    try:
        module.execute(nb, tmp_path, timeout=300)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return nb


@pytest.mark.parametrize("script", SCRIPTS)
def test_lesson_runs_as_a_notebook_with_every_figure_inline(script, tmp_path):
    module = notebook_tools()
    nb = run_notebook(module.to_notebook(LESSONS / script), tmp_path)
    figure_cells = [c for c in nb.cells if c.cell_type == "code" and module.expected_images(c.source)]
    assert figure_cells, f"{script} makes no figure"
    assert module.cells_missing_figures(nb) == [], "cells (number, figures made, images shown)"
    if script.startswith("05_"):
        outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
        assert "hand-written == fused op == Head module" in outputs


def test_a_figure_closed_before_the_cell_ends_is_caught(tmp_path):
    """A planted plt.close() in lesson 8's figure cell: the notebook shows no image there, and the
    check names that cell."""
    module = notebook_tools()
    nb = module.to_notebook(LESSONS / "08_output_loss.py")
    number = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and module.expected_images(c.source))
    nb.cells[number].source += "\nplt.close(fig)"
    run_notebook(nb, tmp_path)
    assert module.cells_missing_figures(nb) == [(number, 1, 0)]


def test_figures_from_the_library_are_returned_open_in_a_kernel(tmp_path):
    """viz and Graph.draw return their Figure; inside a kernel they stay open (the kernel shows
    them), outside one they are closed after saving. Run in a kernel with the CLI's own calls."""
    module = notebook_tools()
    import nbformat
    code = ("import numpy as np, tinygrad_lm as tg\n"
            "from tinygrad_lm.viz.plots import plot_losses, plot_attention\nfrom tinygrad_lm.viz.graph import Graph\n"
            "fig = plot_losses([[1, 2.0], [2, 1.5]], [{'step': 1, 'train': 2.0, 'val': 2.1}], 'loss.png')\n"
            "fig2 = plot_attention(np.full((1, 2, 3, 3), 1 / 3), list('abc'), 'attn.png')\n"
            "x = tg.Tensor(np.array(2.0), requires_grad=True)\ny = x * x\ng = Graph(y)\ny.backward()\n"
            "fig3 = g.draw('graph.png')\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    run_notebook(nb, tmp_path)
    assert module.cells_missing_figures(nb) == []
    images = [o for o in nb.cells[0].outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3
    assert all((tmp_path / n).stat().st_size > 1000 for n in ("loss.png", "attn.png", "graph.png"))


DRAWS = re.compile(r"\b(ax|axes|a1|a2)(\[\d+\])?\.(imshow|plot|scatter|bar|annotate|set|text)\(|"
                   r"\bfig\.(savefig|colorbar|tight_layout|suptitle)\(")
CREATES = re.compile(r"\bsubplots\(|plt\.figure\(")


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_figure_is_made_in_one_cell(script):
    """A cell that draws on axes or saves a figure also creates it: a panel filled in a later cell
    would show empty in the notebook, since the kernel shows each figure at the end of its cell."""
    cells = re.split(r"^# %%.*$", (LESSONS / script).read_text(encoding="utf-8"), flags=re.M)
    orphans = [i for i, cell in enumerate(cells) if DRAWS.search(cell) and not CREATES.search(cell)]
    assert not orphans, f"{script}: cells {orphans} draw on a figure made in another cell"


def test_notebooks_are_generated_in_sync(tmp_path):
    pytest.importorskip("jupytext")
    module = make_notebooks()
    assert module.main(["--out-dir", str(tmp_path)]) == 0
    assert sorted(p.stem for p in tmp_path.glob("*.ipynb")) == [s[:-3] for s in SCRIPTS]
    assert module.main(["--out-dir", str(tmp_path), "--check"]) == 0
    first = sorted(tmp_path.glob("*.ipynb"))[0]
    text = first.read_text()
    marker = next(line for line in text.splitlines() if "# Lesson" in line)      # the first title line
    first.write_text(text.replace(marker, marker.replace("Lesson", "Stale lesson"), 1))
    assert module.main(["--out-dir", str(tmp_path), "--check"]) == 1
    committed = LESSONS / "notebooks"
    if committed.exists():                      # any kept notebooks must match their scripts
        assert module.main(["--out-dir", str(committed), "--check"]) == 0
