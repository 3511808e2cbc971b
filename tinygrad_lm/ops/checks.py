"""Checking and parsing the arguments of the Tensor methods, with the messages a learner sees.

Plain Python on shapes (no Tensors, and no arrays except in ``check_indices``): each function
either returns the parsed argument or raises a ValueError/IndexError that names the op and the
shapes. The Tensor methods in ``tensor.py`` call these, then the op's ``apply``.
"""


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


def check_broadcastable(op, x_shape, y_shape):
    if x_shape != y_shape and broadcast_shape(x_shape, y_shape) is None:
        raise ValueError(f"{op}: shapes {x_shape} and {y_shape} cannot be broadcast together")


def check_matmul_shapes(a, b):
    """Shapes a @ b as ``torch.matmul`` takes them (a 1-D operand is lifted to a matrix)."""
    if len(a) == 0 or len(b) == 0:
        raise ValueError(f"MatMul: both operands need at least one dimension, got {a} and {b}")
    inner_b = b[0] if len(b) == 1 else b[-2]
    if a[-1] != inner_b:
        raise ValueError(f"MatMul: shapes {a} and {b} cannot be multiplied "
                         f"(inner sizes {a[-1]} and {inner_b} differ)")
    if broadcast_shape(a[:-2], b[:-2]) is None:
        raise ValueError(f"MatMul: batch shapes of {a} and {b} cannot be broadcast")


def normalize_dim(dim, ndim):
    """`dim` as a non-negative axis of a tensor with `ndim` dims, or PyTorch's IndexError.

    Every method that takes a dim calls this. A 0-d tensor accepts dim 0 and -1 (PyTorch treats
    it as having one dim here); callers that insert a dim (unsqueeze, stack) pass ndim + 1.
    """
    if not isinstance(dim, int) and hasattr(dim, "__index__"):
        dim = dim.__index__()
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"a dim must be an int, got {type(dim).__name__} ({dim!r})")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return dim % n


def normalize_axes(axis, ndim):
    """None -> every axis; an int or tuple -> a sorted tuple of non-negative axes (each checked by
    ``normalize_dim``). On a 0-d tensor dim 0 / -1 reduce nothing: the result is ()."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) or not hasattr(axis, "__iter__") else tuple(axis)
    axes = tuple(sorted(normalize_dim(a, ndim) for a in axes))
    if len(set(axes)) != len(axes):
        raise RuntimeError(f"dim {axes} appears multiple times in the list of dims")
    return axes if ndim > 0 else ()


def dim_alias(dim, axis, default=None):
    """PyTorch accepts NumPy's names too: ``sum(axis=1)`` is ``sum(dim=1)``."""
    if axis is not None:
        if dim is not None and dim != default:
            raise TypeError("got both dim and its alias axis")
        return axis
    return dim


def shape_args(shape):
    """reshape(2, 3) and reshape((2, 3)) both mean (2, 3), as in PyTorch."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def permutation(dims, shape):
    """`dims` (from permute(*dims)) as non-negative axes, checked to be a permutation of `shape`'s."""
    dims, ndim = shape_args(dims), len(shape)
    if len(dims) != ndim:
        raise RuntimeError(f"permute: the tensor has {ndim} dims but {len(dims)} were given ({dims})")
    dims = tuple(normalize_dim(d, ndim) for d in dims)
    if len(set(dims)) != ndim:
        raise RuntimeError(f"permute: duplicate dims are not allowed, got {dims}")
    return dims


def swapped_axes(ndim, dim0, dim1):
    """The permutation that transpose(dim0, dim1) applies."""
    dims = list(range(ndim))
    dim0, dim1 = normalize_dim(dim0, ndim), normalize_dim(dim1, ndim)
    if ndim == 0:
        return ()
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return tuple(dims)


def unsqueezed_shape(shape, dim):
    dim = normalize_dim(dim, len(shape) + 1)
    return (*shape[:dim], 1, *shape[dim:])


def flattened_shape(shape, start_dim, end_dim):
    if len(shape) == 0:
        normalize_dim(start_dim, 0), normalize_dim(end_dim, 0)
        return (1,)                      # a 0-d tensor flattens to one element, as PyTorch
    start, end = normalize_dim(start_dim, len(shape)), normalize_dim(end_dim, len(shape))
    if start > end:
        raise RuntimeError(f"flatten() has invalid args: start_dim {start_dim} cannot come after "
                           f"end_dim {end_dim}")
    middle = 1
    for n in shape[start:end + 1]:
        middle *= n
    return (*shape[:start], middle, *shape[end + 1:])


def expanded_shape(shape, sizes):
    """expand(*sizes): -1 keeps a size; new dims go in front; only size-1 dims may grow."""
    sizes = shape_args(sizes)
    if len(sizes) < len(shape):
        raise RuntimeError(f"expand: the number of sizes ({len(sizes)}) must be at least the "
                           f"tensor's number of dims ({len(shape)})")
    offset = len(sizes) - len(shape)
    out = []
    for i, n in enumerate(sizes):
        old = shape[i - offset] if i >= offset else None
        if n == -1:
            if old is None:
                raise RuntimeError(f"expand: -1 is not allowed for a new leading dim ({sizes})")
            n = old
        if old is not None and old != 1 and old != n:
            raise RuntimeError(f"expand: the size {old} of dim {i - offset} of shape {shape} "
                               f"cannot be expanded to {n} (only size-1 dims can)")
        out.append(n)
    return tuple(out)


def split_bounds(n, split_size_or_sections, dim):
    """(start, stop) of each piece of split(): pieces of one size (the last may be shorter), or
    of the listed sizes, which must add up to the `n` elements of `dim`."""
    if isinstance(split_size_or_sections, int):
        sizes = [min(split_size_or_sections, n - s) for s in range(0, n, split_size_or_sections)]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not add up to {n}, the size of dim {dim}")
    bounds, start = [], 0
    for size in sizes:
        bounds.append((start, start + size))
        start += size
    return bounds


def check_mask_shape(mask_shape, shape):
    if broadcast_shape(mask_shape, shape) != shape:
        raise ValueError(f"MaskedFill: mask of shape {mask_shape} does not broadcast to "
                         f"the tensor's shape {shape}")


def check_cat_shapes(shapes, dim):
    """cat(): every shape equals the first outside `dim` (already non-negative)."""
    if not shapes:
        raise ValueError("cat: expected a non-empty list of tensors")
    first = shapes[0]
    for shape in shapes[1:]:
        if len(shape) != len(first) or any(a != b for i, (a, b) in enumerate(zip(shape, first)) if i != dim):
            raise ValueError(f"cat: shapes {first} and {shape} differ outside dim {dim}")


def check_stack_shapes(shapes):
    if not shapes:
        raise ValueError("stack: expected a non-empty list of tensors")
    for shape in shapes[1:]:
        if shape != shapes[0]:
            raise ValueError(f"stack: shapes {shapes[0]} and {shape} differ")


def check_indices(xp, indices, size, what, ignore=None):
    """Raise a clear error for an index outside [0, size) (entries equal to `ignore` excepted).

    NumPy raises on its own; CuPy silently wraps around (index -1 and index size both read a
    valid row), so we check on every device.
    """
    if ignore is not None:
        indices = indices[indices != ignore]
    if indices.size == 0:
        return
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= size:
        bad = low if low < 0 else high
        raise IndexError(f"{what}: index {bad} is out of range for size {size} "
                         f"(valid indices are 0..{size - 1})")


def check_gather_index(index_shape, shape, dim):
    """gather(): the index has the input's number of dims and is no larger outside `dim`."""
    if len(index_shape) != len(shape) and not (len(shape) == 0 and len(index_shape) <= 1):
        raise RuntimeError(f"gather: index {index_shape} and input {shape} must have the same "
                           f"number of dimensions")
    for d, (i, n) in enumerate(zip(index_shape, shape)):
        if d != dim and i > n:
            raise RuntimeError(f"gather: size {i} of index {index_shape} is larger than size {n} of "
                               f"input {shape} in dim {d}")
