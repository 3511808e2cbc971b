"""The one place that decides which array module (``xp``) a device uses.

``"cpu"`` is NumPy. ``"cuda"`` is CuPy, imported only the first time a tensor is put there, so
the core package needs NumPy alone. Every op asks this module for ``xp`` and never imports NumPy
or CuPy for array work itself: that is what lets one op class run on both devices.

Tests may register extra devices (see ``tests/strict_backend.py``), for example an array module
that refuses to be silently converted to NumPy, exactly as CuPy does.
"""
import ctypes
import os
import sys

import numpy as np

from .errors import DeviceError  # noqa: F401

_MODULES = {"cpu": np}          # device name -> array module
_ARRAY_TYPES = {np.ndarray: "cpu"}  # array type -> device name
_HOST_TO_DEVICE = {}                # device name -> function copying a NumPy array there (tests)


def keep_freed_memory_in_the_heap():
    """Ask glibc's malloc to keep large freed blocks instead of unmapping them. Called where
    training (training.loop.train) and the benchmark's workers start, never on import: a library
    import must not change the process's allocator behind its owner's back.

    By default glibc serves each allocation above a threshold (128 KiB at first, rising with use)
    with a fresh mmap and returns it to the kernel on free. An expression over activations such
    as GELU's backward makes several megabyte-sized temporaries, so every op would page-fault its
    way through freshly zeroed memory: measured here, that made GELU's backward 6x slower. Raising
    the mmap and trim thresholds keeps freed blocks for reuse, as a GPU caching allocator does.
    Linux/glibc only; set TINYGRAD_LM_MALLOC_TUNING=0 to leave malloc alone. Returns whether
    glibc took the settings.
    """
    if not sys.platform.startswith("linux") or os.environ.get("TINYGRAD_LM_MALLOC_TUNING", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    ok = libc.mallopt(M_MMAP_THRESHOLD, 1 << 30) == 1        # glibc caps this at 32 MiB on 64-bit
    ok = libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 or ok
    return bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)) and ok



def normalize_device(device):
    """'cuda:0' -> 'cuda'; None -> 'cpu'. Only one GPU per process is used (see distributed.py)."""
    if device is None:
        return "cpu"
    device = str(device)
    if device.startswith("cuda"):
        if device not in ("cuda", "cuda:0"):
            # one process drives one GPU; pick it with CUDA_VISIBLE_DEVICES as on Polaris
            raise DeviceError(f"device {device!r}: tinygrad_lm drives one GPU per process; "
                              "use 'cuda' and choose the GPU with CUDA_VISIBLE_DEVICES")
        return "cuda"
    return device


def _import_cupy():
    try:
        import cupy
    except ImportError as e:
        raise DeviceError(
            "device 'cuda' needs CuPy, which is not installed. Install the wheel that matches your "
            "CUDA toolkit, e.g. `pip install cupy-cuda12x` (or `pip install -e .[gpu]`), on a "
            f"machine with an NVIDIA GPU. ({e})") from None
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDA driver missing: cupy imports but cannot talk to a GPU
        raise DeviceError(f"device 'cuda': CuPy is installed but no usable NVIDIA GPU was found "
                          f"({type(e).__name__}: {e}). Run on a GPU node or use device='cpu'.") from None
    if n == 0:
        raise DeviceError("device 'cuda': CuPy is installed but it sees no GPU "
                          "(check CUDA_VISIBLE_DEVICES). Use device='cpu' otherwise.")
    _MODULES["cuda"] = cupy
    _ARRAY_TYPES[cupy.ndarray] = "cuda"
    return cupy


def get_array_module(device):
    """The array module (numpy-like) for a device name."""
    xp = _MODULES.get(device)
    if xp is None:
        if device == "cuda":
            return _import_cupy()
        raise DeviceError(f"unknown device {device!r}; use 'cpu' or 'cuda'")
    return xp


def device_of(array):
    """The device an array lives on, from its type."""
    device = _ARRAY_TYPES.get(type(array))
    if device is None:
        for array_type, name in _ARRAY_TYPES.items():
            if isinstance(array, array_type):
                return name
        return "cpu"  # Python scalars and lists become NumPy arrays
    return device


def device_and_dtype(device, dtype):
    """PyTorch's .to() takes a device, a dtype, or both: .to(np.float64) means dtype only."""
    if isinstance(device, (type, np.dtype)) or (isinstance(device, str) and device in ("float32", "float64")):
        return None, device
    return device, dtype


def get_array_module_of(array):
    """The array module an array belongs to."""
    return get_array_module(device_of(array))


def is_available(device):
    """True if `device` can be used here (for tests that skip without a GPU)."""
    try:
        get_array_module(normalize_device(device))
        return True
    except DeviceError:
        return False


def to_numpy(array):
    """Copy an array of any device into a NumPy array: the one explicit device->host door."""
    if isinstance(array, np.ndarray):
        return array
    if hasattr(array, "get"):      # cupy.ndarray
        return array.get()
    to_host = getattr(array, "to_numpy", None)  # test backends
    if to_host is not None:
        return to_host()
    return np.asarray(array)


def to_device(array, device):
    """Move (copy) an array to `device`; a no-op when it is already there."""
    if device_of(array) == device:
        return array
    host = to_numpy(array)
    if device == "cpu":
        return host
    if device in _HOST_TO_DEVICE:
        return _HOST_TO_DEVICE[device](host)
    return get_array_module(device).asarray(host)


def register_device(name, module, array_type):
    """Add a device backed by another array module (used by the device-hygiene tests)."""
    _MODULES[name] = module
    _ARRAY_TYPES[array_type] = name
