"""Tensor and reverse-mode autograd.

A ``Tensor`` holds an array (``.data``: NumPy on "cpu", CuPy on "cuda") and, when it was made by a
differentiable op, the ``Function`` that made it (``._ctx``). ``loss.backward()`` walks that graph
from the loss back to the leaves in reverse topological order, asking each Function for the
gradient of its inputs, and adds the results into the leaves' ``.grad`` (a Tensor, as PyTorch's).
In-place methods (``add_``, ``x[i] = v``...) follow PyTorch's rules: refused on a leaf that
requires grad, recorded in the graph otherwise, and checked by a version counter (function.py).

Where things live:
  - ``Tensor`` (this file) defines every operator and PyTorch-named method: ``x + y`` is
    ``Tensor.__add__``, which calls ``Add.apply``; ``x.sum(dim)`` calls ``Sum.apply``.
  - each op is one small class in ``tinygrad_lm/ops`` with ``forward`` and ``backward`` side by
    side; the checks of the methods' arguments (shapes, dims) are in ``ops/checks.py``.
  - ``Function`` (the base of every op) and ``no_grad`` are in ``function.py``.
"""
from collections import namedtuple

import numpy as np

from . import backend
from .errors import GradientShapeError
from .function import Function, Version, clock, is_grad_enabled, no_grad  # noqa: F401  (re-exported: tinygrad_lm.tensor.no_grad)
from .ops import (Abs, Add, Cast, Clamp, Concatenate, Cumsum, Div, Exp, Expand, Flip, Gather, GetItem,
                  Log, LogSoftmax, LogSumExp, MaskedFill, MatMul, Max, Maximum, Mean, Min, Minimum, Mul, Neg,
                  Permute, Pow, PowTensor, ReLU, Repeat, Reshape, Rsqrt, Sigmoid, Softmax, Sqrt, Std, Sub,
                  Sum, Tanh, Var, Where)
from .ops.inplace import SetItem
from .ops.shape import Clone
from .ops.checks import (check_broadcastable, check_cat_shapes, check_gather_index, check_indices,
                         check_mask_shape, check_matmul_shapes, check_stack_shapes, dim_alias,
                         expanded_shape, flattened_shape, normalize_axes, normalize_dim, permutation,
                         shape_args, split_bounds, swapped_axes, unsqueezed_shape)
from .ops.dtypes import DEFAULT_FLOAT, result_type

# x.max(dim), x.min(dim), x.sort(), x.topk(k) return (values, indices), as torch's do
MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])
SortResult = namedtuple("sort", ["values", "indices"])
TopkResult = namedtuple("topk", ["values", "indices"])


def _default_dtype(data):
    """PyTorch's rule: Python floats -> float32, Python ints -> int64, arrays keep their dtype."""
    if isinstance(data, (bool, np.bool_)):
        return np.bool_
    if isinstance(data, (int, np.integer)) and not isinstance(data, bool):
        return np.int64
    if isinstance(data, float):
        return np.float32
    return None


class Tensor:
    """An n-dimensional array that remembers how it was computed, for ``backward()``.

    Every operator and PyTorch-named method is defined below, grouped by the file in ``ops/`` whose
    ``Function`` it calls (``x + y`` -> ``Add.apply``, ops/arithmetic.py). The checks of their
    arguments are in ops/checks.py; ``Function.apply`` (function.py) links each result into the graph.
    """

    __slots__ = ("data", "_grad", "requires_grad", "_ctx", "device", "_retain_grad", "name",
                 "_counter", "_base",     # its Version (None until written or viewed), a view's base
                 "_previous",             # (clock of an in-place op, the node this tensor was before it)
                 "__weakref__")

    def __init__(self, data, device=None, dtype=None, requires_grad=False):
        if isinstance(data, Tensor):
            data = data.data
        source_device = backend.device_of(data)
        device = backend.normalize_device(device if device is not None else source_device)
        xp = backend.get_array_module(device)
        if dtype is None and not hasattr(data, "dtype"):
            dtype = _default_dtype(data)
            if dtype is None:  # a (nested) list: let NumPy look, then apply the same rule
                probe = np.asarray(data)
                dtype = np.float32 if probe.dtype.kind == "f" else probe.dtype
        if hasattr(data, "dtype"):
            # Tensor(array) copies, as torch.tensor: a later change to the caller's array must not
            # reach the tensor. (tg.from_numpy shares; the library wraps with Tensor._from_array.)
            moved = backend.to_device(data, device)
            self.data = xp.array(moved, dtype=dtype) if moved is data else xp.asarray(moved, dtype=dtype)
        else:
            self.data = xp.asarray(data, dtype=dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, got {self.data.dtype}")
        self.device = device
        self.requires_grad = bool(requires_grad)
        self._grad = None
        self._counter, self._base, self._previous = None, None, None
        self._ctx = None
        self._retain_grad = False
        self.name = None

    @staticmethod
    def _from_array(array, device, requires_grad=False):
        """Wrap an array that is already on `device` without copying (used by every op). Always a
        plain Tensor, also when called on a Parameter: an op's output is not a learnable parameter."""
        t = Tensor.__new__(Tensor)
        t.data, t.device, t.requires_grad = array, device, requires_grad
        t._grad, t._ctx, t._retain_grad, t.name = None, None, False, None
        t._counter, t._base, t._previous = None, None, None
        return t

    def _counter_(self):
        """This tensor's version counter, made when first needed (a write, a view, detach)."""
        if self._counter is None:
            self._counter = Version()
        return self._counter

    @property
    def _version(self):
        """How many times this tensor's memory was changed in place (as PyTorch's ``_version``)."""
        return 0 if self._counter is None else self._counter.value

    # ----------------------------------------------------------------- properties
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad(self):
        """The gradient backward() accumulated here: a Tensor (None until then), as PyTorch's.
        Its ``.data`` is the array itself (with an optimizer: a view into its flat buffer)."""
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type "
                            f"{type(value).__name__} (wrap an array with Tensor(...))")
        if value is not None and value.shape != self.shape:
            raise RuntimeError(f"assigned grad has data of a different size: {value.shape} for a "
                               f"tensor of shape {self.shape}")
        self._grad = value

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[normalize_dim(dim, self.ndim)]

    def dim(self):
        return self.ndim

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # == and != give bool tensors (below), so the hash is the object's identity, as PyTorch's:
    # tensors stay usable as dict keys and in sets (defining __eq__ would otherwise remove it).
    __hash__ = object.__hash__

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        dev = f", device={self.device!r}" if self.device != "cpu" else ""
        body = np.array2string(self.numpy(), precision=4, separator=", ", threshold=50)
        return f"tensor({body}, dtype={self.dtype}{dev}{grad})"

    # ----------------------------------------------------------------- conversions
    def numpy(self):
        """A NumPy copy of the data (the explicit device->host copy on a GPU)."""
        return backend.to_numpy(self.data)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return backend.to_numpy(self.data).reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    # bool(), float(), int() and operator.index() of a one-element tensor read its value (one
    # device->host copy), with PyTorch's errors otherwise: `if loss < best:` works on 0-d tensors.
    def __bool__(self):
        if self.data.size != 1:
            what = "no values" if self.data.size == 0 else "more than one value"
            raise RuntimeError(f"Boolean value of Tensor with {what} is ambiguous")
        return bool(self.item())

    def __float__(self):
        return float(self._scalar())

    def __int__(self):
        return int(self._scalar())

    def __index__(self):
        if self.data.size != 1 or self.dtype.kind not in "iub":
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def _scalar(self):
        if self.data.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return self.item()

    def detach(self):
        """The same data, cut from the graph. It shares the memory, so it shares the version
        counter: an in-place change through it is seen by backward (as PyTorch)."""
        t = Tensor._from_array(self.data, self.device, False)
        t._counter, t._base = self._counter_(), self if self._base is None else self._base
        return t

    def requires_grad_(self, flag=True):
        self.requires_grad = flag
        return self

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward (as PyTorch's)."""
        self._retain_grad = True
        return self

    def to(self, device=None, dtype=None):
        """Move to another device and/or dtype. The result is a new leaf when data changes."""
        device, dtype = backend.device_and_dtype(device, dtype)
        device = self.device if device is None else backend.normalize_device(device)
        out = self
        if device != self.device:
            out = Tensor._from_array(backend.to_device(self.data, device), device,
                                     self.requires_grad and self.is_leaf)
        return out if dtype is None else out._cast(dtype)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    # Casts: between floating dtypes differentiable (the gradient is cast back); a cast to an
    # integer or bool dtype is cut from the graph, as in PyTorch (such a tensor has no gradient).
    def float(self): return self._cast(np.float32)
    def double(self): return self._cast(np.float64)
    def half(self): return self._cast(np.float16)
    def long(self): return self._cast(np.int64)
    def int(self): return self._cast(np.int32)
    def bool(self): return self._cast(np.bool_)
    def type_as(self, other): return self._cast(other.dtype)

    def _cast(self, dtype):
        dtype = np.dtype(dtype)
        if dtype == self.data.dtype:
            return self
        if dtype.kind == "f":
            return Cast.apply(self, dtype=dtype)
        return Tensor._from_array(self.data.astype(dtype), self.device)

    def clone(self):
        """A copy with its own memory, still in the graph (gradient 1)."""
        return Clone.apply(self)

    def contiguous(self):
        """Self when its memory is already C-ordered, else a C-ordered copy (as PyTorch)."""
        return self if self.data.flags.c_contiguous else Clone.apply(self)

    # ----------------------------------------------------------------- in-place (ops/inplace.py)
    # Each computes the new value out of place with the usual op, writes it into this tensor's
    # memory (so every view of it sees the change) and bumps the version counter. When a graph is
    # being recorded, this tensor then stands for the op's output: backward flows through it.
    def add_(self, other): return self._inplace(lambda x: x + other, other)
    def sub_(self, other): return self._inplace(lambda x: x - other, other)
    def mul_(self, other): return self._inplace(lambda x: x * other, other)
    def div_(self, other): return self._inplace(lambda x: x / other, other)
    def clamp_(self, min=None, max=None): return self._inplace(lambda x: x.clamp(min, max), min, max)
    def masked_fill_(self, mask, value): return self._inplace(lambda x: x.masked_fill(mask, value), value)
    def fill_(self, value): return self.__setitem__(Ellipsis, value)
    def zero_(self): return self.__setitem__(Ellipsis, 0)
    def copy_(self, src): return self.__setitem__(Ellipsis, src)

    def __setitem__(self, index, value):
        """x[index] = value (a number, array or Tensor broadcast to x[index]), in place."""
        if isinstance(index, tuple):
            index = tuple(raw(i, self.device) for i in index)
        else:
            index = raw(index, self.device)
        value = as_tensor(value, self)        # a number or list takes this tensor's dtype
        value = value if value.dtype == self.dtype else value.to(dtype=self.dtype)
        self._inplace(lambda x: SetItem.apply(x, value, index=index), value)
        return self

    def _inplace(self, compute, *others):
        """Run `compute(x)` (out-of-place ops) on this tensor's value and write the result into it.

        As PyTorch: refused on a leaf that requires grad (its gradient would be wrong: change
        parameters under no_grad()); recorded in the graph when this tensor or an operand needs
        grad; the version counter tells backward which kept arrays are now stale.
        """
        recording = is_grad_enabled() and (self.requires_grad or any(
            isinstance(o, Tensor) and o.requires_grad for o in others))
        if recording and self.requires_grad and self.is_leaf:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        if recording and self._base is not None:
            base = self._base
            if base.requires_grad and base.is_leaf:
                raise RuntimeError("a view of a leaf Variable that requires grad is being used in an "
                                   "in-place operation.")
            raise RuntimeError("an in-place operation on a view of a tensor that needs grad is not "
                               "supported here (PyTorch rewrites the base's graph); write through the "
                               "base (base[index] = value) or use the out-of-place op")
        if not recording:
            with no_grad():
                new = compute(self)
        else:
            # `before` is this tensor as it was: same memory, version counter and graph. The op
            # runs on a copy of it (Clone), so what the op keeps for backward is not overwritten.
            before = Tensor._from_array(self.data, self.device, self.requires_grad)
            before._ctx, before._counter, before._previous = self._ctx, self._counter_(), self._previous
            new = compute(Clone.apply(before))
        if new.shape != self.shape:
            raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast "
                               f"shape {list(new.shape)}")
        if new.dtype != self.dtype and not np.can_cast(new.dtype, self.dtype, "same_kind"):
            raise RuntimeError(f"result type {new.dtype} can't be cast to the desired output type {self.dtype}")
        self.data[...] = new.data
        self._counter_().bump()
        if recording and new._ctx is not None:
            # From now on this tensor is the op's output. Ops that used it before still send their
            # gradient to `before` (_node_at finds it from the version they saw).
            self._ctx, self.requires_grad = new._ctx, True
            self._previous = (clock(), before)
        return self

    # ----------------------------------------------------------------- NumPy protocol
    __array_priority__ = 1000    # ndarray (op) Tensor gives a Tensor: NumPy defers to Tensor's operator

    def __array__(self, dtype=None, copy=None):
        """np.asarray(t): the host array itself on the CPU (as PyTorch, which refuses for a device
        tensor and for one that requires grad)."""
        if self.device != "cpu":
            raise TypeError(f"can't convert {self.device} device type tensor to numpy. Use "
                            f"Tensor.cpu() to copy the tensor to host memory first.")
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        data = self.data if dtype is None else self.data.astype(dtype, copy=False)
        return data.copy() if copy else data

    # ----------------------------------------------------------------- arithmetic (ops/arithmetic.py)
    # A number or an array on either side becomes a Tensor like the other operand, and both get
    # PyTorch's result dtype (see _pair below: int tensor * 0.5 is float32, as in PyTorch).
    def __add__(self, other): return Add.apply(*_pair(self, other, "Add (+)"))
    def __radd__(self, other): return Add.apply(*_pair(other, self, "Add (+)"))
    def __sub__(self, other): return Sub.apply(*_pair(self, other, "Sub (-)"))
    def __rsub__(self, other): return Sub.apply(*_pair(other, self, "Sub (-)"))
    def __mul__(self, other): return Mul.apply(*_pair(self, other, "Mul (*)"))
    def __rmul__(self, other): return Mul.apply(*_pair(other, self, "Mul (*)"))
    def __truediv__(self, other): return Div.apply(*_pair(self, other, "Div (/)", true_division=True))
    def __rtruediv__(self, other): return Div.apply(*_pair(other, self, "Div (/)", true_division=True))
    def __neg__(self): return Neg.apply(self)
    def neg(self): return Neg.apply(self)
    def __pow__(self, exponent): return _power(self, exponent)
    def __rpow__(self, base): return PowTensor.apply(*_pair(base, self, "Pow (**)"))
    def maximum(self, other): return Maximum.apply(*_pair(self, other, "Maximum"))
    def minimum(self, other): return Minimum.apply(*_pair(self, other, "Minimum"))

    add, sub, mul, div, pow = __add__, __sub__, __mul__, __truediv__, __pow__

    # ----------------------------------------------------------------- matrix product (ops/matmul.py)
    def matmul(self, other):
        """Matrix product as ``torch.matmul``: a 1-D operand is lifted to a matrix and dropped again."""
        other = as_tensor(other, self)
        check_matmul_shapes(self.shape, other.shape)
        x = self.reshape(1, -1) if self.ndim == 1 else self
        y = other.reshape(-1, 1) if other.ndim == 1 else other
        z = MatMul.apply(x, y)
        if self.ndim == 1:
            z = z.reshape(*z.shape[:-2], z.shape[-1])
        if other.ndim == 1:
            z = z.reshape(*z.shape[:-1])
        return z

    __matmul__ = matmul

    def __rmatmul__(self, other): return as_tensor(other, self).matmul(self)

    # ----------------------------------------------------------------- comparisons (no gradient: plain arrays)
    # Each gives a bool tensor, as PyTorch: (pred == y).float().mean(), x[x == 0], x.masked_fill(x == 0, v).
    def __lt__(self, other): return Tensor._from_array(self.data < raw(other, self.device), self.device)
    def __le__(self, other): return Tensor._from_array(self.data <= raw(other, self.device), self.device)
    def __gt__(self, other): return Tensor._from_array(self.data > raw(other, self.device), self.device)
    def __ge__(self, other): return Tensor._from_array(self.data >= raw(other, self.device), self.device)

    def __eq__(self, other):
        if other is None or isinstance(other, str):   # t == None is False, as PyTorch
            return NotImplemented
        return Tensor._from_array(self.data == raw(other, self.device), self.device)

    def __ne__(self, other):
        if other is None or isinstance(other, str):
            return NotImplemented
        return Tensor._from_array(self.data != raw(other, self.device), self.device)

    # ~ & | ^ on bool (logical) and integer (bitwise) tensors
    def __invert__(self): return Tensor._from_array(~self.data, self.device)
    def __and__(self, other): return Tensor._from_array(self.data & raw(other, self.device), self.device)
    def __or__(self, other): return Tensor._from_array(self.data | raw(other, self.device), self.device)
    def __xor__(self, other): return Tensor._from_array(self.data ^ raw(other, self.device), self.device)
    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__
    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def logical_not(self): return Tensor._from_array(self.data == 0, self.device)

    # ----------------------------------------------------------------- reductions (ops/reduce.py)
    # Every dim is checked (ops/checks.py normalize_dim); NumPy's axis= / keepdims= are accepted too.
    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return Sum.apply(self, axes=normalize_axes(dim_alias(dim, axis), self.ndim),
                         keepdims=_keep(keepdim, keepdims))

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return Mean.apply(self, axes=normalize_axes(dim_alias(dim, axis), self.ndim),
                          keepdims=_keep(keepdim, keepdims))

    def amax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Largest values over dims; tied maxima share the gradient equally (as PyTorch)."""
        return Max.apply(self, axes=normalize_axes(_all_if_empty(dim_alias(dim, axis)), self.ndim),
                         keepdims=_keep(keepdim, keepdims))

    def amin(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return Min.apply(self, axes=normalize_axes(_all_if_empty(dim_alias(dim, axis)), self.ndim),
                         keepdims=_keep(keepdim, keepdims))

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """``x.max()`` -> the largest value (ties share the gradient); ``x.max(dim)`` -> (values,
        indices), the gradient going to the returned index only; ``x.max(other)`` -> maximum."""
        dim = dim_alias(dim, axis)
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        if dim is None:
            return Max.apply(self, axes=tuple(range(self.ndim)), keepdims=False)
        return MaxResult(*self._select(self.argmax(dim, keepdim=True), dim, _keep(keepdim, keepdims)))

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """As max: ``x.min()``, ``x.min(dim)`` -> (values, indices), ``x.min(other)`` -> minimum."""
        dim = dim_alias(dim, axis)
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        if dim is None:
            return Min.apply(self, axes=tuple(range(self.ndim)), keepdims=False)
        return MinResult(*self._select(self.argmin(dim, keepdim=True), dim, _keep(keepdim, keepdims)))

    def _select(self, indices, dim, keepdim):
        """(values, indices) for max(dim)/min(dim): values gathered at `indices` (kept dim), so
        the gradient goes to exactly the returned index, as PyTorch routes it."""
        values = self.gather(dim, indices)
        if not keepdim and self.ndim > 0:
            values, indices = values.squeeze(dim), indices.squeeze(dim)
        return values, indices

    def argmax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return self._arg("argmax", dim_alias(dim, axis), _keep(keepdim, keepdims))

    def argmin(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return self._arg("argmin", dim_alias(dim, axis), _keep(keepdim, keepdims))

    def _arg(self, name, dim, keepdim):
        if dim is None:
            data = getattr(self.data, name)()
        elif self.ndim == 0:
            normalize_dim(dim, 0)
            data = getattr(self.data.reshape(1), name)(axis=0)
        else:
            data = getattr(self.data, name)(axis=normalize_dim(dim, self.ndim), keepdims=keepdim)
        return Tensor._from_array(data.astype(np.int64, copy=False), self.device)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
        """Variance; correction=1 (default, or unbiased=True) divides by n - 1. The second
        positional argument is unbiased, as PyTorch's var(dim, unbiased, keepdim)."""
        return self._spread(Var, dim, unbiased, keepdim, correction, axis, keepdims)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
        """Standard deviation, with var's arguments."""
        return self._spread(Std, dim, unbiased, keepdim, correction, axis, keepdims)

    def _spread(self, op, dim, unbiased, keepdim, correction, axis, keepdims):
        dim = dim_alias(dim, axis)
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        return op.apply(self, axes=normalize_axes(dim, self.ndim), keepdims=_keep(keepdim, keepdims),
                        correction=correction, full=dim is None or self.ndim == 0)

    def any(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Whether any element (along `dim`) is nonzero: a bool tensor, no gradient."""
        axes = normalize_axes(dim_alias(dim, axis), self.ndim)
        return Tensor._from_array(self.data.any(axis=axes, keepdims=_keep(keepdim, keepdims)), self.device)

    def all(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        axes = normalize_axes(dim_alias(dim, axis), self.ndim)
        return Tensor._from_array(self.data.all(axis=axes, keepdims=_keep(keepdim, keepdims)), self.device)

    def cumsum(self, dim, *, axis=None):
        return Cumsum.apply(self, axis=normalize_dim(dim_alias(dim, axis), self.ndim)) if self.ndim \
            else self.clone()

    def logsumexp(self, dim, keepdim=False, *, axis=None, keepdims=None):
        return LogSumExp.apply(self, axes=normalize_axes(dim_alias(dim, axis), self.ndim),
                               keepdims=_keep(keepdim, keepdims))

    # ----------------------------------------------------------------- elementwise (ops/unary.py, ops/softmax.py)
    def exp(self): return Exp.apply(self)
    def log(self): return Log.apply(self)
    def sqrt(self): return Sqrt.apply(self)
    def rsqrt(self): return Rsqrt.apply(self)
    def abs(self): return Abs.apply(self)
    def tanh(self): return Tanh.apply(self)
    def sigmoid(self): return Sigmoid.apply(self)
    def relu(self): return ReLU.apply(self)
    __abs__ = abs

    def clamp(self, min=None, max=None):
        """Values limited to [min, max] (either None: no bound; numbers or tensors, as PyTorch)."""
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        bounds = [b for b in (min, max) if b is not None]
        x = self._cast(result_type(self, *bounds))
        if not any(isinstance(b, Tensor) for b in bounds):
            return Clamp.apply(x, low=min, high=max)
        if min is not None:            # composed from where: the gradient goes to the bound that won
            x = where(x < min, min, x)
        if max is not None:
            x = where(x > max, max, x)
        return x

    clip = clamp

    def softmax(self, dim=None, *, axis=None):
        dim = normalize_dim(dim_alias(dim, axis), self.ndim)
        return Softmax.apply(self, axis=dim) if self.ndim else self.reshape(1).softmax(0).reshape(())

    def log_softmax(self, dim=None, *, axis=None):
        dim = normalize_dim(dim_alias(dim, axis), self.ndim)
        return LogSoftmax.apply(self, axis=dim) if self.ndim else self.reshape(1).log_softmax(0).reshape(())

    # ----------------------------------------------------------------- shapes and indexing (ops/shape.py)
    def reshape(self, *shape):
        shape = shape_args(shape)
        try:
            return Reshape.apply(self, shape=shape)
        except ValueError:
            raise ValueError(f"Reshape: cannot view a tensor of shape {self.shape} "
                             f"({self.numel()} elements) as shape {shape}") from None

    view = reshape

    def permute(self, *dims): return Permute.apply(self, dims=permutation(dims, self.shape))
    def transpose(self, dim0, dim1): return Permute.apply(self, dims=swapped_axes(self.ndim, dim0, dim1))
    def unsqueeze(self, dim): return self.reshape(unsqueezed_shape(self.shape, dim))

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(*[n for n in self.shape if n != 1])
        dim = normalize_dim(dim, self.ndim)
        if self.ndim == 0 or self.shape[dim] != 1:
            return self
        return self.reshape(*self.shape[:dim], *self.shape[dim + 1:])

    def expand(self, *sizes): return Expand.apply(self, shape=expanded_shape(self.shape, sizes))
    def expand_as(self, other): return self.expand(other.shape)

    def flip(self, *dims):
        return Flip.apply(self, axes=tuple(normalize_dim(d, self.ndim) for d in shape_args(dims)))

    def repeat(self, *sizes):
        """Tile the tensor sizes[i] times along dim i (PyTorch's repeat; extra sizes add dims in front)."""
        sizes = shape_args(sizes)
        if len(sizes) < self.ndim:
            raise RuntimeError(f"repeat: {len(sizes)} sizes given ({sizes}) for a tensor with "
                               f"{self.ndim} dims; give at least one per dim")
        return Repeat.apply(self, reps=sizes)

    def tril(self, diagonal=0):
        """Zeros above the `diagonal`-th diagonal of the last two dims."""
        return self.masked_fill(~self._tri(diagonal), 0)

    def triu(self, diagonal=0):
        """Zeros below the `diagonal`-th diagonal of the last two dims."""
        return self.masked_fill(self._tri(diagonal - 1), 0)

    def _tri(self, diagonal):
        """Mask of the last two dims, True where column <= row + diagonal."""
        if self.ndim < 2:
            raise RuntimeError(f"tril/triu: the tensor needs at least 2 dims, got shape {self.shape}")
        xp = backend.get_array_module(self.device)
        return xp.tri(self.shape[-2], self.shape[-1], diagonal, dtype=np.bool_)

    def where(self, condition, other): return where(condition, self, other)

    def flatten(self, start_dim=0, end_dim=-1):
        return self.reshape(flattened_shape(self.shape, start_dim, end_dim))

    def __getitem__(self, index):
        """x[index] with PyTorch's rules, also for ints mixed with index arrays (ops/shape.py
        torch_index); a bool tensor selects where it is True."""
        # always a tuple (x[None] is x[(None,)]: a bare None would read as "no index"); a tuple
        # inside the index is a list of positions, as in PyTorch (x[(2, 1, 0), t])
        parts = index if isinstance(index, tuple) else (index,)
        return GetItem.apply(self, index=tuple(raw(list(i) if isinstance(i, tuple) else i, self.device)
                                               for i in parts))

    def gather(self, dim, index):
        """out[i][j] = self[i][index[i][j]] for dim = 1 (torch.gather); gradient scattered back."""
        dim = normalize_dim(dim, self.ndim)
        index = raw(index, self.device)
        if self.ndim == 0:
            return self.reshape(1).gather(0, index.reshape(-1)).reshape(index.shape)
        check_gather_index(tuple(index.shape), self.shape, dim)
        check_indices(backend.get_array_module(self.device), index, self.shape[dim], "gather")
        return Gather.apply(self, index=index, axis=dim)

    def sort(self, dim=-1, descending=False, stable=False):
        """(values, indices) sorted along `dim` (a stable sort; values gathered, so differentiable)."""
        dim = normalize_dim(dim, self.ndim)
        if self.ndim == 0:
            return SortResult(self.clone(), Tensor._from_array(self.data.astype(np.int64) * 0, self.device))
        key = self.data if not descending else (~self.data if self.dtype.kind == "b" else -self.data)
        indices = Tensor._from_array(key.argsort(axis=dim, kind="stable").astype(np.int64, copy=False),
                                     self.device)
        return SortResult(self.gather(dim, indices), indices)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        """(values, indices) of the k largest (or smallest) along `dim`, in sorted order."""
        dim = normalize_dim(dim, self.ndim)
        size = self.shape[dim] if self.ndim else 1
        if not 0 <= k <= size:
            raise RuntimeError(f"topk: k ({k}) is out of range for dim {dim} of size {size}")
        _, order = self.sort(dim, descending=largest)
        if self.ndim:
            order = order[(slice(None),) * dim + (slice(0, k),)]
        return TopkResult(self.gather(dim, order), order)

    def split(self, split_size_or_sections, dim=0):
        """Pieces of size `split_size_or_sections` (or of the listed sizes) along `dim`, as PyTorch."""
        dim = normalize_dim(dim, self.ndim)
        index = [slice(None)] * self.ndim
        pieces = []
        for start, stop in split_bounds(self.shape[dim], split_size_or_sections, dim):
            index[dim] = slice(start, stop)
            pieces.append(self[tuple(index)])
        return tuple(pieces)

    def chunk(self, chunks, dim=0):
        dim = normalize_dim(dim, self.ndim)
        return self.split(-(-self.shape[dim] // chunks), dim)

    def masked_fill(self, mask, value):
        mask = raw(mask, self.device)
        check_mask_shape(tuple(mask.shape), self.shape)
        if isinstance(value, Tensor):          # a 0-d tensor value gets its gradient, as PyTorch
            return where(mask, value._cast(self.dtype), self)
        return MaskedFill.apply(self, mask=mask, value=value)

    # ----------------------------------------------------------------- autograd
    def backward(self, gradient=None):
        """Accumulate d(self)/d(leaf) * gradient into every leaf's ``.grad``.

        Walks the graph in reverse topological order with an explicit stack (no recursion, so a
        chain of any length works). Gradients add up over calls until they are zeroed.
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no graph "
                               "(was it made under no_grad(), or from tensors without requires_grad=True?)")
        xp = backend.get_array_module(self.device)
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a scalar, but this tensor has shape "
                    f"{self.shape}; pass gradient= an array of that shape (or reduce with .sum()/.mean())")
            gradient = xp.ones_like(self.data)
        else:
            if isinstance(gradient, Tensor):
                gradient = gradient.data
            elif backend.device_of(gradient) != self.device or not hasattr(gradient, "dtype"):
                gradient = backend.to_device(np.asarray(gradient, dtype=self.dtype), self.device)
            gradient = gradient.astype(self.dtype, copy=False)
            if gradient.shape != self.data.shape:
                raise GradientShapeError(f"backward(): gradient has shape {gradient.shape} but the "
                                         f"tensor has shape {self.shape}")
        grads = {id(self): gradient}
        for node in reversed(topological_order(self)):
            grad = grads.pop(id(node), None)
            if grad is None:
                continue
            if node._ctx is None or node._retain_grad:
                _accumulate(node, grad)
            if node._ctx is None:
                continue
            fn = node._ctx
            fn.check_versions(node)          # nothing it kept was changed in place since forward
            input_grads = fn.backward(grad)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for inp, g in zip(graph_inputs(fn), input_grads):
                if g is None or not inp.requires_grad:
                    continue
                if g.shape != inp.data.shape or g.dtype != inp.data.dtype:
                    raise GradientShapeError(
                        f"{fn.name}.backward returned a gradient of shape {tuple(g.shape)} and dtype "
                        f"{g.dtype} for an input of shape {inp.shape} and dtype {inp.dtype}")
                previous = grads.get(id(inp))
                grads[id(inp)] = g if previous is None else previous + g


def _accumulate(leaf, grad):
    """leaf.grad += grad, in place (with an optimizer, into its flat buffer); the first time, a
    Tensor owning a copy (so in-place updates never touch another array)."""
    if leaf._grad is None:
        leaf._grad = Tensor._from_array(grad.copy(), leaf.device)
    else:
        leaf._grad.data += grad


def graph_inputs(fn):
    """fn's inputs as graph nodes: ``fn.inputs``, except that an input changed since fn ran by an
    in-place op recorded in the graph is represented by the node it was then (``_node_at``)."""
    if clock() == fn.clock:             # no in-place write since fn ran: the common case
        return fn.inputs
    return [_node_at(t, fn.clock) for t in fn.inputs]


def _node_at(t, when):
    """The node that stood for tensor `t` at clock `when`: each recorded in-place op left the node
    before it in ``t._previous`` as (the clock of its write, node)."""
    while t._previous is not None and when < t._previous[0]:
        t = t._previous[1]
    return t


def topological_order(root):
    """Tensors reachable from `root` (through tensors that require grad), inputs before outputs."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for inp in graph_inputs(node._ctx):
                if inp.requires_grad and id(inp) not in visited:
                    stack.append((inp, False))
    return order


def _keep(keepdim, keepdims):
    """keepdims= (NumPy's name) overrides keepdim= when given."""
    return keepdim if keepdims is None else keepdims


def _all_if_empty(dim):
    """amax(dim=()) reduces every dim, as PyTorch."""
    return None if isinstance(dim, (tuple, list)) and len(dim) == 0 else dim


# ------------------------------------------------------------------- helpers that make Tensors
def as_tensor(value, like, dtype=None):
    """`value` as a Tensor on `like`'s device; numbers take `dtype`, by default `like`'s (no
    float64 upcast); an array keeps its dtype unless `dtype` is given."""
    if isinstance(value, Tensor):
        return value
    if hasattr(value, "dtype") and hasattr(value, "shape"):
        if backend.device_of(value) != like.device:
            raise backend.DeviceError(f"an array on {backend.device_of(value)!r} was combined with a "
                                      f"tensor on {like.device!r}; wrap it with Tensor(..., device="
                                      f"{like.device!r}) first")
        if dtype is not None and value.dtype != dtype:
            value = value.astype(dtype)
        return Tensor._from_array(value, like.device)
    xp = backend.get_array_module(like.device)
    return Tensor._from_array(xp.asarray(value, dtype=like.dtype if dtype is None else dtype), like.device)


def raw(value, device):
    """The array behind a Tensor, or an index/mask given as a list or array, on `device`."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, (list, np.ndarray)) or hasattr(value, "__cuda_array_interface__"):
        return backend.to_device(np.asarray(value) if isinstance(value, list) else value, device)
    return value


def _pair(x, y, op, true_division=False):
    """The operands of a binary op as Tensors of one dtype that broadcast together: a number or an
    array on one side goes to the other side's device, and both take PyTorch's result dtype
    (ops/dtypes.py result_type: float32 * 0.5 stays float32, int64 * 0.5 is float32, int32 + 1
    stays int32). With true_division, integers become float32 (int / int is a float, as PyTorch).
    The training path (two float tensors of one dtype, or a float tensor and a Python float) skips
    the promotion rule."""
    if isinstance(x, Tensor) and isinstance(y, Tensor) and x.data.dtype == y.data.dtype and \
            (x.data.dtype.kind == "f" or not true_division):
        check_broadcastable(op, x.shape, y.shape)
        return x, y
    like = x if isinstance(x, Tensor) else y
    other = y if like is x else x
    if (type(other) is float or type(other) is int) and like.data.dtype.kind == "f":
        dtype = like.data.dtype
    else:
        dtype = result_type(x, y)
        if true_division and dtype.kind != "f":
            dtype = DEFAULT_FLOAT
    x = x._cast(dtype) if isinstance(x, Tensor) else as_tensor(x, like, dtype)
    y = y._cast(dtype) if isinstance(y, Tensor) else as_tensor(y, like, dtype)
    check_broadcastable(op, x.shape, y.shape)
    return x, y


def _power(x, exponent):
    """x ** exponent: a number exponent is Pow's constant; a tensor one is PowTensor's input."""
    if isinstance(exponent, Tensor) or hasattr(exponent, "shape"):
        return PowTensor.apply(*_pair(x, exponent, "Pow (**)"))
    if x.data.dtype.kind != "f" or (type(exponent) is not float and type(exponent) is not int):
        x = x._cast(result_type(x, exponent))
    return Pow.apply(x, exponent=exponent)


def cat(tensors, dim=0, *, axis=None):
    """Join tensors along an existing dim (``torch.cat``); mixed dtypes are promoted."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    dim = normalize_dim(dim_alias(dim, axis, default=0), tensors[0].ndim)
    check_cat_shapes([t.shape for t in tensors], dim)
    if any(t.dtype != tensors[0].dtype for t in tensors):
        dtype = result_type(*tensors)
        tensors = [t._cast(dtype) for t in tensors]
    return Concatenate.apply(*tensors, axis=dim)


def stack(tensors, dim=0, *, axis=None):
    """Join same-shaped tensors along a new dim (``torch.stack``)."""
    tensors = list(tensors)
    check_stack_shapes([t.shape for t in tensors])
    dim = normalize_dim(dim_alias(dim, axis, default=0), tensors[0].ndim + 1)
    return cat([t.unsqueeze(dim) for t in tensors], dim=dim)


# ------------------------------------------------------------------ function forms (torch.maximum(x, y) ...)
def maximum(input, other):
    """Elementwise max (``torch.maximum``): Tensor.maximum as a function."""
    return input.maximum(other)


def minimum(input, other):
    """Elementwise min (``torch.minimum``)."""
    return input.minimum(other)


def split(tensor, split_size_or_sections, dim=0):
    """Pieces along `dim` (``torch.split``): Tensor.split as a function."""
    return tensor.split(split_size_or_sections, dim)


def tril(input, diagonal=0):
    """The lower triangle (``torch.tril``)."""
    return input.tril(diagonal)


def triu(input, diagonal=0):
    """The upper triangle (``torch.triu``)."""
    return input.triu(diagonal)


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(variance, mean) in one call (``torch.var_mean``), with var's arguments."""
    return (input.var(dim, unbiased, keepdim, correction=correction),
            input.mean() if dim is None else input.mean(dim, keepdim=keepdim))


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(standard deviation, mean) in one call (``torch.std_mean``)."""
    return (input.std(dim, unbiased, keepdim, correction=correction),
            input.mean() if dim is None else input.mean(dim, keepdim=keepdim))


def where(condition, x, y):
    """x where condition else y (``torch.where``); condition needs no gradient. x and y may be
    tensors or numbers (both numbers: a tensor on the condition's device), with PyTorch's dtype."""
    if isinstance(x, Tensor) or isinstance(y, Tensor):
        x, y = _pair(x, y, "Where")
    else:
        device = condition.device if isinstance(condition, Tensor) else backend.device_of(condition)
        xp, dtype = backend.get_array_module(device), result_type(x, y)
        x, y = (Tensor._from_array(xp.asarray(v, dtype=dtype), device) for v in (x, y))
    return Where.apply(x, y, condition=raw(condition, x.device))
