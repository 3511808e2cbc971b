"""Reductions over axes: sum, mean, max, min, var (each with keepdim), and the running sum cumsum.

A reduction's backward sends the upstream gradient back to every element that was reduced; the
helper ``expand_back`` re-inserts the reduced axes so the gradient broadcasts to the input shape.
"""
from ..function import Function
from .arithmetic import quiet


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
    """y = max of x over `axes` (PyTorch's amax, and max() without a dim).

    dy/dx_i = 1 where x_i is the maximum; when several elements tie, they share it equally
    (1/count each), which keeps the gradient's sum equal to one (PyTorch's rule for amax and for
    max(); ``x.max(dim)`` instead routes it to the index it returns: see Tensor.max).
    """
    reduce = "max"

    def forward(self, x, axes, keepdims):
        self.in_shape, self.axes, self.keepdims = x.shape, axes, keepdims
        y = getattr(x, self.reduce)(axis=axes, keepdims=True)
        is_max = (x == y).astype(x.dtype)
        self.share = is_max / is_max.sum(axis=axes, keepdims=True)
        return y if keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in axes])

    def backward(self, grad):
        return expand_back(self.xp, grad, self.in_shape, self.axes, self.keepdims) * self.share


class Min(Max):
    """y = min of x over `axes` (PyTorch's amin).  As Max: tied minima share the gradient."""
    reduce = "min"


class Var(Function):
    """y = sum((x - mean)^2) / (n - correction) over `axes` (correction=1: unbiased, as PyTorch).

    dy/dx_i = 2 (x_i - mean) / (n - correction); the mean's own dependence on x_i cancels because
    the deviations sum to zero.

    With n - correction <= 0 (one element, unbiased) PyTorch's numbers are kept: the forward divides
    by max(n - correction, 0), giving NaN or inf; the backward of a reduction over everything
    (`full`) is NaN where x_i == mean and inf elsewhere, that of a reduction over given dims uses
    2 / (n - correction) as written (inf for 0, so NaN where x_i == mean).
    """

    def forward(self, x, axes, keepdims, correction, full=False):
        self.in_shape, self.axes, self.keepdims, self.full = x.shape, axes, keepdims, full
        n = 1
        for a in axes:
            n *= x.shape[a]
        self.dof = n - correction
        self.centered = x - x.mean(axis=axes, keepdims=True)
        squares = (self.centered * self.centered).sum(axis=axes, keepdims=keepdims)
        if self.dof > 0:
            return squares / self.dof
        with quiet(self.xp):           # no degrees of freedom: inf, or NaN where squares are 0 (PyTorch)
            return squares / 0

    def backward(self, grad):
        xp = self.xp
        g = expand_back(xp, grad, self.in_shape, self.axes, self.keepdims)
        if self.dof > 0 or not self.full:
            scale = 2 / self.dof if self.dof != 0 else float("inf")
            return (g * scale * self.centered).astype(grad.dtype, copy=False)
        nan, inf = xp.asarray(float("nan"), dtype=grad.dtype), xp.asarray(float("inf"), dtype=grad.dtype)
        return g * xp.where(self.centered == 0, nan, inf)


class Std(Var):
    """y = sqrt(var(x)) over `axes`.

    Backward:
      1. dL/dvar = g / (2 y), taken as 0 where y == 0 (a constant row: PyTorch's choice, where the
         composite var().sqrt() would give 0 * inf = NaN)
      2. dL/dx from dL/dvar as in Var
    """

    def forward(self, x, axes, keepdims, correction, full=False):
        self.y = self.xp.sqrt(super().forward(x, axes, keepdims, correction, full))
        return self.y

    def backward(self, grad):
        xp = self.xp
        zero = self.y == 0
        g_var = xp.where(zero, xp.zeros((), dtype=grad.dtype), grad / (2 * xp.where(zero, 1, self.y)))
        return super().backward(g_var.astype(grad.dtype, copy=False))


class Cumsum(Function):
    """y_i = x_0 + ... + x_i along `axis`.

    Each x_j appears in every y_i with i >= j, so dL/dx_j = sum_{i >= j} g_i: the running sum of
    the gradient taken from the end (flip, cumsum, flip back).
    """

    def forward(self, x, axis):
        self.axis = axis
        return x.cumsum(axis=axis)

    def backward(self, grad):
        xp = self.xp
        return xp.flip(xp.flip(grad, self.axis).cumsum(axis=self.axis), self.axis)
