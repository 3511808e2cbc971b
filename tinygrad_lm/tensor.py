"""Tensor and reverse-mode autograd.

A ``Tensor`` holds an array (``.data``: NumPy on "cpu", CuPy on "cuda") and, when it was made by a
differentiable op, the ``Function`` that made it (``._ctx``). ``loss.backward()`` walks that graph
from the loss back to the leaves in reverse topological order, asking each Function for the
gradient of its inputs, and adds the results into the leaves' ``.grad``.

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
from .function import Function, is_grad_enabled, no_grad  # noqa: F401  (re-exported: tinygrad_lm.tensor.no_grad)
from .ops import (Add, Concatenate, Div, Exp, GetItem, Log, LogSoftmax, MaskedFill, MatMul, Max, Mean,
                  Mul, Neg, Permute, Pow, ReLU, Reshape, Sigmoid, Softmax, Sqrt, Sub, Sum, Tanh, Var, Where)
from .ops.checks import (check_broadcastable, check_cat_shapes, check_mask_shape, check_matmul_shapes,
                         check_stack_shapes, flattened_shape, normalize_axes, permutation, shape_args,
                         split_bounds, swapped_axes, unsqueezed_shape)

# x.max(dim) returns (values, indices), as torch.max does
MaxResult = namedtuple("max", ["values", "indices"])


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

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "device", "_retain_grad", "name",
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
        data = backend.to_device(data, device) if hasattr(data, "dtype") else data
        self.data = xp.asarray(data, dtype=dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, got {self.data.dtype}")
        self.device = device
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._ctx = None
        self._retain_grad = False
        self.name = None

    @staticmethod
    def _from_array(array, device, requires_grad=False):
        """Wrap an array that is already on `device` without copying (used by every op). Always a
        plain Tensor, also when called on a Parameter: an op's output is not a learnable parameter."""
        t = Tensor.__new__(Tensor)
        t.data, t.device, t.requires_grad = array, device, requires_grad
        t.grad, t._ctx, t._retain_grad, t.name = None, None, False, None
        return t

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
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        return self.ndim

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        return self.shape[0]

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

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor._from_array(self.data, self.device, False)

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
        if device == self.device and (dtype is None or np.dtype(dtype) == self.dtype):
            return self
        data = backend.to_device(self.data, device)
        if dtype is not None:
            data = data.astype(dtype)
        return Tensor._from_array(data, device, self.requires_grad and self.is_leaf)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def zero_(self):
        self.data[...] = 0
        return self

    # ----------------------------------------------------------------- arithmetic (ops/arithmetic.py)
    # A number or an array on either side becomes a Tensor like the other operand (see _pair below).
    def __add__(self, other): return Add.apply(*_pair(self, other, "Add (+)"))
    def __radd__(self, other): return Add.apply(*_pair(other, self, "Add (+)"))
    def __sub__(self, other): return Sub.apply(*_pair(self, other, "Sub (-)"))
    def __rsub__(self, other): return Sub.apply(*_pair(other, self, "Sub (-)"))
    def __mul__(self, other): return Mul.apply(*_pair(self, other, "Mul (*)"))
    def __rmul__(self, other): return Mul.apply(*_pair(other, self, "Mul (*)"))
    def __truediv__(self, other): return Div.apply(*_pair(self, other, "Div (/)"))
    def __rtruediv__(self, other): return Div.apply(*_pair(other, self, "Div (/)"))
    def __neg__(self): return Neg.apply(self)

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            raise TypeError("Tensor ** Tensor is not supported: the exponent must be a number")
        return Pow.apply(self, exponent=exponent)

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
    def __lt__(self, other): return Tensor._from_array(self.data < raw(other, self.device), self.device)
    def __le__(self, other): return Tensor._from_array(self.data <= raw(other, self.device), self.device)
    def __gt__(self, other): return Tensor._from_array(self.data > raw(other, self.device), self.device)
    def __ge__(self, other): return Tensor._from_array(self.data >= raw(other, self.device), self.device)

    # ----------------------------------------------------------------- reductions (ops/reduce.py)
    def sum(self, dim=None, keepdim=False):
        return Sum.apply(self, axes=normalize_axes(dim, self.ndim), keepdims=keepdim)

    def mean(self, dim=None, keepdim=False):
        return Mean.apply(self, axes=normalize_axes(dim, self.ndim), keepdims=keepdim)

    def amax(self, dim=None, keepdim=False):
        return Max.apply(self, axes=normalize_axes(dim, self.ndim), keepdims=keepdim)

    def max(self, dim=None, keepdim=False):
        """``x.max()`` -> the largest value; ``x.max(dim)`` -> (values, indices), as PyTorch."""
        values = self.amax(dim, keepdim)
        return values if dim is None else MaxResult(values, self.argmax(dim, keepdim))

    def argmax(self, dim=None, keepdim=False):
        data = self.data.argmax(axis=dim, keepdims=keepdim) if dim is not None else self.data.argmax()
        return Tensor._from_array(data, self.device)

    def var(self, dim=None, keepdim=False, correction=1, unbiased=None):
        if unbiased is not None:
            correction = 1 if unbiased else 0
        return Var.apply(self, axes=normalize_axes(dim, self.ndim), keepdims=keepdim, correction=correction)

    def std(self, dim=None, keepdim=False, correction=1):
        return self.var(dim, keepdim, correction).sqrt()

    # ----------------------------------------------------------------- elementwise (ops/unary.py, ops/softmax.py)
    def exp(self): return Exp.apply(self)
    def log(self): return Log.apply(self)
    def sqrt(self): return Sqrt.apply(self)
    def tanh(self): return Tanh.apply(self)
    def sigmoid(self): return Sigmoid.apply(self)
    def relu(self): return ReLU.apply(self)
    def softmax(self, dim): return Softmax.apply(self, axis=dim)
    def log_softmax(self, dim): return LogSoftmax.apply(self, axis=dim)

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
        dim = dim % self.ndim
        return self if self.shape[dim] != 1 else self.reshape(*self.shape[:dim], *self.shape[dim + 1:])

    def flatten(self, start_dim=0, end_dim=-1):
        return self.reshape(flattened_shape(self.shape, start_dim, end_dim))

    def __getitem__(self, index):
        if isinstance(index, tuple):
            return GetItem.apply(self, index=tuple(raw(i, self.device) for i in index))
        return GetItem.apply(self, index=raw(index, self.device))

    def split(self, split_size_or_sections, dim=0):
        """Pieces of size `split_size_or_sections` (or of the listed sizes) along `dim`, as PyTorch."""
        index = [slice(None)] * self.ndim
        pieces = []
        for start, stop in split_bounds(self.shape[dim], split_size_or_sections, dim):
            index[dim] = slice(start, stop)
            pieces.append(self[tuple(index)])
        return tuple(pieces)

    def chunk(self, chunks, dim=0):
        return self.split(-(-self.shape[dim] // chunks), dim)

    def masked_fill(self, mask, value):
        mask = raw(mask, self.device)
        check_mask_shape(tuple(mask.shape), self.shape)
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
        for node in reversed(_topological_order(self)):
            grad = grads.pop(id(node), None)
            if grad is None:
                continue
            if node._ctx is None or node._retain_grad:
                _accumulate(node, grad)
            if node._ctx is None:
                continue
            fn = node._ctx
            input_grads = fn.backward(grad)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for inp, g in zip(fn.inputs, input_grads):
                if g is None or not inp.requires_grad:
                    continue
                if g.shape != inp.data.shape or g.dtype != inp.data.dtype:
                    raise GradientShapeError(
                        f"{fn.name}.backward returned a gradient of shape {tuple(g.shape)} and dtype "
                        f"{g.dtype} for an input of shape {inp.shape} and dtype {inp.dtype}")
                previous = grads.get(id(inp))
                grads[id(inp)] = g if previous is None else previous + g


def _accumulate(leaf, grad):
    """leaf.grad += grad, owning its memory (so in-place updates never touch another array)."""
    if leaf.grad is None:
        leaf.grad = grad.copy()
    else:
        leaf.grad += grad


def _topological_order(root):
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
            for inp in node._ctx.inputs:
                if inp.requires_grad and id(inp) not in visited:
                    stack.append((inp, False))
    return order


def tensor(data, device=None, dtype=None, requires_grad=False):
    """``torch.tensor``-like constructor."""
    return Tensor(data, device=device, dtype=dtype, requires_grad=requires_grad)


# ------------------------------------------------------------------- helpers that make Tensors
def as_tensor(value, like):
    """`value` as a Tensor on `like`'s device; numbers take `like`'s dtype (no float64 upcast)."""
    if isinstance(value, Tensor):
        return value
    if hasattr(value, "dtype") and hasattr(value, "shape"):
        if backend.device_of(value) != like.device:
            raise backend.DeviceError(f"an array on {backend.device_of(value)!r} was combined with a "
                                      f"tensor on {like.device!r}; wrap it with Tensor(..., device="
                                      f"{like.device!r}) first")
        return Tensor._from_array(value, like.device)
    xp = backend.get_array_module(like.device)
    return Tensor._from_array(xp.asarray(value, dtype=like.dtype), like.device)


def raw(value, device):
    """The array behind a Tensor, or an index/mask given as a list or array, on `device`."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, (list, np.ndarray)) or hasattr(value, "__cuda_array_interface__"):
        return backend.to_device(np.asarray(value) if isinstance(value, list) else value, device)
    return value


def _pair(x, y, op):
    """The operands of a binary op as Tensors that broadcast together: a number or an array on one
    side goes to the other side's device (a number also takes its dtype, so x * 0.5 stays float32)."""
    if not isinstance(y, Tensor):
        y = as_tensor(y, x)
    elif not isinstance(x, Tensor):
        x = as_tensor(x, y)
    check_broadcastable(op, x.shape, y.shape)
    return x, y


def cat(tensors, dim=0):
    """Join tensors along an existing dim (``torch.cat``)."""
    tensors = list(tensors)
    dim = dim % tensors[0].ndim
    check_cat_shapes([t.shape for t in tensors], dim)
    return Concatenate.apply(*tensors, axis=dim)


def stack(tensors, dim=0):
    """Join same-shaped tensors along a new dim (``torch.stack``)."""
    tensors = list(tensors)
    check_stack_shapes([t.shape for t in tensors])
    return cat([t.unsqueeze(dim) for t in tensors], dim=dim)


def where(condition, x, y):
    """x where condition else y (``torch.where``); condition needs no gradient."""
    like = x if isinstance(x, Tensor) else y
    x, y = as_tensor(x, like), as_tensor(y, like)
    return Where.apply(x, y, condition=raw(condition, like.device))
