"""Fused ops: several primitive steps in one forward, with a backward derived by hand.

Each has a twin built from primitive ops in ``nn/functional.py`` (``*_composite``); the tests show
fused == composite == finite differences. Fused ops are faster and keep fewer arrays alive,
because the backward needs only a few named intermediates instead of every step's output.
"""
from .. import random
from ..function import Function
from .checks import check_indices


class CrossEntropy(Function):
    """Mean cross-entropy of logits (N, V) against integer targets (N,), skipping `ignore_index`.

    Forward, per row n with target t:
      1. log_p = logits - logsumexp(logits)          (a stable log_softmax)
      2. loss_n = -log_p[t]
      3. loss = sum over counted rows / count
    Backward: d loss_n / d logits = softmax(logits) - one_hot(t), the famous "probs minus one-hot",
      1. g_logits = p
      2. g_logits[n, t_n] -= 1
      3. g_logits *= upstream / count, and 0 on ignored rows
    """

    def forward(self, logits, targets, ignore_index, checked=False):
        xp = self.xp
        n, vocab = logits.shape
        counted = targets != ignore_index
        safe_targets = xp.where(counted, targets, 0)
        if not checked:
            check_indices(xp, safe_targets, vocab, "cross_entropy targets")
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = xp.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)
        rows = xp.arange(n)
        log_p_target = shifted[rows, safe_targets] - xp.log(sum_exp[:, 0])
        # the count stays an array: no device->host copy in the training step
        self.count = xp.maximum(counted.sum(), 1).astype(logits.dtype)
        self.p, self.rows, self.targets, self.counted = exp / sum_exp, rows, safe_targets, counted
        return -(log_p_target * counted).sum() / self.count

    def backward(self, grad):
        g_logits = self.p.copy()
        g_logits[self.rows, self.targets] -= 1
        g_logits *= (grad / self.count) * self.counted[:, None]
        return g_logits


class Linear(Function):
    """y = x @ W^T + b for x (..., in), W (out, in), b (out,), as one op.

    The leading dimensions are flattened first, so each product is one large matrix multiply
    (N, in) @ (in, out) with N = batch * time, the shape BLAS is fastest at. Backward, with
    g = dL/dy flattened to (N, out):
      1. g_x = g @ W                 (N, out) @ (out, in)
      2. g_W = g^T @ x               (out, N) @ (N, in)   (sums over all N positions at once)
      3. g_b = sum over N of g
    """

    def forward(self, x, weight, bias=None):
        self.x_shape = x.shape
        self.x2 = x.reshape(-1, x.shape[-1])
        self.weight, self.has_bias = weight, bias is not None
        y = self.x2 @ weight.T
        if bias is not None:
            y += bias
        return y.reshape(*x.shape[:-1], weight.shape[0])

    def backward(self, grad):
        g = grad.reshape(-1, grad.shape[-1])
        g_x = (g @ self.weight).reshape(self.x_shape)
        g_weight = g.T @ self.x2
        if not self.has_bias:
            return g_x, g_weight
        return g_x, g_weight, g.sum(axis=0)


def row_mean(xp, a):
    """Mean over the last axis (kept, as keepdims=True) written as a matrix-vector product: BLAS
    does it several times faster than a reduction over short rows (C = 64 in the small models)."""
    C = a.shape[-1]
    return (a.reshape(-1, C) @ xp.full(C, 1 / C, dtype=a.dtype)).reshape(*a.shape[:-1], 1)


def row_sum(xp, a):
    """Sum over the last axis (kept), as a matrix-vector product (see row_mean)."""
    C = a.shape[-1]
    return (a.reshape(-1, C) @ xp.ones(C, dtype=a.dtype)).reshape(*a.shape[:-1], 1)


def causal_mask(xp, T, S):
    """A (T, S) boolean array, True where query i would see the future: key j > i + S - T (the T
    queries are the last T of the S positions, as when generating with a cache)."""
    return xp.triu(xp.ones((T, S), dtype=bool), k=S - T + 1)


_CAUSAL_BIAS = {}


def causal_bias(xp, T, S, dtype):
    """A (T, S) array: 0 where query i may see key j, -inf in the future (see causal_mask). Cached."""
    key = (xp.__name__, T, S, str(dtype))
    bias = _CAUSAL_BIAS.get(key)
    if bias is None:
        bias = _CAUSAL_BIAS[key] = xp.where(causal_mask(xp, T, S), xp.asarray(-float("inf"), dtype=dtype),
                                            xp.asarray(0, dtype=dtype))
    return bias


def column_sum(xp, a):
    """Sum over every axis but the last, as a vector-matrix product (one BLAS call)."""
    a2 = a.reshape(-1, a.shape[-1])
    return xp.ones(a2.shape[0], dtype=a.dtype) @ a2


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis (biased variance).

    Forward keeps x_hat and inv_std. Backward, with g = dL/dy and C the size of the last axis:
      1. g_bias   = sum over rows of g
      2. g_weight = sum over rows of g * x_hat
      3. g_x_hat  = g * weight
      4. g_x      = inv_std * (g_x_hat - mean(g_x_hat) - x_hat * mean(g_x_hat * x_hat))
    Step 4 is the chain rule through x_hat = (x - mu) * inv_std, where mu and inv_std depend on
    every x of the row: the two means are the paths through mu and through the variance.
    (Means and sums are written as products with a vector of ones: see row_mean.)
    """

    def forward(self, x, weight, bias, eps):
        centered = x - row_mean(self.xp, x)
        var = row_mean(self.xp, centered * centered)
        self.inv_std = 1 / self.xp.sqrt(var + eps)
        self.x_hat = centered * self.inv_std
        self.weight, self.has_bias = weight, bias is not None
        y = self.x_hat * weight
        return y + bias if bias is not None else y

    def backward(self, grad):
        x_hat, inv_std = self.x_hat, self.inv_std
        g_bias = column_sum(self.xp, grad) if self.has_bias else None
        g_weight = column_sum(self.xp, grad * x_hat)
        g_x_hat = grad * self.weight
        g_x = inv_std * (g_x_hat - row_mean(self.xp, g_x_hat) - x_hat * row_mean(self.xp, g_x_hat * x_hat))
        return (g_x, g_weight, g_bias) if self.has_bias else (g_x, g_weight)


class ScaledDotProductAttention(Function):
    """y = softmax(q k^T * scale + causal mask) @ v, for q, k, v of shape (..., T, D).

    Forward keeps only the attention weights p (one T x T array per head):
      1. s = q @ k^T * scale
      2. s[i, j] = -inf for j > i                    (causal: position i sees only j <= i)
      3. p = softmax(s)                              (along the last axis)
      4. p_drop = p * keep / (1 - dropout_p)         (when dropout is on)
      5. y = p_drop @ v
    Backward, with g = dL/dy:
      1. g_v      = p_drop^T @ g
      2. g_p_drop = g @ v^T
      3. g_p      = g_p_drop * keep / (1 - dropout_p)
      4. g_s      = p * (g_p - sum_j g_p * p)       (softmax's Jacobian; masked entries have p = 0)
      5. g_q      = g_s @ k * scale
      6. g_k      = g_s^T @ q * scale
    (The code multiplies q by the scale once, q_s = q * scale, which is cheaper than scaling the
    T x T scores: step 1 is then q_s @ k^T and step 6 is g_s^T @ q_s.)
    """

    def forward(self, q, k, v, is_causal, scale, dropout_p):
        xp = self.xp
        T, S = q.shape[-2], k.shape[-2]
        q_s = q * scale
        s = q_s @ k.swapaxes(-1, -2)
        if is_causal:               # adding 0 or -inf broadcasts faster than a boolean assignment
            s += causal_bias(xp, T, S, s.dtype)
        s -= s.max(axis=-1, keepdims=True)
        p = xp.exp(s, out=s)
        p /= row_sum(xp, p)
        self.p = p
        if dropout_p > 0:
            keep = random.uniform(p.shape, device=self.device, dtype=p.dtype) >= dropout_p
            self.keep_scale = keep.astype(p.dtype) / (1 - dropout_p)
            p_drop = p * self.keep_scale
        else:
            self.keep_scale, p_drop = None, p
        self.q_s, self.k, self.v, self.p_drop, self.scale = q_s, k, v, p_drop, scale
        return p_drop @ v

    def backward(self, grad):
        xp = self.xp
        q_s, k, v, p, p_drop, scale = self.q_s, self.k, self.v, self.p, self.p_drop, self.scale
        g_v = p_drop.swapaxes(-1, -2) @ grad
        g_p = grad @ v.swapaxes(-1, -2)
        if self.keep_scale is not None:
            g_p *= self.keep_scale
        g_s = g_p                                   # step 4 in place: g_s = p * (g_p - rowsum(g_p * p))
        g_s -= row_sum(xp, g_p * p)
        g_s *= p
        g_q = g_s @ k
        g_q *= scale
        g_k = g_s.swapaxes(-1, -2) @ q_s
        return g_q, g_k, g_v


class PackedCausalAttention(Function):
    """Multi-head causal attention straight from the packed qkv projection, as one op:

        qkv (B, T, 3C) -> q, k, v (B, H, T, D) -> ScaledDotProductAttention -> y (B, T, C)

    Splitting the heads apart and merging them back are only views of the same memory, so doing
    them inside the op (instead of as reshape / permute / getitem ops in the graph) saves their
    gradient copies; the backward writes g_q, g_k, g_v straight into one (B, T, 3C) gradient.
    """

    def forward(self, qkv, n_head, scale, dropout_p):
        B, T, C3 = qkv.shape
        H, D = n_head, C3 // 3 // n_head
        q, k, v = qkv.reshape(B, T, 3, H, D).transpose(2, 0, 3, 1, 4)         # views, (B, H, T, D)
        self.core = ScaledDotProductAttention()
        self.core.xp, self.core.device = self.xp, self.device
        y = self.core.forward(q, k, v, is_causal=True, scale=scale, dropout_p=dropout_p)
        self.shape = (B, T, H, D)
        return y.transpose(0, 2, 1, 3).reshape(B, T, H * D)

    def backward(self, grad):
        B, T, H, D = self.shape
        g_q, g_k, g_v = self.core.backward(grad.reshape(B, T, H, D).transpose(0, 2, 1, 3))
        g_qkv = self.xp.empty((B, T, 3, H, D), dtype=grad.dtype)
        for i, g in enumerate((g_q, g_k, g_v)):
            g_qkv[:, :, i] = g.transpose(0, 2, 1, 3)
        return g_qkv.reshape(B, T, 3 * H * D)
