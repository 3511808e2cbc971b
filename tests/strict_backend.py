"""A CPU stand-in for CuPy's one rule that CPU code most often breaks: a device array must never be
turned into a NumPy array implicitly (``np.asarray(x)``, ``float(x)`` on a non-scalar path, mixing
with NumPy arrays). ``StrictArray`` wraps a NumPy array, forwards every NumPy operation through
``__array_ufunc__`` / ``__array_function__`` (as CuPy does for its own arrays) and raises
``TypeError`` from ``__array__``, exactly where CuPy raises. The "strict" device uses it, so the
op, layer and training tests run through it on every CI machine, without a GPU.
"""
import weakref

import numpy as np

from tinygrad_lm import backend


class ImplicitConversionError(TypeError):
    pass


def _unwrap(x):
    if isinstance(x, StrictArray):
        return x._a
    if isinstance(x, np.ndarray) and x.ndim > 0:
        raise ImplicitConversionError(
            "a NumPy array was mixed with a device array; move it with backend.to_device first "
            "(CuPy raises here too)")
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


# One wrapper per NumPy array that owns its memory, for as long as the wrapper lives. CuPy and NumPy
# hand back the same Python object for an array every time (``view.base is view.base``, and it is
# the array the view was taken from); code that groups views by their owner (the optimizer's flat
# buffer, an op's view check) relies on that identity, so a fresh wrapper per access would send the
# strict device down another code path than "cpu" (and round differently under some BLAS kernels).
# Keyed by id: an entry's wrapper holds its array, so the id cannot be reused while the entry lives.
_OWNERS = weakref.WeakValueDictionary()


def _wrapper_of(a):
    """The StrictArray for NumPy array `a`: the registered one when `a` owns its memory."""
    if a.base is not None:                 # a view: a new object each time, as in NumPy and CuPy
        return StrictArray(a)
    wrapper = _OWNERS.get(id(a))
    if wrapper is None or wrapper._a is not a:
        wrapper = StrictArray(a)
        _OWNERS[id(a)] = wrapper
    return wrapper


def _wrap(x):
    if isinstance(x, np.ndarray):
        return _wrapper_of(x)
    if isinstance(x, np.generic):          # reductions give 0-d device arrays in CuPy, not host scalars
        return _wrap(np.asarray(x))
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


DEVICE_TO_HOST = {"count": 0}      # explicit copies and scalar reads (each one a sync on a GPU)


def _crossing(value):
    DEVICE_TO_HOST["count"] += 1
    return value


class StrictArray:
    __slots__ = ("_a", "__weakref__")

    def __init__(self, a):
        self._a = a

    def __array__(self, *args, **kwargs):
        raise ImplicitConversionError("Implicit conversion to a NumPy array is not allowed "
                                      "(a 'strict' device array, standing in for CuPy); use .get()")

    def item(self):
        return _crossing(self._a.item())

    def get(self):
        """The explicit device->host copy, as cupy.ndarray.get()."""
        return _crossing(self._a.copy())

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(_unwrap(o) for o in out)
        result = getattr(ufunc, method)(*_unwrap(inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    # attributes and methods: forward to the wrapped array, wrapping array results
    def __getattr__(self, name):
        if name.startswith("__"):      # never expose __array_interface__ & co: NumPy would use them
            raise AttributeError(name)
        value = getattr(self._a, name)
        if callable(value):
            def method(*args, **kwargs):
                return _wrap(value(*_unwrap(args), **_unwrap(kwargs)))
            return method
        return _wrap(value)

    def __getitem__(self, index):
        return _wrap(self._a[_unwrap(index)])

    def __setitem__(self, index, value):
        self._a[_unwrap(index)] = _unwrap(value)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(v) for v in self._a)

    def __repr__(self):
        return f"StrictArray({self._a!r})"

    def __bool__(self):
        return _crossing(bool(self._a))

    def __int__(self):
        return _crossing(int(self._a))

    def __float__(self):
        return _crossing(float(self._a))

    def __index__(self):
        return _crossing(self._a.__index__())

    @property
    def T(self):
        return _wrap(self._a.T)

    @property
    def base(self):
        """The array that owns this one's memory, always the same object (as NumPy's and CuPy's
        ``.base``), or None when this array owns it."""
        root = self._a.base
        return None if root is None else _wrap(root)


def _binary(name):
    def op(self, other):
        return _wrap(getattr(self._a, name)(_unwrap(other)))
    return op


for _name in ["__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
              "__rtruediv__", "__pow__", "__rpow__", "__matmul__", "__rmatmul__", "__lt__", "__le__",
              "__gt__", "__ge__", "__eq__", "__ne__", "__and__", "__or__", "__xor__", "__floordiv__",
              "__mod__", "__iadd__", "__isub__", "__imul__", "__itruediv__"]:
    setattr(StrictArray, _name, _binary(_name))
StrictArray.__neg__ = lambda self: _wrap(-self._a)
StrictArray.__invert__ = lambda self: _wrap(~self._a)
StrictArray.__abs__ = lambda self: _wrap(abs(self._a))
StrictArray.__hash__ = None


class _StrictModule:
    """An array module: NumPy's functions, taking and returning StrictArrays."""
    __name__ = "strict"

    def __getattr__(self, name):
        value = getattr(np, name)
        if name in ("float32", "float64", "int64", "int32", "bool_", "uint16", "uint32", "dtype",
                    "inf", "pi", "e", "newaxis", "ndarray", "integer", "floating"):
            return value
        if isinstance(value, np.ufunc):
            return _StrictUfunc(value)
        if callable(value):
            def fn(*args, **kwargs):
                return _wrap(value(*_unwrap(args), **_unwrap(kwargs)))
            return fn
        return value

    @property
    def random(self):
        raise AttributeError("strict device: no device random module")

    def asarray(self, a, dtype=None):
        if isinstance(a, StrictArray):
            return a if dtype is None or a._a.dtype == dtype else _wrap(a._a.astype(dtype))
        if isinstance(a, np.ndarray) and a.ndim > 0:
            raise ImplicitConversionError("xp.asarray(numpy array) on the strict device: move host "
                                          "data with backend.to_device")
        return _wrap(np.asarray(a, dtype=dtype))


class _StrictUfunc:
    def __init__(self, ufunc):
        self._u = ufunc

    def __call__(self, *args, **kwargs):
        if "out" in kwargs and kwargs["out"] is not None:
            out = kwargs["out"]
            kwargs["out"] = _unwrap(out)
            self._u(*_unwrap(args), **kwargs)
            return out
        return _wrap(self._u(*_unwrap(args), **kwargs))

    def at(self, target, index, values):
        self._u.at(_unwrap(target), _unwrap(index), _unwrap(values))

    def __getattr__(self, name):
        return getattr(self._u, name)


strict_module = _StrictModule()


def to_strict(host):
    return _wrap(np.array(host))


StrictArray.to_numpy = lambda self: _crossing(self._a.copy())


def register():
    backend.register_device("strict", strict_module, StrictArray)
    backend._HOST_TO_DEVICE["strict"] = to_strict
