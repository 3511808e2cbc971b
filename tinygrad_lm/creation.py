"""Constructors with PyTorch's names and signatures: tensor, from_numpy, arange, zeros, ones, full,
eye, zeros_like, ones_like, randn, rand, randint.

Each makes its array on the host or directly on the device, then wraps it (``Tensor._from_array``,
no second copy). Defaults follow PyTorch: floats are float32, ``arange`` of ints is int64. The
random ones draw on the host from the package generator (``tinygrad_lm.manual_seed``, random.py)
and then move, so one seed gives the same numbers on every device.
"""
import numpy as np

from . import backend
from . import random as _random
from .ops.dtypes import DEFAULT_FLOAT
from .ops.checks import shape_args
from .tensor import Tensor


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of `data` (a number, nested list, array or Tensor)."""
    return Tensor(data, device=device, dtype=dtype, requires_grad=requires_grad)


def from_numpy(array):
    """A CPU tensor sharing memory with the NumPy `array` (changes to one show in the other)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor._from_array(array, "cpu")


def _make(array, device, requires_grad):
    """Wrap a fresh host array, moved to `device` (one copy at most)."""
    device = backend.normalize_device(device)
    t = Tensor._from_array(backend.to_device(array, device), device)
    return t.requires_grad_(True) if requires_grad else t


def _float_dtype(dtype):
    return np.dtype(DEFAULT_FLOAT if dtype is None else dtype)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    """[start, end) in steps of `step`; int64 when all three are ints, else float32."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        exact = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if exact else DEFAULT_FLOAT
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    return _make(np.arange(start, end, step).astype(dtype), device, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return full(shape_args(size), 0, dtype=_float_dtype(dtype), device=device, requires_grad=requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return full(shape_args(size), 1, dtype=_float_dtype(dtype), device=device, requires_grad=requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False):
    """A tensor of shape `size` filled with `fill_value` (its dtype from the value, as PyTorch:
    a Python float gives float32, an int int64, a bool bool)."""
    if dtype is None:
        dtype = (np.bool_ if isinstance(fill_value, bool) else
                 np.int64 if isinstance(fill_value, (int, np.integer)) else DEFAULT_FLOAT)
    device = backend.normalize_device(device)
    xp = backend.get_array_module(device)
    t = Tensor._from_array(xp.full(tuple(shape_args((size,))), fill_value, dtype=dtype), device)
    return t.requires_grad_(True) if requires_grad else t


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False):
    device = backend.normalize_device(device)
    xp = backend.get_array_module(device)
    t = Tensor._from_array(xp.eye(n, n if m is None else m, dtype=_float_dtype(dtype)), device)
    return t.requires_grad_(True) if requires_grad else t


def zeros_like(input, *, dtype=None, device=None, requires_grad=False):
    return full(input.shape, 0, dtype=input.dtype if dtype is None else dtype,
                device=input.device if device is None else device, requires_grad=requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad=False):
    return full(input.shape, 1, dtype=input.dtype if dtype is None else dtype,
                device=input.device if device is None else device, requires_grad=requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False):
    """Standard normal samples (float32 by default), drawn on the host."""
    array = _random.generator().standard_normal(shape_args(size)).astype(_float_dtype(dtype))
    return _make(array, device, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False):
    """Uniform samples in [0, 1) (float32 by default), drawn on the host."""
    array = _random.generator().random(shape_args(size)).astype(_float_dtype(dtype))
    return _make(array, device, requires_grad)


def randint(low, high=None, size=None, *, dtype=None, device=None, requires_grad=False):
    """Integers in [low, high) (int64 by default); randint(high, size) starts at 0, as PyTorch."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint: give size, e.g. randint(0, 10, (3,)) or randint(10, (3,))")
        low, high, size = 0, low, high
    array = _random.generator().integers(low, high, size=tuple(size)).astype(dtype or np.int64)
    return _make(array, device, requires_grad)


def _like_float(input, dtype, who):
    dtype = input.dtype if dtype is None else dtype
    if np.dtype(dtype).kind != "f":
        raise RuntimeError(f"{who}: expected a floating dtype, got {np.dtype(dtype).name} (give dtype=tg.float32)")
    return dtype


def randn_like(input, *, dtype=None, device=None, requires_grad=False):
    """randn of input's shape, dtype and device (``torch.randn_like``)."""
    return randn(*input.shape, dtype=_like_float(input, dtype, "randn_like"),
                 device=input.device if device is None else device, requires_grad=requires_grad)


def rand_like(input, *, dtype=None, device=None, requires_grad=False):
    """rand of input's shape, dtype and device (``torch.rand_like``)."""
    return rand(*input.shape, dtype=_like_float(input, dtype, "rand_like"),
                device=input.device if device is None else device, requires_grad=requires_grad)


def randint_like(input, low=0, high=None, *, dtype=None, device=None, requires_grad=False):
    """Integers in [low, high) of input's shape, in input's dtype unless `dtype` is given
    (``torch.randint_like``; randint_like(x, high) starts at 0)."""
    if high is None:
        low, high = 0, low
    array = _random.generator().integers(low, high, size=tuple(input.shape)).astype(
        np.dtype(input.dtype if dtype is None else dtype))
    return _make(array, input.device if device is None else device, requires_grad)
