"""The command line as users meet it, in real processes: a model family that is not a GPT trains,
resumes exactly and samples through the same commands; and every kind of error the library raises
on purpose ends the command with exit status 1 and one `error:` line, never a traceback."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_lm.training import checkpoint
from tinygrad_lm import errors
from tinygrad_lm.tokenizers import CharTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n" * 120


def run_cli(*args, cwd, env=None, check=True):
    out = subprocess.run([sys.executable, "-m", "tinygrad_lm", *map(str, args)], cwd=cwd, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    if check:
        assert out.returncode == 0, out.stderr
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A small prepared character dataset and a 4-step bigram checkpoint trained from it."""
    work = tmp_path_factory.mktemp("cli")
    (work / "text.txt").write_text(TEXT, encoding="utf-8")
    run_cli("prepare", "--input", "text.txt", "--dataset", "data", cwd=work)
    run_cli("train", "--preset", "bigram", "--dataset", "data", "--out-dir", "bigram", "--max-iters", 4,
            "--eval-interval", 2, "--samples", 0, cwd=work)
    return work


def test_a_bigram_model_trains_resumes_exactly_and_samples_through_the_cli(workdir):
    common = ("--preset", "bigram", "--dataset", "data", "--eval-interval", 3, "--samples", 0, "--log-interval", 1)
    run_cli("train", *common, "--out-dir", "whole", "--max-iters", 6, cwd=workdir)
    run_cli("train", *common, "--out-dir", "halves", "--max-iters", 3, cwd=workdir)
    resumed = run_cli("train", "--init-from", "resume", "--out-dir", "halves", "--max-iters", 6, "--samples", 0,
                      cwd=workdir)
    assert "resuming from halves/last.npz at step 3" in resumed.stdout
    whole = checkpoint.load(workdir / "whole" / "last.npz")
    halves = checkpoint.load(workdir / "halves" / "last.npz")
    assert whole["meta"]["model_family"] == halves["meta"]["model_family"] == "bigram"
    assert len(whole["meta"]["history"]) == 6
    assert halves["meta"]["history"] == whole["meta"]["history"]          # loss for loss
    for name, array in whole["model"].items():
        np.testing.assert_array_equal(halves["model"][name], array)
    sample = run_cli("sample", "--out-dir", "halves", "--start", "Speak", "--max-new-tokens", 30, "--seed", 0,
                     cwd=workdir)
    text = sample.stdout.split("\n---")[0]
    assert text.startswith("Speak") and len(text) == len("Speak") + 30
    assert set(text) <= set(TEXT)


def _corrupt_safetensors_folder(work):
    folder = work / "broken_gpt2"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 10, "n_positions": 8,
                                                    "n_layer": 1, "n_head": 1, "n_embd": 4}))
    (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    return folder


def _checkpoint_with_a_smaller_tokenizer(work):
    """The bigram checkpoint with a tokenizer of two characters stored beside a model of the
    dataset's whole vocabulary: sampling draws ids that tokenizer cannot decode."""
    path = work / "small_tokenizer.npz"
    model, _, ckpt = checkpoint.load_model(work / "bigram" / "last.npz")
    meta = {k: v for k, v in ckpt["meta"].items() if k != "optimizer"}
    meta["tokenizer"] = {"type": "char", **CharTokenizer.from_text("ab").to_dict()}
    checkpoint.save(path, model, meta=meta)
    return path


def _bad_fasta_corpus(work):
    """A genome corpus folder whose FASTA file starts with bases instead of a '>' header."""
    folder = work / "bad_genomes" / "sars-cov-2"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("example_metadata.tsv", "reference_seq.gb"):
        (folder / name).write_text("")
    (folder / "example_sequences.fasta.gz").write_text("ACGT\n>a\nACGT\n")
    return folder.parent


def _cases(work):
    """{error class: (command-line arguments, extra environment, text the message must hold)}."""
    (work / "broken_tokenizer.json").write_text("{ truncated", encoding="utf-8")
    (work / "empty_dataset").mkdir(exist_ok=True)
    offline = {"TINYGRAD_LM_DATA": str(work / "no_data_here"), "https_proxy": "http://127.0.0.1:9",
               "HTTPS_PROXY": "http://127.0.0.1:9"}           # a closed local port: fails at once
    return {
        errors.ConfigError: (["train", "--dataset", "data", "--batch-size", 0], {}, "batch_size=0 must be >= 1"),
        errors.DeviceError: (["train", "--dataset", "data", "--device", "cuda", "--max-iters", 1], {"CUDA_VISIBLE_DEVICES": ""},
                             "cuda"),
        errors.DataError: (["train", "--dataset", "empty_dataset"], {}, "meta.json not found"),
        errors.SequenceFileError: (["prepare", "--corpus", "sars-cov-2", "--data-dir", _bad_fasta_corpus(work)], {},
                                   "line 1: sequence letters before the first '>' header"),
        errors.DownloadError: (["prepare", "--dataset", "d2", "--download"], offline, "could not download"),
        errors.TokenizerFileError: (["prepare", "--input", "text.txt", "--tokenizer", "broken_tokenizer.json",
                                     "--dataset", "d3"], {}, "corrupt or truncated"),
        errors.EncodeError: (["sample", "--out-dir", "bigram", "--start", "@"], {}, "character '@'"),
        errors.DecodeError: (["sample", "--checkpoint", _checkpoint_with_a_smaller_tokenizer(work), "--start", "a",
                              "--max-new-tokens", 50, "--seed", 0], {}, "id"),
        errors.CheckpointError: (["sample", "--checkpoint", "nothing.npz"], {}, "does not exist"),
        errors.SafetensorsError: (["generate", "--model", _corrupt_safetensors_folder(work), "--data-dir",
                                   os.environ.get("TINYGRAD_LM_DATA", "data")], {}, "safetensors"),
        errors.PretrainedError: (["generate", "--model", "no_such_model"], {}, "no such file or folder"),
        errors.TrainingDiverged: (["train", "--preset", "bigram", "--dataset", "data", "--out-dir", "diverged",
                                   "--learning-rate", 1e38, "--max-iters", 5, "--samples", 0],
                                  {"PYTHONWARNINGS": "ignore"}, "the loss became nan"),
    }


# A gradient of the wrong shape is a bug inside an op, not something a user's input can cause; the
# engine's own tests plant one (tests/test_tensor.py). A StateDictError reaches the command line
# only as the CheckpointError naming the file (tests/test_run_safety.py). Every other error has a
# case above.
NOT_FROM_INPUT = {errors.GradientShapeError, errors.StateDictError}


def test_every_error_class_has_a_command_line_case(workdir):
    def subclasses(cls):
        return {cls} | {s for c in cls.__subclasses__() for s in subclasses(c)}
    groups = {errors.TinygradLMError, errors.TokenizerError}       # raised only through a subclass
    assert subclasses(errors.TinygradLMError) - groups - NOT_FROM_INPUT == set(_cases(workdir))


@pytest.mark.parametrize("kind", ["ConfigError", "DeviceError", "DataError", "SequenceFileError", "DownloadError",
                                  "TokenizerFileError",
                                  "EncodeError", "DecodeError", "CheckpointError", "SafetensorsError",
                                  "PretrainedError", "TrainingDiverged"])
def test_an_error_is_one_line_and_exit_status_1(workdir, kind):
    cls = getattr(errors, kind)
    args, env, message = _cases(workdir)[cls]
    out = run_cli(*args, cwd=workdir, env=env, check=False)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], out.stderr
