"""What an encoder-decoder model (models/seq2seq.py) attends to: every attention weight of one
forward pass, and the alignment picture of a decode.

The layers ask their MultiheadAttention for no weights (need_weights=False: the fused op then
skips keeping them). To see them, each attention module is wrapped for one pass in a recorder
that asks for the per-head weights and keeps them: the numbers are those the model computes, with
no copy of its wiring to drift from it.

The alignment of a decode: greedy decoding produces y1..yn (EOS last), then one teacher-forced
pass over tgt_in = [BOS, y1, ..., y(n-1)] gives the cross-attention of the position that produced
each y_t: row t of the weights is "where in the source the decoder looked to write y_t". The pass
equals the decode's own steps (the caches give the same logits as a full recompute,
tests/test_seq2seq_decode.py), so these are the weights of the decode (tests/test_alignment.py
compares them with those recorded at each cached step).

    a, source_tokens, output_tokens = text_alignment(model, tok, "3 March 2021")
    a.cross        # (decoder layers, heads, len(output), len(source)); a.cross_mean: averaged
    viz.plot_alignment(a.cross, source_tokens, output_tokens, "alignment.png")
    alignment_view(a, source_tokens, output_tokens)     # interactive: cross, encoder, decoder sections
"""
import contextlib
from dataclasses import dataclass

import numpy as np

from .. import backend
from .attention_view import BIDIRECTIONAL, CAUSAL, CROSS, AttentionView
from ..errors import ConfigError
from ..nn import eval_mode, Module
from ..decoding.beam_search import greedy_decode
from ..tensor import no_grad
from ..decoding.translate import clean_ids


class _Recorder(Module):
    """Stands in for one MultiheadAttention for one pass: the same output, and its weights per head
    (N, H, L, S) kept in ``weights``."""

    def __init__(self, attention):
        super().__init__()
        self.attention, self.weights = attention, None

    def forward(self, query, key, value, **kwargs):
        out, weights = self.attention(query, key, value, **{**kwargs, "need_weights": True,
                                                              "average_attn_weights": False})
        self.weights = backend.to_numpy(weights.data)
        return out, None

    def project_kv(self, key, value=None):           # decoding's cross-attention cache, as the module's
        return self.attention.project_kv(key, value)


@contextlib.contextmanager
def record_attention(model):
    """Within the block every attention module of the Seq2Seq `model` keeps the per-head weights of
    its latest call: yields {"encoder": [...], "decoder": [...], "cross": [...]}, one _Recorder per
    layer (``.weights``: (N, H, L, S) NumPy). The modules are put back on leaving."""
    places = ([("encoder", layer, "self_attn") for layer in model.transformer.encoder.layers]
              + [("decoder", layer, "self_attn") for layer in model.transformer.decoder.layers]
              + [("cross", layer, "multihead_attn") for layer in model.transformer.decoder.layers])
    recorders = {"encoder": [], "decoder": [], "cross": []}
    try:
        for kind, layer, name in places:
            recorder = _Recorder(getattr(layer, name))
            setattr(layer, name, recorder)
            recorders[kind].append(recorder)
        yield recorders
    finally:
        for kind, layer, name in places:
            if isinstance(getattr(layer, name), _Recorder):
                setattr(layer, name, getattr(layer, name).attention)


def attention_weights(model, src, tgt_in):
    """Every attention weight of a Seq2Seq on src (B, S) and tgt_in (B, T), in eval mode (no
    dropout): a dict of NumPy arrays indexed [layer, batch, head, query, key]:
    "encoder" (encoder layers, B, H, S, S), "decoder" (decoder layers, B, H, T, T, causal) and
    "cross" (decoder layers, B, H, T, S: decoder queries, source keys)."""
    with eval_mode(model):
        with record_attention(model) as recorders, no_grad():
            model(src, tgt_in)
    return {kind: np.stack([r.weights for r in layers]) for kind, layers in recorders.items()}


@dataclass
class Alignment:
    """One decode and its attention. output: the produced ids (EOS last when produced); cross:
    (decoder layers, heads, len(output), S), row t = the source weights that produced output[t];
    encoder: (encoder layers, heads, S, S); decoder: (decoder layers, heads, len(output), len(output)),
    query t = the position that produced output[t], key u = the token fed in at position u
    (BOS, output[0], ...)."""
    source: np.ndarray
    output: np.ndarray
    cross: np.ndarray
    encoder: np.ndarray
    decoder: np.ndarray

    @property
    def cross_mean(self):
        """The cross-attention averaged over layers and heads: (len(output), S)."""
        return self.cross.mean(axis=(0, 1))


def alignment(model, src, max_new_tokens=None):
    """Greedy-decode one source (a 1-d id sequence, or (1, S)) and return its Alignment."""
    src = np.asarray(backend.to_numpy(getattr(src, "data", src))).reshape(1, -1)
    c = model.config
    output = greedy_decode(model, src, max_new_tokens)[0]
    output = output[output != c.pad_id]
    tgt_in = np.concatenate([[c.bos_id], output[:-1]]).astype(np.int64)[None]
    w = attention_weights(model, src, tgt_in)
    return Alignment(src[0], output, w["cross"][:, 0], w["encoder"][:, 0], w["decoder"][:, 0])


def text_alignment(model, tok, text, max_new_tokens=None):
    """The Alignment of a text (encoded as translate.py reads a line: characters the vocabulary
    lacks are left out), with its source tokens and output tokens as strings (EOS as '<eos>')."""
    ids = clean_ids(model, tok, text)
    if not ids:
        raise ConfigError(f"the text {text!r} holds no character of this model's vocabulary: nothing to align")
    a = alignment(model, np.array(ids), max_new_tokens)
    name = lambda i: "<eos>" if i == model.config.eos_id else tok.decode([int(i)])    # noqa: E731
    return a, [name(i) for i in a.source], [name(i) for i in a.output]


def alignment_view(a, source_tokens, output_tokens, bos="<bos>"):
    """An AttentionView of an Alignment: the cross-attention (output characters x source
    characters) first, then the encoder's and the decoder's self-attention as further sections."""
    fed = [bos] + list(output_tokens[:-1])          # the decoder's inputs, the keys of its self-attention
    return AttentionView.join(
        AttentionView(a.cross, output_tokens, source_tokens, kind=CROSS, name="cross-attention (decoder -> source)"),
        AttentionView(a.encoder, source_tokens, kind=BIDIRECTIONAL, name="encoder self-attention"),
        AttentionView(a.decoder, output_tokens, fed, kind=CAUSAL, name="decoder self-attention"))


__all__ = ["record_attention", "attention_weights", "Alignment", "alignment", "text_alignment", "alignment_view"]
