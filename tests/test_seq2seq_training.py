"""The encoder-decoder through the training loop (data/pairs.py, the seq2seq family, preset
seq2seq-dates, translate.py): teacher-forced batches of pairs, exact resume, the teacher-forced
exact match equal to greedy decoding's, and the translate command on any input line."""
import dataclasses
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_lm.training import checkpoint
from tinygrad_lm.data import dates as D
from tinygrad_lm.data.text import load_split
from tinygrad_lm.errors import DataError
from tinygrad_lm.training.evaluate import estimate_loss
from tinygrad_lm.models import FAMILIES, Seq2Seq, Seq2SeqConfig, family_of
from tinygrad_lm.training.presets import PRESETS
from tinygrad_lm.data.pairs import PairBatches
from tinygrad_lm.training.loop import train
from tinygrad_lm.decoding.translate import exact_match, translate

ROOT = pathlib.Path(__file__).resolve().parent.parent


def tiny_configs(out_dir, steps, d_model=32):
    model, cfg = PRESETS["seq2seq-dates"](len(D.CHARACTERS))
    model = dataclasses.replace(model, d_model=d_model, dim_feedforward=2 * d_model, num_encoder_layers=1,
                                num_decoder_layers=1)
    cfg = dataclasses.replace(cfg.with_max_iters(steps), batch_size=32, eval_interval=steps, eval_iters=2,
                              log_interval=steps, out_dir=str(out_dir))
    return model, cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model trained 250 steps on dates: right on some held-out dates, wrong on others."""
    folder = tmp_path_factory.mktemp("dates")
    D.prepare_dates(folder / "data", n_train=3000, seed=0)
    model_config, cfg = tiny_configs(folder / "run", 250, d_model=64)
    result = train(model_config, cfg, folder / "data", log=lambda *a: None)
    return folder, result["model"]


def test_batches_are_teacher_forced_pairs_padded_to_the_batch_s_longest():
    pairs = D.date_pairs(40, seed=2)
    tok = D.date_tokenizer()
    batches = PairBatches(np.array(D.encode_pairs(pairs, tok), dtype=np.uint16), 32, 8, seed=0)
    assert len(batches) == 40
    src, tgt_in, tgt_out = batches.rows(np.arange(40))
    for row, (source, target) in enumerate(pairs):
        assert tok.decode([i for i in src[row] if i != 0]) == source
        assert tgt_in[row, 0] == 1 and tok.decode(tgt_in[row, 1:].tolist()) == target
        assert tok.decode(tgt_out[row, :-1].tolist()) == target and tgt_out[row, -1] == 2
    src, tgt_in, tgt_out = batches.next()
    assert src.shape[0] == 8 and (src[:, -1] != 0).any()            # no column that is padding in every row
    assert tgt_in.shape == tgt_out.shape == (8, 11)


def test_the_batch_generator_resumes_exactly_and_a_malformed_stream_is_refused():
    ids = np.array(D.encode_pairs(D.date_pairs(100, seed=3)), dtype=np.uint16)
    a = PairBatches(ids, 32, 4, seed=1)
    a.next()
    state = a.get_state()
    expected = [a.next() for _ in range(3)]
    b = PairBatches(ids, 32, 4, seed=99)
    b.set_state(state)
    for want, got in zip(expected, (b.next() for _ in range(3))):
        assert all(np.array_equal(w, g) for w, g in zip(want, got))
    with pytest.raises(DataError):
        PairBatches(ids[:-1], 32, 4)                                   # does not end with EOS
    with pytest.raises(DataError):
        PairBatches(np.delete(ids, np.flatnonzero(ids == 1)[5]), 32, 4)    # a pair without its BOS
    with pytest.raises(DataError):
        PairBatches(ids, 8, 4)                                         # sources longer than the block


def test_seq2seq_is_a_family_trained_on_its_pair_batches():
    config, _ = PRESETS["seq2seq-dates"](69)
    assert (FAMILIES["seq2seq"].model, FAMILIES["seq2seq"].config) == (Seq2Seq, Seq2SeqConfig) and family_of(config) == "seq2seq"
    assert config.batch_source().func is PairBatches and config.vocab_size == 69


def test_teacher_forced_exact_match_is_greedy_decoding_s(trained):
    folder, model = trained
    val = load_split(folder / "data", "val")
    greedy = exact_match(model, val)
    batches = PairBatches(val, 32, 1)
    right = 0
    for start in range(0, len(batches), 512):
        batch = batches.rows(np.arange(start, min(start + 512, len(batches))))
        model.eval()
        right += batches.accuracy(batch, model(*batch)[0])[0]
    assert 0.02 < greedy < 0.98                 # some right, some wrong: the comparison means something
    assert right / len(batches) == greedy
    losses = estimate_loss(model, {"val": val}, 32, 64, 2, seed=0, batch_source=Seq2SeqConfig().batch_source())
    assert 0 <= losses["val_accuracy"] <= 1 and losses["val"] > 0


def test_training_resumes_exactly(tmp_path):
    D.prepare_dates(tmp_path / "data", n_train=500, seed=1)
    model_config, cfg = tiny_configs(tmp_path / "whole", 6)
    cfg = dataclasses.replace(cfg, eval_interval=3, decay_lr=False)
    whole = train(model_config, cfg, tmp_path / "data", log=lambda *a: None)
    half = train(model_config, dataclasses.replace(cfg, max_iters=3, out_dir=str(tmp_path / "half")),
                 tmp_path / "data", log=lambda *a: None)
    assert half["step"] == 3
    resumed = train(model_config, dataclasses.replace(cfg, out_dir=str(tmp_path / "half")), tmp_path / "data",
                    init_from="resume", log=lambda *a: None)
    assert resumed["history"] == whole["history"] and resumed["evals"] == whole["evals"]
    for (name, a), (_, b) in zip(whole["model"].state_dict().items(), resumed["model"].state_dict().items()):
        assert np.array_equal(np.asarray(a.numpy()), np.asarray(b.numpy())), name


def test_translate_gives_one_line_per_input_line_whatever_it_holds(trained):
    folder, model = trained
    tok = D.date_tokenizer()
    lines = ["3 March 2021", "", "\x00\x01\x02", "☃ not a date ☃", "x" * 500, "MAR 3 2021"]
    out = translate(model, tok, lines, beam=3)
    assert len(out) == len(lines) and out[1] == out[2] == ""
    assert out == translate(model, tok, lines, beam=3)
    assert translate(model, tok, ["3 March 2021", "MAR 3 2021"]) == [out[0], out[-1]]


def test_the_command_line_prepares_trains_and_translates(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def cli(*args, stdin=None):
        done = subprocess.run([sys.executable, "-m", "tinygrad_lm", *args], cwd=ROOT, env=env, input=stdin,
                              capture_output=True, timeout=300)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()

    data, run = str(tmp_path / "data"), str(tmp_path / "run")
    assert "200 training pairs" in cli("prepare", "--corpus", "dates", "--dataset", data, "--pairs", "200")
    out = cli("train", "--preset", "seq2seq-dates", "--dataset", data, "--out-dir", run, "--max-iters", "2",
              "--eval-interval", "2", "--eval-iters", "1")
    assert "val acc" in out and "exact match on the held-out pairs (greedy decoding)" in out
    assert family_of(checkpoint.load_model(tmp_path / "run" / "last.npz")[0]) == "seq2seq"
    lines = "3 March 2021\n\n\x01garbage ☃\x1c\u2028\r\n" + "9" * 300 + "\nMar 3 \udcff2021\n"
    out = cli("translate", "--out-dir", run, "--beam", "2", stdin=lines.encode("utf-8", "surrogateescape"))
    assert len(out.split("\n")) == 6 and out.split("\n")[1] == ""       # an invalid byte: still a line
    assert len(cli("translate", "--out-dir", run, "--text", "Mar 3 2021").split("\n")) == 2
    assert "exact match on" in cli("translate", "--out-dir", run, "--dataset", data)
