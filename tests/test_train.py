"""Training end to end: data preparation, overfitting, exact resume, checkpoints, NaN guard, Ctrl-C, CLI."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_lm as tg
from tinygrad_lm.training import checkpoint
from tinygrad_lm import optim
from tinygrad_lm.data.text import CausalLMBatches, DataError, load_split, prepare, read_utf8
from tinygrad_lm.models.gpt import GPT, GPTConfig
from tinygrad_lm.errors import TrainingDiverged
from tinygrad_lm.training.loop import TrainConfig, split_loss, train

TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\n") * 30


@pytest.fixture
def dataset(tmp_path):
    src = tmp_path / "input.txt"
    src.write_text(TEXT, encoding="utf-8")
    out = tmp_path / "data"
    prepare(src, out, tokenizer="char")
    return out


def tiny(vocab_size, **kw):
    return GPTConfig.gpt2(vocab_size=vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=32, **kw)


def quiet(*args, **kwargs):
    pass


def cfg_for(tmp_path, **kw):
    base = dict(batch_size=4, max_iters=12, learning_rate=3e-3, warmup_iters=2, lr_decay_iters=12, eval_interval=5,
                eval_iters=2, log_interval=4, out_dir=str(tmp_path / "out"), seed=3)
    base.update(kw)
    return TrainConfig(**base)


# ------------------------------------------------------------------ data
def test_prepare_writes_splits_and_meta(dataset):
    meta = json.loads((dataset / "meta.json").read_text())
    train_ids, val_ids = load_split(dataset, "train"), load_split(dataset, "val")
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == len(set(TEXT))
    assert len(train_ids) == int(len(TEXT) * 0.9) and len(val_ids) == len(TEXT) - int(len(TEXT) * 0.9)
    from tinygrad_lm.data.text import load_tokenizer
    tok = load_tokenizer(meta)
    assert tok.decode(np.asarray(train_ids).tolist()) + tok.decode(np.asarray(val_ids).tolist()) == TEXT


def test_large_vocabulary_uses_uint32(tmp_path):
    from tinygrad_lm.data.text import token_dtype
    assert token_dtype(65) == np.uint16 and token_dtype(2 ** 16) == np.uint16 and token_dtype(70_000) == np.uint32


def test_batches_are_shifted_windows_and_seeded():
    data = np.arange(100, dtype=np.uint16)
    x, y = CausalLMBatches(data, 8, 5, seed=1).next()
    assert x.shape == (5, 8) and x.dtype == np.int64
    np.testing.assert_array_equal(y, x + 1)
    x2, _ = CausalLMBatches(data, 8, 5, seed=1).next()
    np.testing.assert_array_equal(x, x2)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        CausalLMBatches(data, 8, 0)


def test_bad_inputs(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\u00e9 ok".encode("latin-1"))
    with pytest.raises(DataError, match=r"byte 0xe9 at offset 3"):
        read_utf8(bad)
    with pytest.raises(DataError, match="does not exist"):
        prepare(tmp_path / "missing.txt", tmp_path / "out")
    with pytest.raises(DataError, match="is not a file"):
        prepare(tmp_path, tmp_path / "out")
    with pytest.raises(DataError, match=r"fewer than one block of 16"):
        CausalLMBatches(np.arange(10, dtype=np.uint16), 16, 2)
    short = tmp_path / "short.txt"
    short.write_text("hello world", encoding="utf-8")
    prepare(short, tmp_path / "short")
    with pytest.raises(DataError, match="fewer than one block"):
        train(tiny(20), cfg_for(tmp_path), tmp_path / "short", log=quiet)


def test_offline_without_local_copy_explains(tmp_path, monkeypatch):
    import urllib.request
    from tinygrad_lm.data.text import shakespeare

    def offline(*a, **k):
        raise OSError("network is unreachable")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match=r"Offline: leave out --download to use the package's own copy, or copy "
                                        r"input.txt to .*tinyshakespeare"):
        shakespeare(tmp_path, download=True)
    assert shakespeare(tmp_path).name == "input.txt.gz"        # without --download: the package's copy
    (tmp_path / "tinyshakespeare").mkdir(exist_ok=True)
    (tmp_path / "tinyshakespeare" / "input.txt").write_text("a user's own corpus\n")
    assert shakespeare(tmp_path) == tmp_path / "tinyshakespeare" / "input.txt"     # the user's copy first


# ------------------------------------------------------------------ learning
def test_overfit_one_batch():
    tg.manual_seed(0)
    model = GPT(GPTConfig.gpt2(vocab_size=30, block_size=16, n_layer=2, n_head=2, n_embd=48))
    x = np.random.default_rng(0).integers(0, 30, (4, 16))
    y = np.roll(x, -1, axis=1)
    opt = optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    for step in range(300):
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.1:
            break
    assert loss.item() < 0.1, f"loss {loss.item()} after {step + 1} steps"


def test_training_reduces_loss_and_writes_checkpoints(dataset, tmp_path):
    cfg = cfg_for(tmp_path, max_iters=30, eval_interval=10)
    result = train(tiny(40), cfg, dataset, log=quiet)
    evals = result["evals"]
    assert [e["step"] for e in evals] == [0, 10, 20, 30]
    assert evals[-1]["val"] < evals[0]["val"] - 0.3
    for name in ("last.npz", "best.npz"):
        ckpt = checkpoint.load(tmp_path / "out" / name)
        assert set(ckpt["meta"]) >= {"step", "model_config", "train_config", "rng_state", "batch_rng_state",
                                     "tokenizer", "optimizer", "history"}
    model, tok, _ = checkpoint.load_model(tmp_path / "out" / "last.npz")
    logits, _ = model(np.zeros((1, 4), dtype=np.int64))
    assert tok.decode(tok.encode("Speak")) == "Speak" and logits.shape == (1, 4, 40)


def test_split_loss_is_the_mean_over_every_whole_block():
    tg.manual_seed(1)
    model = GPT(tiny(40, dropout=0.5))       # dropout: the evaluation must run in eval mode
    tokens = np.random.default_rng(2).integers(0, 40, 16 * 5 + 3).astype(np.uint16)
    x = tokens[:80].astype(np.int64).reshape(5, 16)
    y = tokens[1:81].astype(np.int64).reshape(5, 16)
    model.eval()
    with tg.no_grad():
        logits = model(x)[0].numpy().astype(np.float64)
    model.train()
    logp = logits - logits.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    expected = -np.take_along_axis(logp, y[..., None], -1).mean()
    got = split_loss(model, tokens, 16, batch_size=2)          # chunks of 2, 2 and 1 blocks
    assert abs(got - expected) < 1e-5
    assert model.training                                      # the mode is given back
    with pytest.raises(ValueError, match="fewer than one block"):
        split_loss(model, tokens[:16], 16)


def test_exact_resume_is_bit_for_bit(dataset, tmp_path):
    config = tiny(40, dropout=0.1)                      # dropout: the RNG state must resume too
    full = train(config, cfg_for(tmp_path / "a"), dataset, log=quiet)

    def interrupt(step, loss):
        if step == 7:
            raise KeyboardInterrupt
    part = train(config, cfg_for(tmp_path / "b"), dataset, log=quiet, on_step=interrupt)
    assert part["interrupted"] and part["step"] == 7
    assert checkpoint.load(tmp_path / "b" / "out" / "last.npz")["meta"]["step"] == 7
    resumed = train(config, cfg_for(tmp_path / "b"), dataset, log=quiet, init_from="resume")
    assert resumed["history"] == full["history"]            # every loss, bit for bit
    assert resumed["evals"] == full["evals"]
    a = checkpoint.load(tmp_path / "a" / "out" / "last.npz")["model"]
    b = checkpoint.load(tmp_path / "b" / "out" / "last.npz")["model"]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_a_model_smaller_than_the_vocabulary_is_refused(dataset, tmp_path):
    with pytest.raises(ValueError, match=r"the data's tokenizer has \d+ tokens but the model only 10"):
        train(tiny(10), cfg_for(tmp_path), dataset, log=quiet)


def test_resume_says_which_settings_changed(dataset, tmp_path):
    config = tiny(40)
    train(config, cfg_for(tmp_path, max_iters=4), dataset, log=quiet)
    lines = []
    train(config, cfg_for(tmp_path, max_iters=6, batch_size=2), dataset, log=lines.append, init_from="resume")
    notes = [line for line in lines if line.startswith("note:")]
    assert len(notes) == 1 and "batch_size 2 (saved 4), max_iters 6 (saved 4)" in notes[0]
    lines.clear()
    train(config, cfg_for(tmp_path, max_iters=6, batch_size=2), dataset, log=lines.append, init_from="resume")
    assert not [line for line in lines if line.startswith("note:")]          # same settings: no note


def test_cli_resume_continues_the_saved_run_not_the_defaults(dataset, tmp_path, capsys, monkeypatch):
    """`train --init-from resume` (as the Ctrl-C message says) without repeating --preset: the
    run goes on with the checkpoint's settings and repeats the uninterrupted run's losses."""
    from tinygrad_lm.__main__ import main
    flags = ["--dataset", str(dataset), "--eval-iters", "1", "--samples", "0"]
    main(["train", "--preset", "atpesc", "--max-iters", "6", "--out-dir", str(tmp_path / "a")] + flags)
    main(["train", "--preset", "atpesc", "--max-iters", "3", "--out-dir", str(tmp_path / "b")] + flags)
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)                                 # no --dataset: the one saved in the checkpoint
    main(["train", "--init-from", "resume", "--max-iters", "6", "--out-dir", str(tmp_path / "b"), "--eval-iters", "1",
          "--samples", "0"])
    assert "resuming from" in capsys.readouterr().out and not (tmp_path / "data" / "shakespeare_char").exists()
    full, resumed = (checkpoint.read_meta(tmp_path / d / "last.npz") for d in ("a", "b"))
    assert resumed["history"] == full["history"] and len(full["history"]) == 6
    assert resumed["train_config"] == dict(full["train_config"], out_dir=str(tmp_path / "b"))
    main(["train", "--init-from", "resume", "--preset", "baby", "--max-iters", "7", "--out-dir", str(tmp_path / "b")]
         + flags)
    assert "note: --preset baby is not used when resuming" in capsys.readouterr().out
    assert checkpoint.read_meta(tmp_path / "b" / "last.npz")["train_config"]["batch_size"] == 16    # atpesc's
    other = tmp_path / "other"                                 # same text, another tokenizer
    prepare(tmp_path / "input.txt", other, tokenizer="bpe:300")
    with pytest.raises(SystemExit, match=r"last.npz was trained on text tokenized by another tokenizer \(char\) "
                                         r"than .*other \(bpe\): resume with the run's own dataset \(.*data\)"):
        main(["train", "--init-from", "resume", "--max-iters", "8", "--out-dir", str(tmp_path / "b"),
              "--dataset", str(other), "--eval-iters", "1", "--samples", "0"])
    with pytest.raises(SystemExit, match="error: --n-layer, --block-size cannot change when resuming"):
        main(["train", "--init-from", "resume", "--n-layer", "2", "--block-size", "8", "--out-dir", str(tmp_path / "b")]
             + flags)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(dataset, tmp_path):
    model = GPT(tiny(40))

    def poison(step, loss):
        if step == 8:
            model.transformer.wte.weight.data[...] = np.nan

    with pytest.raises(TrainingDiverged, match=r"the loss became nan at step 8.*last good checkpoint is .*last.npz"):
        train(tiny(40), cfg_for(tmp_path), dataset, log=quiet, on_step=poison, model=model)
    ckpt = checkpoint.load(tmp_path / "out" / "last.npz")
    assert ckpt["meta"]["step"] == 5
    assert all(np.isfinite(v).all() for v in ckpt["model"].values())


# ------------------------------------------------------------------ checkpoints
def test_checkpoint_round_trip_and_no_pickle(tmp_path):
    tg.manual_seed(0)
    model = GPT(tiny(20))
    opt = optim.AdamW(model.parameters())
    path = checkpoint.save(tmp_path / "c.npz", model, opt, meta={"step": 3, "note": "hi"})
    ckpt = checkpoint.load(path)
    assert ckpt["meta"]["step"] == 3 and ckpt["meta"]["optimizer"]["type"] == "AdamW"
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(ckpt["model"][k], v.numpy())
    with np.load(path, allow_pickle=False) as f:          # plain arrays only
        assert all(f[k].dtype != object for k in f.files)


def test_interrupted_save_leaves_previous_checkpoint(tmp_path, monkeypatch):
    model = GPT(tiny(20))
    path = checkpoint.save(tmp_path / "last.npz", model, meta={"step": 1})
    before = path.read_bytes()

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(checkpoint.CheckpointError, match=r"could not write checkpoint .*last.npz \(disk full\); "
                                                         r"the previous one is unchanged"):
        checkpoint.save(path, model, meta={"step": 2})
    assert path.read_bytes() == before
    assert checkpoint.load(path)["meta"]["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.npz"]      # no temporary left behind


def test_an_output_folder_that_cannot_be_made_stops_before_training(dataset, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(checkpoint.CheckpointError, match=r"cannot create the output folder .*a_file/out"):
        train(tiny(40), cfg_for(tmp_path, out_dir=str(blocker / "out")), dataset, log=quiet)


def test_corrupt_checkpoint_gives_clear_error(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(checkpoint.CheckpointError, match="corrupt"):
        checkpoint.load(bad)


# ------------------------------------------------------------------ CLI and plots
def test_cli_prepare_train_sample(tmp_path):
    env = dict(os.environ)          # tiny Shakespeare: $TINYGRAD_LM_DATA's copy, else the package's

    def run(*args):
        out = subprocess.run([sys.executable, "-m", "tinygrad_lm", *args], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout
    print(run("prepare"))
    log = run("train", "--preset", "atpesc", "--max-iters", "20", "--eval-interval", "10", "--eval-iters", "2",
              "--log-interval", "10", "--out-dir", "out", "--sample-tokens", "50")
    assert "step    20 | loss" in log and "ms/step" in log and "tok/s" in log and "mfu" in log
    assert "val ppl" in log and "--- sample ---" in log
    assert (tmp_path / "out" / "loss.png").stat().st_size > 5000
    sample = run("sample", "--out-dir", "out", "--max-new-tokens", "40", "--seed", "1", "--start", "ROMEO:")
    assert sample.startswith("ROMEO:") and len(sample) > 40


def test_sweep_plots_one_curve_per_value(dataset, tmp_path):
    from tinygrad_lm.training.loop import sweep
    from tinygrad_lm.viz.plots import plot_sweep
    results = sweep("learning_rate", [1e-3, 3e-3], tiny(40), cfg_for(tmp_path, max_iters=6, eval_interval=3),
                    dataset, log=quiet)
    plot_sweep(results, "learning_rate", tmp_path / "sweep.png")
    assert sorted(results) == [1e-3, 3e-3] and all(len(v) == 3 for v in results.values())
    assert (tmp_path / "sweep.png").stat().st_size > 5000


def test_bench_command_reports_both_engines_and_the_ratio():
    from tinygrad_lm.training.bench import run_bench
    lines = []
    result = run_bench("atpesc", steps=2, warmup=1, rounds=2, print_fn=lines.append)
    text = "\n".join(lines)
    assert "tinygrad_lm :" in text and "ms/step" in text and "peak RSS" in text
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "not installed" in text
        return
    assert "PyTorch     :" in text and result["ratio"] > 0 and "ratio tinygrad_lm / PyTorch" in text


def test_cli_reports_user_errors_without_a_traceback(tmp_path, capsys):
    from tinygrad_lm.__main__ import main
    with pytest.raises(SystemExit, match=r"error: input file .*missing.txt does not exist"):
        main(["prepare", "--input", str(tmp_path / "missing.txt"), "--dataset", str(tmp_path / "d")])
    with pytest.raises(SystemExit, match=r"error: checkpoint .*nothing.npz does not exist"):
        main(["sample", "--checkpoint", str(tmp_path / "nothing.npz")])


def test_train_config_refuses_settings_that_mean_nothing():
    with pytest.raises(ValueError, match=r"batch_size=0 must be >= 1; .*eval_interval=0 must be >= 1"):
        TrainConfig(batch_size=0, eval_interval=0)                    # every problem named at once
    for field, value, message in (("max_iters", -1, "max_iters=-1 must be >= 0"),
                                  ("learning_rate", float("nan"), "learning_rate=nan must be a finite number"),
                                  ("grad_clip", -1.0, "grad_clip=-1.0 must be >= 0"),
                                  ("beta2", 1.0, r"beta2=1.0 must be in \[0, 1\)"),
                                  ("optimizer", "lion", "optimizer='lion' is not one of"),
                                  ("dtype", "float16", "dtype='float16' is not one of")):
        with pytest.raises(ValueError, match=message):
            TrainConfig(**{field: value})
        with pytest.raises(ValueError, match=message):                # replace() checks as well
            dataclasses.replace(TrainConfig(), **{field: value})
    assert TrainConfig(max_iters=0, learning_rate=0.0, grad_clip=0.0).max_iters == 0   # edges allowed


def test_train_checks_settings_assigned_after_the_config_was_made(dataset, tmp_path):
    cfg = cfg_for(tmp_path)
    cfg.batch_size = 0                                                   # as lessons set fields one by one
    with pytest.raises(ValueError, match="TrainConfig: batch_size=0 must be >= 1"):
        train(tiny(40), cfg, dataset, log=quiet)
    config = tiny(40)
    config.n_head = 3                                                    # 32 is not divisible by 3
    with pytest.raises(ValueError, match="n_embd=32 must be divisible by n_head=3"):
        train(config, cfg_for(tmp_path), dataset, log=quiet)
    assert not (tmp_path / "out").exists()                               # refused before anything was written


def test_cli_bad_flags_are_one_line_errors_before_any_work(dataset, tmp_path):
    from tinygrad_lm.__main__ import main
    out = tmp_path / "never"
    common = ["train", "--preset", "atpesc", "--dataset", str(dataset), "--out-dir", str(out)]
    for flags, message in ((["--batch-size", "0"], "error: TrainConfig: batch_size=0 must be >= 1"),
                           (["--max-iters", "-5"], "error: TrainConfig: max_iters=-5 must be >= 0"),
                           (["--learning-rate", "-1"], "error: TrainConfig: learning_rate=-1.0 must be >= 0"),
                           (["--dropout", "1.5"], r"error: GPTConfig: dropout=1.5 must be in \[0, 1\)")):
        with pytest.raises(SystemExit, match=message):
            main(common + flags)
    assert not out.exists()                                         # nothing trained, nothing written
    missing = str(tmp_path / "no.npz")                              # flags are checked before loading
    for flags, message in ((["--num-samples", "0"], "the number of samples must be >= 1"),
                           (["--max-new-tokens", "-3"], "max_new_tokens must be >= 0"),
                           (["--top-p", "1.5"], r"top_p must be in \(0, 1\]")):
        with pytest.raises(SystemExit, match="error: " + message):
            main(["sample", "--checkpoint", missing] + flags)
    with pytest.raises(SystemExit, match=r"error: --init-from '.*nowhere': not 'scratch', 'resume', a checkpoint"):
        main(common + ["--init-from", str(tmp_path / "nowhere"), "--tokenizer", "char"])
    with pytest.raises(SystemExit, match=r"error: bench needs --steps >= 1"):
        main(["bench", "--steps", "0", "--no-torch"])
    src = tmp_path / "input.txt"
    src.write_text(TEXT, encoding="utf-8")
    for spec, message in (("bpe:abc", "tokenizer 'bpe:abc': write bpe:<vocab_size> with a whole number"),
                          ("bpe:10", "tokenizer 'bpe:10': .*vocab_size=10 is below 256")):
        with pytest.raises(SystemExit, match="error: " + message):
            main(["prepare", "--input", str(src), "--tokenizer", spec, "--dataset", str(tmp_path / "bpe")])
    main(common[:-2] + ["--out-dir", str(tmp_path / "o"), "--max-iters", "1", "--eval-iters", "1", "--samples", "0"])
    with pytest.raises(SystemExit, match=r"error: CharTokenizer: character '@' \(U\+0040\) at position 0"):
        main(["sample", "--out-dir", str(tmp_path / "o"), "--start", "@"])
    with pytest.raises(SystemExit, match=r"error: CharTokenizer: character '@'"):
        main(["attention", "--model", str(tmp_path / "o" / "last.npz"), "--prompt", "a@", "--out", str(tmp_path / "a.png")])
    with pytest.raises(SystemExit, match=r"error: --prompt is empty"):
        main(["attention", "--model", str(tmp_path / "o" / "last.npz"), "--prompt", "", "--out", str(tmp_path / "a.png")])


def test_with_max_iters_keeps_the_schedule_inside_the_run():
    from tinygrad_lm.training.presets import PRESETS
    baby = PRESETS["baby"]()[1]
    short = baby.with_max_iters(50)
    assert (short.max_iters, short.lr_decay_iters, short.warmup_iters) == (50, 50, 50)
    long = baby.with_max_iters(5000)
    assert (long.max_iters, long.lr_decay_iters, long.warmup_iters) == (5000, 5000, 100)
    untied = TrainConfig(max_iters=5000, lr_decay_iters=2000).with_max_iters(300)
    assert (untied.max_iters, untied.lr_decay_iters, untied.warmup_iters) == (300, 2000, 100)


def test_cli_short_baby_run_and_contradictory_schedule(dataset, tmp_path, capsys):
    from tinygrad_lm.__main__ import main
    common = ["train", "--preset", "baby", "--dataset", str(dataset), "--out-dir", str(tmp_path / "o"),
              "--eval-iters", "1", "--sample-tokens", "5"]
    main(common + ["--max-iters", "3"])                         # shorter than the preset's warmup
    assert "step     3 | loss" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"error: decay_iters \(10\) must be >= warmup_iters \(50\).*--warmup-iters"):
        main(common + ["--warmup-iters", "50", "--lr-decay-iters", "10"])


@pytest.mark.parametrize("signal_name, said", [("SIGINT", "Ctrl-C"), ("SIGTERM", "SIGTERM")])
def test_ctrl_c_or_sigterm_saves_a_whole_step_and_resume_is_exact(dataset, tmp_path, signal_name, said):
    """SIGINT is Ctrl-C; SIGTERM is what PBS and Slurm send at walltime or on qdel / scancel."""
    import os
    import signal
    number = getattr(signal, signal_name)
    before = signal.getsignal(number)
    config = tiny(40)
    full = train(config, cfg_for(tmp_path / "a"), dataset, log=quiet)

    def send_signal(step, loss):
        if step == 6:
            os.kill(os.getpid(), number)              # a real signal, as from the keyboard or the batch system
    lines = []
    part = train(config, cfg_for(tmp_path / "b"), dataset, log=lines.append, on_step=send_signal)
    assert part["interrupted"] and part["step"] == 6
    assert any(line.startswith(f"{said}: saved") and "at step 6" in line for line in lines)
    assert signal.getsignal(number) is before                                   # handler restored
    resumed = train(config, cfg_for(tmp_path / "b"), dataset, log=quiet, init_from="resume")
    assert resumed["history"] == full["history"]


def test_an_interrupt_inside_a_step_keeps_the_last_whole_checkpoint(dataset, tmp_path, monkeypatch):
    """A second Ctrl-C stops at once, possibly between the updates of two parameter groups: that
    half-updated state is not saved, and the checkpoint from the last evaluation still resumes exactly."""
    config = tiny(40)
    full = train(config, cfg_for(tmp_path / "a"), dataset, log=quiet)
    calls, real_clip = [], optim.clip_grad_norm_

    def clip_then_interrupt(params, max_norm):      # runs inside step 8, after its backward
        calls.append(1)
        if len(calls) == 8:
            raise KeyboardInterrupt
        return real_clip(params, max_norm)
    monkeypatch.setattr(optim, "clip_grad_norm_", clip_then_interrupt)
    lines = []
    with pytest.raises(KeyboardInterrupt):
        train(config, cfg_for(tmp_path / "b"), dataset, log=lines.append)
    assert any("interrupted inside step 8: not saved" in line for line in lines)
    assert checkpoint.read_meta(tmp_path / "b" / "out" / "last.npz")["step"] == 5      # the eval at step 5
    monkeypatch.setattr(optim, "clip_grad_norm_", real_clip)
    resumed = train(config, cfg_for(tmp_path / "b"), dataset, log=quiet, init_from="resume")
    assert resumed["history"] == full["history"]
