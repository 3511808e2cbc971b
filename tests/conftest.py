"""Shared fixtures. ``device`` runs a test body once per device: "cpu", "strict" (a NumPy-backed
array module that, like CuPy, refuses silent conversion to NumPy; see strict_backend.py) and
"cuda" (skipped with a reason when CuPy or a GPU is missing)."""
import os
import pathlib

import numpy as np
import pytest

from tinygrad_lm import backend

from . import strict_backend

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEVICES = ["cpu", "strict", "cuda"]


def _data_dir():
    env = os.environ.get("TINYGRAD_LM_DATA")
    candidates = [pathlib.Path(env)] if env else []
    candidates.append(ROOT.parent / "shared" / "data")
    for c in candidates:
        if (c / "tinyshakespeare" / "input.txt").exists():
            return c
    return None


SHARED_DATA = _data_dir()


@pytest.fixture(params=DEVICES)
def device(request):
    name = request.param
    if name == "strict":
        strict_backend.register()
    elif name == "cuda" and not backend.is_available("cuda"):
        pytest.skip("no CUDA device: CuPy is not installed or sees no GPU")
    return name


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def shakespeare_path():
    if SHARED_DATA is None:
        pytest.skip("tiny Shakespeare not found: set TINYGRAD_LM_DATA to a folder holding tinyshakespeare/input.txt")
    return SHARED_DATA / "tinyshakespeare" / "input.txt"


@pytest.fixture
def gpt2_dir():
    if SHARED_DATA is None or not (SHARED_DATA / "gpt2" / "encoder.json").exists():
        pytest.skip("GPT-2 tokenizer files not found: set TINYGRAD_LM_DATA to a folder holding gpt2/encoder.json")
    return SHARED_DATA / "gpt2"
