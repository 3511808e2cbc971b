"""Ops that move or select elements without arithmetic: reshape, permute, expand, flip, repeat,
getitem, gather, concatenate, masked_fill, where, clone. Their backward puts each gradient element
back where its value came from.
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


def _is_int(p):
    """A Python/NumPy integer, or a 0-d integer array (a 0-d index tensor acts as an int in PyTorch)."""
    if isinstance(p, bool):
        return False
    if isinstance(p, int) or (hasattr(p, "ndim") and p.ndim == 0 and p.dtype.kind in "iu"):
        return True
    return False


def _is_basic(p):
    return p is None or p is Ellipsis or isinstance(p, slice) or _is_int(p)


def torch_index(index, ndim):
    """Split an index into (basic, advanced) as PyTorch applies it: y = x[basic][advanced].

    NumPy and PyTorch agree on an index of slices and ints only, or of slices and arrays only.
    When ints and arrays are mixed, NumPy treats each int as one more advanced index (broadcast
    with the arrays), so ``x[1, :, [0, 2]]`` puts the array's dim first; PyTorch first applies the
    ints (and slices) as basic indexing, then the arrays to what is left, where adjacent arrays
    keep their place. This returns that two-step form (either part None when not needed): the
    basic part has each array replaced by a full slice, the advanced part each int dropped.
    """
    parts = index if isinstance(index, tuple) else (index,)
    has_array = not all(_is_basic(p) for p in parts)
    has_int = any(_is_int(p) for p in parts)
    if not has_array:
        return index, None
    if not has_int:
        return None, index
    used = sum(0 if p is None or p is Ellipsis else (p.ndim if getattr(p, "dtype", None) is not None
               and p.dtype.kind == "b" else 1) for p in parts)
    basic, advanced = [], []
    for p in parts:
        if p is Ellipsis:
            fill = [slice(None)] * (ndim - used)
            basic += fill
            advanced += fill
        elif _is_int(p):
            basic.append(int(p))            # a 0-d device array: one scalar read
        elif _is_basic(p):                  # a slice or None: the result keeps (or gains) that dim
            basic.append(p)
            advanced.append(slice(None))
        else:                               # an array: kept for the second step
            n = p.ndim if p.dtype.kind == "b" else 1
            basic += [slice(None)] * n
            advanced.append(p)
    return tuple(basic), tuple(advanced)


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


class Expand(Function):
    """y = x broadcast to `shape` (a read-only view, no copy).  Backward sums the copies back
    (``unbroadcast``), as for any broadcast input."""

    def forward(self, x, shape):
        self.in_shape = x.shape
        return self.xp.broadcast_to(x, shape)

    def backward(self, grad):
        return unbroadcast(grad, self.in_shape)


class Flip(Function):
    """y = x reversed along `axes` (a copy, as PyTorch's flip).  Backward flips the gradient back."""

    def forward(self, x, axes):
        self.axes = axes
        return self.xp.flip(x, axes).copy()

    def backward(self, grad):
        return self.xp.flip(grad, self.axes)


class Repeat(Function):
    """y = x tiled `reps` times along each dim (PyTorch's repeat, NumPy's tile).

    Backward: every input element appears once per tile, so
      1. view the gradient as (r_0, n_0, r_1, n_1, ...), the tile index before each input dim
      2. sum over the tile axes r_0, r_1, ...
    """

    def forward(self, x, reps):
        self.in_shape = x.shape
        self.padded = (1,) * (len(reps) - x.ndim) + tuple(x.shape)
        self.reps = reps
        return self.xp.tile(x, reps)

    def backward(self, grad):
        interleaved = [n for pair in zip(self.reps, self.padded) for n in pair]
        g = grad.reshape(interleaved).sum(axis=tuple(range(0, 2 * len(self.reps), 2)))
        return g.reshape(self.in_shape)


class GetItem(Function):
    """y = x[index] for ints, slices, None, Ellipsis, integer and boolean arrays, with PyTorch's
    placement of the dims that arrays select (see ``torch_index``): y = x[basic][advanced].

    Backward scatters the gradient into zeros of x's shape, through the same two steps: the
    basic part selects a view of those zeros, into which the advanced part scatters. With arrays
    an element can be picked twice (x[[0, 0]]), so its gradients must be added: a scatter-add,
    not an assignment.
    """

    def forward(self, x, index):
        self.in_shape, self.dtype = x.shape, x.dtype
        self.basic, self.advanced = torch_index(index, x.ndim)
        y = x if self.basic is None else x[self.basic]
        return y if self.advanced is None else y[self.advanced]

    def backward(self, grad):
        g_x = self.xp.zeros(self.in_shape, dtype=self.dtype)
        if self.advanced is None:
            g_x[self.basic] = grad
        else:
            target = g_x if self.basic is None else g_x[self.basic]    # a view into g_x
            scatter_add(self.xp, target, self.advanced, grad)
        return g_x


class Gather(Function):
    """y[i, j, k] = x[i, index[i, j, k], k] for dim = 1 (PyTorch's gather; index has x's number
    of dims and may be smaller than x in every dim).

    Forward builds the full integer index: `index` along `axis`, and along every other dim d the
    position arange(index.shape[d]). Backward scatter-adds the gradient through that same index.
    """

    def forward(self, x, index, axis):
        xp = self.xp
        full = []
        for d, n in enumerate(index.shape):
            if d == axis:
                full.append(index)
            else:
                shape = [1] * index.ndim
                shape[d] = n
                full.append(xp.arange(n).reshape(shape))
        self.index, self.in_shape = tuple(full), x.shape
        return x[self.index]

    def backward(self, grad):
        g_x = self.xp.zeros(self.in_shape, dtype=grad.dtype)
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


class Clone(Function):
    """y = a copy of x (its own memory, C-contiguous).  dy/dx = 1."""

    def forward(self, x):
        return x.copy()

    def backward(self, grad):
        return grad
