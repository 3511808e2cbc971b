"""Elementwise functions of one tensor: exp, log, sqrt, tanh, sigmoid, relu, gelu.

Where the derivative is easiest to write with the output (exp, sqrt, tanh, sigmoid) the forward
keeps the output, not the input.
"""
import math

from ..tensor import Function


class Exp(Function):
    """y = exp(x).  dy/dx = exp(x) = y."""

    def forward(self, x):
        self.y = self.xp.exp(x)
        return self.y

    def backward(self, grad):
        return grad * self.y


class Log(Function):
    """y = log(x).  dy/dx = 1/x."""

    def forward(self, x):
        self.x = x
        return self.xp.log(x)

    def backward(self, grad):
        return grad / self.x


class Sqrt(Function):
    """y = sqrt(x).  dy/dx = 1 / (2 sqrt(x)) = 1 / (2y)."""

    def forward(self, x):
        self.y = self.xp.sqrt(x)
        return self.y

    def backward(self, grad):
        return grad / (2 * self.y)


class Tanh(Function):
    """y = tanh(x).  dy/dx = 1 - tanh(x)^2 = 1 - y^2."""

    def forward(self, x):
        self.y = self.xp.tanh(x)
        return self.y

    def backward(self, grad):
        return grad * (1 - self.y * self.y)


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x)).  dy/dx = y (1 - y).

    Written with tanh (sigmoid(x) = (1 + tanh(x/2)) / 2) so that no exp overflows for large |x|.
    """

    def forward(self, x):
        self.y = 0.5 * (1 + self.xp.tanh(0.5 * x))
        return self.y

    def backward(self, grad):
        return grad * self.y * (1 - self.y)


class ReLU(Function):
    """y = max(x, 0).  dy/dx = 1 where x > 0, else 0 (0 at x = 0, as PyTorch)."""

    def forward(self, x):
        self.positive = x > 0
        return x * self.positive

    def backward(self, grad):
        return grad * self.positive


SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


class GELUTanh(Function):
    """GPT-2's GELU, the tanh approximation:  y = x/2 (1 + tanh(u)),  u = c (x + 0.044715 x^3).

    Backward, with t = tanh(u):
      1. du/dx = c (1 + 3 * 0.044715 x^2)
      2. dy/dx = (1 + t)/2 + x/2 (1 - t^2) du/dx
    """

    def forward(self, x):
        self.x = x
        self.t = self.xp.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))
        return 0.5 * x * (1 + self.t)

    def backward(self, grad):
        x, t = self.x, self.t
        du_dx = SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
        return grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du_dx)


def erf(xp, x):
    """The error function for either array module (NumPy has none of its own)."""
    if xp.__name__ == "cupy":
        from cupyx.scipy.special import erf as cupy_erf
        return cupy_erf(x)
    try:
        from scipy.special import erf as scipy_erf   # fast when SciPy happens to be installed
        return scipy_erf(x).astype(x.dtype, copy=False)
    except ImportError:
        import numpy as np
        return np.frompyfunc(math.erf, 1, 1)(x).astype(x.dtype)


class GELUErf(Function):
    """Exact GELU:  y = x Phi(x),  Phi(x) = (1 + erf(x / sqrt 2)) / 2 the normal CDF.

    dy/dx = Phi(x) + x phi(x),  phi(x) = exp(-x^2/2) / sqrt(2 pi) the normal density.
    """

    def forward(self, x):
        self.x = x
        self.cdf = 0.5 * (1 + erf(self.xp, x / math.sqrt(2)))
        return x * self.cdf

    def backward(self, grad):
        pdf = self.xp.exp(-0.5 * self.x * self.x) / math.sqrt(2 * math.pi)
        return grad * (self.cdf + self.x * pdf)
