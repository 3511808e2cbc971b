"""What an encoder-decoder model (models/seq2seq.py) attends to: every attention weight of one
forward pass, and the alignment picture of a decode.

The layers ask their MultiheadAttention for no weights (need_weights=False: the fused op then
skips keeping them). To see them, a forward hook on each module's ``attn_probs`` asks for the
per-head weights for one pass (nn.capture_attention): the numbers are those the model computes,
with no copy of its wiring to drift from it.

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
from ..nn import capture_attention, eval_mode
from ..decoding.beam_search import greedy_decode
from ..tensor import no_grad
from ..decoding.translate import clean_ids


# which attention of a Seq2Seq a module is, by its name in named_modules()
_KINDS = {"encoder": ".encoder.layers.", "decoder": ".decoder.layers.", "cross": ".decoder.layers."}
_ATTENTION = {"encoder": "self_attn", "decoder": "self_attn", "cross": "multihead_attn"}


class LatestWeights:
    """One attention module's weights from its latest call inside record_attention: ``.weights``,
    (N, H, L, S) NumPy, per head."""

    def __init__(self, maps, name):
        self.maps, self.name = maps, name

    @property
    def weights(self):
        return self.maps[self.name]


@contextlib.contextmanager
def record_attention(model):
    """Within the block every attention module of the Seq2Seq `model` hands the per-head weights of
    its latest call to a forward hook (nn.capture_attention): yields {"encoder": [...], "decoder":
    [...], "cross": [...]}, one LatestWeights per layer. The hooks are removed on leaving."""
    with capture_attention(model) as maps:
        yield {kind: [LatestWeights(maps, name) for name in maps
                      if _KINDS[kind] in name and name.rpartition(".")[2] == _ATTENTION[kind]]
               for kind in _KINDS}


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


__all__ = ["record_attention", "LatestWeights", "attention_weights", "Alignment", "alignment", "text_alignment", "alignment_view"]
