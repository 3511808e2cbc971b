"""Elementwise functions of one tensor: exp, log, sqrt, rsqrt, abs, clamp, tanh, sigmoid, relu, gelu,
silu; and SwiGLU's gate, silu(a) * b, elementwise in two.

Where the derivative is easiest to write with the output (exp, sqrt, tanh, sigmoid) the forward
keeps the output, not the input.
"""
import math

import numpy as np

from ..function import Function


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


class Rsqrt(Function):
    """y = 1 / sqrt(x).  dy/dx = -1/2 x^(-3/2) = -y^3 / 2 (-inf at x = 0, as PyTorch)."""

    def forward(self, x):
        self.y = 1 / self.xp.sqrt(x)
        return self.y

    def backward(self, grad):
        return grad * (-0.5 * self.y * self.y * self.y)


class Abs(Function):
    """y = |x|.  dy/dx = sign(x): 1, -1, and 0 at x = 0 (PyTorch's choice of subgradient)."""

    def forward(self, x):
        xp = self.xp
        self.sign = xp.where(x != x, xp.zeros((), dtype=x.dtype), xp.sign(x))    # sign(NaN) = 0, as PyTorch
        return xp.abs(x)

    def backward(self, grad):
        return grad * self.sign


class Clamp(Function):
    """y = min(max(x, low), high) for numbers low, high (either may be None: no bound).

    dy/dx = 1 where low <= x <= high (bounds included, as PyTorch), else 0. A NaN stays NaN and
    gets gradient 0. (Tensor bounds are composed from ``where`` in Tensor.clamp.)
    """

    def forward(self, x, low, high):
        xp = self.xp
        keep = None
        y = x
        if low is not None:
            keep = x >= low
            y = xp.maximum(y, xp.asarray(low, dtype=x.dtype))
        if high is not None:
            below = x <= high
            keep = below if keep is None else keep & below
            y = xp.minimum(y, xp.asarray(high, dtype=x.dtype))
        self.keep = keep if keep is not None else xp.ones(x.shape, dtype=bool)
        return y if y is not x else x.copy()

    def backward(self, grad):
        return grad * self.keep.astype(grad.dtype)


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


class SiLU(Function):
    """SiLU (swish), y = x s with s = sigmoid(x): Llama's activation.

    Forward keeps x and s. Backward, with g = dL/dy:
      1. ds/dx = s (1 - s)                      (the sigmoid's derivative)
      2. dy/dx = s + x ds/dx = s (1 + x (1 - s))  (product rule on x * s)
      3. g_x   = g dy/dx
    """

    def forward(self, x):
        self.x, self.s = x, 0.5 * (1 + self.xp.tanh(0.5 * x))     # sigmoid through tanh: no overflow
        return x * self.s

    def backward(self, grad):
        x, s = self.x, self.s
        dy_dx = s * (1 + x * (1 - s))                                # 1, 2
        return grad * dy_dx                                          # 3


class SwiGLU(Function):
    """SwiGLU's gate, h = silu(a) * b, with a = x W_gate and b = x W_up (Llama's MLP is then
    down_proj(h)). Fused: the hidden activations are the MLP's largest arrays, and the composite
    silu(a) * b keeps three of them (sigmoid, silu, product) for backward; this keeps a, b and s.

    Forward keeps a, b and s = sigmoid(a). Backward, with g = dL/dh:
      1. silu(a)       = a s
      2. g_b           = g silu(a)                       (h is linear in b)
      3. d silu / da   = s (1 + a (1 - s)) = s + silu(a) (1 - s)      (as SiLU's step 2)
      4. g_a           = g b d silu / da
    Step 3 and 4 run in place on one new array: these are the MLP's widest arrays, and each
    temporary is one more pass over memory (three new arrays instead of eight).
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        self.s = 0.5 * (1 + self.xp.tanh(0.5 * a))
        return a * self.s * b

    def backward(self, grad):
        a, b, s = self.a, self.b, self.s
        silu_a = a * s                                               # 1
        g_b = grad * silu_a                                          # 2
        g_a = 1 - s                                                  # 3: s + silu(a) (1 - s) ...
        g_a *= silu_a
        g_a += s
        g_a *= b                                                     # 4: ... times b and g
        g_a *= grad
        return g_a, g_b


class ReLU(Function):
    """y = max(x, 0).  dy/dx = 1 where x > 0, else 0 (0 at x = 0, as PyTorch).

    Forward is ``maximum``, not ``x * mask``: relu(-inf) must be 0, and -inf * 0 is NaN.
    """

    def forward(self, x):
        # not (x <= 0) rather than x > 0: a NaN passes its gradient on, as PyTorch's threshold_backward
        self.positive = (~(x <= 0)).astype(x.dtype)     # a float mask multiplies faster than a bool one
        return self.xp.maximum(x, 0)

    def backward(self, grad):
        return grad * self.positive


SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


class GELUTanh(Function):
    """GPT-2's GELU, the tanh approximation:  y = x/2 (1 + tanh(u)),  u = c (x + 0.044715 x^3).

    Since (1 + tanh(u)) / 2 = sigmoid(2u), this is y = x s with s = sigmoid(2u) = 1 / (1 + exp(-2u)),
    which needs one exp instead of one tanh (NumPy's exp is vectorised, its tanh is not).
    Backward:
      1. du/dx = c (1 + 3 * 0.044715 x^2)
      2. ds/du = 2 s (1 - s)
      3. dy/dx = s + x * ds/du * du/dx
    The arithmetic runs in place on one or two buffers (out=...): these activations are the
    largest arrays of the model, and each fresh temporary costs a pass over memory.
    """

    def forward(self, x):
        xp = self.xp
        k = SQRT_2_OVER_PI * 0.044715
        s = x * x                       # s holds, in turn: x^2, u, -2u, exp(-2u), 1 + exp(-2u), sigmoid(2u)
        s *= k
        s += SQRT_2_OVER_PI
        s *= x                          # u = c x + c 0.044715 x^3
        s *= -2
        xp.clip(s, -80, 80, out=s)      # exp(80) fits float32; sigmoid is exactly 0 or 1 beyond
        xp.exp(s, out=s)
        s += 1
        xp.reciprocal(s, out=s)
        self.x, self.s = x, s
        return x * s

    def backward(self, grad):
        x, s = self.x, self.s
        d = x * x                       # d holds, in turn: x^2, du/dx, x du/dx, dy/dx - s, dy/dx, dL/dx
        d *= 3 * 0.044715 * SQRT_2_OVER_PI
        d += SQRT_2_OVER_PI
        d *= x
        d *= 2 * s
        d *= 1 - s
        d += s
        d *= grad
        return d


def erf(xp, x):
    """The error function for either array module (NumPy has none of its own).

    float64: exact, through math.erf (or SciPy / cupyx when present). float32: Numerical Recipes'
    Chebyshev fit of erfc, erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), whose relative error
    (< 1.2e-7) is float32's own resolution, and which is vectorised like exp.
    """
    if xp.__name__ == "cupy":
        from cupyx.scipy.special import erf as cupy_erf
        return cupy_erf(x)
    if x.dtype == xp.float32:
        # the same operations in the same order as the nested formula
        #   t = 1 / (1 + z/2);  P(t) = -1.26551223 + t (1.00002368 + t (0.37409196 + ... t 0.17087277))
        # computed in place (Horner's rule, innermost first): two work arrays instead of ~20 fresh
        # ones, whose allocation and first touch cost more than the arithmetic (BERT's GELU)
        z = xp.abs(x)
        t = 0.5 * z
        t += 1
        xp.reciprocal(t, out=t)
        poly = t * 0.17087277
        for c in (-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196,
                  1.00002368):
            poly += c
            poly *= t
        poly += -1.26551223
        z *= z
        poly -= z                                       # -z^2 + P(t)
        xp.exp(poly, out=poly)
        poly *= t                                       # erfc(|x|)
        return xp.where(x >= 0, 1 - poly, poly - 1).astype(x.dtype, copy=False)
    try:
        from scipy.special import erf as scipy_erf   # fast when SciPy happens to be installed
        return scipy_erf(x).astype(x.dtype, copy=False)
    except ImportError:
        out = np.frompyfunc(math.erf, 1, 1)(x)       # a Python float for a 0-d x
        return xp.asarray(out.astype(x.dtype) if hasattr(out, "astype") else np.asarray(out, dtype=x.dtype))


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
