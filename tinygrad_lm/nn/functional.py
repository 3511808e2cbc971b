"""The functional API, imported as ``F`` as in PyTorch: ``import tinygrad_lm.nn.functional as F``.

Fused functions (one op with a hand-derived backward, see ``ops/fused.py``) sit beside their
``*_composite`` twins, built only from primitive ops so that autograd derives their backward.
Tests check fused == composite == finite differences; lessons show both.
"""
import math

from .. import backend
from ..ops import (CrossEntropy, Linear as LinearOp, Dropout, Embedding, GELUErf, GELUTanh, LayerNorm, LogSoftmax,
                   PackedCausalAttention, ReLU, ScaledDotProductAttention, Softmax, causal_mask)
from ..ops import checks        # checks.check_indices: cross_entropy's argument `check_indices` hides the name
from ..ops.unary import SQRT_2_OVER_PI
from ..tensor import Tensor, raw


# ------------------------------------------------------------------ activations
def relu(x):
    return ReLU.apply(x)


def gelu(x, approximate="none"):
    """GELU as ``torch.nn.functional.gelu``: exact (erf) by default, GPT-2's with approximate='tanh'."""
    if approximate == "tanh":
        return GELUTanh.apply(x)
    if approximate == "none":
        return GELUErf.apply(x)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def gelu_composite(x):
    """GPT-2's tanh GELU from primitives: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1 + (SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)).tanh())


def softmax(x, dim):
    return Softmax.apply(x, axis=dim)


def log_softmax(x, dim):
    return LogSoftmax.apply(x, axis=dim)


def softmax_composite(x, dim):
    """exp(x - max) / sum exp(x - max), from primitives (max treated as a constant)."""
    e = (x - x.detach().amax(dim, keepdim=True)).exp()
    return e / e.sum(dim, keepdim=True)


def check_dropout_p(p, who="dropout"):
    if not 0 <= p < 1:                      # p = 1 would scale the kept elements by 1/0
        raise ValueError(f"{who}: p must be in [0, 1), got {p}")


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1/(1-p); identity in eval mode."""
    check_dropout_p(p)
    if not training or p == 0:
        return x
    return Dropout.apply(x, p=p)


# ------------------------------------------------------------------ layers as functions
def _check_linear(x, weight):
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input has {x.shape[-1]} features (shape {x.shape}) but the "
                         f"weight expects {weight.shape[1]} (weight shape {weight.shape})")


def linear(x, weight, bias=None):
    """x @ weight^T + bias, with weight stored (out_features, in_features) as PyTorch (fused op)."""
    _check_linear(x, weight)
    return LinearOp.apply(x, weight) if bias is None else LinearOp.apply(x, weight, bias)


def linear_composite(x, weight, bias=None):
    """The same from primitives: matmul with the transposed weight, then add the bias."""
    _check_linear(x, weight)
    y = x @ weight.T
    return y + bias if bias is not None else y


def embedding(indices, weight, check_indices=True):
    """Rows of `weight` picked by integer `indices` (any shape) -> indices.shape + (dim,).

    Indices are range-checked (CuPy would silently wrap them); check_indices=False skips that when
    the caller has checked them already, which saves a device->host copy on a GPU."""
    idx = raw(indices, weight.device)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    return Embedding.apply(weight, indices=idx, checked=not check_indices)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """LayerNorm over the last dimension, fused (one op; backward derived in ops/fused.py)."""
    _check_normalized_shape(x, normalized_shape)
    if weight is None:
        xp = backend.get_array_module(x.device)
        weight = Tensor._from_array(xp.ones(x.shape[-1], dtype=x.dtype), x.device)
    if bias is None:
        return LayerNorm.apply(x, weight, bias=None, eps=eps)
    return LayerNorm.apply(x, weight, bias, eps=eps)


def _check_normalized_shape(x, normalized_shape):
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if len(shape) != 1 or x.shape[-1] != shape[0]:
        raise ValueError(f"layer_norm: normalizes the last dimension of size {shape}, "
                         f"but the input has shape {x.shape}")


def layer_norm_composite(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """LayerNorm from primitives: (x - mean) / sqrt(var + eps) * weight + bias."""
    _check_normalized_shape(x, normalized_shape)
    mu = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True, correction=0)
    y = (x - mu) / (var + eps).sqrt()
    if weight is not None:
        y = y * weight
    return y + bias if bias is not None else y


# ------------------------------------------------------------------ attention
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, return_weights=False):
    """softmax(q k^T * scale [+ causal mask]) v for (..., T, D) inputs, fused.

    `scale` defaults to 1/sqrt(D) as PyTorch. With ``return_weights=True`` also returns the
    attention weights (a detached Tensor (..., T, S)) for plotting.
    """
    _check_attention_shapes(query, key, value)
    if attn_mask is not None:     # an explicit boolean mask (True = may attend): the composite path
        return scaled_dot_product_attention_composite(query, key, value, is_causal, scale, dropout_p,
                                                      return_weights, attn_mask)
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    out = ScaledDotProductAttention.apply(query, key, value, is_causal=is_causal, scale=scale,
                                          dropout_p=dropout_p)
    if return_weights:
        weights = out._ctx.p if out._ctx is not None else None
        if weights is None:   # no graph (no_grad): recompute the weights to return them
            weights = scaled_dot_product_attention_composite(query, key, value, is_causal, scale,
                                                             return_weights=True)[1].data
        return out, Tensor._from_array(weights, out.device)
    return out


def causal_self_attention(qkv, n_head, scale=None, dropout_p=0.0):
    """Multi-head causal attention from a packed (B, T, 3C) q|k|v projection to (B, T, C), fused
    (heads split and merged inside the op; see ops/fused.py PackedCausalAttention)."""
    B, T, C3 = qkv.shape
    if C3 % (3 * n_head):
        raise ValueError(f"causal_self_attention: last dimension {C3} is not 3 * n_head * head_size")
    scale = (C3 // 3 // n_head) ** -0.5 if scale is None else scale
    return PackedCausalAttention.apply(qkv, n_head=n_head, scale=scale, dropout_p=dropout_p)


def _check_attention_shapes(q, k, v):
    if q.ndim < 2 or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: query {q.shape}, key {k.shape} and value "
                         f"{v.shape} must be (..., T, D), (..., S, D) and (..., S, Dv)")


def scaled_dot_product_attention_composite(query, key, value, is_causal=False, scale=None, dropout_p=0.0,
                                           return_weights=False, attn_mask=None):
    """The same attention from primitive ops: matmul, scale, masked_fill, softmax, dropout, matmul.
    attn_mask: an optional boolean (..., T, S) mask, True where a query may attend."""
    _check_attention_shapes(query, key, value)
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query @ key.transpose(-2, -1)) * scale
    if attn_mask is not None:
        scores = scores.masked_fill(~raw(attn_mask, query.device), -math.inf)
    if is_causal:
        future = causal_mask(backend.get_array_module(query.device), query.shape[-2], key.shape[-2])
        scores = scores.masked_fill(future, -math.inf)
    weights = scores.softmax(dim=-1)
    out = dropout(weights, dropout_p, training=dropout_p > 0) @ value
    return (out, weights.detach()) if return_weights else out


# ------------------------------------------------------------------ loss
def _flatten_for_loss(logits, target):
    t = raw(target, logits.device)
    if t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integer class ids, got dtype {t.dtype}")
    if tuple(t.shape) != logits.shape[:-1]:
        raise ValueError(f"cross_entropy: logits of shape {logits.shape} need targets of shape "
                         f"{logits.shape[:-1]}, got {tuple(t.shape)}")
    return logits.reshape(-1, logits.shape[-1]), t.reshape(-1)


def cross_entropy(input, target, ignore_index=-100, reduction="mean", check_indices=True):
    """Mean cross-entropy of logits (..., V) against integer targets (...), fused with softmax.
    (check_indices=False: the caller has range-checked the targets, as in embedding.)"""
    if reduction != "mean":
        raise ValueError(f"cross_entropy: only reduction='mean' is implemented, got {reduction!r}")
    logits, targets = _flatten_for_loss(input, target)
    return CrossEntropy.apply(logits, targets=targets, ignore_index=ignore_index, checked=not check_indices)


def cross_entropy_composite(input, target, ignore_index=-100):
    """The same loss from primitives: -mean(log_softmax(logits)[n, target_n]) over counted rows."""
    logits, targets = _flatten_for_loss(input, target)
    xp = backend.get_array_module(logits.device)
    counted = targets != ignore_index
    safe = xp.where(counted, targets, 0)
    checks.check_indices(xp, safe, logits.shape[-1], "cross_entropy targets")
    picked = log_softmax(logits, dim=-1)[xp.arange(logits.shape[0]), safe]
    weights = Tensor._from_array(counted.astype(logits.dtype) / max(int(counted.sum()), 1), logits.device)
    return -(picked * weights).sum()
