"""Figures: the plotting helpers and Graph.draw return their Figure, save a PNG when given a path,
and outside a Jupyter kernel close it (inside one, tests/test_lessons.py shows it stays open);
Graph shows forward values and signed gradients for tracing by hand."""
import numpy as np

import tinygrad_lm as tg
from tinygrad_lm.viz.graph import Graph
from tinygrad_lm.viz.plots import plot_attention, plot_losses, plot_sweep, pyplot, visible


def test_plots_return_their_figure_saved_and_closed_outside_a_kernel(tmp_path):
    plt = pyplot()
    evals = [{"step": 0, "train": 4.0, "val": 4.1}, {"step": 10, "train": 3.0, "val": 3.2}]
    figures = [plot_losses([[1, 4.0], [2, 3.5]], evals, tmp_path / "a.png"),
               plot_sweep({32: evals, 64: evals}, "n_embd", tmp_path / "b.png"),
               plot_attention(np.full((2, 2, 3, 3), 1 / 3), [" ", "\n", "a"], tmp_path / "c.png", title="t")]
    assert all(type(f).__name__ == "Figure" for f in figures)
    assert all((tmp_path / n).stat().st_size > 1000 for n in ("a.png", "b.png", "c.png"))
    assert plt.get_fignums() == []                    # a script (or the CLI) keeps no figure open
    labels = [t.get_text() for t in figures[2].axes[-2].get_xticklabels()]     # bottom row, first head
    assert labels == ["\u2423", "\u23ce", "a"]      # space and newline visible


def test_visible_tokens():
    assert [visible(t) for t in (" ", "\n", "\t", "ab", "")] == ["\u2423", "\u23ce", "\\t", "ab", "''"]


def test_graph_shows_values_and_signed_gradients(tmp_path):
    a = tg.Tensor(np.array(3.0), requires_grad=True)
    b = tg.Tensor(np.array(-2.0), requires_grad=True)
    a.name, b.name = "a", "b"
    f = a * b                       # df/da = b = -2, df/db = a = 3
    g = Graph(f)
    f.backward()
    text = g.text()
    assert "a ()  value = 3  grad = -2" in text and "b ()  value = -2  grad = +3" in text
    assert "Mul () <- [1, 0]  value = -6  grad = +1" in text          # inputs by node number: a is [1], b [0]
    x = tg.Tensor(np.array([[1.0, -3.0]]), requires_grad=True)
    y = (x * x).sum()
    g2 = Graph(y)
    y.backward()                    # dy/dx = 2x = [2, -6]: norm sqrt(40), sum -4
    assert f"(1, 2)  value: mean -1 in [-3, 1]  |grad| = {np.sqrt(40):.4g}, sum -4" in g2.text()
    fig = g2.draw(tmp_path / "graph.png")
    assert type(fig).__name__ == "Figure" and (tmp_path / "graph.png").stat().st_size > 1000
    boxes = [t.get_text() for t in fig.axes[0].texts]
    assert any("value: mean -1" in t and "sum -4" in t for t in boxes)


def test_distance_from_uniform_attention():
    from tinygrad_lm.teaching.lesson_utils import distance_from_uniform
    T = 5
    uniform = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]
    assert abs(distance_from_uniform(uniform[None, None])) < 1e-12
    first_token = np.zeros((T, T))
    first_token[:, 0] = 1                                  # every query looks only at token 0
    expected = np.mean([np.log(t + 1) for t in range(1, T)])
    assert np.isclose(distance_from_uniform(first_token), expected)


def test_importing_ipykernel_is_not_being_in_a_kernel():
    """A test runner that imports ipykernel (to start kernels) still draws to files and closes them."""
    import pytest
    pytest.importorskip("ipykernel")
    import ipykernel  # noqa: F401
    from tinygrad_lm.viz.plots import in_notebook
    assert not in_notebook()
