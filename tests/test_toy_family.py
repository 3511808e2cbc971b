"""The family seam, proven from outside the package: a toy family defined in this file alone
(model, config, batch source, family record, preset) is trained, resumed, sampled and benchmarked
through the command line, with no change to tinygrad_lm.

The toy: each position's logits are a learned function of the current token and the one before
it (an embedding of each, summed, then a head), trained on next-token batches that this file's own
batch source draws."""
import contextlib
import io
import pathlib
from dataclasses import dataclass

import numpy as np
import pytest

from tinygrad_lm import nn
from tinygrad_lm.cli import main
from tinygrad_lm.models import FAMILIES, Family, register
from tinygrad_lm.models.base import ModelConfig, check_token_ids
from tinygrad_lm.nn import functional as F
from tinygrad_lm.training import checkpoint
from tinygrad_lm.training.config import TrainConfig
from tinygrad_lm.training.presets import PRESETS


@dataclass
class ToyConfig(ModelConfig):
    vocab_size: int = 65
    block_size: int = 16
    n_embd: int = 16


class Toy(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.now = nn.Embedding(config.vocab_size, config.n_embd)
        self.before = nn.Embedding(config.vocab_size + 1, config.n_embd)   # row V: "no token before"
        self.head = nn.Linear(config.n_embd, config.vocab_size)

    def forward(self, idx, targets=None):
        V = self.config.vocab_size
        ids = check_token_ids(idx, V, f"Toy: idx (token ids, vocab_size={V})")
        previous = np.concatenate([np.full((ids.shape[0], 1), V), ids[:, :-1]], axis=1)
        logits = self.head(F.gelu(self.now(ids) + self.before(previous)))
        loss = None
        if targets is not None:
            y = check_token_ids(targets, V, "Toy: targets", ignore=-100)
            loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        return logits, loss


class ToyBatches:
    """Next-token windows, drawn by this file's own generator (the batch source protocol)."""

    def __init__(self, data, block_size, batch_size, seed=0):
        self.data, self.block_size, self.batch_size = data, block_size, batch_size
        self.rng = np.random.default_rng(seed)

    def next(self):
        starts = self.rng.integers(0, len(self.data) - self.block_size - 1, self.batch_size)
        window = np.asarray(self.data[starts[:, None] + np.arange(self.block_size + 1)], dtype=np.int64)
        return window[:, :-1], window[:, 1:]

    def get_state(self):
        return self.rng.bit_generator.state

    def set_state(self, state):
        self.rng.bit_generator.state = state


def toy_preset(vocab_size=65):
    return ToyConfig(vocab_size=vocab_size), TrainConfig(batch_size=8, max_iters=6, eval_interval=3, eval_iters=2,
                                                         log_interval=1, learning_rate=1e-2, warmup_iters=0,
                                                         lr_decay_iters=6)


FAMILY = Family("toy", Toy, ToyConfig, batch_source=lambda config: ToyBatches, commands=("sample",))
if FAMILIES.get("toy") is None:
    register(FAMILY)
    PRESETS["toy"] = toy_preset


def run(*argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main([str(a) for a in argv])
    return out.getvalue()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    text = folder / "input.txt"
    text.write_text("to be or not to be, that is the question.\n" * 200, encoding="utf-8")
    run("prepare", "--input", text, "--dataset", folder / "data")
    return folder


def test_a_family_from_outside_trains_resumes_and_samples_through_the_cli(dataset):
    data, whole, split = dataset / "data", dataset / "whole", dataset / "split"
    log = run("train", "--preset", "toy", "--dataset", data, "--out-dir", whole, "--samples", 0)
    assert "step     6" in log and "eval      6" in log
    run("train", "--preset", "toy", "--dataset", data, "--out-dir", split, "--max-iters", 3,
        "--lr-decay-iters", 6, "--samples", 0)
    log = run("train", "--init-from", "resume", "--out-dir", split, "--max-iters", 6, "--samples", 0)
    assert "resuming from" in log
    a, b = checkpoint.load(whole / "last.npz"), checkpoint.load(split / "last.npz")
    assert a["meta"]["model_family"] == b["meta"]["model_family"] == "toy"
    assert len(a["meta"]["history"]) == 6 and b["meta"]["history"] == a["meta"]["history"]   # resumed exactly
    for name, array in a["model"].items():
        np.testing.assert_array_equal(b["model"][name], array)
    first, last = a["meta"]["history"][0][1], a["meta"]["history"][-1][1]
    assert last < first                                                   # it learned something
    text = run("sample", "--out-dir", whole, "--max-new-tokens", 20, "--num-samples", 2, "--seed", 1)
    samples = [s for s in text.split("---\n") if s.strip()]
    assert len(samples) == 2 and all(set(s) <= set("to be or not to be, that is the question.\n") for s in samples)


def test_a_command_the_family_does_not_declare_is_refused_in_one_line(dataset):
    run("train", "--preset", "toy", "--dataset", dataset / "data", "--out-dir", dataset / "t", "--max-iters", 1,
        "--samples", 0, "--eval-interval", 1)
    for command, takers in (("translate", "seq2seq"), ("fill-mask", "bert-mlm"), ("export", "gpt")):
        args = {"translate": ["--checkpoint", dataset / "t" / "last.npz", "--text", "to be"],
                "fill-mask": ["--model", dataset / "t" / "last.npz", "to [MASK]"],
                "export": ["--checkpoint", dataset / "t" / "last.npz", "--out", dataset / "exported"]}[command]
        with pytest.raises(SystemExit) as refused:
            main([command, *map(str, args)])
        message = str(refused.value.code)
        assert "\n" not in message and message.startswith(f"error: {command} does not apply to")
        assert f"it holds a toy model (Toy); {command} takes {takers}" in message


def test_a_family_from_outside_is_benchmarked_by_the_same_driver():
    """bench's workers are fresh processes: they import this file to know the toy family."""
    log = run("bench", "--preset", "toy", "--steps", 2, "--warmup", 1, "--rounds", 2)
    assert "preset toy (toy)" in log and "the toy family has no PyTorch twin" in log
    assert "tinygrad_lm :" in log and "ms/step" in log


def test_each_command_reads_its_checkpoint_once(dataset, monkeypatch):
    """The resolver and the run's set-up load a file once: resuming, sampling and starting from a
    checkpoint each open last.npz one time."""
    whole = dataset / "whole"
    if not (whole / "last.npz").exists():
        run("train", "--preset", "toy", "--dataset", dataset / "data", "--out-dir", whole, "--samples", 0)
    reads, real = [], checkpoint._read

    def counting(path, only_meta=False):
        reads.append(pathlib.Path(path).name)
        return real(path, only_meta)
    monkeypatch.setattr(checkpoint, "_read", counting)
    run("train", "--init-from", "resume", "--out-dir", whole, "--max-iters", 7, "--samples", 0)
    assert reads.count("last.npz") == 1
    reads.clear()
    run("sample", "--out-dir", whole, "--max-new-tokens", 3)
    assert reads == ["last.npz"]
    reads.clear()
    run("train", "--preset", "toy", "--init-from", whole / "last.npz", "--out-dir", dataset / "tuned",
        "--max-iters", 1, "--samples", 0, "--eval-interval", 1)
    assert reads.count("last.npz") == 1
