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


def normalize_axes(axis, ndim):
    """None -> every axis; an int or tuple -> a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise IndexError(f"dimension {a} is out of range for a tensor with {ndim} dimensions")
    return tuple(sorted(a % max(ndim, 1) for a in axes))


def shape_args(shape):
    """reshape(2, 3) and reshape((2, 3)) both mean (2, 3), as in PyTorch."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def permutation(dims, shape):
    """`dims` (from permute(*dims)) as non-negative axes, checked to be a permutation of `shape`'s."""
    dims, ndim = shape_args(dims), len(shape)
    if sorted(d % ndim for d in dims) != list(range(ndim)):
        raise ValueError(f"Permute: {dims} is not a permutation of the {ndim} dims of shape {shape}")
    return tuple(d % ndim for d in dims)


def swapped_axes(ndim, dim0, dim1):
    """The permutation that transpose(dim0, dim1) applies."""
    dims = list(range(ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return tuple(dims)


def unsqueezed_shape(shape, dim):
    dim = dim if dim >= 0 else dim + len(shape) + 1
    return (*shape[:dim], 1, *shape[dim:])


def flattened_shape(shape, start_dim, end_dim):
    end = end_dim % len(shape)
    middle = 1
    for n in shape[start_dim:end + 1]:
        middle *= n
    return (*shape[:start_dim], middle, *shape[end + 1:])


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
    first = shapes[0]
    for shape in shapes[1:]:
        if len(shape) != len(first) or any(a != b for i, (a, b) in enumerate(zip(shape, first)) if i != dim):
            raise ValueError(f"cat: shapes {first} and {shape} differ outside dim {dim}")


def check_stack_shapes(shapes):
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
