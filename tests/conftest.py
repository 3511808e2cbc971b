"""Shared fixtures. ``device`` runs a test body once per device: "cpu", "strict" (a NumPy-backed
array module that, like CuPy, refuses silent conversion to NumPy; see strict_backend.py) and
"cuda" (skipped with a reason when CuPy or a GPU is missing)."""
import os
import pathlib

import numpy as np
import pytest

from tinygrad_lm import backend
from tinygrad_lm.data.text import shakespeare
from tinygrad_lm.io.corpora import read_bytes
from tinygrad_lm.tokenizers import gpt2_files

from . import strict_backend

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEVICES = ["cpu", "strict", "cuda"]


def _user_data_dir():
    """The data folder the user named ($TINYGRAD_LM_DATA), or None: then every corpus is read from
    the package's own copy (tinygrad_lm/corpora/), as CI runs the suite."""
    env = os.environ.get("TINYGRAD_LM_DATA")
    return pathlib.Path(env) if env else None


SHARED_DATA = _user_data_dir()


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
    """tiny Shakespeare's input.txt as the lookup finds it (read it with data.text.read_utf8: the
    package's copy is input.txt.gz)."""
    return shakespeare()


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory):
    """A folder holding plain encoder.json and vocab.bpe (a user's own copy, as --data-dir DIR/gpt2
    expects), written from the files the lookup finds."""
    folder = tmp_path_factory.mktemp("data") / "gpt2"
    folder.mkdir()
    for path in gpt2_files():
        (folder / path.name.removesuffix(".gz")).write_bytes(read_bytes(path))
    return folder
