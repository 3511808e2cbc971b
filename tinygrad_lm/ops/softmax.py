"""softmax and log_softmax over one axis, and logsumexp, stable for large inputs and for -inf
(masked) entries."""
from ..function import Function


class Softmax(Function):
    """p = exp(x - max x) / sum exp(x - max x) along `axis`.

    Subtracting the max changes nothing mathematically and keeps exp from overflowing; an entry
    of -inf (a masked position) becomes exactly 0.

    Backward: the Jacobian is dp_i/dx_j = p_i (delta_ij - p_j), so for an upstream gradient g
      1. g_dot_p = sum_j g_j p_j            (one number per row)
      2. dL/dx_i = p_i (g_i - g_dot_p)
    """

    def forward(self, x, axis):
        xp = self.xp
        shifted = x - x.max(axis=axis, keepdims=True)
        e = xp.exp(shifted)
        self.p = e / e.sum(axis=axis, keepdims=True)
        self.axis = axis
        return self.p

    def backward(self, grad):
        p = self.p
        g_dot_p = (grad * p).sum(axis=self.axis, keepdims=True)
        return p * (grad - g_dot_p)


class LogSoftmax(Function):
    """y = x - logsumexp(x) along `axis`, with logsumexp = max + log sum exp(x - max).

    Backward: dy_i/dx_j = delta_ij - p_j with p = softmax(x) = exp(y), so
      dL/dx = g - p * sum(g)
    """

    def forward(self, x, axis):
        xp = self.xp
        m = x.max(axis=axis, keepdims=True)
        shifted = x - m
        y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        self.y, self.axis = y, axis
        return y

    def backward(self, grad):
        p = self.xp.exp(self.y)
        return grad - p * grad.sum(axis=self.axis, keepdims=True)


class LogSumExp(Function):
    """y = log sum exp(x) over `axes`, computed as m + log sum exp(x - m) with m = max x, so that
    no exp overflows (m is taken as 0 where it is infinite: all -inf gives -inf, not NaN).

    Backward: dy/dx_i = exp(x_i - y) = softmax(x)_i, so dL/dx = g * exp(x - y) (g broadcast back).
    """

    def forward(self, x, axes, keepdims):
        xp = self.xp
        if x.size == 0:                 # nothing to sum: log 0 = -inf, as PyTorch
            m = xp.zeros([1 if i in axes else n for i, n in enumerate(x.shape)], dtype=x.dtype)
        else:
            m = x.max(axis=axes, keepdims=True)
            m = xp.where(xp.isfinite(m), m, xp.zeros((), dtype=x.dtype))
        y = xp.log(xp.exp(x - m).sum(axis=axes, keepdims=True)) + m
        self.x, self.y, self.axes, self.keepdims = x, y, axes, keepdims
        return y if keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in axes])

    def backward(self, grad):
        if not self.keepdims:
            grad = grad.reshape(self.y.shape)
        return grad * self.xp.exp(self.x - self.y)
