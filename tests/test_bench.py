"""bench.py: each engine in its own process, and the report names the BLAS and its settings."""
import importlib.util
import os
import pathlib
import subprocess

import pytest

from tinygrad_lm.training.bench import OURS, _run_worker, run_bench

ROOT = pathlib.Path(__file__).resolve().parent.parent
HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_bigram_runs_alone_in_worker_processes():
    lines = []
    result = run_bench("bigram", steps=2, warmup=1, rounds=2, compare_torch=True, print_fn=lines.append)
    text = "\n".join(lines)
    assert "BLAS        : NumPy" in text and "OPENBLAS_CORETYPE" in text
    assert "the bigram family has no PyTorch twin" in text
    assert "tinygrad_lm :" in text and "peak RSS" in text and "PyTorch" not in result["rss"]
    pids = result["pids"][OURS]
    assert len(pids) == 2 and len(set(pids)) == 2 and os.getpid() not in pids     # a fresh process per round
    assert result["ours_ms"] > 0 and "ratio" not in result and not result["torch_loaded_in_ours"]


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_engines_run_in_separate_processes():
    lines = []
    result = run_bench("atpesc", steps=2, warmup=1, rounds=1, print_fn=lines.append)
    text = "\n".join(lines)
    assert "BLAS" in text and "OPENBLAS_CORETYPE" in text and "PyTorch     :" in text
    ours, torch_pids = result["pids"][OURS], result["pids"]["PyTorch"]
    assert len(set(ours + torch_pids + [os.getpid()])) == 3
    assert not result["torch_loaded_in_ours"] and result["ratio"] > 0 and result["torch_ms"] > 0


def test_worker_failure_is_reported():
    with pytest.raises(RuntimeError, match="bench worker tinygrad_lm failed"):
        _run_worker(OURS, "no_such_preset", 1, 0, "cpu")


def test_step_time_script_runs_both_settings():
    script = ROOT / "bench" / "step_time.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    assert "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE" in text and "tinygrad_lm bench" in text


@pytest.mark.skipif(not HAS_TORCH or importlib.util.find_spec("transformers") is None,
                    reason="needs torch and transformers: pip install torch==2.13.0 transformers")
@pytest.mark.parametrize("preset", ["bert-mini", "bert-nsp", "seq2seq-dates", "char-lstm"])
def test_every_family_is_timed_against_its_pytorch_twin_by_one_driver(preset):
    """BERT (both tasks), the encoder-decoder and the RNN go through the same driver as the GPT:
    their own batches, their twin's process, a ratio; both engines' losses are those of an
    untrained model on the same batches (finite, near each other)."""
    lines = []
    result = run_bench(preset, steps=1, warmup=0, rounds=1, print_fn=lines.append)
    text = "\n".join(lines)
    assert result["ratio"] > 0 and result["torch_ms"] > 0 and not result["torch_loaded_in_ours"]
    losses = [float(line.split("(loss ")[1].split(",")[0].split(";")[0]) for line in lines
              if line.startswith(("tinygrad_lm :", "PyTorch     :")) and "(loss " in line]
    assert len(losses) == 2 and all(0 < v < 20 for v in losses), text
    assert abs(losses[0] - losses[1]) < 0.5 * max(losses), text
