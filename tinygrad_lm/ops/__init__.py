"""Every primitive op, one class each, and the Tensor methods that call them.

Importing this module attaches Python operators (``+ - * / ** @ -x [i]``) and PyTorch-named
methods (``x.sum(dim)``, ``x.softmax(dim=-1)``, ``x.masked_fill(mask, v)``...) to ``Tensor``.
"""
import numpy as np

from .. import backend
from ..tensor import Tensor
from .arithmetic import Add, Div, Mul, Neg, Pow, Sub, unbroadcast
from .fused import CrossEntropy, LayerNorm, Linear, PackedCausalAttention, ScaledDotProductAttention
from .matmul import MatMul
from .nn import Dropout, Embedding, check_indices
from .reduce import Max, Mean, Sum, Var, normalize_axes
from .shape import Concatenate, GetItem, MaskedFill, Permute, Reshape, Where, scatter_add
from .softmax import LogSoftmax, Softmax
from .unary import Exp, GELUErf, GELUTanh, Log, ReLU, Sigmoid, Sqrt, Tanh

__all__ = [
    "Add", "Sub", "Mul", "Div", "Neg", "Pow", "MatMul", "Sum", "Mean", "Max", "Var", "Exp", "Log",
    "Sqrt", "Tanh", "Sigmoid", "ReLU", "GELUTanh", "GELUErf", "Softmax", "LogSoftmax", "Reshape",
    "Permute", "GetItem", "Concatenate", "MaskedFill", "Where", "Embedding", "Dropout",
    "CrossEntropy", "LayerNorm", "Linear", "PackedCausalAttention", "ScaledDotProductAttention", "unbroadcast", "scatter_add",
    "check_indices", "as_tensor", "raw",
]


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


def broadcast_shape(a, b):
    """NumPy's broadcasting rule for two shapes (None if they do not broadcast); plain Python,
    because np.broadcast_shapes costs more than a small op."""
    if a == b:
        return a
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x != y and x != 1 and y != 1:
            return None
        out.append(y if x == 1 else x)
    return tuple(out)


def _check_same_shape_or_broadcast(op, x, y):
    if x.shape != y.shape and broadcast_shape(x.shape, y.shape) is None:
        raise ValueError(f"{op}: shapes {x.shape} and {y.shape} cannot be broadcast together")


def _binary(op_class, symbol):
    def method(self, other):
        other = as_tensor(other, self)
        _check_same_shape_or_broadcast(f"{op_class.__name__} ({symbol})", self, other)
        return op_class.apply(self, other)

    def reflected(self, other):
        other = as_tensor(other, self)
        _check_same_shape_or_broadcast(f"{op_class.__name__} ({symbol})", other, self)
        return op_class.apply(other, self)
    return method, reflected


Tensor.__add__, Tensor.__radd__ = _binary(Add, "+")
Tensor.__sub__, Tensor.__rsub__ = _binary(Sub, "-")
Tensor.__mul__, Tensor.__rmul__ = _binary(Mul, "*")
Tensor.__truediv__, Tensor.__rtruediv__ = _binary(Div, "/")
Tensor.add, Tensor.sub, Tensor.mul, Tensor.div = (Tensor.__add__, Tensor.__sub__, Tensor.__mul__,
                                                  Tensor.__truediv__)
Tensor.__neg__ = lambda self: Neg.apply(self)


def _pow(self, exponent):
    if isinstance(exponent, Tensor):
        raise TypeError("Tensor ** Tensor is not supported: the exponent must be a number")
    return Pow.apply(self, exponent=exponent)


Tensor.__pow__ = Tensor.pow = _pow


def matmul(self, other):
    """Matrix product as ``torch.matmul``: vectors are lifted to matrices and dropped again."""
    other = as_tensor(other, self)
    if self.ndim == 0 or other.ndim == 0:
        raise ValueError(f"MatMul: both operands need at least one dimension, got {self.shape} and {other.shape}")
    x = self.reshape(1, -1) if self.ndim == 1 else self
    y = other.reshape(-1, 1) if other.ndim == 1 else other
    if x.shape[-1] != y.shape[-2]:
        raise ValueError(f"MatMul: shapes {self.shape} and {other.shape} cannot be multiplied "
                         f"(inner sizes {x.shape[-1]} and {y.shape[-2]} differ)")
    if broadcast_shape(x.shape[:-2], y.shape[:-2]) is None:
        raise ValueError(f"MatMul: batch shapes of {self.shape} and {other.shape} cannot be broadcast") from None
    z = MatMul.apply(x, y)
    if self.ndim == 1:
        z = z.reshape(*z.shape[:-2], z.shape[-1])
    if other.ndim == 1:
        z = z.reshape(*z.shape[:-1])
    return z


Tensor.matmul = Tensor.__matmul__ = matmul
Tensor.__rmatmul__ = lambda self, other: matmul(as_tensor(other, self), self)


# --------------------------------------------------------------------- reductions
def _reduction(op_class):
    def method(self, dim=None, keepdim=False):
        return op_class.apply(self, axes=normalize_axes(dim, self.ndim), keepdims=keepdim)
    method.__name__ = op_class.__name__.lower()
    return method


Tensor.sum = _reduction(Sum)
Tensor.mean = _reduction(Mean)
Tensor.amax = _reduction(Max)


def _max(self, dim=None, keepdim=False):
    """``x.max()`` -> the largest value; ``x.max(dim)`` -> (values, indices), as PyTorch."""
    values = Max.apply(self, axes=normalize_axes(dim, self.ndim), keepdims=keepdim)
    if dim is None:
        return values
    indices = Tensor._from_array(self.data.argmax(axis=dim), self.device)
    if keepdim:
        indices = indices.unsqueeze(dim)
    from collections import namedtuple
    return namedtuple("max", ["values", "indices"])(values, indices)


def _var(self, dim=None, keepdim=False, correction=1, unbiased=None):
    if unbiased is not None:
        correction = 1 if unbiased else 0
    return Var.apply(self, axes=normalize_axes(dim, self.ndim), keepdims=keepdim, correction=correction)


def _argmax(self, dim=None, keepdim=False):
    data = self.data.argmax(axis=dim, keepdims=keepdim) if dim is not None else self.data.argmax()
    return Tensor._from_array(data, self.device)


Tensor.max, Tensor.var, Tensor.argmax = _max, _var, _argmax
Tensor.std = lambda self, dim=None, keepdim=False, correction=1: _var(self, dim, keepdim, correction).sqrt()

# --------------------------------------------------------------------- elementwise
Tensor.exp = lambda self: Exp.apply(self)
Tensor.log = lambda self: Log.apply(self)
Tensor.sqrt = lambda self: Sqrt.apply(self)
Tensor.tanh = lambda self: Tanh.apply(self)
Tensor.sigmoid = lambda self: Sigmoid.apply(self)
Tensor.relu = lambda self: ReLU.apply(self)
Tensor.softmax = lambda self, dim: Softmax.apply(self, axis=dim)
Tensor.log_softmax = lambda self, dim: LogSoftmax.apply(self, axis=dim)


def _compare(op):
    def method(self, other):
        other = raw(other, self.device)
        return Tensor._from_array(op(self.data, other), self.device)
    return method


Tensor.__lt__ = _compare(lambda a, b: a < b)
Tensor.__le__ = _compare(lambda a, b: a <= b)
Tensor.__gt__ = _compare(lambda a, b: a > b)
Tensor.__ge__ = _compare(lambda a, b: a >= b)


# --------------------------------------------------------------------- shapes
def _shape_args(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def reshape(self, *shape):
    shape = _shape_args(shape)
    try:
        return Reshape.apply(self, shape=shape)
    except ValueError:
        raise ValueError(f"Reshape: cannot view a tensor of shape {self.shape} "
                         f"({self.numel()} elements) as shape {shape}") from None


def permute(self, *dims):
    dims = _shape_args(dims)
    if sorted(d % self.ndim for d in dims) != list(range(self.ndim)):
        raise ValueError(f"Permute: {dims} is not a permutation of the {self.ndim} dims of shape {self.shape}")
    return Permute.apply(self, dims=tuple(d % self.ndim for d in dims))


def transpose(self, dim0, dim1):
    dims = list(range(self.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return Permute.apply(self, dims=tuple(dims))


def unsqueeze(self, dim):
    dim = dim if dim >= 0 else dim + self.ndim + 1
    return self.reshape(*self.shape[:dim], 1, *self.shape[dim:])


def squeeze(self, dim=None):
    if dim is None:
        return self.reshape(*[n for n in self.shape if n != 1])
    dim = dim % self.ndim
    if self.shape[dim] != 1:
        return self
    return self.reshape(*self.shape[:dim], *self.shape[dim + 1:])


def flatten(self, start_dim=0, end_dim=-1):
    end = end_dim % self.ndim
    middle = int(np.prod(self.shape[start_dim:end + 1]))
    return self.reshape(*self.shape[:start_dim], middle, *self.shape[end + 1:])


def getitem(self, index):
    if isinstance(index, tuple):
        index = tuple(raw(i, self.device) for i in index)
    else:
        index = raw(index, self.device)
    return GetItem.apply(self, index=index)


def split(self, split_size_or_sections, dim=0):
    """Pieces of size `split_size_or_sections` (or of the listed sizes) along `dim`, as PyTorch."""
    n = self.shape[dim]
    if isinstance(split_size_or_sections, int):
        sizes = [min(split_size_or_sections, n - s) for s in range(0, n, split_size_or_sections)]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not add up to {n}, the size of dim {dim}")
    pieces, start = [], 0
    index = [slice(None)] * self.ndim
    for size in sizes:
        index[dim] = slice(start, start + size)
        pieces.append(self[tuple(index)])
        start += size
    return tuple(pieces)


def chunk(self, chunks, dim=0):
    return split(self, -(-self.shape[dim] // chunks), dim)


def masked_fill(self, mask, value):
    mask = raw(mask, self.device)
    if broadcast_shape(tuple(mask.shape), self.shape) != self.shape:
        raise ValueError(f"MaskedFill: mask of shape {tuple(mask.shape)} does not broadcast to "
                         f"the tensor's shape {self.shape}")
    return MaskedFill.apply(self, mask=mask, value=value)


Tensor.reshape = Tensor.view = reshape
Tensor.permute, Tensor.transpose = permute, transpose
Tensor.unsqueeze, Tensor.squeeze, Tensor.flatten = unsqueeze, squeeze, flatten
Tensor.__getitem__ = getitem
Tensor.split, Tensor.chunk = split, chunk
Tensor.masked_fill = masked_fill


def cat(tensors, dim=0):
    """Join tensors along an existing dim (``torch.cat``)."""
    tensors = list(tensors)
    first = tensors[0]
    dim = dim % first.ndim
    for t in tensors[1:]:
        if t.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != dim):
            raise ValueError(f"cat: shapes {first.shape} and {t.shape} differ outside dim {dim}")
    return Concatenate.apply(*tensors, axis=dim)


def stack(tensors, dim=0):
    """Join same-shaped tensors along a new dim (``torch.stack``)."""
    tensors = list(tensors)
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: shapes {tensors[0].shape} and {t.shape} differ")
    return cat([t.unsqueeze(dim) for t in tensors], dim=dim)


def where(condition, x, y):
    """x where condition else y (``torch.where``); condition needs no gradient."""
    like = x if isinstance(x, Tensor) else y
    x, y = as_tensor(x, like), as_tensor(y, like)
    condition = raw(condition, like.device)
    return Where.apply(x, y, condition=condition)
