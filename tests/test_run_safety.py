"""A run is never lost to careless or hostile input: no checkpoint that cannot resume, settings
given on resume take effect, a hostile checkpoint costs no more memory than its real model and
ends in one `error:` line, two runs never share a folder, and a stopped run says so in its exit
status (130 Ctrl-C, 143 SIGTERM) so that a job script can resubmit itself."""
import itertools
import json
import os
import pathlib
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tinygrad_lm.training import checkpoint, lock, runs
from tinygrad_lm.training.lock import OutDirLock
from tinygrad_lm import errors, nn, optim
from tinygrad_lm.data.text import prepare
from tinygrad_lm.models import GPT, Bigram, BigramConfig, GPTConfig
from tinygrad_lm.training.loop import TrainConfig, train

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\n") * 30


def quiet(*args, **kwargs):
    pass


@pytest.fixture
def dataset(tmp_path):
    src = tmp_path / "input.txt"
    src.write_text(TEXT, encoding="utf-8")
    prepare(src, tmp_path / "data", tokenizer="char")
    return tmp_path / "data"


def tiny(vocab_size=40, **kw):
    return GPTConfig.gpt2(**{"vocab_size": vocab_size, "block_size": 16, "n_layer": 2, "n_head": 2, "n_embd": 32, **kw})


def cfg_for(tmp_path, **kw):
    base = dict(batch_size=4, max_iters=12, learning_rate=3e-3, warmup_iters=2, lr_decay_iters=12, eval_interval=5,
                eval_iters=2, log_interval=4, out_dir=str(tmp_path / "out"), seed=3)
    base.update(kw)
    return TrainConfig(**base)


def run_cli(*args, cwd, check=False, **kw):
    return subprocess.run([sys.executable, "-m", "tinygrad_lm", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)}, **kw)


def one_error_line(out, *needles):
    assert out.returncode == 1, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def capture_optimizers(monkeypatch):
    made, real = [], runs.make_optimizer

    def make(model, cfg):
        made.append(real(model, cfg))
        return made[-1]
    monkeypatch.setattr(runs, "make_optimizer", make)
    return made


def all_finite(path):
    ckpt = checkpoint.load(path)
    arrays = list(ckpt["model"].values()) + [v for group in ckpt["optim"] for v in group.values()]
    return all(np.isfinite(a).all() for a in arrays)


# ------------------------------------------------------------------ 1. never save what cannot resume
def test_moments_that_became_infinite_are_never_saved(dataset, tmp_path, monkeypatch):
    """The loss stays finite while AdamW's second moment overflows: that state is not saved."""
    made = capture_optimizers(monkeypatch)

    def poison(step, loss):
        if step == 7:
            made[-1].state[0]["exp_avg_sq"][:10] = np.inf
    with pytest.raises(errors.TrainingDiverged, match=r"infinite or NaN values in the optimizer's exp_avg_sq at "
                                                      r"step 10.*last good checkpoint is .*last.npz"):
        train(tiny(), cfg_for(tmp_path), dataset, log=quiet, on_step=poison)
    assert checkpoint.read_meta(tmp_path / "out" / "last.npz")["step"] == 5
    assert all_finite(tmp_path / "out" / "last.npz") and all_finite(tmp_path / "out" / "best.npz")
    train(tiny(), cfg_for(tmp_path), dataset, log=quiet, init_from="resume")     # and it resumes
    assert not (tmp_path / "out" / ".lock").exists()


# ------------------------------------------------------------------ 2. settings given on resume take effect
def test_optimizer_settings_given_on_resume_take_effect(dataset, tmp_path, monkeypatch):
    made = capture_optimizers(monkeypatch)
    first = dict(max_iters=4, eval_interval=4, weight_decay=0.01, beta2=0.99, eps=1e-8)
    train(tiny(), cfg_for(tmp_path / "a", **first), dataset, log=quiet)
    train(tiny(), cfg_for(tmp_path / "b", **first), dataset, log=quiet)
    train(tiny(), cfg_for(tmp_path / "a", max_iters=6, eval_interval=4, weight_decay=0.01), dataset, log=quiet,
          init_from="resume")
    kept = made[-1]
    train(tiny(), cfg_for(tmp_path / "b", max_iters=6, eval_interval=4, weight_decay=0.9, beta2=0.95, eps=1e-6),
          dataset, log=quiet, init_from="resume")
    changed = made[-1]
    decay, no_decay = changed.param_groups               # gpt2_param_groups: matrices, then biases and gains
    assert decay["weight_decay"] == 0.9 and no_decay["weight_decay"] == 0.0
    assert decay["betas"] == no_decay["betas"] == (0.9, 0.95) and decay["eps"] == no_decay["eps"] == 1e-6
    assert kept.param_groups[0]["weight_decay"] == 0.01
    a = checkpoint.load(tmp_path / "a" / "out" / "last.npz")
    b = checkpoint.load(tmp_path / "b" / "out" / "last.npz")
    assert b["meta"]["optimizer"]["param_groups"][0]["weight_decay"] == 0.9        # saved as it was used
    assert any(not np.array_equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_cli_resume_with_a_new_weight_decay_uses_it(tmp_path, dataset):
    common = ("--preset", "bigram", "--dataset", dataset, "--eval-interval", 2, "--samples", 0)
    for out in ("a", "b"):
        assert run_cli("train", *common, "--out-dir", out, "--max-iters", 2, "--weight-decay", 0.01,
                       cwd=tmp_path).returncode == 0
    assert run_cli("train", "--init-from", "resume", "--out-dir", "a", "--max-iters", 4, "--samples", 0,
                   cwd=tmp_path).returncode == 0
    out = run_cli("train", "--init-from", "resume", "--out-dir", "b", "--max-iters", 4, "--samples", 0,
                  "--weight-decay", 0.9, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    a, b = (checkpoint.load(tmp_path / d / "last.npz")["model"]["token_logits.weight"] for d in "ab")
    assert not np.allclose(a, b)


# ------------------------------------------------------------------ 3, 4. hostile checkpoints
@pytest.fixture
def good_checkpoint(tmp_path):
    model = GPT(tiny(20))
    opt = optim.AdamW(optim.gpt2_param_groups(model, 0.1))
    return checkpoint.save(tmp_path / "good.npz", model, opt, meta={
        "model_family": "gpt", "model_config": model.config.to_dict(), "step": 0,
        "tokenizer": {"type": "char", "version": 1, "chars": [chr(97 + i) for i in range(20)]}})


def rewrite(src, dst, drop=(), add=None, meta=None):
    """A copy of checkpoint `src` with entries dropped, added ({key: array}) or its metadata changed."""
    with np.load(src, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files if k not in drop}
    if meta is not None:
        old = json.loads(arrays[checkpoint.META_KEY].tobytes())
        payload = meta(old) if callable(meta) else meta
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        arrays[checkpoint.META_KEY] = np.frombuffer(raw, dtype=np.uint8)
    arrays.update(add or {})
    np.savez(dst, **arrays)
    return dst


def with_config(**changes):
    def change(meta):
        meta["model_config"].update(changes)
        return meta
    return change


@pytest.mark.parametrize("case, needle", [
    # (the optim/99999999999/exp_avg made the old loader append 10**11 dicts: a smaller index fails it safely)
    (dict(add={"optim/2000000/exp_avg": np.zeros(3, np.float32)}), "optimizer key 'optim/2000000/exp_avg'"),
    (dict(add={"optim/abc/exp_avg": np.zeros(3, np.float32)}), "optimizer key 'optim/abc/exp_avg'"),
    (dict(add={"optim/2/exp_avg": np.zeros(3, np.float32)}), "expected optim/<group < 2>"),
    (dict(add={"other/thing": np.zeros(3, np.float32)}), "unknown entry 'other/thing'"),
    (dict(add={"model/extra.weight": np.zeros(3, np.float32)}), "unexpected: extra.weight"),
    (dict(drop=("model/lm_head.weight",)), "missing: lm_head.weight"),
    (dict(add={"model/lm_head.weight": np.zeros((20, 16), np.float32)}), "lm_head.weight has shape (20, 16)"),
    (dict(add={"model/lm_head.weight": np.zeros((20, 32), np.int64)}), "holds int64"),
    (dict(meta=with_config(n_layer=1e12)), "n_layer=1000000000000.0 must be an integer"),
    (dict(meta=with_config(n_layer=10 ** 9)), "declares more parameters than"),
    (dict(meta=with_config(n_embd="32")), "n_embd='32'"),
    (dict(meta=with_config(vocab_size=10 ** 12)), "transformer.wte.weight has shape (20, 32) but"),
    (dict(meta=with_config(pos_encoding="sinusoidal", block_size=10 ** 10)), "position tables"),
    (dict(meta=b"{not json"), "not valid JSON"),
    (dict(meta=b"\xff\xfe"), "not valid JSON"),
    (dict(meta=[1, 2]), "JSON list, not an object"),
    (dict(meta=lambda m: dict(m, optimizer={"type": "AdamW", "step": 0, "param_groups": "x"})),
     "optimizer metadata"),
])
def test_hostile_checkpoints_are_refused_before_anything_is_built(good_checkpoint, tmp_path, case, needle):
    bad = rewrite(good_checkpoint, tmp_path / "bad.npz", **case)
    with pytest.raises(errors.CheckpointError) as info:
        checkpoint.load_model(bad)
    assert needle in str(info.value) and str(bad) in str(info.value)


def test_a_good_checkpoint_still_loads(good_checkpoint):
    model, tok, ckpt = checkpoint.load_model(good_checkpoint)
    assert isinstance(model, GPT) and tok.vocab_size == 20 and len(ckpt["optim"]) == 2


def test_a_model_config_that_does_not_fit_its_weights_names_the_file(good_checkpoint, tmp_path):
    other = GPT(tiny(20, n_embd=16))
    path = checkpoint.save(tmp_path / "other.npz", other, meta={"model_config": tiny(20).to_dict()})
    with pytest.raises(errors.CheckpointError, match=r"other.npz.*has shape"):
        checkpoint.load_model(path)


def test_load_state_dict_with_another_models_shapes_is_one_clear_error():
    a, b = GPT(tiny(20)), GPT(tiny(20, n_embd=16))
    with pytest.raises(errors.TinygradLMError, match=r"shape mismatch: transformer.wte.weight: checkpoint "
                                                     r"\(20, 16\) vs model \(20, 32\)") as info:
        a.load_state_dict(b.state_dict())
    assert isinstance(info.value, KeyError) and not str(info.value).startswith(("'", '"'))
    with pytest.raises(errors.TinygradLMError, match=r"not arrays of numbers: token_logits.weight"):
        Bigram(BigramConfig(vocab_size=3)).load_state_dict({"token_logits.weight": np.array([["a"] * 3] * 3)})
    with pytest.raises(errors.TinygradLMError, match="expected a mapping"):
        a.load_state_dict([1, 2])


def test_parameter_shapes_from_the_config_are_the_built_models():
    for att, pos, bias, qkv, tie, lm_bias in itertools.product(("heads", "batched"), ("learned", "sinusoidal", "rotary"),
                                                               (True, False), (None, True, False), (True, False),
                                                               (True, False)):
        c = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8, attention=att, pos_encoding=pos,
                      bias=bias, qkv_bias=qkv, tie_weights=tie, lm_head_bias=lm_bias, mlp_ratio=3)
        model = GPT(c)
        assert c.parameter_shapes() == {k: tuple(v.shape) for k, v in model.state_dict().items()}
        fixed = {id(b): b.numel() for _, b in model.named_buffers()}
        fixed.update({id(t): t.size for m in model.modules() if isinstance(m, nn.RotaryEmbedding)
                      for t in (m.cos_table, m.sin_table)})
        assert c.buffer_numel() == sum(fixed.values())
    assert BigramConfig(vocab_size=7).parameter_shapes() == {"token_logits.weight": (7, 7)}
    assert len(GPTConfig(n_layer=10 ** 12).parameter_shapes(limit=100)) == 101     # stops early


def _bomb(path, gib=0.5):
    """A small .npz whose one model entry inflates to `gib` GiB of zeros (deflated)."""
    n = int(gib * (1 << 30)) // 4
    rows = n // 4096
    header = {"descr": "<f4", "fortran_order": False, "shape": (rows, 4096)}
    meta = {"model_family": "bigram", "model_config": {"vocab_size": 4096, "block_size": 8},
            "tokenizer": {"type": "char", "version": 1, "chars": ["a"]}}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("model/token_logits.weight.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, header)
            chunk = bytes(1 << 24)
            for _ in range(rows * 4096 * 4 // len(chunk)):
                f.write(chunk)
        zf.writestr(checkpoint.META_KEY + ".npy", _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8)))
    return path


def _npy(array):
    import io
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array)
    return buf.getvalue()


def test_a_deflated_bomb_costs_no_memory_through_the_cli(tmp_path):
    bomb = _bomb(tmp_path / "bomb.npz")
    assert bomb.stat().st_size < 8 << 20
    # VmHWM is this process image's own peak: getrusage's ru_maxrss would also count the memory of
    # the forked pytest process before exec (Linux carries it across execve)
    code = ("import sys\nfrom tinygrad_lm.cli import main\n"
            "try:\n    main(sys.argv[1:])\nfinally:\n"
            "    peak = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
            "    print('maxrss', peak, file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", code, "sample", "--checkpoint", str(bomb)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    one_error_line(out, "bomb.npz", "expand")
    maxrss_kib = int(out.stderr.split("maxrss")[1].split()[0])
    assert maxrss_kib < 300 * 1024, maxrss_kib          # the entry alone would be 512 MiB


@pytest.mark.parametrize("command", ["sample", "export"])
def test_hostile_checkpoints_end_cli_commands_in_one_error_line(good_checkpoint, tmp_path, command):
    for i, case in enumerate([dict(add={"optim/abc/exp_avg": np.zeros(3, np.float32)}),
                              dict(meta=b"{broken"), dict(meta=with_config(n_layer=1e12))]):
        bad = rewrite(good_checkpoint, tmp_path / f"bad{i}.npz", **case)
        flags = ["--checkpoint", bad] + (["--out", tmp_path / "hf"] if command == "export" else [])
        one_error_line(run_cli(command, *flags, cwd=tmp_path), f"bad{i}.npz")


# ------------------------------------------------------------------ 7. a partial optimizer state
@pytest.fixture
def trained(tmp_path, dataset):
    train(tiny(), cfg_for(tmp_path, max_iters=4, eval_interval=4), dataset, log=quiet)
    return tmp_path / "out" / "last.npz"


def test_a_partial_optimizer_state_is_refused_naming_the_key(trained, tmp_path, dataset):
    rewrite(trained, trained, drop=("optim/0/exp_avg",))
    with pytest.raises(errors.CheckpointError, match=r"cannot resume from .*last.npz.*group 0 lacks exp_avg"):
        train(tiny(), cfg_for(tmp_path, max_iters=6), dataset, log=quiet, init_from="resume")
    out = run_cli("train", "--init-from", "resume", "--out-dir", tmp_path / "out", "--dataset", dataset,
                  "--max-iters", 6, "--samples", 0, cwd=tmp_path)
    one_error_line(out, "exp_avg")


def test_an_extra_or_misshaped_optimizer_state_is_refused():
    model = GPT(tiny(20))
    opt = optim.AdamW(model.parameters())
    sd = opt.state_dict()
    extra = dict(sd, state=[dict(sd["state"][0], momentum_buffer=sd["state"][0]["exp_avg"])])
    with pytest.raises(errors.CheckpointError, match="group 0 has unknown momentum_buffer"):
        optim.AdamW(model.parameters()).load_state_dict(extra)
    short = dict(sd, state=[dict(sd["state"][0], exp_avg=sd["state"][0]["exp_avg"][:5])])
    with pytest.raises(errors.CheckpointError, match=r"group 0 exp_avg of shape \(5,\)"):
        optim.AdamW(model.parameters()).load_state_dict(short)


def test_changing_the_optimizer_on_resume_is_one_clear_error(trained, tmp_path, dataset):
    with pytest.raises(errors.CheckpointError, match=r"cannot resume .*--optimizer and --decay-all cannot change"):
        train(tiny(), cfg_for(tmp_path, max_iters=6, decay_all=True), dataset, log=quiet, init_from="resume")


# ------------------------------------------------------------------ 5. one run per folder
def test_a_folder_in_use_by_a_live_run_is_refused(dataset, tmp_path):
    import socket
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname()}))
    with pytest.raises(errors.CheckpointError, match=rf"output folder .*out is in use by process {os.getppid()}"):
        train(tiny(), cfg_for(tmp_path), dataset, log=quiet)
    assert (out / ".lock").exists() and not (out / "last.npz").exists()     # the other run's lock is kept
    result = run_cli("train", "--preset", "bigram", "--dataset", dataset, "--out-dir", out, "--max-iters", 2,
                     "--samples", 0, cwd=tmp_path)
    one_error_line(result, "is in use by process")


def test_two_runs_started_together_into_one_folder(dataset, tmp_path):
    """Really concurrent: the second CLI run starts while the first trains, and is refused."""
    args = [sys.executable, "-m", "tinygrad_lm", "train", "--preset", "bigram", "--dataset", str(dataset),
            "--out-dir", "shared", "--max-iters", "100000", "--eval-interval", "100000", "--log-interval", "1",
            "--samples", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in first.stdout:
            if line.startswith("step"):
                break
        second = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
        one_error_line(second, "is in use by process", str(first.pid))
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert first.returncode == 143
    assert not (tmp_path / "shared" / ".lock").exists()


def test_a_stale_lock_is_taken_over_with_a_note(dataset, tmp_path):
    import socket
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    lines = []
    train(tiny(), cfg_for(tmp_path, max_iters=2), dataset, log=lines.append)
    assert any(f"was left by process {dead.pid}" in line and "taking the folder over" in line for line in lines)
    assert not (out / ".lock").exists()


def test_the_lock_is_released_after_an_error(dataset, tmp_path):
    model = GPT(tiny())

    def poison(step, loss):
        if step == 2:
            model.transformer.wte.weight.data[...] = np.nan
    with pytest.raises(errors.TrainingDiverged):
        train(tiny(), cfg_for(tmp_path), dataset, log=quiet, on_step=poison, model=model)
    assert not (tmp_path / "out" / ".lock").exists()
    with pytest.raises(errors.ConfigError):                         # an error while the run is set up
        train(tiny(10), cfg_for(tmp_path), dataset, log=quiet)
    assert not (tmp_path / "out" / ".lock").exists()


# ------------------------------------------------------------------ 9. what a killed or stopped run leaves
def test_temporaries_of_a_killed_save_are_removed_at_the_next_start(dataset, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("last.npz.abc123.tmp", "best.npz.x.tmp", "notes.tmp", "last.npz.keep"):
        (out / name).write_bytes(b"PK half")
    lines = []
    train(tiny(), cfg_for(tmp_path, max_iters=1), dataset, log=lines.append)
    names = sorted(p.name for p in out.iterdir())
    assert "last.npz.abc123.tmp" not in names and "best.npz.x.tmp" not in names
    assert "notes.tmp" in names and "last.npz.keep" in names                # only the run's own
    assert any("removed best.npz.x.tmp, last.npz.abc123.tmp" in line for line in lines)


def test_an_unwritable_out_dir_is_noticed_before_any_work(dataset, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    real = lock.tempfile.mkstemp

    def read_only(*args, dir=None, **kw):
        if pathlib.Path(dir) == out:
            raise OSError(30, "Read-only file system")
        return real(*args, dir=dir, **kw)
    monkeypatch.setattr(lock.tempfile, "mkstemp", read_only)
    lines = []
    with pytest.raises(errors.CheckpointError, match=r"the output folder .*out cannot be written \(.*Read-only"):
        train(tiny(), cfg_for(tmp_path), dataset, log=lines.append)
    assert not any(line.startswith(("model:", "eval")) for line in lines)        # refused before any work


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_dir_is_refused_before_any_work(dataset, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(errors.CheckpointError, match="cannot be written"):
            train(tiny(), cfg_for(tmp_path), dataset, log=quiet)
    finally:
        out.chmod(0o755)


@pytest.mark.parametrize("number, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_run_exits_with_the_signals_status(dataset, tmp_path, number, status):
    proc = subprocess.Popen([sys.executable, "-m", "tinygrad_lm", "train", "--preset", "bigram", "--dataset",
                             str(dataset), "--out-dir", "out", "--max-iters", "100000", "--eval-interval", "100000",
                             "--log-interval", "1", "--samples", "0"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    for line in proc.stdout:
        if line.startswith("step"):
            break
    proc.send_signal(number)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == status, stderr
    assert "saved out/last.npz" in stdout and "Traceback" not in stderr
    assert checkpoint.read_meta(tmp_path / "out" / "last.npz")["step"] >= 1
    assert not (tmp_path / "out" / ".lock").exists()


def test_interrupted_carries_the_signal():
    from tinygrad_lm.training.signals import Interrupted
    assert Interrupted(signal.SIGTERM).exit_status == 143 and Interrupted().exit_status == 130
    assert isinstance(Interrupted(), KeyboardInterrupt)


def test_pbs_scripts_resubmit_themselves_on_sigterm():
    for name in ("train_1gpu.pbs", "train_multinode.pbs"):
        text = (ROOT / "scripts" / "polaris" / name).read_text()
        assert '"${status}" -eq 143' in text and "qsub " in text, name
        assert f'"${{PBS_O_WORKDIR}}/scripts/polaris/{name}"' in text, name


def test_checkpoints_respect_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = checkpoint.save(tmp_path / "c.npz", Bigram(BigramConfig(vocab_size=3)), meta={"step": 0})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640


# ------------------------------------------------------------------ --init-from
def test_init_from_a_checkpoint_keeps_its_own_data_and_tokenizer(dataset, tmp_path):
    assert run_cli("train", "--preset", "bigram", "--dataset", dataset, "--out-dir", "a", "--max-iters", 2,
                   "--samples", 0, cwd=tmp_path).returncode == 0
    out = run_cli("train", "--init-from", "a/last.npz", "--tokenizer", "char", "--out-dir", "b", "--max-iters", 2,
                  "--eval-interval", 1, "--eval-iters", 1, "--samples", 0, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "preparing" not in out.stdout and sorted(p.name for p in (tmp_path / "data").iterdir()) == \
        sorted(p.name for p in dataset.iterdir())                   # trained on the checkpoint's own dataset
    assert checkpoint.read_meta(tmp_path / "b" / "last.npz")["tokenizer"]["type"] == "char"


def test_a_mistyped_init_from_is_refused_before_data_is_prepared(tmp_path):
    out = run_cli("train", "--init-from", "chekpoint.npz", "--max-iters", 2, cwd=tmp_path)
    one_error_line(out, "--init-from 'chekpoint.npz'")
    assert not (tmp_path / "data").exists() and "preparing" not in out.stdout


def test_a_schedule_that_contradicts_itself_leaves_no_lock(tmp_path, dataset):
    bad = cfg_for(tmp_path, warmup_iters=10, lr_decay_iters=5)
    with pytest.raises(errors.ConfigError, match="must be >= warmup_iters"):
        train(tiny(), bad, dataset, log=quiet)
    assert not (tmp_path / "out" / ".lock").exists()
    train(tiny(), cfg_for(tmp_path, max_iters=2), dataset, log=quiet)      # the folder is free


def test_a_lock_that_cannot_be_written_is_an_error_and_leaves_nothing(tmp_path, monkeypatch):
    folder_lock = OutDirLock(tmp_path, quiet)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(lock.json, "dump", full_disk)
    with pytest.raises(errors.CheckpointError, match="cannot write the lock"):
        folder_lock.acquire()
    assert not (tmp_path / ".lock").exists()
