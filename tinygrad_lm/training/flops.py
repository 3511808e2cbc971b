"""Model FLOPs utilization (MFU) against a peak that was measured, not guessed.

MFU = the FLOP/s that all ranks achieve together / the peak FLOP/s of the hardware they share.

    flops_per_step   FLOPs of one optimizer step summed over all ranks (model.flops_per_token()
                     x tokens per step on each rank x world_size)
    peak             hardware_peak(measure_peak_flops(device), device, world_size, ranks_per_node)
    mfu              mfu(flops_per_step, seconds_per_step, peak)

The peak of one "device" is what this machine's BLAS (CPU) or GPU reaches on large float32
matrix products (``measure_peak_flops``), measured once per machine and setting and cached. What
counts as one device differs:

- CPU: the device is the whole node. Ranks on one node share its cores, so two ranks on a 2-core
  node share one peak: the hardware in use is ``peak x number of nodes``, where the number of
  nodes is world_size / ranks_per_node (ranks_per_node from MPI's
  ``comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()``). For the same reason the CPU peak is
  measured with all of the node's cores, whatever OPENBLAS_NUM_THREADS says for the ranks.
- CUDA: each rank drives a GPU of its own, so the hardware in use is ``peak x world_size``.

Counting every rank's FLOPs against one rank's peak (what made ``mfu 115%`` under ``mpiexec -n 2``
on a 2-core machine) is the mistake this module exists to avoid.

The cache is a small JSON file, ``$TINYGRAD_LM_CACHE/peak_flops.json`` or else
``$XDG_CACHE_HOME/tinygrad_lm/peak_flops.json`` (``~/.cache/tinygrad_lm/...``), keyed by host name,
CPU model (or GPU name), NumPy version, OPENBLAS_* settings, thread count, device and dtype. An
unreadable or unwritable cache only means measuring again. Under MPI, let one rank per node
measure (the others waiting at a barrier) and share the number: ranks timing matrix products at
the same time on one node would each see a fraction of it.

NumPy only at import; CuPy is imported for "cuda" alone, through ``backend.get_array_module``.
"""
import json
import math
import os
import pathlib
import platform
import subprocess
import sys
import time

import numpy as np

from .. import backend

CACHE_NAME = "peak_flops.json"
_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def mfu(flops_per_step, seconds_per_step, peak_flops):
    """Achieved FLOP/s over peak FLOP/s (a fraction: 0.25 is 25%). Pass the FLOPs of all ranks and
    the peak of all hardware they use (``hardware_peak``). NaN when a time or the peak is not positive."""
    if not seconds_per_step > 0 or not peak_flops > 0:
        return float("nan")
    return flops_per_step / seconds_per_step / peak_flops


def hardware_peak(peak_per_device, device="cpu", world_size=1, ranks_per_node=None):
    """The peak FLOP/s of all hardware a run uses. CPU: ranks on a node share it, so the peak of one
    node times the number of nodes (world_size / ranks_per_node, rounded up; one node when
    ranks_per_node is None). CUDA: every rank has its own GPU, so the peak times world_size."""
    world_size = max(int(world_size), 1)
    if str(device).startswith("cuda"):
        return peak_per_device * world_size
    ranks_per_node = world_size if ranks_per_node is None else max(int(ranks_per_node), 1)
    return peak_per_device * math.ceil(world_size / ranks_per_node)


# ---------------------------------------------------------------------------- describing the machine

def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _openblas_lib():
    """The OpenBLAS library loaded into this process (ctypes handle, symbol prefix, suffix) or None.
    Linux only: found through /proc/self/maps, as threadpoolctl does."""
    import ctypes
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.rsplit("/", 1)[-1].lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("", ""), ("scipy_", "64_"), ("", "64_"), ("scipy_", "")):
            if hasattr(lib, f"{prefix}openblas_get_corename{suffix}"):
                return lib, prefix, suffix
    return None


def openblas_runtime():
    """{"core": kernel OpenBLAS runs, "threads": its thread count} read from the loaded library, or {}."""
    import ctypes
    found = _openblas_lib()
    if not found:
        return {}
    lib, prefix, suffix = found
    try:
        corename = getattr(lib, f"{prefix}openblas_get_corename{suffix}")
        corename.restype = ctypes.c_char_p
        threads = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}")
        threads.restype = ctypes.c_int
        return {"core": corename().decode(errors="replace"), "threads": int(threads())}
    except (AttributeError, OSError):
        return {}


def blas_description():
    """One line naming the BLAS NumPy uses: from NumPy's build configuration, plus the kernel and
    thread count the loaded OpenBLAS reports (the kernel is what OPENBLAS_CORETYPE changes)."""
    name = "unknown BLAS"
    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
        name = " ".join(str(blas[k]) for k in ("name", "version") if blas.get(k)) or name
        if blas.get("openblas configuration"):
            name += f" ({blas['openblas configuration']})"
    except Exception:                            # NumPy < 1.25: no mode="dicts"
        for key in ("blas_opt_info", "blas_ilp64_opt_info", "openblas_info"):
            info = getattr(np.__config__, key, None)
            if info:
                name = ",".join(info.get("libraries", [])) or name
                break
    runtime = openblas_runtime()
    if runtime:
        name += f"; running kernel {runtime['core']}, {runtime['threads']} threads"
    return f"NumPy {np.__version__}, BLAS {name}"


def openblas_env_description():
    """The OpenBLAS settings from the environment, each with its value or 'not set'."""
    return " | ".join(f"{v}: {os.environ[v]!r}" if v in os.environ else f"{v}: not set"
                      for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS"))


# ---------------------------------------------------------------------------- measuring the peak

def _matmul_flops(xp, dtype, sizes, repeats, budget_s, sync=lambda: None):
    """Best FLOP/s over square matrix products of `sizes`, `repeats` each after one warm-up; stops
    early once `budget_s` seconds were spent (a slow BLAS still finishes in about that time)."""
    best, start = 0.0, time.perf_counter()
    for n in sizes:
        a = xp.ones((n, n), dtype=dtype) / n
        b = xp.ones((n, n), dtype=dtype) / n
        out = a @ b
        sync()
        for _ in range(repeats):
            t = time.perf_counter()
            xp.matmul(a, b, out=out)
            sync()
            best = max(best, 2.0 * n ** 3 / (time.perf_counter() - t))
            if time.perf_counter() - start > budget_s:
                return best
    return best


def _cpu_threads():
    return os.cpu_count() or 1


def _time_cpu(dtype, threads):
    """Time NumPy matrix products in a fresh process whose BLAS uses `threads` threads on every
    core (this process's own thread setting or CPU binding, e.g. under mpiexec, would measure a
    fraction of the node). Falls back to timing here if the subprocess fails."""
    code = ("import os, sys\n"
            "try: os.sched_setaffinity(0, range(os.cpu_count() or 1))\n"
            "except (AttributeError, OSError): pass\n"
            "import numpy as np\n"
            "from tinygrad_lm.training.flops import _matmul_flops\n"
            f"print(repr(_matmul_flops(np, {dtype!r}, (1024, 1536, 2048), 3, 0.6)))\n")
    env = dict(os.environ, **{v: str(threads) for v in _THREAD_VARS})
    root = str(pathlib.Path(__file__).resolve().parents[2])  # the folder holding tinygrad_lm/
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        value = float(out.stdout.strip().splitlines()[-1])
        if value > 0 and math.isfinite(value):
            return value
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        pass
    return _matmul_flops(np, dtype, (1024, 1536, 2048), 3, 0.6)


def _time_cuda(dtype):
    cp = backend.get_array_module("cuda")
    return _matmul_flops(cp, dtype, (4096, 8192), 5, 2.0, sync=cp.cuda.Stream.null.synchronize)


def _time_peak(device, dtype, threads):
    """The timing itself, with no cache (tests replace this function)."""
    if device == "cuda":
        return _time_cuda(dtype)
    return _time_cpu(dtype, threads)


def _cuda_name():
    cp = backend.get_array_module("cuda")
    dev = cp.cuda.Device()
    name = cp.cuda.runtime.getDeviceProperties(dev.id)["name"]
    return f"{name.decode() if isinstance(name, bytes) else name} (CuPy {cp.__version__})"


def cache_key(device="cpu", dtype="float32", threads=None):
    """What identifies a measurement: machine, software, settings, device and dtype."""
    parts = {"host": platform.node(), "device": device, "dtype": str(np.dtype(dtype))}
    if device == "cuda":
        parts["gpu"] = _cuda_name()
    else:
        parts.update(cpu=_cpu_model(), numpy=np.__version__, threads=threads or _cpu_threads(),
                     **{v: os.environ.get(v, "") for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                            "OPENBLAS_NUM_THREADS")})
    return json.dumps(parts, sort_keys=True)


def cache_path():
    folder = os.environ.get("TINYGRAD_LM_CACHE")
    if not folder:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(base, "tinygrad_lm")
    return os.path.join(folder, CACHE_NAME)


def _read_cache(path):
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(path, key, value):
    """Add one entry; atomic (a temporary file renamed over the old one); silent on any failure."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        data = _read_cache(path)
        data[key] = {"flops": value, "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        pass
    finally:
        if os.path.exists(tmp):             # a failed write leaves nothing behind
            os.remove(tmp)


def measure_peak_flops(device="cpu", dtype="float32", threads=None, use_cache=True):
    """The float32 FLOP/s large matrix products reach on `device`: on "cpu" NumPy's BLAS with
    `threads` threads (default: all of the node's cores), on "cuda" the current GPU. Measured once
    per machine and setting (well under a second on the CPU) and read from the cache after that."""
    device = backend.normalize_device(device)
    device = "cuda" if device == "cuda" else "cpu"
    threads = threads or _cpu_threads()
    key = cache_key(device, dtype, threads) if use_cache else None
    if use_cache:
        entry = _read_cache(cache_path()).get(key)
        value = entry.get("flops") if isinstance(entry, dict) else None
        if isinstance(value, (int, float)) and value > 0 and math.isfinite(value):
            return float(value)
    value = float(_time_peak(device, dtype, threads))
    if use_cache and value > 0 and math.isfinite(value):
        _write_cache(cache_path(), key, value)
    return value


if __name__ == "__main__":
    dev = sys.argv[1] if len(sys.argv) > 1 else "cpu"
    print(blas_description())
    print(openblas_env_description())
    print(f"peak {dev}: {measure_peak_flops(dev) / 1e9:.1f} GFLOP/s (cache: {cache_path()})")
