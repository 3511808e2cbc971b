"""Fused ops: several primitive steps in one forward, with a backward derived by hand.

Each has a twin built from primitive ops in ``nn/functional.py`` (``*_composite``); the tests show
fused == composite == finite differences. Fused ops are faster and keep fewer arrays alive,
because the backward needs only a few named intermediates instead of every step's output.
"""
from .. import random
from ..function import Function
from .arithmetic import unbroadcast
from .checks import check_indices
from .nn import dropout_scale


class CrossEntropy(Function):
    """Cross-entropy of logits (N, C) against integer class targets (N,), as ``F.cross_entropy``:
    optional class `weight` (C,), `label_smoothing` eps, rows whose target is `ignore_index` skipped,
    and reduction 'mean' (the training step's), 'sum' or 'none'.

    Forward, per row n with target t:
      1. log_p = logits - logsumexp(logits)          (a stable log_softmax)
      2. w_n = weight[t] (1 without weights), and 0 on an ignored row
      3. loss_n = -w_n log_p[t]; with label smoothing eps, mixed with the loss against the uniform
         target: loss_n = (1 - eps) (-w_n log_p[t]) + eps (-sum_c weight_c log_p[c] / C)
      4. 'none': loss_n;  'sum': sum_n loss_n;  'mean': sum_n loss_n / sum_n w_n (NaN when every row
         is ignored, as PyTorch)
    Backward. Each row's loss is -sum_c a_c log_p[c] with target weights a = (1 - eps) w_n one_hot(t)
    + eps weight / C, and d(-sum_c a_c log_p[c]) / d logits = p * sum_c a_c - a. Without weights or
    smoothing, a = one_hot(t): the famous "probs minus one-hot".
      1. r_n = the upstream gradient of loss_n: grad / sum_n w_n ('mean'), grad ('sum'), grad[n]
         ('none'); 0 on ignored rows
      2. g_logits = p * (r_n * sum_c a_c)             (sum_c a_c = (1 - eps) w_n + eps mean(weight))
      3. g_logits[n, t_n] -= r_n (1 - eps) w_n
      4. g_logits -= r_n eps weight / C               (label smoothing only)
    `weight` is a constant, as in PyTorch (which refuses a weight that requires grad).
    """

    def forward(self, logits, targets, ignore_index, reduction="mean", weight=None, label_smoothing=0.0,
                checked=False):
        xp = self.xp
        n, C = logits.shape
        counted = targets != ignore_index
        safe_targets = xp.where(counted, targets, 0)
        if not checked:
            check_indices(xp, safe_targets, C, "cross_entropy targets")
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = xp.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)
        log_sum_exp = xp.log(sum_exp)
        rows = xp.arange(n)
        nll = log_sum_exp[:, 0] - shifted[rows, safe_targets]                            # -log_p[t]
        w_n = counted.astype(logits.dtype)
        if weight is not None:
            w_n *= weight[safe_targets]
        loss = w_n * nll
        eps = label_smoothing
        if eps:
            log_p = shifted - log_sum_exp
            uniform = -(log_p.sum(axis=1) if weight is None else log_p @ weight) / C        # -sum_c w_c log_p[c] / C
            loss = (1 - eps) * loss + eps * uniform * counted
        self.p, self.rows, self.targets, self.counted, self.w_n = exp / sum_exp, rows, safe_targets, counted, w_n
        self.reduction, self.weight, self.eps = reduction, weight, eps
        if reduction == "none":
            return loss
        if reduction == "sum":
            return loss.sum()
        # 'mean': the total weight stays an array (no device->host copy in the training step); 0/0 is
        # NaN as in PyTorch, written so that NumPy does not warn
        total = w_n.sum()
        some = total > 0
        self.total = xp.where(some, total, 1)
        return xp.where(some, loss.sum(), xp.nan) / self.total

    def backward(self, grad):
        eps, weight, w_n = self.eps, self.weight, self.w_n
        r = (grad / self.total if self.reduction == "mean" else grad) * self.counted         # step 1
        mean_weight = 1.0 if weight is None else weight.mean()
        sum_a = (1 - eps) * w_n + (eps * mean_weight) * self.counted if eps else w_n
        g_logits = self.p * (r * sum_a)[:, None]                                           # step 2
        g_logits[self.rows, self.targets] -= r * ((1 - eps) * w_n)                         # step 3
        if eps:                                                                            # step 4
            g_logits -= (r * (eps / self.p.shape[1]))[:, None] * (1.0 if weight is None else weight)
        return g_logits


class Linear(Function):
    """y = x @ W^T + b for x (..., in), W (out, in), b (out,), as one op.

    The leading dimensions are flattened first, so each product is one large matrix multiply
    (N, in) @ (in, out) with N = batch * time, the shape BLAS is fastest at. Backward, with
    g = dL/dy flattened to (N, out):
      1. g_x = g @ W                 (N, out) @ (out, in)
      2. g_W = g^T @ x               (out, N) @ (N, in)   (sums over all N positions at once)
      3. g_b = sum over N of g
    Each is computed only for an input that requires it (needs_input_grad): a frozen weight (a
    LoRA model's head, tied to the frozen embedding) costs no (out, N) @ (N, in) product.
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
        need_x, need_weight, *need_bias = self.needs_input_grad
        g = grad.reshape(-1, grad.shape[-1])
        g_x = (g @ self.weight).reshape(self.x_shape) if need_x else None            # 1
        g_weight = g.T @ self.x2 if need_weight else None                            # 2
        if not self.has_bias:
            return g_x, g_weight
        return g_x, g_weight, g.sum(axis=0) if need_bias[0] else None                 # 3


def row_mean(xp, a):
    """Mean over the last axis (kept, as keepdims=True) written as a matrix-vector product: BLAS
    does it several times faster than a reduction over short rows (C = 64 in the small models)."""
    C = a.shape[-1]
    return (a.reshape(-1, C) @ xp.full(C, 1 / C, dtype=a.dtype)).reshape(*a.shape[:-1], 1)


def row_sum(xp, a):
    """Sum over the last axis (kept), as a matrix-vector product (see row_mean)."""
    C = a.shape[-1]
    return (a.reshape(-1, C) @ xp.ones(C, dtype=a.dtype)).reshape(*a.shape[:-1], 1)


def causal_mask(xp, T, S, align="top_left"):
    """A (T, S) boolean array, True where query i must not see key j (j is in its future).

    align="top_left" (PyTorch's is_causal): query i sees keys j <= i.
    align="bottom_right": the T queries are the last T of the S positions, as when the first S - T
    keys come from a KV cache, so query i sees keys j <= i + S - T (PyTorch spells this mask
    torch.nn.attention.bias.causal_lower_right). The two agree when T == S.
    """
    if align not in ("top_left", "bottom_right"):
        raise ValueError(f"causal_mask: align must be 'top_left' or 'bottom_right', got {align!r}")
    offset = 0 if align == "top_left" else S - T
    return xp.triu(xp.ones((T, S), dtype=bool), k=offset + 1)


_CAUSAL_BIAS = {}


def causal_bias(xp, T, S, dtype, align="top_left"):
    """A (T, S) array: 0 where query i may see key j, -inf in the future (see causal_mask). Cached."""
    key = (xp.__name__, T, S, str(dtype), align)
    bias = _CAUSAL_BIAS.get(key)
    if bias is None:
        bias = _CAUSAL_BIAS[key] = xp.where(causal_mask(xp, T, S, align), xp.asarray(-float("inf"), dtype=dtype),
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


class RMSNorm(Function):
    """y = x / sqrt(mean(x^2) + eps) * weight over the last axis: LayerNorm without the centring
    and the bias (Llama's norm), so one statistic per row, the root mean square.

    Forward keeps x_hat = x * inv_rms and inv_rms = 1 / sqrt(mean(x^2) + eps). Backward, with
    g = dL/dy and C the size of the last axis:
      1. g_weight = sum over rows of g * x_hat
      2. g_x_hat  = g * weight
      3. g_x      = inv_rms * (g_x_hat - x_hat * mean(g_x_hat * x_hat))
    Step 3 is the chain rule through x_hat_i = x_i * inv_rms: directly (inv_rms * g_x_hat_i) and
    through inv_rms, which depends on every x of the row (d inv_rms / d x_j = -inv_rms^3 x_j / C,
    which gives the mean term). LayerNorm's step 4 has a second mean, the path through the row's
    mean; RMSNorm subtracts none, so that path is absent.
    """

    def forward(self, x, weight, eps):
        self.inv_rms = 1 / self.xp.sqrt(row_mean(self.xp, x * x) + eps)
        self.x_hat = x * self.inv_rms
        self.weight = weight
        return self.x_hat * weight

    def backward(self, grad):
        x_hat, inv_rms = self.x_hat, self.inv_rms
        g_weight = column_sum(self.xp, grad * x_hat)                                  # 1
        g_x_hat = grad * self.weight                                                   # 2
        g_x = inv_rms * (g_x_hat - x_hat * row_mean(self.xp, g_x_hat * x_hat))         # 3
        return g_x, g_weight


class ScaledDotProductAttention(Function):
    """y = softmax(q k^T * scale + mask) @ v, for q (..., T, D), k (..., S, D), v (..., S, Dv).

    The mask is any of: `causal` ("top_left" or "bottom_right", see causal_mask), a boolean `keep`
    (True where query i may attend to key j, broadcastable to (..., T, S)) and a float `attn_mask`,
    the optional fourth input, added to the scores (broadcastable to (..., T, S)).

    Forward keeps only the attention weights p (one T x S array per head):
      1. s = q @ k^T * scale
      2. s = s + attn_mask; s = -inf where a key is masked out (causal future, keep False)
      3. p = softmax(s)                              (along the last axis; a row with no key left
                                                      gives p = 0, as PyTorch)
      4. p_drop = p * keep_drop / (1 - dropout_p)    (when dropout is on)
      5. y = p_drop @ v
    Backward, with g = dL/dy:
      1. g_v      = p_drop^T @ g
      2. g_p_drop = g @ v^T
      3. g_p      = g_p_drop * keep_drop / (1 - dropout_p)
      4. g_s      = p * (g_p - sum_j g_p * p)       (softmax's Jacobian; masked entries have p = 0)
      5. g_q      = g_s @ k * scale
      6. g_k      = g_s^T @ q * scale
      7. g_attn_mask = g_s, summed over the axes the mask was broadcast along
    A mask adds a constant to s, so it changes p but none of the formulas above: the masked
    entries have p = 0 and get g_s = 0 by step 4 (a float mask's own gradient is step 7).
    Each mask, step by step (they combine: any that hides a key hides it; float ones add):
      - none (bidirectional, BERT): every query sees every key; step 2 is skipped.
      - causal: step 2 adds 0 / -inf from the position pair alone, so no (T, S) mask is stored;
        backward needs nothing more (p = 0 above the diagonal makes g_s = 0 there).
      - keep (boolean; a key-padding mask (B, S) arrives as keep (B, 1, 1, S)): step 2 sets s = -inf
        where keep is False, step 3 gives p = 0 there, so v's rows at hidden keys get g_v = 0 (step 1)
        and k's rows g_k = 0 (step 6): a padded key neither leaks forward nor learns backward.
      - attn_mask (float): step 2 adds it; it is an input, so it gets step 7's gradient; -inf
        entries act as keep False.
      A row whose every key is hidden gets p = 0 (y = 0, and g_s = 0 so no gradient flows through it).
    (The code multiplies q by the scale once, q_s = q * scale, which is cheaper than scaling the
    T x S scores: step 1 is then q_s @ k^T and step 6 is g_s^T @ q_s.)

    Cross-attention (nn/transformer.py) is this op with T != S: T decoder queries, S encoder keys
    and values, no causal mask, the source padding as `keep` of shape (N, 1, 1, S). Per head the
    shapes are q (T, D), k (S, D), v (S, Dv), g (T, Dv), and every step keeps them apart:
      forward   s, p, p_drop (T, S): one row per query, one column per source position; y (T, Dv)
      1. g_v = p_drop^T @ g          (S, T) @ (T, Dv) -> (S, Dv)   sums over the T queries
      2. g_p = g @ v^T               (T, Dv) @ (Dv, S) -> (T, S)
      4. g_s                         (T, S), zero in the padded columns (p = 0 there)
      5. g_q = g_s @ k * scale       (T, S) @ (S, D)   -> (T, D)   sums over the S keys
      6. g_k = g_s^T @ q * scale     (S, T) @ (T, D)   -> (S, D)   sums over the T queries
    so a padded source position gets g_k = g_v = 0, and the encoder's output receives, through
    g_k and g_v, the gradient of every decoder position that read it. (tests/test_transformer.py:
    fused == composite == finite differences == PyTorch for this case.)
    """

    def forward(self, q, k, v, attn_mask=None, *, causal=None, keep=None, scale, dropout_p):
        xp = self.xp
        T, S = q.shape[-2], k.shape[-2]
        q_s = q * scale
        s = q_s @ k.swapaxes(-1, -2)
        if causal is not None:      # adding 0 or -inf broadcasts faster than a boolean assignment
            s += causal_bias(xp, T, S, s.dtype, causal)
        if attn_mask is not None:
            s += attn_mask
        if keep is not None:
            s = xp.where(keep, s, xp.asarray(-float("inf"), dtype=s.dtype))
        # a row can lose every key only with an explicit mask, or bottom-right with more queries than keys
        may_be_empty = attn_mask is not None or keep is not None or (causal == "bottom_right" and T > S)
        row_max = s.max(axis=-1, keepdims=True)
        if may_be_empty:
            row_max = xp.where(xp.isneginf(row_max), xp.asarray(0, dtype=s.dtype), row_max)
        s -= row_max
        p = xp.exp(s, out=s)
        total = row_sum(xp, p)
        if may_be_empty:                # 0 / 0 -> p = 0 on a row with no key left
            total = xp.where(total == 0, xp.asarray(1, dtype=s.dtype), total)
        p /= total
        self.p = p
        if dropout_p > 0:
            keep_drop = random.uniform(p.shape, device=self.device, dtype=p.dtype) >= dropout_p
            self.keep_scale = dropout_scale(xp, keep_drop, dropout_p, p.dtype)
            p_drop = p * self.keep_scale
        else:
            self.keep_scale, p_drop = None, p
        self.q_s, self.k, self.v, self.p_drop, self.scale = q_s, k, v, p_drop, scale
        self.mask_shape = None if attn_mask is None else attn_mask.shape
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
        if self.mask_shape is None:
            return g_q, g_k, g_v
        return g_q, g_k, g_v, unbroadcast(g_s, self.mask_shape)


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
        y = self.core.forward(q, k, v, causal="top_left", scale=scale, dropout_p=dropout_p)   # T == S
        self.shape = (B, T, H, D)
        return y.transpose(0, 2, 1, 3).reshape(B, T, H * D)

    def backward(self, grad):
        B, T, H, D = self.shape
        g_q, g_k, g_v = self.core.backward(grad.reshape(B, T, H, D).transpose(0, 2, 1, 3))
        g_qkv = self.xp.empty((B, T, 3, H, D), dtype=grad.dtype)
        for i, g in enumerate((g_q, g_k, g_v)):
            g_qkv[:, :, i] = g.transpose(0, 2, 1, 3)
        return g_qkv.reshape(B, T, 3 * H * D)
