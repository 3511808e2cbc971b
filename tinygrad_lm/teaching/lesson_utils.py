"""Small helpers shared by the lessons: quick mode, where figures go, the corpus, and how far
attention is from uniform."""
import os
import pathlib

import numpy as np

from ..viz import plots as viz
from ..data.text import read_utf8, shakespeare

QUICK = os.environ.get("TINYGRAD_LM_QUICK", "0") not in ("", "0")


def quick(full, small):
    """`small` in quick mode (TINYGRAD_LM_QUICK=1, as CI runs the lessons), else `full`."""
    return small if QUICK else full


def figure_path(name):
    """Where a lesson saves its figure: $TINYGRAD_LM_FIGURES or lessons/figures/."""
    folder = pathlib.Path(os.environ.get("TINYGRAD_LM_FIGURES", pathlib.Path(__file__).resolve().parents[2]
                                         / "lessons" / "figures"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def pyplot():
    """matplotlib.pyplot, drawing to files (Agg) unless we run inside a Jupyter kernel, where
    figures show inline (viz.pyplot). A lesson makes each figure in one cell and never closes it."""
    return viz.pyplot()


def shakespeare_text(limit=None):
    """Tiny Shakespeare's text (the user's copy in $TINYGRAD_LM_DATA, else the package's own:
    nothing is downloaded), its first `limit` characters when given."""
    text = read_utf8(shakespeare())
    return text[:limit] if limit else text


def distance_from_uniform(maps):
    """How far causal attention maps (..., T, T) are from uniform, in nats: the mean over rows t >= 1
    of KL(row || uniform over the t + 1 visible keys) = log(t + 1) - entropy(row). 0 when every
    query spreads its attention evenly (as a model with small random weights does)."""
    T = maps.shape[-1]
    rows = maps.reshape(-1, T, T)
    gaps = []
    for t in range(1, T):
        p = rows[:, t, :t + 1]
        gaps.append(np.log(t + 1) + (p * np.log(np.maximum(p, 1e-12))).sum(-1))
    return float(np.mean(gaps))
