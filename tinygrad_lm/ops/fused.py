"""Fused ops: several primitive steps in one forward, with a backward derived by hand.

Each has a twin built from primitive ops in ``nn/functional.py`` (``*_composite``); the tests show
fused == composite == finite differences. Fused ops are faster and keep fewer arrays alive,
because the backward needs only a few named intermediates instead of every step's output.
"""
from ..tensor import Function
from .nn import check_indices


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

    def forward(self, logits, targets, ignore_index):
        xp = self.xp
        n, vocab = logits.shape
        counted = targets != ignore_index
        safe_targets = xp.where(counted, targets, 0)
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


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis (biased variance).

    Forward keeps x_hat and inv_std. Backward, with g = dL/dy and C the size of the last axis:
      1. g_bias   = sum over rows of g
      2. g_weight = sum over rows of g * x_hat
      3. g_x_hat  = g * weight
      4. g_x      = inv_std * (g_x_hat - mean(g_x_hat) - x_hat * mean(g_x_hat * x_hat))
    Step 4 is the chain rule through x_hat = (x - mu) * inv_std, where mu and inv_std depend on
    every x of the row: the two means are the paths through mu and through the variance.
    """

    def forward(self, x, weight, bias, eps):
        mu = x.mean(axis=-1, keepdims=True)
        centered = x - mu
        var = (centered * centered).mean(axis=-1, keepdims=True)
        self.inv_std = 1 / self.xp.sqrt(var + eps)
        self.x_hat = centered * self.inv_std
        self.weight, self.has_bias = weight, bias is not None
        y = self.x_hat * weight
        return y + bias if bias is not None else y

    def backward(self, grad):
        x_hat, inv_std = self.x_hat, self.inv_std
        rows = tuple(range(grad.ndim - 1))
        g_bias = grad.sum(axis=rows) if self.has_bias else None
        g_weight = (grad * x_hat).sum(axis=rows)
        g_x_hat = grad * self.weight
        g_x = inv_std * (g_x_hat - g_x_hat.mean(axis=-1, keepdims=True)
                         - x_hat * (g_x_hat * x_hat).mean(axis=-1, keepdims=True))
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
    """

    def forward(self, q, k, v, is_causal, scale, dropout_p):
        xp = self.xp
        T, S = q.shape[-2], k.shape[-2]
        s = q @ k.swapaxes(-1, -2)
        s *= scale
        if is_causal:
            future = xp.triu(xp.ones((T, S), dtype=bool), k=S - T + 1)
            s[..., future] = -xp.inf
        s -= s.max(axis=-1, keepdims=True)
        p = xp.exp(s, out=s)
        p /= p.sum(axis=-1, keepdims=True)
        self.p = p
        if dropout_p > 0:
            from .. import random
            keep = random.uniform(p.shape, device=self.device, dtype=p.dtype) >= dropout_p
            self.keep_scale = keep.astype(p.dtype) / (1 - dropout_p)
            p_drop = p * self.keep_scale
        else:
            self.keep_scale, p_drop = None, p
        self.q, self.k, self.v, self.p_drop, self.scale = q, k, v, p_drop, scale
        return p_drop @ v

    def backward(self, grad):
        q, k, v, p, p_drop, scale = self.q, self.k, self.v, self.p, self.p_drop, self.scale
        g_v = p_drop.swapaxes(-1, -2) @ grad
        g_p = grad @ v.swapaxes(-1, -2)
        if self.keep_scale is not None:
            g_p *= self.keep_scale
        g_s = p * (g_p - (g_p * p).sum(axis=-1, keepdims=True))
        g_s *= scale
        g_q = g_s @ k
        g_k = g_s.swapaxes(-1, -2) @ q
        return g_q, g_k, g_v
