"""Reductions over axes: sum, mean, max, var (each with keepdim).

A reduction's backward sends the upstream gradient back to every element that was reduced; the
helper ``expand_back`` re-inserts the reduced axes so the gradient broadcasts to the input shape.
"""
from ..function import Function


def expand_back(xp, grad, in_shape, axes, keepdims):
    """Broadcast a reduced gradient back to `in_shape` (a read-only view; no copy)."""
    if not keepdims:
        kept = [1 if i in axes else n for i, n in enumerate(in_shape)]
        grad = grad.reshape(kept)
    return xp.broadcast_to(grad, in_shape)


class Sum(Function):
    """y = sum of x over `axes`.  dy/dx_i = 1 for every summed element."""

    def forward(self, x, axes, keepdims):
        self.in_shape, self.axes, self.keepdims = x.shape, axes, keepdims
        return x.sum(axis=axes, keepdims=keepdims)

    def backward(self, grad):
        return expand_back(self.xp, grad, self.in_shape, self.axes, self.keepdims)


class Mean(Function):
    """y = sum(x) / n over `axes`.  dy/dx_i = 1/n."""

    def forward(self, x, axes, keepdims):
        self.in_shape, self.axes, self.keepdims = x.shape, axes, keepdims
        self.n = 1
        for a in axes:
            self.n *= x.shape[a]
        return x.mean(axis=axes, keepdims=keepdims)

    def backward(self, grad):
        return expand_back(self.xp, grad / self.n, self.in_shape, self.axes, self.keepdims)


class Max(Function):
    """y = max of x over `axes` (PyTorch's amax).

    dy/dx_i = 1 where x_i is the maximum; when several elements tie, they share it equally
    (1/count each), which keeps the gradient's sum equal to one.
    """

    def forward(self, x, axes, keepdims):
        self.in_shape, self.axes, self.keepdims = x.shape, axes, keepdims
        y = x.max(axis=axes, keepdims=True)
        is_max = (x == y).astype(x.dtype)
        self.share = is_max / is_max.sum(axis=axes, keepdims=True)
        return y if keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in axes])

    def backward(self, grad):
        return expand_back(self.xp, grad, self.in_shape, self.axes, self.keepdims) * self.share


class Var(Function):
    """y = sum((x - mean)^2) / (n - correction) over `axes` (correction=1: unbiased, as PyTorch).

    dy/dx_i = 2 (x_i - mean) / (n - correction); the mean's own dependence on x_i cancels because
    the deviations sum to zero.
    """

    def forward(self, x, axes, keepdims, correction):
        self.in_shape, self.axes, self.keepdims = x.shape, axes, keepdims
        n = 1
        for a in axes:
            n *= x.shape[a]
        self.denominator = max(n - correction, 0)
        self.centered = x - x.mean(axis=axes, keepdims=True)
        return (self.centered * self.centered).sum(axis=axes, keepdims=keepdims) / self.denominator

    def backward(self, grad):
        g = expand_back(self.xp, grad, self.in_shape, self.axes, self.keepdims)
        return g * (2 / self.denominator) * self.centered
