"""Using a trained encoder-decoder: text in, text out, and its exact-match score on a split.

    model, tok, _ = checkpoint.load_model("out/seq2seq-dates/best.npz")
    translate(model, tok, ["3rd of March 2021", "MAR 3 2021"])      # ['2021-03-03', '2021-03-03']
    exact_match(model, load_split("data/dates", "val"))             # 0.99..., greedy decoding

Any line gets a translation, never an error: characters outside the vocabulary (and the control
characters that stand for PAD, BOS and EOS) are left out, a source longer than the model's
positions is cut to them, and a line with nothing left translates to an empty line.
"""
import numpy as np

from ..data.pairs import PairBatches
from .beam_search import beam_search, greedy_decode


def clean_ids(model, tok, line):
    c = model.config
    specials = {c.pad_id, c.bos_id, c.eos_id}
    stoi = getattr(tok, "stoi", None)
    if stoi is not None:                       # a character vocabulary: drop what it cannot read
        ids = [stoi[ch] for ch in line if ch in stoi]
    else:
        try:
            ids = tok.encode(line)
        except Exception:                      # any tokenizer's refusal: nothing to translate
            ids = []
    return [i for i in ids if i not in specials and i < c.src_vocab_size][:c.block_size]


def _text(model, tok, row):
    c = model.config
    out = []
    for i in np.asarray(row).tolist():
        if i in (c.eos_id, c.pad_id):
            break
        out.append(i)
    return tok.decode([i for i in out if i != c.bos_id]).replace("\n", " ")


def translate(model, tok, lines, beam=1, batch_size=64, max_new_tokens=None):
    """One output string per input line: greedy decoding, or beam search with `beam` beams."""
    c = model.config
    sources = [clean_ids(model, tok, line) for line in lines]
    outputs = [""] * len(sources)
    todo = [i for i, s in enumerate(sources) if s]
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        width = max(len(sources[i]) for i in chunk)
        src = np.full((len(chunk), width), c.pad_id, dtype=np.int64)
        for row, i in enumerate(chunk):
            src[row, :len(sources[i])] = sources[i]
        if beam > 1:
            ids, _ = beam_search(model, src, beam_width=beam, max_new_tokens=max_new_tokens)
        else:
            ids = greedy_decode(model, src, max_new_tokens=max_new_tokens)
        for row, i in enumerate(chunk):
            outputs[i] = _text(model, tok, ids[row])
    return outputs


def exact_match(model, tokens, batch_size=256, beam=1):
    """The fraction of a pair split's (source BOS target EOS ...) sources whose decoding (greedy, or
    beam search) is exactly the target, EOS included."""
    c = model.config
    pairs = PairBatches(tokens, c.block_size, 1, pad_id=c.pad_id, bos_id=c.bos_id, eos_id=c.eos_id)
    right = 0
    for start in range(0, len(pairs), batch_size):
        src, _, tgt_out = pairs.rows(np.arange(start, min(start + batch_size, len(pairs))))
        width = tgt_out.shape[1]
        if beam > 1:
            ids, _ = beam_search(model, src, beam_width=beam, max_new_tokens=width)
        else:
            ids = greedy_decode(model, src, max_new_tokens=width)
        ids = np.pad(ids, ((0, 0), (0, max(0, width - ids.shape[1]))), constant_values=c.pad_id)[:, :width]
        right += int((ids == tgt_out).all(axis=1).sum())
    return right / len(pairs)
