"""flops.py: a measured, cached peak and an MFU that counts the hardware ranks share only once."""
import json
import math

import pytest

from tinygrad_lm.training import flops


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGRAD_LM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _counting(monkeypatch, value=123e9):
    calls = []

    def fake(device, dtype, threads):
        calls.append((device, dtype, threads))
        return value
    monkeypatch.setattr(flops, "_time_peak", fake)
    return calls


def test_peak_is_measured_once_then_read_from_the_cache(cache_dir, monkeypatch):
    peak = flops.measure_peak_flops("cpu")
    assert math.isfinite(peak) and peak > 1e8
    entries = json.loads((cache_dir / "peak_flops.json").read_text())
    assert [e["flops"] for e in entries.values()] == [peak]
    calls = _counting(monkeypatch)
    assert flops.measure_peak_flops("cpu") == peak and calls == []      # no timing the second time
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")                  # another setting: measured anew
    assert flops.measure_peak_flops("cpu") == 123e9 and len(calls) == 1


def test_corrupt_cache_falls_back_to_measuring_and_is_repaired(cache_dir, monkeypatch):
    cache_dir.mkdir()
    (cache_dir / "peak_flops.json").write_text("{not json")
    calls = _counting(monkeypatch)
    assert flops.measure_peak_flops("cpu") == 123e9 and len(calls) == 1
    assert flops.measure_peak_flops("cpu") == 123e9 and len(calls) == 1
    (cache_dir / "peak_flops.json").write_text(json.dumps({flops.cache_key("cpu"): {"flops": -1}}))
    assert flops.measure_peak_flops("cpu") == 123e9 and len(calls) == 2   # a nonsense entry is not used


def test_unwritable_cache_still_measures(tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("TINYGRAD_LM_CACHE", str(tmp_path / "a_file" / "sub"))   # cannot be a folder
    calls = _counting(monkeypatch)
    assert flops.measure_peak_flops("cpu") == 123e9
    assert flops.measure_peak_flops("cpu") == 123e9 and len(calls) == 2


def test_cpu_peak_is_timed_with_all_cores_whatever_the_ranks_use(monkeypatch):
    seen = {}

    class Done:
        stdout = "1.5e11\n"

    def fake_run(cmd, env, **kw):
        seen.update(env)
        return Done()
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setattr(flops.subprocess, "run", fake_run)
    assert flops._time_cpu("float32", 8) == 1.5e11
    assert seen["OPENBLAS_NUM_THREADS"] == "8" and seen["OMP_NUM_THREADS"] == "8"


def test_hardware_peak_counts_a_shared_node_once():
    P, F, t = 1e11, 5e9, 0.1
    assert flops.hardware_peak(P, "cpu") == P
    assert flops.hardware_peak(P, "cpu", world_size=2, ranks_per_node=2) == P      # two ranks, one node
    assert flops.hardware_peak(P, "cpu", world_size=4, ranks_per_node=2) == 2 * P  # two nodes
    assert flops.hardware_peak(P, "cuda", world_size=2, ranks_per_node=2) == 2 * P  # a GPU per rank
    one = flops.mfu(F, t, flops.hardware_peak(P, "cpu"))
    assert one == pytest.approx(0.5)
    # two ranks on the node doing twice the FLOPs in the same time use the node twice as well ...
    assert flops.mfu(2 * F, t, flops.hardware_peak(P, "cpu", 2, 2)) == pytest.approx(2 * one)
    # ... and two GPUs doing twice the FLOPs use their hardware exactly as well as one
    assert flops.mfu(2 * F, t, flops.hardware_peak(P, "cuda", 2, 2)) == pytest.approx(one)
    assert math.isnan(flops.mfu(F, 0.0, P)) and math.isnan(flops.mfu(F, t, 0.0))


def test_descriptions_name_the_blas_and_the_openblas_settings(monkeypatch):
    assert "BLAS" in flops.blas_description()
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)
    line = flops.openblas_env_description()
    assert "OPENBLAS_CORETYPE: 'Haswell'" in line and "OPENBLAS_L2_SIZE: not set" in line
