"""Dtypes: PyTorch's names for them, its type promotion (``torch.result_type``) and the Cast op.

Promotion decides the dtype of ``x + y`` when the operands differ. PyTorch's rule, which NumPy
does not share (NumPy: int64 * 0.5 -> float64, int64 array * float32 array -> float64):
  1. Each operand has a category: bool < integer < floating.
  2. Operands come in three priorities: tensors with dims, 0-d tensors, Python numbers (a Python
     float counts as the default float dtype, float32; an int as int64; a bool as bool).
  3. The highest-priority operands decide the dtype, unless a lower-priority one is of a higher
     category: then that one's category wins (int tensor * 0.5 -> float32, float32 tensor *
     0-d float64 tensor -> float32, int32 tensor + 1 -> int32, bool tensor + 1 -> int64).
Within one category, the wider dtype wins (float32 + float64 -> float64, int32 + int64 -> int64).
"""
import numpy as np

from ..function import Function

float16, float32, float64 = np.float16, np.float32, np.float64
int8, int16, int32, int64, uint8 = np.int8, np.int16, np.int32, np.int64, np.uint8
bool_ = np.bool_
DEFAULT_FLOAT = np.dtype(np.float32)       # torch.get_default_dtype()

_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}
_PYTHON_SCALAR = {bool: np.dtype(np.bool_), int: np.dtype(np.int64), float: DEFAULT_FLOAT}


def category(dtype):
    return _CATEGORY.get(np.dtype(dtype).kind, 3)


def promote_types(a, b):
    """torch.promote_types for bool/int/float: a higher category wins outright (int64 and float32
    -> float32, where NumPy says float64); within one category NumPy's widening rule."""
    a, b = np.dtype(a), np.dtype(b)
    if a == b:
        return a
    ca, cb = category(a), category(b)
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)


def _combine(higher, lower):
    """PyTorch's combine_categories: a lower-priority operand only matters through a higher category."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    if category(higher) == 2:
        return higher
    if category(higher) == 0 or category(lower) == 2:
        return promote_types(higher, lower)
    return higher


def operand_dtype(value):
    """(priority, dtype) of an operand: 2 for a tensor or array with dims, 1 for a 0-d one, 0 for
    a Python (or NumPy scalar) number, whose dtype is the default of its kind."""
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype") and not isinstance(value, np.generic):
        return (2 if len(shape) else 1), np.dtype(value.dtype)
    if isinstance(value, np.generic):
        value = value.item()
    for kind in (bool, int, float):        # bool first: True is also an int
        if isinstance(value, kind):
            return 0, _PYTHON_SCALAR[kind]
    raise TypeError(f"unsupported operand of type {type(value).__name__}: expected a Tensor, an "
                    "array or a number")


def result_type(*operands):
    """The dtype PyTorch gives an op on these operands (Tensors, arrays or numbers)."""
    groups = [None, None, None]
    for value in operands:
        priority, dtype = operand_dtype(value)
        groups[priority] = dtype if groups[priority] is None else promote_types(groups[priority], dtype)
    return _combine(groups[2], _combine(groups[1], groups[0]))


class Cast(Function):
    """y = x converted to `dtype` (between floating dtypes only: a cast to an integer or bool dtype
    is made without a graph, since such a result has no gradient).  dy/dx = 1, in x's dtype."""

    def forward(self, x, dtype):
        self.in_dtype = x.dtype
        return x.astype(dtype)

    def backward(self, grad):
        return grad.astype(self.in_dtype)
