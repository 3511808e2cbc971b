"""The Polaris job scripts and the GPU check script: valid bash, the fields PBS needs, and an
affinity wrapper that really gives each local rank its own GPU; the seed sweep and the Llama
benchmark's smoke run."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPTS = [ROOT / "scripts" / "polaris" / n for n in ("train_1gpu.pbs", "train_multinode.pbs", "set_affinity_gpu.sh")] \
    + [ROOT / "bench" / "gpu_check.sh"]


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_valid_bash(path):
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0


@pytest.mark.parametrize("name", ["train_1gpu.pbs", "train_multinode.pbs"])
def test_pbs_scripts_have_polaris_fields(name):
    text = (ROOT / "scripts" / "polaris" / name).read_text()
    for needle in ("#PBS -l select=", "system=polaris", "#PBS -l filesystems=home:eagle", "#PBS -q ", "#PBS -A ",
                   "module use /soft/modulefiles", "module load conda", "--device cuda"):
        assert needle in text, f"{name} lacks {needle!r}"
    if name == "train_multinode.pbs":
        assert "set_affinity_gpu.sh" in text and "--distributed" in text and "MPICH_GPU_SUPPORT_ENABLED=1" in text


@pytest.mark.parametrize("local_rank, expected", [("0", "0"), ("3", "3"), ("5", "1")])
def test_affinity_wrapper_sets_cuda_visible_devices(local_rank, expected):
    env = dict(os.environ, PMI_LOCAL_RANK=local_rank)
    out = subprocess.run(["bash", str(ROOT / "scripts" / "polaris" / "set_affinity_gpu.sh"), "bash", "-c",
                          "echo $CUDA_VISIBLE_DEVICES"], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == expected


def test_seed_sweep_trains_each_seed_and_summarises(tmp_path):
    import sys
    from tinygrad_lm.data.text import prepare
    src = tmp_path / "input.txt"
    src.write_text("To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 40)
    prepare(src, tmp_path / "d", tokenizer="char")
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "seed_sweep.py"), "--preset", "baby", "--dataset",
                          str(tmp_path / "d"), "--seeds", "1", "2", "--max-iters", "2", "--goal", "100"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("in-loop val") == 3 and "seed     1:" in out.stdout and "seed     2:" in out.stdout
    assert "baby, 2 steps, 2 seeds:" in out.stdout and out.stdout.count("2/2 at most 100.0") == 2


def test_the_llama_benchmark_runs_each_engine_in_its_own_process_and_counts_the_cache():
    """bench/bench_llama.py --smoke: a tiny random Llama through the same rounds, floor and cache
    accounting as the SmolLM2 run (BENCHMARKS.md); the cache line is the measured arrays' bytes."""
    import re
    import sys
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_llama.py"), "--smoke", "--rounds", "2"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    decode = re.search(r"\| decode tok/s \| ([\d.]+) \|", out.stdout)
    assert decode and float(decode.group(1)) > 0, out.stdout
    cache = re.search(r"KV cache after (\d+) tokens: ([\d,]+) bytes \((\d+) key/value heads, per layer k and v "
                      r"\[(\d+), (\d+), (\d+), (\d+)\] float32\); (\d+)-head multi-head attention: ([\d,]+) bytes",
                      out.stdout)
    assert cache, out.stdout
    tokens, kv_bytes, kv_heads, b, h, t, d, heads, mha_bytes = (int(g.replace(",", "")) for g in cache.groups())
    assert h == kv_heads and t == tokens and kv_bytes % (2 * b * h * t * d * 4) == 0
    assert mha_bytes * kv_heads == kv_bytes * heads                # the cache grows with the key/value heads only
