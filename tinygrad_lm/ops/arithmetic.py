"""Elementwise arithmetic with NumPy broadcasting: add, sub, mul, div, neg, pow (by a number or a
tensor), maximum, minimum.

Broadcasting copies an input along new or size-1 axes in the forward pass, so in the backward
pass each copy's gradient must be added back together: ``unbroadcast`` does that sum.
"""
from ..function import Function


def unbroadcast(grad, shape):
    """Sum `grad` over the axes that broadcasting added or stretched, so it has `shape`."""
    if grad.shape == shape:
        return grad
    n_new = grad.ndim - len(shape)                      # leading axes broadcasting added
    stretched = tuple(n_new + i for i, n in enumerate(shape) if n == 1 and grad.shape[n_new + i] != 1)
    return grad.sum(axis=tuple(range(n_new)) + stretched, keepdims=True).reshape(shape)


class Add(Function):
    """z = x + y.  dz/dx = 1, dz/dy = 1."""

    def forward(self, x, y):
        self.x_shape, self.y_shape = x.shape, y.shape
        return x + y

    def backward(self, grad):
        return unbroadcast(grad, self.x_shape), unbroadcast(grad, self.y_shape)


class Sub(Function):
    """z = x - y.  dz/dx = 1, dz/dy = -1."""

    def forward(self, x, y):
        self.x_shape, self.y_shape = x.shape, y.shape
        return x - y

    def backward(self, grad):
        return unbroadcast(grad, self.x_shape), unbroadcast(-grad, self.y_shape)


class Mul(Function):
    """z = x * y.  dz/dx = y, dz/dy = x."""

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, grad):
        return unbroadcast(grad * self.y, self.x.shape), unbroadcast(grad * self.x, self.y.shape)


class Div(Function):
    """z = x / y.  dz/dx = 1/y, dz/dy = -x/y**2 = -z/y."""

    def forward(self, x, y):
        self.y = y
        self.z = x / y
        self.x_shape = x.shape
        return self.z

    def backward(self, grad):
        g_x = grad / self.y
        g_y = -g_x * self.z
        return unbroadcast(g_x, self.x_shape), unbroadcast(g_y, self.y.shape)


class Neg(Function):
    """z = -x.  dz/dx = -1."""

    def forward(self, x):
        return -x

    def backward(self, grad):
        return -grad


class Pow(Function):
    """z = x ** p for a constant number p.  dz/dx = p * x ** (p - 1).

    For p = 0 the derivative is 0 everywhere, also at x = 0 where the formula gives 0 * 0 ** -1 =
    0 * inf = NaN (PyTorch's rule); every other p uses the formula (at x = 0: 1 for p = 1, 0 for
    p = 2, inf for p = 0.5, as PyTorch).
    """

    def forward(self, x, exponent):
        self.x, self.p = x, exponent
        return x ** exponent

    def backward(self, grad):
        if self.p == 0:
            return self.xp.zeros_like(grad)
        return grad * (self.p * self.x ** (self.p - 1))


class PowTensor(Function):
    """z = x ** y for two tensors (broadcast).

      dz/dx = y * x ** (y - 1)      (0 where y == 0, as for a number exponent)
      dz/dy = z * log(x)            (0 where x == 0 and y >= 0: z is then constant 0 or 1 near y,
                                     where log(0) = -inf would give NaN; PyTorch's rule)
    """

    def forward(self, x, y):
        self.x, self.y = x, y
        self.z = x ** y
        return self.z

    def backward(self, grad):
        xp, x, y = self.xp, self.x, self.y
        zero = xp.zeros((), dtype=grad.dtype)
        with quiet(xp):
            g_x = xp.where(y == 0, zero, grad * y * x ** (y - 1))
            g_y = xp.where((x == 0) & (y >= 0), zero, grad * self.z * xp.log(x))
        return unbroadcast(g_x.astype(grad.dtype, copy=False), x.shape), \
            unbroadcast(g_y.astype(grad.dtype, copy=False), y.shape)


class Maximum(Function):
    """z = max(x, y) elementwise (broadcast).  The gradient goes to the larger input; where they
    tie, each gets half (PyTorch's rule, which keeps the sum of the two equal to the upstream)."""

    def forward(self, x, y):
        self.x, self.y = x, y
        return self.xp.maximum(x, y)

    def backward(self, grad):
        return _split_between(self.xp, grad, self.x, self.y, self.x < self.y, self.x > self.y)


class Minimum(Function):
    """z = min(x, y) elementwise (broadcast).  As Maximum, with the smaller input."""

    def forward(self, x, y):
        self.x, self.y = x, y
        return self.xp.minimum(x, y)

    def backward(self, grad):
        return _split_between(self.xp, grad, self.x, self.y, self.x > self.y, self.x < self.y)


def _split_between(xp, grad, x, y, x_lost, y_lost):
    """Maximum/Minimum backward, PyTorch's formula:
      1. g_tie = g / 2 where x == y, else g
      2. dL/dx = g_tie, 0 where x lost;  dL/dy = g_tie, 0 where y lost (each summed back to its shape)
    A NaN on either side loses nowhere, so both get the full gradient there, as in PyTorch.
    """
    zero = xp.zeros((), dtype=grad.dtype)
    g_tie = xp.where(x == y, grad * 0.5, grad)
    return unbroadcast(xp.where(x_lost, zero, g_tie), x.shape), unbroadcast(xp.where(y_lost, zero, g_tie), y.shape)


class quiet:
    """NumPy's errstate (no warnings for log(0) and 0 ** -1, whose inf/NaN are then masked);
    CuPy and the test devices never warn, so there it does nothing."""

    def __init__(self, xp):
        self.state = xp.errstate(divide="ignore", invalid="ignore") if xp.__name__ == "numpy" else None

    def __enter__(self):
        if self.state is not None:
            self.state.__enter__()

    def __exit__(self, *exc):
        if self.state is not None:
            self.state.__exit__(*exc)
        return False
