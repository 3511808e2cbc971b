"""Ops that move or select elements without arithmetic: reshape, permute, getitem, concatenate,
masked_fill, where. Their backward puts each gradient element back where its value came from.
"""
from ..function import Function
from .arithmetic import unbroadcast


def scatter_add(xp, target, index, values):
    """target[index] += values, adding (not overwriting) where an index repeats."""
    if xp.__name__ == "cupy":
        import cupyx
        cupyx.scatter_add(target, index, values)
    else:
        xp.add.at(target, index, values)


def _is_basic_index(index):
    """True for ints, slices, None and Ellipsis only: each element is then picked at most once."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, slice)) for p in parts)


class Reshape(Function):
    """y = x viewed with another shape.  The gradient is reshaped back."""

    def forward(self, x, shape):
        self.in_shape = x.shape
        return x.reshape(shape)

    def backward(self, grad):
        return grad.reshape(self.in_shape)


class Permute(Function):
    """y = x with its axes reordered by `dims`.  Backward applies the inverse permutation."""

    def forward(self, x, dims):
        self.inverse = tuple(sorted(range(len(dims)), key=lambda i: dims[i]))
        return x.transpose(dims)

    def backward(self, grad):
        return grad.transpose(self.inverse)


class GetItem(Function):
    """y = x[index] for slices and integer arrays.

    Backward scatters the gradient into zeros of x's shape. With integer arrays an element can be
    picked twice (x[[0, 0]]), so its gradients must be added: a scatter-add, not an assignment.
    """

    def forward(self, x, index):
        self.in_shape, self.dtype, self.index = x.shape, x.dtype, index
        return x[index]

    def backward(self, grad):
        g_x = self.xp.zeros(self.in_shape, dtype=self.dtype)
        if _is_basic_index(self.index):
            g_x[self.index] = grad
        else:
            scatter_add(self.xp, g_x, self.index, grad)
        return g_x


class Concatenate(Function):
    """y = inputs joined along `axis`.  Backward cuts the gradient into the same pieces."""

    def forward(self, *arrays, axis):
        self.axis = axis
        self.bounds = []
        start = 0
        for a in arrays:
            self.bounds.append((start, start + a.shape[axis]))
            start += a.shape[axis]
        return self.xp.concatenate(arrays, axis=axis)

    def backward(self, grad):
        index = [slice(None)] * grad.ndim
        pieces = []
        for start, stop in self.bounds:
            index[self.axis] = slice(start, stop)
            pieces.append(grad[tuple(index)])
        return tuple(pieces)


class MaskedFill(Function):
    """y = x where mask is False, `value` where it is True (mask broadcasts to x's shape).

    dy/dx = 1 where the mask is False, 0 where the value replaced x.
    """

    def forward(self, x, mask, value):
        self.mask = mask
        return self.xp.where(mask, self.xp.asarray(value, dtype=x.dtype), x)

    def backward(self, grad):
        return self.xp.where(self.mask, self.xp.zeros((), dtype=grad.dtype), grad)


class Where(Function):
    """z = x where condition, else y (all three broadcast).  Each gradient flows to the side chosen."""

    def forward(self, x, y, condition):
        self.condition, self.x_shape, self.y_shape = condition, x.shape, y.shape
        return self.xp.where(condition, x, y)

    def backward(self, grad):
        zero = self.xp.zeros((), dtype=grad.dtype)
        g_x = self.xp.where(self.condition, grad, zero)
        g_y = self.xp.where(self.condition, zero, grad)
        return unbroadcast(g_x, self.x_shape), unbroadcast(g_y, self.y_shape)
