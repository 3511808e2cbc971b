"""The encoder-decoder Transformer ("Attention is all you need"), as ``torch.nn.Transformer``:
same constructor arguments, same forward arguments, same mask conventions, and parameter names
equal to PyTorch's state_dict, so weights move both ways (tests/test_transformer.py).

    src -> TransformerEncoder (self-attention, feed-forward) x N -> memory
    tgt -> TransformerDecoder (causal self-attention, cross-attention to memory, feed-forward) x N

Cross-attention is attention whose queries come from the decoder (T target positions) and whose
keys and values come from the encoder's output (S source positions): the same fused op as
self-attention, with T != S and no causal mask, only the source padding mask.

Masks, as PyTorch's nn.MultiheadAttention / nn.Transformer (not as F.scaled_dot_product_attention,
whose boolean mask is the opposite):
- a boolean mask is True where attending is NOT allowed (a padding position, a future token);
- a float mask is added to the scores (0 allowed, -inf not allowed);
- key_padding_mask (N, S) masks keys per sequence; attn_mask (L, S) or (N * num_heads, L, S)
  per query.
Inside the package there is one convention, the attention op's (F.scaled_dot_product_attention):
a boolean attn_mask is True where a key takes part, and key_padding_mask (batch, keys) is True at
padding. MultiheadAttention translates its PyTorch masks into it once (``_fused_masks``), BERT
passes its padding as key_padding_mask, and the op alone combines masks (booleans and-ed, floats
added). One difference: a query left with no key at all gets zeros here (as F.scaled_dot_product_attention),
where PyTorch's MultiheadAttention gives NaN.

Decoding (seq2seq_decode.py) reuses the layers with caches: the decoder's self-attention appends
each step's keys and values to a ``KVCache`` (nn/attention.py), and the cross-attention reads the
memory's keys and values from a ``StaticKV``, projected once per source.
"""
import copy
import math

import numpy as np

from .. import backend
from ..ops import causal_mask
from ..tensor import Tensor
from . import functional as F
from . import init
from .attention import AttentionProbs, KVCache
from .layers import Dropout, LayerNorm, Linear
from .module import Module, ModuleList, Parameter


def xavier_uniform_(p):
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (Glorot), as torch.nn.init.xavier_uniform_."""
    fan_out, fan_in = p.shape[0], int(np.prod(p.shape[1:]))
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return init.uniform_(p, -bound, bound)


class StaticKV:
    """Keys and values that do not grow: cross-attention's, projected from the encoder's output once
    per source and read by every decoding step (``MultiheadAttention.project_kv``)."""

    def __init__(self, k, v):
        self.k, self.v = k, v

    @property
    def length(self):
        return self.k.shape[-2]


def _mask_tensor(mask, device):
    if isinstance(mask, Tensor):
        return mask
    return Tensor(mask if hasattr(mask, "dtype") else np.asarray(mask), device=device)


def check_mask_dtype(mask, name):
    """PyTorch's rule for every attention mask: bool (True = masked out) or floating (added to the
    scores). An integer 0/1 mask, what a tokenizer returns, would be added as numbers (padding
    given most of the weight, a causal mask leaking the future), so it is refused, as PyTorch does."""
    if mask is None:
        return
    dtype = mask.dtype if hasattr(mask, "dtype") else np.asarray(mask).dtype      # (a list: NumPy's reading)
    if np.dtype(dtype).kind not in "bf":
        raise AssertionError(f"only bool and floating types of {name} are supported")


def _check_mha_inputs(query, key, value, key_padding_mask, attn_mask, num_heads):
    """PyTorch's _mha_shape_check: which ranks of key, value and the masks go with a batched (3-D)
    or an unbatched (2-D) query. Raised as PyTorch raises them (AssertionError, its messages)."""
    if query.ndim not in (2, 3):
        raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D "
                             "query tensor")
    rank = query.ndim                          # key and value have the query's rank, the padding one less
    kind = "batched (3-D)" if rank == 3 else "unbatched (2-D)"
    if key.ndim != rank or value.ndim != rank:
        raise AssertionError(f"For {kind} `query`, expected `key` and `value` to be {rank}-D but found "
                             f"{key.ndim}-D and {value.ndim}-D tensors respectively")
    if key_padding_mask is not None and key_padding_mask.ndim != rank - 1:
        raise AssertionError(f"For {kind} `query`, expected `key_padding_mask` to be `None` or {rank - 1}-D but "
                             f"found {key_padding_mask.ndim}-D tensor instead")
    if attn_mask is not None and attn_mask.ndim not in (2, 3):
        raise AssertionError(f"For {kind} `query`, expected `attn_mask` to be `None`, 2-D or 3-D but found "
                             f"{attn_mask.ndim}-D tensor instead")
    if rank == 2 and attn_mask is not None and attn_mask.ndim == 3:
        expected = (num_heads, query.shape[0], key.shape[0])
        if tuple(attn_mask.shape) != expected:
            raise AssertionError(f"Expected `attn_mask` shape to be {expected} but got {tuple(attn_mask.shape)}")


class MultiheadAttention(Module):
    """Multi-head attention as ``torch.nn.MultiheadAttention``: queries, keys and values projected
    by one packed ``in_proj_weight`` (3E, E) (rows q | k | v) and ``in_proj_bias``, the heads
    attended by the fused op, then ``out_proj``.

    forward(query, key, value) -> (attn_output, attn_weights or None), inputs (L, N, E) / (S, N, E),
    or (N, L, E) with batch_first=True, or unbatched (L, E). The returned weights (N, L, S) are
    averaged over heads (average_attn_weights=True) or per head (N, H, L, S); they are detached (a
    picture, not part of the graph) and taken before attention dropout.

    Ours, for decoding: ``kv_cache`` -- a ``KVCache`` (self-attention: this step's keys and values
    are appended, and the queries attend to all so far, the causal mask aligned bottom-right when
    is_causal) or a ``StaticKV`` (cross-attention: keys and values already projected; `key` and
    `value` are not read).
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("MultiheadAttention: add_bias_kv and add_zero_attn are not supported")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        F.check_dropout_p(dropout, "MultiheadAttention")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.batch_first = dropout, batch_first
        dtype = dtype or np.float32
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        # keys and values of the query's width: one packed (3E, E) projection; of other widths
        # (cross-attention to another model's states): three, (E, E), (E, kdim), (E, vdim)
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.zeros((3 * embed_dim, embed_dim), dtype=dtype))
            self.q_proj_weight = self.k_proj_weight = self.v_proj_weight = None
        else:
            self.q_proj_weight = Parameter(np.zeros((embed_dim, embed_dim), dtype=dtype))
            self.k_proj_weight = Parameter(np.zeros((embed_dim, self.kdim), dtype=dtype))
            self.v_proj_weight = Parameter(np.zeros((embed_dim, self.vdim), dtype=dtype))
            self.in_proj_weight = None
        self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, dtype=dtype)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        self.attn_probs = AttentionProbs()       # the weights per head, to a forward hook
        # PyTorch's _reset_parameters: Glorot for the projections, zero biases
        for weight in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            if weight is not None:
                xavier_uniform_(weight)
        if bias:
            init.zeros_(self.out_proj.bias)
        if device is not None:
            self.to(device)

    def extra_repr(self):
        dims = "" if self._qkv_same_embed_dim else f", kdim={self.kdim}, vdim={self.vdim}"
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}{dims}, batch_first={self.batch_first}"

    # ----------------------------------------------------------- projections
    def _split_heads(self, x):
        """(N, L, E) -> (N, H, L, D)."""
        N, L, _ = x.shape
        return x.reshape(N, L, self.num_heads, self.head_dim).permute(0, 2, 1, 3)

    def _rows(self, part):
        """The projection of part 0 (q), 1 (k) or 2 (v): the packed weight's rows (or, with kdim /
        vdim, its own weight), and its slice of the bias."""
        E = self.embed_dim
        b = self.in_proj_bias
        weight = self.in_proj_weight[part * E:(part + 1) * E] if self._qkv_same_embed_dim else \
            (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[part]
        return weight, None if b is None else b[part * E:(part + 1) * E]

    def _check_key_value(self, q_in, key, value):
        """key and value agree with each other and with the query (batch) and with kdim / vdim."""
        if self._qkv_same_embed_dim and tuple(key.shape) != tuple(value.shape):
            raise AssertionError(f"key shape {tuple(key.shape)} does not match value shape {tuple(value.shape)}")
        if tuple(key.shape[:-1]) != tuple(value.shape[:-1]):
            raise AssertionError(f"key's sequence and batch dims {tuple(key.shape[:-1])} do not match value's "
                                 f"{tuple(value.shape[:-1])}")
        for name, x, width in (("key", key, self.kdim), ("value", value, self.vdim)):
            if x.shape[-1] != width:
                raise AssertionError(f"was expecting {name} dimension of {width}, but got {x.shape[-1]}")
        if key.ndim == 3:
            batch = key.shape[0] if self.batch_first else key.shape[1]
            if batch != q_in.shape[0]:
                raise AssertionError(f"query has batch size {q_in.shape[0]} but key and value have {batch}")

    def _batch_first(self, x):
        if x.ndim == 2:
            return x.unsqueeze(0)
        return x if self.batch_first else x.transpose(0, 1)

    def project_kv(self, key, value=None):
        """Keys and values of `key` / `value` (this module's layout) split into heads, (N, H, S, D),
        as a StaticKV: cross-attention's cache, computed once per source."""
        return StaticKV(*self._project_kv(self._batch_first(key), None if value is None or value is key
                                          else self._batch_first(value)))

    def _project_kv(self, key, value):
        if value is None and self._qkv_same_embed_dim:      # one product for both when key is value
            E = self.embed_dim
            b = self.in_proj_bias
            kv = F.linear(key, self.in_proj_weight[E:], None if b is None else b[E:])
            return self._split_heads(kv[..., :E]), self._split_heads(kv[..., E:])
        value = key if value is None else value
        return self._split_heads(F.linear(key, *self._rows(1))), self._split_heads(F.linear(value, *self._rows(2)))

    def _fused_masks(self, attn_mask, key_padding_mask, shape, dtype):
        """PyTorch's nn.MultiheadAttention masks in the one convention of the attention op
        (F.scaled_dot_product_attention), which combines them: a boolean attn_mask flipped to True =
        the key takes part (float masks are added as they are), a 3-d one (N * H, L, S) as (N, H, L,
        S); key_padding_mask (N, S) keeps its meaning (True = padding), as (1, S) when unbatched."""
        N, L, S = shape
        mask = padding = None
        if attn_mask is not None:
            mask = attn_mask
            expected = (L, S) if mask.ndim == 2 else (N * self.num_heads, L, S)
            if tuple(mask.shape) != expected:
                raise RuntimeError(f"The shape of the {mask.ndim}D attn_mask is {tuple(mask.shape)}, but should be "
                                   f"{expected}.")
            mask = mask.reshape(N, self.num_heads, L, S) if mask.ndim == 3 else mask
            mask = ~mask if mask.dtype == bool else mask.to(dtype=dtype) if mask.dtype != dtype else mask
        if key_padding_mask is not None:
            padding = key_padding_mask
            padding = padding.reshape(1, -1) if padding.ndim == 1 else padding       # unbatched: (S,)
            for axis, size in enumerate((N, S)):     # a (S, N) mask must not be read as (N, S)
                if padding.shape[axis] != size:
                    raise AssertionError(f"Expected key_padded_mask.shape[{axis}] to be {size}, but got "
                                         f"{padding.shape[axis]}")
            padding = padding.to(dtype=dtype) if padding.dtype not in (bool, dtype) else padding
        return mask, padding

    # ----------------------------------------------------------- forward
    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False, kv_cache=None):
        check_mask_dtype(key_padding_mask, "key_padding_mask")
        check_mask_dtype(attn_mask, "attn_mask")
        key_padding_mask = None if key_padding_mask is None else _mask_tensor(key_padding_mask, query.device)
        attn_mask = None if attn_mask is None else _mask_tensor(attn_mask, query.device)
        if not isinstance(kv_cache, StaticKV):
            _check_mha_inputs(query, key, value, key_padding_mask, attn_mask, self.num_heads)
        batched = query.ndim == 3
        self_attention = key is query and value is query
        q_in = self._batch_first(query)
        N, L, E = q_in.shape
        if E != self.embed_dim:
            raise AssertionError(f"was expecting embedding dimension of {self.embed_dim}, but got {E}")
        if not isinstance(kv_cache, StaticKV):
            self._check_key_value(q_in, key, value)
        if self_attention and self._qkv_same_embed_dim and not isinstance(kv_cache, StaticKV):   # one product
            qkv = F.linear(q_in, self.in_proj_weight, self.in_proj_bias)
            q, k, v = (self._split_heads(qkv[..., i * E:(i + 1) * E]) for i in range(3))
        else:
            q = self._split_heads(F.linear(q_in, *self._rows(0)))
            if isinstance(kv_cache, StaticKV):
                k, v = kv_cache.k, kv_cache.v
            else:
                k, v = self._project_kv(self._batch_first(key), None if value is key else self._batch_first(value))
        dropout_p = self.dropout if self.training else 0.0
        caller_weights, need_weights = need_weights, need_weights or self.attn_probs.wanted
        if isinstance(kv_cache, KVCache):
            if attn_mask is not None or key_padding_mask is not None:
                raise NotImplementedError("MultiheadAttention: with a KVCache give is_causal=True, not masks")
            k, v = kv_cache.append(k, v)
            attend = F.causal_attention if is_causal else F.scaled_dot_product_attention
            y = attend(q, k, v, dropout_p=dropout_p, return_weights=need_weights)
        else:
            S = k.shape[-2]
            causal_only = is_causal and attn_mask is None and key_padding_mask is None
            if is_causal and attn_mask is None and not causal_only:   # PyTorch demands the mask with the hint
                attn_mask = Tensor._from_array(causal_mask(backend.get_array_module(q.device), L, S), q.device)
            mask, padding = self._fused_masks(attn_mask, key_padding_mask, (N, L, S), q.dtype)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, key_padding_mask=padding, dropout_p=dropout_p,
                                               is_causal=causal_only, return_weights=need_weights)
            # (causal_only: no T x S mask is made)
        y, weights = y if need_weights else (y, None)
        if self.attn_probs.wanted:                      # per head, (N, H, L, S), to a forward hook
            self.attn_probs(weights)
        if not caller_weights:
            weights = None
        out = self.out_proj(y.permute(0, 2, 1, 3).reshape(N, L, E))      # heads side by side
        if not batched:
            out = out.reshape(L, E)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if weights is not None:
            if average_attn_weights:
                weights = weights.mean(dim=1)
            if not batched:
                weights = weights.reshape(weights.shape[1:])
        return out, weights


def _activation(activation):
    if callable(activation):
        return activation
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    raise ValueError(f"activation should be relu/gelu, not {activation!r}")


class _FeedForward(Module):
    """Shared by both layers: the position-wise feed-forward block and the residual wiring."""

    def _ff_block(self, x, dropout_after):
        return dropout_after(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def _make_feed_forward(self, d_model, dim_feedforward, dropout, activation, bias, dtype):
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.activation = _activation(activation)


class TransformerEncoderLayer(_FeedForward):
    """Self-attention then feed-forward, each with a residual connection and a LayerNorm:

        norm_first=False (post-LN, the paper's):  x = norm1(x + sa(x));  x = norm2(x + ff(x))
        norm_first=True  (pre-LN, GPT-2's):       x = x + sa(norm1(x));  x = x + ff(norm2(x))
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype)
        self._make_feed_forward(d_model, dim_feedforward, dropout, activation, bias, dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1, self.dropout2 = Dropout(dropout), Dropout(dropout)
        if device is not None:
            self.to(device)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        check_mask_dtype(src_mask, "src_mask")
        check_mask_dtype(src_key_padding_mask, "src_key_padding_mask")
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x), self.dropout2)
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x, self.dropout2))

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        y, _ = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                              is_causal=is_causal)
        return self.dropout1(y)


class TransformerDecoderLayer(_FeedForward):
    """Causal self-attention, cross-attention to the encoder's output (memory), feed-forward:

        norm_first=False:  x = norm1(x + sa(x));  x = norm2(x + mha(x, memory));  x = norm3(x + ff(x))
        norm_first=True:   x = x + sa(norm1(x));  x = x + mha(norm2(x), memory);  x = x + ff(norm3(x))

    `cache` (ours, for decoding): (KVCache for the self-attention, StaticKV of the memory for the
    cross-attention); `tgt` then holds only the new positions.
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                 batch_first=batch_first, dtype=dtype)
        self._make_feed_forward(d_model, dim_feedforward, dropout, activation, bias, dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1, self.dropout2, self.dropout3 = Dropout(dropout), Dropout(dropout), Dropout(dropout)
        if device is not None:
            self.to(device)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False, cache=None):
        check_mask_dtype(tgt_mask, "tgt_mask")
        check_mask_dtype(memory_mask, "memory_mask")
        check_mask_dtype(tgt_key_padding_mask, "tgt_key_padding_mask")
        check_mask_dtype(memory_key_padding_mask, "memory_key_padding_mask")
        self_cache, memory_cache = (None, None) if cache is None else cache
        x = tgt
        sa = lambda h: self._sa_block(h, tgt_mask, tgt_key_padding_mask, tgt_is_causal, self_cache)     # noqa: E731
        mha = lambda h: self._mha_block(h, memory, memory_mask, memory_key_padding_mask,              # noqa: E731
                                        memory_is_causal, memory_cache)
        if self.norm_first:
            x = x + sa(self.norm1(x))
            x = x + mha(self.norm2(x))
            return x + self._ff_block(self.norm3(x), self.dropout3)
        x = self.norm1(x + sa(x))
        x = self.norm2(x + mha(x))
        return self.norm3(x + self._ff_block(x, self.dropout3))

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal, cache):
        y, _ = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                              is_causal=is_causal, kv_cache=cache)
        return self.dropout1(y)

    def _mha_block(self, x, memory, attn_mask, key_padding_mask, is_causal, cache):
        y, _ = self.multihead_attn(x, memory, memory, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                   need_weights=False, is_causal=is_causal, kv_cache=cache)
        return self.dropout2(y)


class TransformerEncoder(Module):
    """num_layers copies of `encoder_layer` (deep copies, as PyTorch), then an optional `norm`."""

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        """is_causal (PyTorch's hint that `mask` is the causal mask) matters only without a mask: then
        the causal mask is made here. (PyTorch inspects the mask to set the hint; a given mask is
        used as it is here, so there is nothing to detect.)"""
        check_mask_dtype(mask, "mask")
        check_mask_dtype(src_key_padding_mask, "src_key_padding_mask")
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        return x if self.norm is None else self.norm(x)


class TransformerDecoder(Module):
    """num_layers copies of `decoder_layer`, then an optional `norm`. `caches` (ours, for decoding):
    one (KVCache, StaticKV) per layer, see ``new_caches``."""

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False, caches=None):
        check_mask_dtype(tgt_mask, "tgt_mask")
        check_mask_dtype(memory_mask, "memory_mask")
        check_mask_dtype(tgt_key_padding_mask, "tgt_key_padding_mask")
        check_mask_dtype(memory_key_padding_mask, "memory_key_padding_mask")
        tgt_is_causal = True if caches is not None else tgt_is_causal
        x = tgt
        for i, layer in enumerate(self.layers):
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask, tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=bool(tgt_is_causal),
                      memory_is_causal=memory_is_causal, cache=None if caches is None else caches[i])
        return x if self.norm is None else self.norm(x)

    def new_caches(self, memory):
        """Per layer: an empty KVCache for the self-attention and the memory's keys and values,
        projected now, once, for the cross-attention."""
        return [(KVCache(), layer.multihead_attn.project_kv(memory)) for layer in self.layers]


class Transformer(Module):
    """``torch.nn.Transformer``: a TransformerEncoder and a TransformerDecoder, each ending with a
    LayerNorm (``encoder.norm``, ``decoder.norm``); every matrix Glorot-initialised as PyTorch's."""

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6, dim_feedforward=2048,
                 dropout=0.1, activation="relu", custom_encoder=None, custom_decoder=None, layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        layer_args = dict(dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                          layer_norm_eps=layer_norm_eps, batch_first=batch_first, norm_first=norm_first, bias=bias,
                          dtype=dtype)
        self.encoder = custom_encoder if custom_encoder is not None else TransformerEncoder(
            TransformerEncoderLayer(d_model, nhead, **layer_args), num_encoder_layers,
            LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
        self.decoder = custom_decoder if custom_decoder is not None else TransformerDecoder(
            TransformerDecoderLayer(d_model, nhead, **layer_args), num_decoder_layers,
            LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
        for p in self.parameters():
            if p.ndim > 1:
                xavier_uniform_(p)
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first
        if device is not None:
            self.to(device)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        check_mask_dtype(src_mask, "src_mask")
        check_mask_dtype(tgt_mask, "tgt_mask")
        check_mask_dtype(memory_mask, "memory_mask")
        check_mask_dtype(src_key_padding_mask, "src_key_padding_mask")
        check_mask_dtype(tgt_key_padding_mask, "tgt_key_padding_mask")
        check_mask_dtype(memory_key_padding_mask, "memory_key_padding_mask")
        batch_axis = 0 if self.batch_first else 1
        if src.ndim == 3 and src.shape[batch_axis] != tgt.shape[batch_axis]:
            raise RuntimeError("the batch number of src and tgt must be equal")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError("the feature number of src and tgt must be equal to d_model")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                            memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz, device=None, dtype=None):
        """A (sz, sz) float mask: -inf above the diagonal (the future), 0 elsewhere."""
        dtype = dtype or np.float32
        mask = np.where(np.triu(np.ones((sz, sz), dtype=bool), 1), -np.inf, 0.0).astype(dtype)
        return Tensor(mask, device=device)
