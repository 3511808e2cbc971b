"""Every lesson runs end to end in quick mode with its own assertions; one runs as a real notebook."""
import os
import pathlib
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


def test_there_are_thirteen_lessons():
    assert len(SCRIPTS) == 13


@pytest.mark.parametrize("script", SCRIPTS)
def test_lesson_runs_in_quick_mode(script, tmp_path):
    out = subprocess.run([sys.executable, str(LESSONS / script)], cwd=tmp_path, env=lesson_env(tmp_path),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert list(tmp_path.glob("*.png")), "the lesson drew no figure"


def test_lesson_runs_as_a_notebook_through_a_kernel(tmp_path):
    nbclient = pytest.importorskip("nbclient", reason="the notebooks extra is not installed")
    pytest.importorskip("jupytext")
    pytest.importorskip("ipykernel")
    sys.path.insert(0, str(LESSONS))
    from make_notebooks import to_notebook
    nb = to_notebook(LESSONS / "05_self_attention.py")
    env_backup = dict(os.environ)
    os.environ.update(lesson_env(tmp_path))
    try:
        nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "hand-written == fused op == Head module" in outputs


def test_notebooks_are_generated_in_sync(tmp_path):
    pytest.importorskip("jupytext")
    sys.path.insert(0, str(LESSONS))
    import make_notebooks
    assert make_notebooks.main(["--out-dir", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("*.ipynb"))) == 13
    assert make_notebooks.main(["--out-dir", str(tmp_path), "--check"]) == 0
    first = sorted(tmp_path.glob("*.ipynb"))[0]
    first.write_text(first.read_text().replace("Sequential data", "Stale text"))
    assert make_notebooks.main(["--out-dir", str(tmp_path), "--check"]) == 1
    committed = LESSONS / "notebooks"
    if committed.exists():                      # any kept notebooks must match their scripts
        assert make_notebooks.main(["--out-dir", str(committed), "--check"]) == 0
