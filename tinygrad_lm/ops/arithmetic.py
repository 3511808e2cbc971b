"""Elementwise arithmetic with NumPy broadcasting: add, sub, mul, div, neg, pow by a scalar.

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
    """z = x ** p for a constant number p.  dz/dx = p * x ** (p - 1)."""

    def forward(self, x, exponent):
        self.x, self.p = x, exponent
        return x ** exponent

    def backward(self, grad):
        return grad * (self.p * self.x ** (self.p - 1))
