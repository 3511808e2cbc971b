"""Causal self-attention, two ways that compute the same function.

- ``Head`` + ``MultiHeadAttention``: the way the seed tutorial writes it, one small module per
  head (its own key/query/value Linear layers), heads run one after another, outputs concatenated
  and projected. Easy to read.
- ``CausalSelfAttention``: GPT-2's way, one Linear producing q, k and v for all heads at once
  ("c_attn"), heads as a batch dimension, one fused attention op. Faster.

With copied weights both give the same outputs and gradients (tests/test_layers.py).
Every attention module passes its weights (batch, heads, T, S) through a child ``attn_probs``
(AttentionProbs, an identity) when a forward hook is registered on it, and computes them only
then (the fused op keeps none): ``capture_attention(model)`` registers those hooks for one block.
"""
import contextlib

import numpy as np

from ..tensor import cat, stack
from . import functional as F
from .layers import Dropout, Linear
from .module import Module, ModuleList

# What a layer's attention weights mean, for whoever draws them (viz.attention_view): a model
# declares its kind as `attention_kind`.
CAUSAL, BIDIRECTIONAL, CROSS = "causal self-attention", "bidirectional self-attention", "cross-attention"


class KVCache:
    """Keys and values of the positions seen so far, for one attention layer during generation."""

    def __init__(self):
        self.k = self.v = None

    @property
    def length(self):
        return 0 if self.k is None else self.k.shape[-2]

    def append(self, k, v):
        """Add this step's (..., T_new, D) keys and values; return all of them so far."""
        if self.k is not None:
            k, v = cat([self.k, k], dim=-2), cat([self.v, v], dim=-2)
        self.k, self.v = k.detach(), v.detach()
        return k, v


class AttentionProbs(Module):
    """The softmax weights of an attention module, (batch, heads, queries, keys): an identity that
    the module calls only while a forward hook is registered here (``wanted``), so looking costs
    nothing when nobody looks and the fused ops run unchanged."""

    @property
    def wanted(self):
        return bool(self._forward_hooks)

    def forward(self, weights):
        return weights


@contextlib.contextmanager
def capture_attention(model):
    """``with capture_attention(model) as maps: model(...)``: maps[name] is the latest attention
    weights (NumPy, batch x heads x queries x keys) of each attention module of `model`, keyed by
    the module's name in ``named_modules()`` ("transformer.h.0.attn"), in the model's order. The
    hooks are removed on leaving the block."""
    maps, handles = {}, []

    def keep(name):
        def hook(module, args, output):
            maps[name] = output.detach().numpy()
        return hook
    try:
        for name, module in model.named_modules():
            if isinstance(module, AttentionProbs):
                owner = name.rpartition(".")[0]
                maps.setdefault(owner, None)                  # the model's order, whatever runs first
                handles.append(module.register_forward_hook(keep(owner)))
        yield maps
    finally:
        for handle in handles:
            handle.remove()


def cache_length(layer_cache):
    """Positions held by one layer's cache (per-head attention keeps one KVCache per head, all of
    the same length)."""
    return (layer_cache[0] if isinstance(layer_cache, list) else layer_cache).length


def attend_packed(qkv, n_head, scale, dropout_p=0.0, rotary=None, kv_cache=None, need_weights=False,
                  fused=True):
    """Multi-head causal attention from a packed (B, T, 3C) q|k|v projection to (B, T, C).

    Returns (output, attention weights or None). Without rotary positions, cache or stored weights
    the whole thing is one fused op; otherwise the heads are split out so that positions can rotate
    q and k, the cache can extend k and v, and the weights can be kept.
    """
    if fused and rotary is None and kv_cache is None and not need_weights:
        return F.causal_self_attention(qkv, n_head, scale, dropout_p), None
    B, T, C3 = qkv.shape
    start = 0 if kv_cache is None else kv_cache.length
    qkv = qkv.reshape(B, T, 3, n_head, C3 // 3 // n_head).permute(2, 0, 3, 1, 4)    # (3, B, H, T, D)
    q, k, v = qkv[0], qkv[1], qkv[2]
    if rotary is not None:
        q, k = rotary(q, start), rotary(k, start)
    if kv_cache is not None:
        k, v = kv_cache.append(k, v)
    # the T new queries are the last T of the keys (a cache holds the first ones): the causal mask
    # is aligned bottom-right, which PyTorch's is_causal (top-left) is not; see F.causal_attention
    attend = F.causal_attention if fused else F.causal_attention_composite
    y = attend(q, k, v, scale=scale, dropout_p=dropout_p, return_weights=need_weights)
    y, weights = y if need_weights else (y, None)
    return y.permute(0, 2, 1, 3).reshape(B, T, C3 // 3), weights                   # heads side by side


class Head(Module):
    """One head of causal self-attention (the seed's ``Head``): its own query, key, value."""

    def __init__(self, n_embd, head_size, block_size, dropout=0.0, bias=False, scale=None, rotary=None):
        super().__init__()
        self.key = Linear(n_embd, head_size, bias=bias)
        self.query = Linear(n_embd, head_size, bias=bias)
        self.value = Linear(n_embd, head_size, bias=bias)
        self.dropout = Dropout(dropout)
        self.block_size = block_size
        # the seed scales by n_embd**-0.5; "Attention is all you need" by head_size**-0.5
        self.scale = head_size ** -0.5 if scale is None else scale
        self.rotary = rotary

    def forward(self, x, kv_cache=None, need_weights=False):
        """(B, T, head_size); with need_weights, (that, the weights (B, T, S))."""
        start = 0 if kv_cache is None else kv_cache.length
        q, k, v = self.query(x), self.key(x), self.value(x)          # (B, T, head_size)
        if self.rotary is not None:
            q, k = self.rotary(q, start), self.rotary(k, start)
        if kv_cache is not None:
            k, v = kv_cache.append(k, v)
        p_drop = self.dropout.p if self.training else 0.0
        return F.causal_attention(q, k, v, scale=self.scale, dropout_p=p_drop,     # bottom-right: see attend_packed
                                  return_weights=need_weights)


class MultiHeadAttention(Module):
    """Several Heads side by side, concatenated, then projected back to n_embd (the seed's).

    ``forward_per_head`` runs the heads one by one, as the seed writes it. ``forward`` computes the
    same thing with all heads at once: it stacks the heads' query/key/value weights into one
    matrix (so the gradient flows back to each head's own weights through the concatenation) and
    runs one batched attention, which is several times faster on small heads. The parameters,
    their names and the result are the seed's either way (tests/test_layers.py).
    """

    def __init__(self, n_embd, n_head, block_size, dropout=0.0, qkv_bias=False, proj_bias=True,
                 scale=None, rotary=None, batched=True):
        super().__init__()
        head_size = n_embd // n_head
        self.heads = ModuleList([Head(n_embd, head_size, block_size, dropout, qkv_bias, scale, rotary)
                                 for _ in range(n_head)])
        self.c_proj = Linear(n_embd, n_embd, bias=proj_bias)
        self.dropout = Dropout(dropout)
        self.batched = batched
        self.attn_probs = AttentionProbs()

    def forward_per_head(self, x, kv_caches=None):
        caches = kv_caches if kv_caches is not None else [None] * len(self.heads)
        if self.attn_probs.wanted:
            outs, weights = zip(*[h(x, c, need_weights=True) for h, c in zip(self.heads, caches)])
            self.attn_probs(stack(weights, dim=1))
        else:
            outs = [h(x, c) for h, c in zip(self.heads, caches)]
        return self.dropout(self.c_proj(cat(outs, dim=-1)))

    def forward(self, x, kv_caches=None):
        if not self.batched or kv_caches is not None:
            return self.forward_per_head(x, kv_caches)
        heads, first = self.heads, self.heads[0]
        parts = [h.query for h in heads] + [h.key for h in heads] + [h.value for h in heads]
        weight = cat([p.weight for p in parts], dim=0)                         # (3 C, C)
        bias = cat([p.bias for p in parts], dim=0) if first.query.bias is not None else None
        p_drop = first.dropout.p if self.training else 0.0
        y, weights = attend_packed(F.linear(x, weight, bias), len(heads), first.scale, p_drop,
                                   rotary=first.rotary, need_weights=self.attn_probs.wanted)
        if weights is not None:
            self.attn_probs(weights)
        return self.dropout(self.c_proj(y))

    def new_cache(self):
        return [KVCache() for _ in self.heads]


class CausalSelfAttention(Module):
    """Batched multi-head causal self-attention with one fused qkv projection (GPT-2's ``attn``)."""

    def __init__(self, n_embd, n_head, block_size, dropout=0.0, bias=True, qkv_bias=None, scale=None,
                 rotary=None, fused=True):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} is not divisible by n_head={n_head}")
        self.n_head, self.n_embd = n_head, n_embd
        self.c_attn = Linear(n_embd, 3 * n_embd, bias=bias if qkv_bias is None else qkv_bias)
        self.c_proj = Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = Dropout(dropout)
        self.attn_dropout_p = dropout
        self.scale = (n_embd // n_head) ** -0.5 if scale is None else scale
        self.rotary = rotary
        self.fused = fused
        self.attn_probs = AttentionProbs()

    def forward(self, x, kv_cache=None):
        p_drop = self.attn_dropout_p if self.training else 0.0
        y, weights = attend_packed(self.c_attn(x), self.n_head, self.scale, p_drop, self.rotary, kv_cache,
                                   self.attn_probs.wanted, self.fused)
        if weights is not None:
            self.attn_probs(weights)
        return self.resid_dropout(self.c_proj(y))

    def new_cache(self):
        return KVCache()

    @classmethod
    def from_heads(cls, mha):
        """A CausalSelfAttention holding copies of a MultiHeadAttention's weights (for the tests
        and lessons that show both compute the same thing)."""
        first = mha.heads[0]
        n_head, n_embd = len(mha.heads), first.query.weight.shape[1]
        out = cls(n_embd, n_head, first.block_size, mha.dropout.p, bias=mha.c_proj.bias is not None,
                  qkv_bias=first.query.bias is not None, scale=first.scale, rotary=first.rotary)
        out.to(dtype=first.query.weight.dtype)
        w = np.concatenate([np.concatenate([h.query.weight.numpy() for h in mha.heads]),
                            np.concatenate([h.key.weight.numpy() for h in mha.heads]),
                            np.concatenate([h.value.weight.numpy() for h in mha.heads])])
        out.c_attn.weight.data[...] = w
        if first.query.bias is not None:
            out.c_attn.bias.data[...] = np.concatenate(
                [np.concatenate([getattr(h, n).bias.numpy() for h in mha.heads]) for n in ("query", "key", "value")])
        out.c_proj.weight.data[...] = mha.c_proj.weight.numpy()
        if mha.c_proj.bias is not None:
            out.c_proj.bias.data[...] = mha.c_proj.bias.numpy()
        return out
