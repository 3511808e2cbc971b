"""BERT through the training loop (data/masked_lm.py, models/bert_tasks.py, presets bert-mini / bert-nsp):
the masking statistics of masked-LM batches, next-sentence pairs, exact resume through the
command line, and a classifier fine-tuned from a masked-LM checkpoint starting from its encoder."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_lm.training import checkpoint
from tinygrad_lm.data.masked_lm import (IGNORE_INDEX, MaskedLMBatches, NextSentenceBatches, SpecialTokens,
    mask_tokens)
from tinygrad_lm.errors import ConfigError, DataError
from tinygrad_lm.models import BertClassifierConfig, BertMLM, BertMLMConfig, FAMILIES, build, family_of
from tinygrad_lm.training.presets import PRESETS
from tinygrad_lm.tokenizers import CharTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
V = 20                                               # text tokens 0..19, then the specials
SPECIALS = SpecialTokens(pad=V, cls=V + 1, sep=V + 2, mask=V + 3)


def _lines(n, seed=0):
    """n lines of random letters (1..30 of them), with an empty line after about one in six."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    out = []
    for _ in range(n):
        out.append("".join(rng.choice(letters, rng.integers(1, 31))))
        if rng.random() < 1 / 6:
            out.append("")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- masked LM
def test_masking_picks_15_percent_of_the_non_special_positions_and_80_10_10_of_those():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, V, size=(400, 512))
    specials = rng.random(ids.shape) < 0.1                       # specials scattered among the text
    ids[specials] = rng.choice([SPECIALS.pad, SPECIALS.cls, SPECIALS.sep], size=int(specials.sum()))
    inputs, labels = mask_tokens(ids, np.random.default_rng(1), SPECIALS)
    picked = labels != IGNORE_INDEX
    n_text = int((~specials).sum())
    n = int(picked.sum())
    tol = lambda p, count: 5 * np.sqrt(p * (1 - p) / count)      # five standard deviations of a binomial
    assert not picked[specials].any()                            # a special token is never a target
    assert np.array_equal(inputs[specials], ids[specials])       # nor changed
    assert abs(n / n_text - 0.15) < tol(0.15, n_text)
    assert np.array_equal(labels[picked], ids[picked])           # the label is the original token
    assert np.array_equal(inputs[~picked], ids[~picked])         # and only picked positions change
    masked = inputs[picked] == SPECIALS.mask
    kept = inputs[picked] == ids[picked]
    replaced = ~masked & ~kept
    assert abs(masked.mean() - 0.8) < tol(0.8, n)
    # a random token equals the original 1 time in V: 10% * (1 - 1/V) differ, 10% + 10%/V are the same
    assert abs(replaced.mean() - 0.1 * (1 - 1 / V)) < tol(0.1, n)
    assert abs(kept.mean() - 0.1 * (1 + 1 / V)) < tol(0.1, n)
    assert (inputs[picked][replaced] < V).all()                  # random replacements are text tokens


def test_masked_lm_batches_frame_a_window_of_the_data_with_cls_and_sep():
    data = np.arange(5000) % V
    batches = MaskedLMBatches(data, 16, 64, seed=3, specials=SPECIALS)
    inputs, attention_mask, token_type_ids, labels = batches.next()
    assert inputs.shape == labels.shape == (64, 16) and attention_mask is None and token_type_ids is None
    assert (inputs[:, 0] == SPECIALS.cls).all() and (inputs[:, -1] == SPECIALS.sep).all()
    assert (labels[:, [0, -1]] == IGNORE_INDEX).all()
    original = np.where(labels != IGNORE_INDEX, labels, inputs)[:, 1:-1]
    assert ((np.diff(original, axis=1) % V) == 1).all()          # a contiguous window of the data


def test_masked_lm_batches_resume_exactly_from_their_state():
    data = np.random.default_rng(0).integers(0, V, 3000)
    a = MaskedLMBatches(data, 32, 8, seed=5, specials=SPECIALS)
    a.next()
    state = a.get_state()
    expected = [a.next() for _ in range(3)]
    b = MaskedLMBatches(data, 32, 8, seed=99, specials=SPECIALS)
    b.set_state(state)
    for want, got in zip(expected, (b.next() for _ in range(3))):
        np.testing.assert_array_equal(want[0], got[0])
        np.testing.assert_array_equal(want[3], got[3])


# ---------------------------------------------------------------------------- next-sentence pairs
def _pairs_source(text, block_size=48, batch_size=200, seed=0):
    tok = CharTokenizer.from_text(text)
    assert tok.encode("\n") == [0]                              # the presets' line_break_id
    data = np.array(tok.encode(text))
    specials = SpecialTokens(pad=tok.vocab_size, cls=tok.vocab_size + 1, sep=tok.vocab_size + 2,
                             mask=tok.vocab_size + 3)
    return tok, NextSentenceBatches(data, block_size, batch_size, seed=seed, specials=specials), specials


def test_next_sentence_pairs_are_half_true_next_lines_and_half_random_lines():
    text = _lines(400)
    tok, source, s = _pairs_source(text)
    T = source.block_size
    labels, true_pairs, random_pairs = [], 0, 0
    for _ in range(20):
        ids, mask, types, label = source.next()
        labels.append(label)
        for row, m, t, y in zip(ids, mask, types, label):
            n = int(m.sum())
            assert (m[:n] == 1).all() and (row[n:] == s.pad).all() and n <= T
            seps = np.flatnonzero(row == s.sep)
            assert row[0] == s.cls and len(seps) == 2 and seps[1] == n - 1
            assert (t[:seps[0] + 1] == 0).all() and (t[seps[0] + 1:n] == 1).all() and (t[n:] == 0).all()
            a, b = tok.decode(row[1:seps[0]].tolist()), tok.decode(row[seps[0] + 1:n - 1].tolist())
            assert a and b and "\n" not in a + b
            follows = ("\n" + a + "\n" + b) in ("\n" + text) and len(a) + len(b) <= T - 3
            if y == 0:
                assert a + "\n" + b in text, (a, b)             # the true next line, touching at the break
                true_pairs += 1
            else:
                random_pairs += follows
    labels = np.concatenate(labels)
    assert set(labels.tolist()) == {0, 1}
    assert abs(labels.mean() - 0.5) < 5 * np.sqrt(0.25 / len(labels))
    assert true_pairs > 0 and random_pairs < 0.02 * (len(labels) - true_pairs)


def test_next_sentence_pairs_never_cross_an_empty_line_and_are_cut_to_the_block():
    text = "".join(f"{c * 40}\n\n" for c in "abcdef") + "xyz" * 20 + "\n" + "qrs" * 20 + "\n"
    tok, source, s = _pairs_source(text, block_size=24, batch_size=300)
    ids, mask, types, labels = source.next()
    for row, y in zip(ids[labels == 0], labels[labels == 0]):
        seps = np.flatnonzero(row == s.sep)
        a, b = tok.decode(row[1:seps[0]].tolist()), tok.decode(row[seps[0] + 1:seps[1]].tolist())
        assert set(a) <= set("xyz") and set(b) <= set("qrs")   # the only two lines with no empty line between
        assert a.endswith("xyz") and b.startswith("qrs") and len(a) + len(b) == 24 - 3


def test_a_text_without_lines_is_refused():
    _, _, s = _pairs_source("ab\ncd\nef\n")
    with pytest.raises(DataError, match="lines"):
        NextSentenceBatches(np.array([1, 2, 3, 1, 2]), 16, 4, specials=s)


def test_the_task_configs_place_the_specials_after_the_vocabulary_and_check_them():
    config = BertMLMConfig.with_specials(65, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=16, max_position_embeddings=16)
    assert (config.vocab_size, config.pad_token_id, config.cls_token_id, config.sep_token_id,
            config.mask_token_id, config.block_size) == (69, 65, 66, 67, 68, 16)
    assert family_of(config) == "bert-mlm" and isinstance(build(config), BertMLM)
    assert family_of(BertClassifierConfig(**config.to_dict())) == "bert-cls"
    with pytest.raises(ConfigError, match="distinct"):
        BertMLMConfig(**{**config.to_dict(), "sep_token_id": 66})
    with pytest.raises(ConfigError, match="mask_token_id"):
        BertMLMConfig(**{**config.to_dict(), "mask_token_id": None})
    assert set(FAMILIES) >= {"bert-mlm", "bert-cls"}


# ---------------------------------------------------------------------------- through the command line
TEXT = _lines(600, seed=1)


def run_cli(*args, cwd, status=0):
    out = subprocess.run([sys.executable, "-m", "tinygrad_lm", *map(str, args)], cwd=cwd, capture_output=True,
                         text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == status, out.stderr
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    work = tmp_path_factory.mktemp("bert")
    (work / "text.txt").write_text(TEXT, encoding="utf-8")
    run_cli("prepare", "--input", "text.txt", "--dataset", "data", cwd=work)
    return work


def test_bert_mini_trains_logs_masked_accuracy_and_resumes_exactly_through_the_cli(workdir):
    common = ("--preset", "bert-mini", "--dataset", "data", "--eval-interval", 2, "--eval-iters", 1,
              "--batch-size", 4, "--log-interval", 1, "--warmup-iters", 1, "--lr-decay-iters", 4)
    whole = run_cli("train", *common, "--out-dir", "whole", "--max-iters", 4, cwd=workdir)
    assert "val acc" in whole.stdout and "--- sample ---" not in whole.stdout
    run_cli("train", *common, "--out-dir", "halves", "--max-iters", 2, cwd=workdir)
    resumed = run_cli("train", "--init-from", "resume", "--out-dir", "halves", "--max-iters", 4, cwd=workdir)
    assert "resuming from halves/last.npz at step 2" in resumed.stdout
    a = checkpoint.load(workdir / "whole" / "last.npz")
    b = checkpoint.load(workdir / "halves" / "last.npz")
    assert a["meta"]["model_family"] == b["meta"]["model_family"] == "bert-mlm"
    assert len(a["meta"]["history"]) == 4 and b["meta"]["history"] == a["meta"]["history"]
    assert [e.get("val_accuracy") for e in a["meta"]["evals"]] == [e.get("val_accuracy") for e in b["meta"]["evals"]]
    assert all(0 <= e["val_accuracy"] <= 1 for e in a["meta"]["evals"])
    for name, array in a["model"].items():
        np.testing.assert_array_equal(b["model"][name], array)
    # an encoder does not sample text, and its sequence length is its position table's: one-line errors
    refused = run_cli("sample", "--out-dir", "whole", cwd=workdir, status=1)
    assert refused.stderr.startswith("error:") and len(refused.stderr.strip().splitlines()) == 1
    assert "sample does not apply to" in refused.stderr and "sample takes gpt, bigram, rnnlm" in refused.stderr
    refused = run_cli("train", *common, "--out-dir", "other", "--block-size", 32, cwd=workdir, status=1)
    assert refused.stderr.startswith("error:") and "--block-size" in refused.stderr


def test_the_classifier_fine_tunes_from_the_masked_lm_checkpoint_s_encoder(workdir):
    if not (workdir / "whole" / "last.npz").exists():
        run_cli("train", "--preset", "bert-mini", "--dataset", "data", "--out-dir", "whole", "--max-iters", 2,
                "--batch-size", 4, "--eval-iters", 1, cwd=workdir)
    run_cli("train", "--preset", "bert-nsp", "--init-from", "whole/last.npz", "--out-dir", "nsp", "--max-iters", 0,
            "--eval-iters", 1, "--batch-size", 4, cwd=workdir)
    mlm = checkpoint.load(workdir / "whole" / "last.npz")["model"]
    nsp = checkpoint.load(workdir / "nsp" / "last.npz")
    assert nsp["meta"]["model_family"] == "bert-cls"
    encoder = [name for name in mlm if name.startswith("bert.")]
    assert len(encoder) > 10 and any("encoder.layer.1" in name for name in encoder)
    for name in encoder:
        np.testing.assert_array_equal(nsp["model"][name], mlm[name])
    assert {"classifier.weight", "bert.pooler.dense.weight"} <= set(nsp["model"]) - set(mlm)
    # from scratch the same preset starts elsewhere: the copy above is the checkpoint's, not the seed's
    run_cli("train", "--preset", "bert-nsp", "--dataset", "data", "--out-dir", "scratch", "--max-iters", 0,
            "--eval-iters", 1, "--batch-size", 4, cwd=workdir)
    scratch = checkpoint.load(workdir / "scratch" / "last.npz")["model"]
    assert not np.array_equal(scratch["bert.encoder.layer.0.attention.self.query.weight"],
                              mlm["bert.encoder.layer.0.attention.self.query.weight"])
    assert PRESETS["bert-nsp"]()[0].num_labels == 2
