"""Interactive attention views, after bertviz: one self-contained HTML page (no external script,
style or font, so it works on offline compute nodes), shown inline in Jupyter or saved to a file.

- The head view puts the query tokens in a left column and the key tokens in a right one and
  draws a line from each query to each key it attends to, as opaque as the weight, one colour per
  head. Hovering or focusing a token keeps only its lines; a click (or Enter) pins it.
- The model view is a grid of layers x heads, each head a small picture of its weights (rows:
  queries, columns: keys); selecting one opens it in the head view.

The data are generic: sections, each a list of layers holding (heads, T_query, T_key) weights,
its query tokens and key tokens (the same for self-attention, different for cross-attention) and
a kind. A model family plugs in by handing its weights to ``AttentionView``; a model with an
``attention_maps(idx)`` method (the GPT) goes through ``attention_view(model, tokenizer, text)``.

The page reads its first state (view, layer, heads, pinned token) from the URL fragment, e.g.
``view.html#view=head&layer=3&heads=0,5&token=q4``, through the same ``setState`` that clicks and
keys call: that is how the browser tests drive it.
"""
import html
import json
import os
import pathlib

import numpy as np

from ..errors import ConfigError
from ..nn import eval_mode
from ..nn.attention import BIDIRECTIONAL, CAUSAL, CROSS
KINDS = (CAUSAL, BIDIRECTIONAL, CROSS)
SCALE = 1000               # weights travel as whole thousandths: 3 decimals, a few bytes each
MAX_WEIGHTS = 4_000_000    # about 12 MB of page; more would stall the browser, not show anything


class AttentionView:
    """Attention weights and their tokens, drawn as an interactive page.

    weights: (layers, heads, T_query, T_key), or a list with one (heads, T_query, T_key) array per
    layer; query_tokens: the T_query strings; key_tokens: the T_key strings (default: the query
    tokens, as in self-attention); kind: one of KINDS. ``view.weights`` keeps the arrays as given
    (the page rounds them to 3 decimals); ``view.save(path)`` writes the page; in a notebook the
    view shows itself (``_repr_html_``).
    """

    def __init__(self, weights, query_tokens, key_tokens=None, kind=CAUSAL, name=None):
        self.sections = [_section(weights, query_tokens, key_tokens, kind, name)]

    @classmethod
    def join(cls, *views):
        """One page with several sets of weights, chosen from a menu (an encoder-decoder's encoder
        self-attention, decoder self-attention and cross-attention)."""
        joined = cls.__new__(cls)
        joined.sections = [s for v in views for s in v.sections]
        if not joined.sections:
            raise ConfigError("AttentionView.join needs at least one view")
        return joined

    @property
    def weights(self):
        """The first section's weights: an array (layers, heads, T_query, T_key) when every layer
        has the same number of heads, else the list of per-layer arrays."""
        layers = self.sections[0]["layers"]
        return np.stack(layers) if len({w.shape for w in layers}) == 1 else list(layers)

    def __repr__(self):
        parts = [f"{s['kind']}: {len(s['layers'])} layers x {s['layers'][0].shape[0]} heads, "
                 f"{len(s['query_tokens'])} x {len(s['key_tokens'])} tokens" for s in self.sections]
        return f"AttentionView({'; '.join(parts)})"

    def _fragment(self, page):
        """The view as one <div> holding its style, data and script (an id of its own, so that
        several views in one notebook do not meet)."""
        total = sum(w.size for s in self.sections for w in s["layers"])
        if total > MAX_WEIGHTS:          # the arrays stay usable (view.weights); only the page is refused
            raise ConfigError(f"{total:,} attention weights are too many for one page (at most {MAX_WEIGHTS:,}); "
                              "use a shorter prompt or fewer layers")
        uid = "tlv-" + os.urandom(5).hex()
        data = {"scale": SCALE, "page": page, "sections": [_section_data(s) for s in self.sections]}
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        # inside <script> only "</script" or "<!--" could end it early: escape every < > & instead
        payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        return (f'<div class="tlv" id="{uid}">\n<style>{_CSS}</style>\n'
                f'<p class="tlv-loading">Attention view: this needs JavaScript '
                f'(in Jupyter, trust the notebook).</p>\n'
                f'<script type="application/json" class="tlv-data">{payload}</script>\n'
                f'<script>{_JS.replace("__ROOT_ID__", uid)}</script>\n</div>')

    def to_html(self, title=None):
        """A whole page: what ``save`` writes and a browser opens from a file."""
        title = html.escape(title or f"attention: {self.sections[0]['kind']}")
        return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
                f'<title>{title}</title>\n</head>\n<body>\n{self._fragment(page=True)}\n</body>\n</html>\n')

    def save(self, path, title=None):
        path = pathlib.Path(path)
        path.write_text(self.to_html(title), encoding="utf-8")
        return path

    def _repr_html_(self):
        return self._fragment(page=False)


def attention_view(model, tokenizer, text, name=None):
    """The attention view of a model with ``attention_maps(idx)`` (the GPT, GPT-2's weights) on a
    text: the weights the model computes for the text's tokens, every layer and head. The model's
    ``attention_kind`` says which kind it is (default: causal self-attention)."""
    if not hasattr(model, "attention_maps"):
        raise ConfigError(f"a {type(model).__name__} model has no attention to show")
    if not text:
        raise ConfigError("the prompt is empty; an attention view needs at least one token")
    ids = list(tokenizer.encode(text))
    if not ids:
        raise ConfigError(f"the prompt {text!r} encodes to no tokens; an attention view needs at least one")
    context = getattr(getattr(model, "config", None), "block_size", None)
    if context is not None and len(ids) > context:
        raise ConfigError(f"the prompt is {len(ids)} tokens long, more than this model's context of {context} "
                          "(block_size); shorten it")
    with eval_mode(model):  # dropout off: the weights the model computes when it predicts
        weights = model.attention_maps(np.array([ids]))[:, 0]      # (layers, heads, T, T) of batch row 0
    tokens = [tokenizer.decode([i]) for i in ids]
    return AttentionView(weights, tokens, kind=getattr(model, "attention_kind", CAUSAL), name=name)


def _section(weights, query_tokens, key_tokens, kind, name):
    """Check one set of weights against its tokens; a problem is a ConfigError naming it."""
    if kind not in KINDS:
        raise ConfigError(f"kind {kind!r} is not one of {KINDS}")
    query_tokens = [str(t) for t in query_tokens]
    key_tokens = query_tokens if key_tokens is None else [str(t) for t in key_tokens]
    if not query_tokens or not key_tokens:
        raise ConfigError("an attention view needs at least one query token and one key token")
    try:                                          # the model's own numbers and dtype, kept for .weights
        layers = [w if w.dtype.kind == "f" else w.astype(np.float64) for w in map(np.asarray, weights)]
    except (TypeError, ValueError) as e:
        raise ConfigError(f"attention weights must be arrays of numbers ({e})") from None
    if not layers:
        raise ConfigError("an attention view needs at least one layer of weights")
    shape = (len(query_tokens), len(key_tokens))
    for i, w in enumerate(layers):
        if w.ndim != 3 or w.shape[1:] != shape or w.shape[0] < 1:
            raise ConfigError(f"layer {i}: weights of shape {w.shape}; expected (heads, {shape[0]}, {shape[1]}) "
                              f"for {shape[0]} query and {shape[1]} key tokens")
        if not np.all(np.isfinite(w)):
            raise ConfigError(f"layer {i}: attention weights must be finite and in [0, 1] "
                              f"({int((~np.isfinite(w)).sum())} are NaN or infinite)")
        if w.min() < -1e-6 or w.max() > 1 + 1e-6:
            raise ConfigError(f"layer {i}: attention weights must be in [0, 1] (found {w.min():.3g} .. {w.max():.3g})")
    return {"name": name or kind, "kind": kind, "query_tokens": query_tokens, "key_tokens": key_tokens,
            "layers": layers}


def _section_data(s):
    """What the page's script reads: weights in whole thousandths, per layer, per head, row-major."""
    return {"name": s["name"], "kind": s["kind"], "query_tokens": s["query_tokens"],
            "key_tokens": s["key_tokens"], "heads": [w.shape[0] for w in s["layers"]],
            "weights": [np.rint(np.clip(w, 0, 1) * SCALE).astype(np.int64).reshape(w.shape[0], -1).tolist()
                        for w in s["layers"]]}


# the page's style and script are files of their own beside this module (package data), read once
_ASSETS = pathlib.Path(__file__).with_name("assets")
_CSS = (_ASSETS / "attention_view.css").read_text(encoding="utf-8")
_JS = (_ASSETS / "attention_view.js").read_text(encoding="utf-8")
