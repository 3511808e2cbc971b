"""The functional API, imported as ``F`` as in PyTorch: ``import tinygrad_lm.nn.functional as F``.

Every function that borrows a PyTorch name takes PyTorch's arguments (names, order, defaults) and
computes what PyTorch computes; where one does not (an option left out), it says so and raises
rather than doing something else.

Fused functions (one op with a hand-derived backward, see ``ops/fused.py``) sit beside their
``*_composite`` twins, built only from primitive ops so that autograd derives their backward.
Tests check fused == composite == finite differences == PyTorch; lessons show both.
"""
import math

import numpy as np

from .. import backend
from ..ops import (CrossEntropy, DPOLoss, Linear as LinearOp, Dropout, Embedding, GELUErf, GELUTanh, LayerNorm, RMSNorm, LogSoftmax,
                   PackedCausalAttention, ReLU, Rotary, ScaledDotProductAttention, SiLU, Softmax, SwiGLU, causal_mask)
from ..ops.rotary import pair_slices
from ..ops import checks        # checks.check_indices: cross_entropy's argument `check_indices` hides the name
from ..ops.checks import broadcast_shape
from ..ops.unary import SQRT_2_OVER_PI
from ..tensor import Tensor, as_tensor, cat, raw, stack

REDUCTIONS = ("mean", "sum", "none")


def _no_inplace(inplace, who):
    if inplace:
        raise NotImplementedError(f"{who}: inplace=True is not supported (no op here writes into its input)")


# ------------------------------------------------------------------ activations
def relu(input, inplace=False):
    _no_inplace(inplace, "relu")
    return ReLU.apply(input)


def silu(input, inplace=False):
    """SiLU (swish), x * sigmoid(x), fused (ops/unary.py SiLU: the backward as numbered steps)."""
    _no_inplace(inplace, "silu")
    return SiLU.apply(input)


def silu_composite(x):
    """SiLU from primitives: x * sigmoid(x) (autograd derives the backward)."""
    return x * x.sigmoid()


def swiglu(gate, up):
    """SwiGLU's gate, silu(gate) * up, fused (ops/unary.py SwiGLU), for gate = x W_gate and
    up = x W_up of the same shape; Llama's MLP is down_proj(swiglu(gate_proj(x), up_proj(x))).
    PyTorch has no function of this name: the composite twin is what a PyTorch model writes."""
    if tuple(gate.shape) != tuple(up.shape):
        raise ValueError(f"swiglu: gate {tuple(gate.shape)} and up {tuple(up.shape)} must have the same shape")
    return SwiGLU.apply(gate, up)


def swiglu_composite(gate, up):
    """silu(gate) * up from primitives."""
    return silu_composite(gate) * up


def gelu(input, approximate="none"):
    """GELU as ``torch.nn.functional.gelu``: exact (erf) by default, GPT-2's with approximate='tanh'."""
    if approximate == "tanh":
        return GELUTanh.apply(input)
    if approximate == "none":
        return GELUErf.apply(input)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def gelu_composite(x):
    """GPT-2's tanh GELU from primitives: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1 + (SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)).tanh())


def rotary_embedding(input, cos, sin, layout="half"):
    """Rotary positions on `input` (..., T, D): each pair of coordinates turned by the angle whose
    cos and sin are the tables (T, D/2) (Tensors or arrays on input's device, not differentiated).
    layout "half": coordinate i pairs with i + D/2 (Hugging Face's rotate_half); "interleaved":
    2i pairs with 2i + 1 (Meta's Llama, GGUF's order). Fused (ops/rotary.py). PyTorch has no
    function of this name; nn.RotaryEmbedding makes the tables."""
    T, D = input.shape[-2], input.shape[-1]
    pair_slices(layout, D)                            # refuses an unknown layout by name
    cos, sin = _rotary_tables(cos, sin, input)
    if D % 2 or tuple(cos.shape) != (T, D // 2) or tuple(sin.shape) != (T, D // 2):
        raise ValueError(f"rotary_embedding: input (..., {T}, {D}) needs an even D and cos, sin tables of shape "
                         f"({T}, {D // 2}), got {tuple(cos.shape)} and {tuple(sin.shape)}")
    return Rotary.apply(input, cos=cos, sin=sin, layout=layout)


def _rotary_tables(cos, sin, like):
    """The cos and sin tables as arrays on like's device, in like's dtype."""
    return tuple(t if t.dtype == like.dtype else t.astype(like.dtype)
                 for t in (raw(cos, like.device), raw(sin, like.device)))


def rotary_embedding_composite(x, cos, sin, layout="half"):
    """The same rotation from primitives (indexing, products, one concatenation)."""
    first, second = pair_slices(layout, x.shape[-1])
    cos, sin = (Tensor._from_array(t, x.device) for t in _rotary_tables(cos, sin, x))
    x1, x2 = x[..., first], x[..., second]
    y1, y2 = x1 * cos - x2 * sin, x2 * cos + x1 * sin
    if layout == "half":
        return cat([y1, y2], dim=-1)
    return stack([y1, y2], dim=-1).reshape(x.shape)   # (..., D/2, 2) -> pairs side by side again


def softmax(input, dim):
    """softmax along `dim` (required: PyTorch's implicit choice of dim is deprecated)."""
    return Softmax.apply(input, axis=dim)


def log_softmax(input, dim):
    """log_softmax along `dim` (required, as in softmax)."""
    return LogSoftmax.apply(input, axis=dim)


def softmax_composite(x, dim):
    """exp(x - max) / sum exp(x - max), from primitives (max treated as a constant)."""
    e = (x - x.detach().amax(dim, keepdim=True)).exp()
    return e / e.sum(dim, keepdim=True)


def one_hot(tensor, num_classes=-1):
    """(*) integer class ids -> (*, num_classes) int64 tensor of 0s with a 1 at each id (no gradient).
    num_classes=-1 takes the largest id + 1, as PyTorch."""
    if isinstance(tensor, Tensor):
        t, device = tensor.data, tensor.device
    else:
        t = tensor if hasattr(tensor, "dtype") else np.asarray(tensor)
        device = backend.device_of(t)
    xp = backend.get_array_module(device)
    if t.dtype.kind not in "iu":
        raise TypeError(f"one_hot: needs integer class ids, got dtype {t.dtype}")
    if num_classes == -1:
        if t.size == 0:
            raise ValueError("one_hot: cannot infer the number of classes from an empty tensor")
        num_classes = int(t.max()) + 1
    if t.size and int(t.min()) < 0:
        raise ValueError("one_hot: class values must be non-negative")
    if t.size and int(t.max()) >= num_classes:
        raise ValueError(f"one_hot: class values must be smaller than num_classes={num_classes}")
    return Tensor._from_array((t[..., None] == xp.arange(num_classes)).astype(np.int64), device)


def check_dropout_p(p, who="dropout"):
    if not 0 <= p <= 1:
        raise ValueError(f"{who}: p must be in [0, 1], got {p}")


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1/(1-p); identity when not
    training (or p = 0); all zeros when p = 1, as PyTorch."""
    check_dropout_p(p)
    _no_inplace(inplace, "dropout")
    if not training or p == 0:
        return input
    return Dropout.apply(input, p=p)


# ------------------------------------------------------------------ layers as functions
def _check_linear(x, weight):
    if x.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear: input has {x.shape[-1]} features (shape {x.shape}) but the "
                         f"weight expects {weight.shape[-1]} (weight shape {weight.shape})")


def linear(input, weight, bias=None):
    """input @ weight^T + bias, with weight stored (out_features, in_features) as PyTorch (fused op)."""
    _check_linear(input, weight)
    return LinearOp.apply(input, weight) if bias is None else LinearOp.apply(input, weight, bias)


def linear_composite(x, weight, bias=None):
    """The same from primitives: matmul with the transposed weight, then add the bias."""
    _check_linear(x, weight)
    y = x @ weight.T
    return y + bias if bias is not None else y


def padding_index(padding_idx, n, who):
    """padding_idx as a row of an n-row table (a negative one counts from the end), or None."""
    if padding_idx is None:
        return None
    if not -n <= padding_idx < n:
        raise ValueError(f"{who}: padding_idx {padding_idx} is out of range for {n} embeddings")
    return padding_idx % n


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False, *, check_indices=True):
    """Rows of `weight` picked by integer ids `input` (any shape) -> input.shape + (dim,).

    padding_idx: that row gets no gradient, as PyTorch. (max_norm, scale_grad_by_freq and sparse
    are not supported.) Ids are range-checked (CuPy would silently wrap them); check_indices=False
    skips that when the caller has checked them already, which saves a device->host copy on a GPU."""
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: max_norm, scale_grad_by_freq and sparse are not supported")
    idx = raw(input, weight.device)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    padding_idx = padding_index(padding_idx, weight.shape[0], "embedding")
    return Embedding.apply(weight, indices=idx, checked=not check_indices, padding_idx=padding_idx)


def _normalized_dims(x, normalized_shape):
    """How many trailing dims layer_norm normalizes over (checked against the input's shape)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not shape or len(shape) > x.ndim or x.shape[x.ndim - len(shape):] != shape:
        raise ValueError(f"layer_norm: normalized_shape {shape} must be the last dimensions of the "
                         f"input, but the input has shape {x.shape}")
    return len(shape)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """LayerNorm over the last len(normalized_shape) dimensions, fused (one op over the last
    dimension; several trailing dimensions are flattened into one first)."""
    k = _normalized_dims(input, normalized_shape)
    x = input if k == 1 else input.reshape(*input.shape[:-k], -1)
    if weight is None:
        xp = backend.get_array_module(input.device)
        w = Tensor._from_array(xp.ones(x.shape[-1], dtype=input.dtype), input.device)
    else:
        w = weight if k == 1 else weight.reshape(-1)
    b = bias if bias is None or k == 1 else bias.reshape(-1)
    y = LayerNorm.apply(x, w, bias=None, eps=eps) if b is None else LayerNorm.apply(x, w, b, eps=eps)
    return y if k == 1 else y.reshape(input.shape)


def layer_norm_composite(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """LayerNorm from primitives: (x - mean) / sqrt(var + eps) * weight + bias."""
    dims = tuple(range(-_normalized_dims(x, normalized_shape), 0))
    mu = x.mean(dims, keepdim=True)
    var = x.var(dims, keepdim=True, correction=0)
    y = (x - mu) / (var + eps).sqrt()
    if weight is not None:
        y = y * weight
    return y + bias if bias is not None else y


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """RMSNorm over the last len(normalized_shape) dimensions, fused: x / sqrt(mean(x^2) + eps) *
    weight (torch.nn.functional.rms_norm; eps None: the dtype's machine epsilon, as PyTorch)."""
    k = _normalized_dims(input, normalized_shape)
    eps = float(np.finfo(np.dtype(input.dtype)).eps) if eps is None else eps
    x = input if k == 1 else input.reshape(*input.shape[:-k], -1)
    if weight is None:
        xp = backend.get_array_module(input.device)
        w = Tensor._from_array(xp.ones(x.shape[-1], dtype=input.dtype), input.device)
    else:
        w = weight if k == 1 else weight.reshape(-1)
    y = RMSNorm.apply(x, w, eps=eps)
    return y if k == 1 else y.reshape(input.shape)


def rms_norm_composite(x, normalized_shape, weight=None, eps=None):
    """RMSNorm from primitives: x / sqrt(mean(x^2) + eps) * weight."""
    dims = tuple(range(-_normalized_dims(x, normalized_shape), 0))
    eps = float(np.finfo(np.dtype(x.dtype)).eps) if eps is None else eps
    y = x / ((x * x).mean(dims, keepdim=True) + eps).sqrt()
    return y * weight if weight is not None else y


# ------------------------------------------------------------------ attention
# Two alignments of the causal mask when there are fewer queries T than keys S (see ops/fused.py
# causal_mask): PyTorch's is_causal is "top_left" (query i sees keys j <= i), which
# scaled_dot_product_attention follows; a decoder with a KV cache needs "bottom_right" (the T new
# queries are the last T of the S positions, so query i sees keys j <= S - T + i), which
# causal_attention uses. Without a cache T == S and the two are the same.
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, enable_gqa=False, *, key_padding_mask=None, return_weights=False):
    """softmax(q k^T * scale + mask) v for query (..., T, D), key (..., S, D), value (..., S, Dv), fused,
    as ``torch.nn.functional.scaled_dot_product_attention``.

    - `scale` defaults to 1/sqrt(D).
    - is_causal=True: query i sees keys j <= i (aligned top-left, as PyTorch; for new queries after a
      KV cache use causal_attention, aligned bottom-right).
    - attn_mask: boolean (True = the key takes part, as PyTorch) or float (added to the scores, of the
      query's dtype), broadcastable to (..., T, S). Not together with is_causal (PyTorch refuses both).
      A query left with no key gets zeros, as PyTorch.
    - key_padding_mask (ours; torch.nn.MultiheadAttention's name and meaning): (B, S) for a query
      (B, ..., T, D), boolean with True = a padding key that no query may see, or float added to
      every query's score of that key. It combines with is_causal (a padded causal decoder) and with
      attn_mask (boolean masks are and-ed, float ones added, one of each both apply). A Hugging Face
      attention_mask (1 = token, 0 = padding) is key_padding_mask=(attention_mask == 0).
    - return_weights=True (ours, not PyTorch's) also returns the attention weights, a detached
      Tensor (..., T, S), for plotting.
    - enable_gqa=True: grouped-query attention, as PyTorch: key and value have H_kv heads (dim -3),
      a divisor of the query's H; each serves a group of H / H_kv consecutive query heads.
    """
    if enable_gqa:
        key, value = _repeat_kv_heads(query, key), _repeat_kv_heads(query, value)
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal=True, not both "
                         "(as PyTorch); fold the causal mask into attn_mask")
    return _attention(query, key, value, attn_mask, dropout_p, "top_left" if is_causal else None, scale,
                      return_weights, key_padding_mask)


def _repeat_kv_heads(query, kv):
    """Grouped-query attention's keys or values (B, H_kv, S, D) as (B, H, S, D) for a query of H
    heads: each key/value head repeated for its group of H / H_kv consecutive query heads (as
    Hugging Face's repeat_kv). An expand then a reshape, so the backward sums each group's
    gradients into its one key/value head."""
    H, H_kv = query.shape[-3], kv.shape[-3]
    if H == H_kv:
        return kv
    if query.ndim < 3 or kv.ndim != query.ndim or H % H_kv:
        raise ValueError(f"grouped-query attention: the key/value heads ({H_kv}, dim -3 of {kv.shape}) must "
                         f"divide the query's heads ({H}, dim -3 of {query.shape})")
    *lead, S, D = kv.shape
    lead = lead[:-1]
    return kv.reshape(*lead, H_kv, 1, S, D).expand(*lead, H_kv, H // H_kv, S, D).reshape(*lead, H, S, D)


def causal_attention(query, key, value, dropout_p=0.0, scale=None, return_weights=False, enable_gqa=False):
    """Causal attention whose T queries are the last T of the S key positions (the first S - T keys
    come from a KV cache): query i sees keys j <= S - T + i, the causal mask aligned bottom-right.
    With T == S (no cache) it is scaled_dot_product_attention(..., is_causal=True); PyTorch writes
    this one with attn_mask=torch.nn.attention.bias.causal_lower_right(T, S). Fused. enable_gqa:
    key and value have fewer heads than the query (see scaled_dot_product_attention)."""
    if enable_gqa:
        key, value = _repeat_kv_heads(query, key), _repeat_kv_heads(query, value)
    return _attention(query, key, value, None, dropout_p, "bottom_right", scale, return_weights)


def _attention(query, key, value, attn_mask, dropout_p, causal, scale, return_weights, key_padding_mask=None):
    """The fused attention behind scaled_dot_product_attention and causal_attention."""
    _check_attention_shapes(query, key, value)
    check_dropout_p(dropout_p, "scaled_dot_product_attention")
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    keep, additive = _merged_masks(attn_mask, key_padding_mask, query, key)
    inputs = (query, key, value) if additive is None else (query, key, value, additive)
    out = ScaledDotProductAttention.apply(*inputs, causal=causal, keep=keep, scale=scale, dropout_p=dropout_p)
    if return_weights:
        weights = out._ctx.p if out._ctx is not None else None
        if weights is None:   # no graph (no_grad): recompute the weights to return them
            weights = _attention_composite(query, key, value, attn_mask, 0.0, causal, scale, True,
                                           key_padding_mask)[1].data
        return out, Tensor._from_array(weights, out.device)
    return out


def causal_self_attention(qkv, n_head, scale=None, dropout_p=0.0):
    """Multi-head causal attention from a packed (B, T, 3C) q|k|v projection to (B, T, C), fused
    (heads split and merged inside the op; see ops/fused.py PackedCausalAttention)."""
    B, T, C3 = qkv.shape
    if C3 % (3 * n_head):
        raise ValueError(f"causal_self_attention: last dimension {C3} is not 3 * n_head * head_size")
    check_dropout_p(dropout_p, "causal_self_attention")
    scale = (C3 // 3 // n_head) ** -0.5 if scale is None else scale
    return PackedCausalAttention.apply(qkv, n_head=n_head, scale=scale, dropout_p=dropout_p)


def _check_attention_shapes(q, k, v):
    if q.ndim < 2 or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: query {q.shape}, key {k.shape} and value "
                         f"{v.shape} must be (..., T, D), (..., S, D) and (..., S, Dv)")


def _merged_masks(attn_mask, key_padding_mask, query, key):
    """attn_mask and key_padding_mask as the two kinds the attention op takes: (keep, additive), a
    boolean array (True = the key takes part) and a float Tensor added to the scores, each None when
    absent. Boolean masks are and-ed, float ones added, so every given mask applies."""
    keep, additive = None, None
    masks = [] if attn_mask is None else [_attention_mask(attn_mask, query, key)]
    if key_padding_mask is not None:
        masks.append(_key_padding_mask(key_padding_mask, query, key))
    for mask in masks:
        if mask.dtype == bool:
            keep = mask.data if keep is None else keep & mask.data
        else:
            additive = mask if additive is None else additive + mask
    return keep, additive


def _key_padding_mask(key_padding_mask, query, key):
    """key_padding_mask (B, S) as an attn_mask (B, 1, ..., 1, S): boolean True = padding becomes
    keep = False; float stays a float added to every query's score of that key."""
    mask = key_padding_mask if isinstance(key_padding_mask, Tensor) else Tensor(key_padding_mask, device=query.device)
    B, S = (query.shape[0] if query.ndim > 2 else None), key.shape[-2]
    if B is None or mask.shape != (B, S):
        raise ValueError(f"scaled_dot_product_attention: key_padding_mask must have shape (batch, keys) = "
                         f"{(B, S)} for a query {query.shape} and key {key.shape}, got {mask.shape}")
    if mask.dtype == bool:
        mask = ~mask
    elif mask.dtype != query.dtype:
        raise TypeError(f"scaled_dot_product_attention: key_padding_mask must be boolean or of the "
                        f"query's dtype {query.dtype}, got {mask.dtype}")
    return mask.reshape(B, *[1] * (query.ndim - 2), S)


def _attention_mask(attn_mask, query, key):
    """attn_mask as a Tensor on the query's device, checked: boolean, or float of the query's dtype,
    broadcastable to the scores' shape (..., T, S)."""
    mask = attn_mask if isinstance(attn_mask, Tensor) else Tensor(attn_mask, device=query.device)
    if mask.dtype != bool and mask.dtype != query.dtype:
        raise TypeError(f"scaled_dot_product_attention: attn_mask must be boolean or of the query's "
                        f"dtype {query.dtype}, got {mask.dtype}")
    scores = broadcast_shape(query.shape[:-2], key.shape[:-2]) + (query.shape[-2], key.shape[-2])
    if broadcast_shape(mask.shape, scores) != scores:
        raise ValueError(f"scaled_dot_product_attention: attn_mask of shape {mask.shape} does not "
                         f"broadcast to the attention scores' shape {scores}")
    return mask


def scaled_dot_product_attention_composite(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                           scale=None, *, key_padding_mask=None, return_weights=False):
    """scaled_dot_product_attention from primitive ops: matmul, scale, mask, softmax, dropout, matmul."""
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal=True, not both")
    return _attention_composite(query, key, value, attn_mask, dropout_p, "top_left" if is_causal else None,
                                scale, return_weights, key_padding_mask)


def causal_attention_composite(query, key, value, dropout_p=0.0, scale=None, return_weights=False):
    """causal_attention (mask aligned bottom-right) from primitive ops."""
    return _attention_composite(query, key, value, None, dropout_p, "bottom_right", scale, return_weights)


def _attention_composite(query, key, value, attn_mask, dropout_p, causal, scale, return_weights,
                         key_padding_mask=None):
    _check_attention_shapes(query, key, value)
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    xp = backend.get_array_module(query.device)
    T, S = query.shape[-2], key.shape[-2]
    scores = (query @ key.transpose(-2, -1)) * scale
    if causal is not None:
        scores = scores.masked_fill(causal_mask(xp, T, S, causal), -math.inf)
    keep, additive = _merged_masks(attn_mask, key_padding_mask, query, key)
    if additive is not None:
        scores = scores + additive
    if keep is not None:
        scores = scores.masked_fill(~keep, -math.inf)
    if keep is not None or additive is not None or (causal == "bottom_right" and T > S):
        # a query left with no key gets weights 0, as PyTorch (softmax of a row of -inf is NaN):
        # give its row finite scores, then zero its weights (the gradient of the row is then 0)
        empty = xp.isneginf(scores.data.max(axis=-1, keepdims=True))
        scores = scores.masked_fill(empty, 0.0)
        weights = scores.softmax(dim=-1).masked_fill(empty, 0.0)
    else:
        weights = scores.softmax(dim=-1)
    out = dropout(weights, dropout_p, training=dropout_p > 0) @ value
    return (out, weights.detach()) if return_weights else out


# ------------------------------------------------------------------ losses
def _check_reduction(reduction, who):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{who}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss, reduction):
    return loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.mean()


def _class_targets(input, target, who):
    """Class-index targets as an array on input's device, checked against PyTorch's layout: input
    (C,) with a () target, or (N, C, d1, ...) with an (N, d1, ...) target (classes on dim 1)."""
    t = raw(target, input.device)
    if not hasattr(t, "dtype"):
        t = backend.get_array_module(input.device).asarray(t)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{who}: class-index targets must be integers, got dtype {t.dtype}")
    expected = () if input.ndim == 1 else input.shape[:1] + input.shape[2:]
    if input.ndim == 0 or tuple(t.shape) != expected:
        raise ValueError(f"{who}: input of shape {input.shape} (classes on dim {min(input.ndim, 2) - 1}) "
                         f"needs targets of shape {expected}, got {tuple(t.shape)}")
    return t


def _class_weight(weight, input, who):
    """weight (C,) as a constant array on input's device (PyTorch refuses a weight that requires grad)."""
    if weight is None:
        return None
    if isinstance(weight, Tensor) and weight.requires_grad:
        raise ValueError(f"{who}: weight cannot require grad (as in PyTorch, it is a constant)")
    C = input.shape[0 if input.ndim == 1 else 1]
    w = raw(weight, input.device)
    if tuple(w.shape) != (C,):
        raise ValueError(f"{who}: weight must have shape ({C},), one per class, got {tuple(w.shape)}")
    return w.astype(input.dtype, copy=False)


def _classes_last(input):
    """(C,) -> (1, C); (N, C) as is; (N, C, d1, ...) -> (N d1 ..., C): one row per prediction."""
    if input.ndim == 1:
        return input.reshape(1, -1)
    if input.ndim == 2:
        return input
    return input.permute(0, *range(2, input.ndim), 1).reshape(-1, input.shape[1])


def _weighted_mean(total, norm):
    """total / norm with norm a number. When norm is 0 (every target ignored) the loss is NaN and its
    gradient 0, as PyTorch's (total * 0 keeps the graph with a zero gradient; NaN is a constant)."""
    return total * (1 / norm) if norm else total * 0.0 + math.nan


def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean", label_smoothing=0.0,
                  check_indices=True):
    """Cross-entropy of logits against targets, as ``torch.nn.functional.cross_entropy``.

    input: (C,), (N, C) or (N, C, d1, ...), classes on dim 1 (dim 0 when unbatched); for a language
    model's (B, T, V) logits, pass logits.reshape(-1, V) and targets.reshape(-1).
    target: class ids (N,) / (N, d1, ...) / (), or class probabilities of the input's shape (float).
    weight: (C,) per-class weights; ignore_index: targets to skip (class ids only); reduction:
    'mean' (weighted by the targets' weights), 'sum' or 'none'; label_smoothing: eps in [0, 1].
    (check_indices=False, ours: the caller has range-checked the targets, as in embedding.)

    Class ids go through the fused CrossEntropy op (ops/fused.py, backward by hand); probability
    targets are composed from primitives (cross_entropy_composite; autograd derives the backward,
    also the targets' gradient).
    """
    _check_reduction(reduction, "cross_entropy")
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if _is_probabilities(target):
        return cross_entropy_composite(input, target, weight, ignore_index=ignore_index, reduction=reduction,
                                       label_smoothing=label_smoothing)
    t = _class_targets(input, target, "cross_entropy")
    w = _class_weight(weight, input, "cross_entropy")
    loss = CrossEntropy.apply(_classes_last(input), targets=t.reshape(-1), ignore_index=ignore_index,
                              reduction=reduction, weight=w, label_smoothing=label_smoothing,
                              checked=not check_indices)
    return loss.reshape(t.shape) if reduction == "none" and loss.shape != tuple(t.shape) else loss


def _is_probabilities(target):
    dtype = getattr(target, "dtype", None)
    if dtype is None:
        dtype = np.asarray(target).dtype
    return np.dtype(dtype).kind == "f"


def cross_entropy_composite(input, target, weight=None, *, ignore_index=-100, reduction="mean",
                            label_smoothing=0.0):
    """The same loss from primitives: log_softmax over the classes, then nll_loss (class ids) or
    -sum(target * log_p) (probabilities), mixed with the uniform target when label_smoothing > 0."""
    _check_reduction(reduction, "cross_entropy")
    dim = 0 if input.ndim == 1 else 1
    C = input.shape[dim]
    log_p = log_softmax(input, dim=dim)
    w = _class_weight(weight, input, "cross_entropy")
    w_view = None if w is None else w.reshape((C,) + (1,) * (input.ndim - dim - 1))   # along the class dim
    eps = label_smoothing
    if _is_probabilities(target):
        t = as_tensor(target if isinstance(target, Tensor) else raw(target, input.device), input)
        if t.shape != input.shape:
            raise ValueError(f"cross_entropy: probability targets must have the input's shape "
                             f"{input.shape}, got {t.shape}")
        if eps:
            t = t * (1 - eps) + eps / C
        weighted = log_p * t if w is None else log_p * t * w_view
        return _reduce(-weighted.sum(dim), reduction)
    t = _class_targets(input, target, "cross_entropy")
    loss = nll_loss(log_p, t, weight, ignore_index=ignore_index, reduction=reduction)
    if not eps:
        return loss
    counted = t != ignore_index
    uniform = -(log_p if w is None else log_p * w_view).sum(dim) * (counted.astype(input.dtype) / C)
    if reduction == "none":
        smooth = uniform
    elif reduction == "sum":
        smooth = uniform.sum()
    else:
        smooth = _weighted_mean(uniform.sum(), float(_target_weights(t, counted, w, input).sum()))
    return (1 - eps) * loss + eps * smooth


def _target_weights(t, counted, w, input):
    """w[t] (1 without weights) per target, 0 where the target is ignored."""
    xp = backend.get_array_module(input.device)
    w_t = counted.astype(input.dtype)
    return w_t if w is None else w_t * w[xp.where(counted, t, 0)]


def nll_loss(input, target, weight=None, *, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities `input` ((C,), (N, C) or (N, C, d1, ...), classes
    on dim 1) at class ids `target`, as ``torch.nn.functional.nll_loss``: loss_n = -weight[t_n]
    input[n, t_n]; 'mean' divides by the sum of the counted targets' weights (NaN if all are
    ignored, as PyTorch). Composed from primitives (indexing picks one entry per row; autograd
    scatters the gradient back)."""
    _check_reduction(reduction, "nll_loss")
    t = _class_targets(input, target, "nll_loss")
    w = _class_weight(weight, input, "nll_loss")
    xp = backend.get_array_module(input.device)
    C = input.shape[0 if input.ndim == 1 else 1]
    counted = t != ignore_index
    safe = xp.where(counted, t, 0)
    checks.check_indices(xp, safe, C, "nll_loss targets")
    rows = _classes_last(input)                                     # (M, C), one row per target
    picked = rows[xp.arange(rows.shape[0]), safe.reshape(-1)]       # input[n, t_n, ...]
    w_t = _target_weights(t, counted, w, input)
    loss = -(picked * w_t.reshape(-1))
    if reduction == "none":
        return loss.reshape(t.shape)
    if reduction == "sum":
        return loss.sum()
    return _weighted_mean(loss.sum(), float(w_t.sum()))


def mse_loss(input, target, *, reduction="mean", weight=None):
    """Mean squared error, as ``torch.nn.functional.mse_loss``: (input - target)^2, reduced; with
    `weight` (the input's shape) each squared error is weighted and 'mean' divides by sum(weight).
    Composed from primitives (gradients for input, target and weight)."""
    _check_reduction(reduction, "mse_loss")
    diff = input - target
    squared = diff * diff
    if weight is None:
        return _reduce(squared, reduction)
    if tuple(weight.shape) != input.shape:
        raise ValueError(f"mse_loss: weight must have the input's shape {input.shape}, got {tuple(weight.shape)}")
    weighted = squared * weight
    if reduction == "mean":
        return weighted.sum() / (weight.sum() if isinstance(weight, Tensor) else float(weight.sum()))
    return _reduce(weighted, reduction)



def sequence_log_probs(logits, labels, ignore_index=-100):
    """log p(answer | prompt) per row: the sum over a row's labelled positions of the log-softmax
    of `logits` (B, T, V) at `labels` (B, T); positions labelled ignore_index (the prompt, the
    padding) add nothing. The fused cross-entropy per token, negated and summed over time."""
    B, T, V = logits.shape
    per_token = cross_entropy(logits.reshape(B * T, V), labels.reshape(-1), ignore_index=ignore_index,
                              reduction="none")
    return -per_token.reshape(B, T).sum(-1)


def _reference(values, like, who):
    array = raw(values, like.device)
    if array.shape != like.shape:
        raise ValueError(f"{who}: the reference log-probabilities have shape {tuple(array.shape)}, the policy's "
                         f"{like.shape}")
    return array.astype(like.dtype, copy=False)


def dpo_loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta=0.1):
    """DPO's loss, mean over pairs of -log sigmoid(beta [(c - c_ref) - (r - r_ref)]) (trl's
    "sigmoid" loss type): the policy's sequence log-probabilities of the chosen (c) and rejected
    (r) answers, (N,) tensors, against the frozen reference's (arrays or tensors; no gradient goes
    to them). Fused (ops/dpo.py DPOLoss: the gradient derived step by step)."""
    if not beta > 0:
        raise ValueError(f"dpo_loss: beta must be > 0, got {beta}")
    if policy_chosen_logps.shape != policy_rejected_logps.shape:
        raise ValueError(f"dpo_loss: chosen {policy_chosen_logps.shape} and rejected {policy_rejected_logps.shape} "
                         "log-probabilities differ in shape")
    ref_c = _reference(reference_chosen_logps, policy_chosen_logps, "dpo_loss")
    ref_r = _reference(reference_rejected_logps, policy_rejected_logps, "dpo_loss")
    return DPOLoss.apply(policy_chosen_logps, policy_rejected_logps, reference_chosen=ref_c,
                         reference_rejected=ref_r, beta=float(beta))


def dpo_loss_composite(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps,
                       beta=0.1):
    """The same loss from primitives: -log sigmoid(z) = softplus(-z) = relu(-z) + log(1 + exp(-|z|))."""
    ref_c = _reference(reference_chosen_logps, policy_chosen_logps, "dpo_loss")
    ref_r = _reference(reference_rejected_logps, policy_rejected_logps, "dpo_loss")
    z = ((policy_chosen_logps - ref_c) - (policy_rejected_logps - ref_r)) * beta
    return ((-z).relu() + ((-(z.abs())).exp() + 1).log()).mean()
