"""Decoding an encoder-decoder model (models/seq2seq.py): greedy and beam search, batched, each
sequence stopping at its own EOS.

The source is encoded once. Each decoder layer then keeps two caches (nn/transformer.py):
- its self-attention's keys and values of the target positions so far (a ``KVCache``, as GPT's in
  generate.py), so a step runs only the newest token;
- its cross-attention's keys and values of the encoder's output (a ``StaticKV``), projected once
  per source, before the first step, and read by every step.
The logits with caches equal a full recompute at every step (tests/test_seq2seq_decode.py).

A sequence that has finished (greedy: it produced EOS; beam search: no live beam can beat its
finished hypotheses) leaves the batch: its rows of the memory and caches are dropped, so the
remaining ones decode alone. Outputs are the generated tokens (without BOS, with EOS when one was
produced), padded with pad_id to the longest: NumPy arrays.
"""
import math

import numpy as np

from .. import backend
from ..errors import ConfigError
from ..nn import eval_mode
from ..tensor import no_grad


class DecoderSteps:
    """The decoder run one step at a time over a set of rows (sequences or beams).

    step(tokens) takes every row's tokens so far (n, t), BOS first, and returns the log-probabilities
    of the next token (n, V) as float64 NumPy, -inf for PAD and BOS (not outputs, so a decoded row
    ends where its padding begins). select(rows) keeps (and repeats, reorders) rows of the
    memory and of the caches: beam search follows each surviving beam's parent with it."""

    def __init__(self, model, memory, src_padding, use_cache=True):
        self.model, self.memory, self.src_padding = model, memory, src_padding
        self.caches = model.new_decoder_caches(memory) if use_cache else None

    def step(self, tokens):
        new = tokens if self.caches is None else tokens[:, self.caches[0][0].length:]
        logits = self.model.decode(new, self.memory, self.src_padding, caches=self.caches)
        last = backend.to_numpy(logits.data[:, -1, :]).astype(np.float64)
        last = last - last.max(axis=1, keepdims=True)
        logp = last - np.log(np.exp(last).sum(axis=1, keepdims=True))            # log_softmax
        c = self.model.config
        logp[:, [c.pad_id, c.bos_id]] = -np.inf          # never outputs: padding marks the end of a row
        return logp

    def select(self, rows):
        rows = np.asarray(rows, dtype=np.int64)
        self.memory, self.src_padding = self.memory[rows], self.src_padding[rows]
        for self_kv, cross_kv in self.caches or ():
            if self_kv.k is not None:
                self_kv.k, self_kv.v = self_kv.k[rows], self_kv.v[rows]
            cross_kv.k, cross_kv.v = cross_kv.k[rows], cross_kv.v[rows]


def _check(model, max_new_tokens, beam_width=1):
    block = model.config.block_size
    max_new_tokens = block if max_new_tokens is None else max_new_tokens
    if not 1 <= max_new_tokens <= block:
        raise ConfigError(f"max_new_tokens must be in 1..block_size={block} (the decoder's positions), "
                          f"got {max_new_tokens}")
    if beam_width < 1:
        raise ConfigError(f"beam_width must be >= 1, got {beam_width}")
    return max_new_tokens


def _pad_rows(rows, pad_id):
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), pad_id, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def _source(src):
    src = np.asarray(backend.to_numpy(getattr(src, "data", src)))
    return src[None] if src.ndim == 1 else src


@no_grad()
def greedy_decode(model, src, max_new_tokens=None, use_cache=True):
    """The most likely next token, step after step, for each source of `src` (B, S) -> (B, L)."""
    c = model.config
    max_new_tokens = _check(model, max_new_tokens)
    with eval_mode(model):
        src = _source(src)
        memory, pad = model.encode(src)
        steps = DecoderSteps(model, memory, pad, use_cache)
        active = np.arange(len(src))                  # the sources still decoding, one row each
        tokens = np.full((len(src), 1), c.bos_id, dtype=np.int64)
        out = [[] for _ in src]
        for _ in range(max_new_tokens):
            nxt = steps.step(tokens).argmax(axis=1)
            for row, b in enumerate(active):
                out[b].append(int(nxt[row]))
            tokens = np.concatenate([tokens, nxt[:, None]], axis=1)
            going = nxt != c.eos_id                   # a source that produced EOS stops here
            if not going.all():
                if not going.any():
                    break
                active, tokens = active[going], tokens[going]
                steps.select(np.flatnonzero(going))
        return _pad_rows(out, c.pad_id)


def _best_possible(score, length, max_new_tokens, length_penalty):
    """The highest length-normalised score a live beam (log-probability `score`, `length` tokens so
    far) can still reach: its log-probability only falls, and it finishes with length + 1 to
    max_new_tokens tokens; score / L**penalty is monotone in L, so one of the ends is the best."""
    ends = (min(length + 1, max_new_tokens), max_new_tokens)
    return max(score / L ** length_penalty for L in ends)


@no_grad()
def beam_search(model, src, beam_width=4, max_new_tokens=None, length_penalty=1.0, early_stopping=False,
                num_return_sequences=1, use_cache=True):
    """Beam search for each source of `src` (B, S): returns (ids (B * n, L), scores (B * n,)),
    the n = num_return_sequences best hypotheses of each source, best first.

    Every step extends each of the beam_width live beams by every token and keeps the best
    beam_width extensions by summed log-probability (as Hugging Face's: of the 2 * beam_width best,
    those ending in EOS become finished hypotheses if they rank within beam_width, the others stay
    live). A finished hypothesis of L tokens (EOS included) scores sum log p / L**length_penalty
    (0: raw sum; > 0 favours longer outputs). A source stops once it holds beam_width finished
    hypotheses and, unless early_stopping, no live beam can still beat the worst of them (an exact
    bound, see _best_possible); at max_new_tokens the live beams are finished as they are. With
    beam_width 1 and early_stopping (or length_penalty 0) this is greedy decoding.
    """
    c = model.config
    max_new_tokens = _check(model, max_new_tokens, beam_width)
    K = beam_width
    if not 1 <= num_return_sequences <= K:
        raise ConfigError(f"num_return_sequences must be in 1..beam_width={K}, got {num_return_sequences}")
    with eval_mode(model):
        src = _source(src)
        B = len(src)
        memory, pad = model.encode(src)
        steps = DecoderSteps(model, memory, pad, use_cache)        # cross-attention K/V: once per source
        steps.select(np.repeat(np.arange(B), K))                    # ... then copied to its K beams
        active = list(range(B))
        tokens = np.full((B * K, 1), c.bos_id, dtype=np.int64)
        beam_scores = np.full((B, K), -math.inf)
        beam_scores[:, 0] = 0.0                  # one live beam at first (K equal ones would be K copies)
        finished = [[] for _ in range(B)]        # (normalised score, tokens) per source
        for t in range(max_new_tokens):         # t tokens generated so far
            logp = steps.step(tokens)
            V = logp.shape[1]
            last = t + 1 == max_new_tokens
            cand = (beam_scores.reshape(-1, 1) + logp).reshape(len(active), K * V)
            order = np.argsort(-cand, axis=1, kind="stable")[:, :2 * K]
            rows, next_tokens, next_scores, keep = [], [], [], []
            for i, b in enumerate(active):
                kept = []
                for rank, j in enumerate(order[i]):
                    score = cand[i, j]
                    if score == -math.inf or len(kept) == K:
                        break
                    parent, token = divmod(int(j), V)
                    row = i * K + parent
                    if token == c.eos_id:
                        if rank < K:
                            finished[b].append((score / (t + 1) ** length_penalty, [*tokens[row, 1:], token]))
                    else:
                        kept.append((row, token, score))
                if last:                                     # out of positions: finish the live beams
                    finished[b] += [(s / (t + 1) ** length_penalty, [*tokens[r, 1:], tok]) for r, tok, s in kept]
                finished[b].sort(key=lambda h: -h[0])
                if _source_done(finished[b], kept, K, t + 1, max_new_tokens, length_penalty, early_stopping, last):
                    continue
                keep.append(i)
                kept += [(i * K, c.pad_id, -math.inf)] * (K - len(kept))      # empty slots: never chosen
                for r, tok, s in kept:
                    rows.append(r), next_tokens.append(tok), next_scores.append(s)
            if not keep:
                break
            active = [active[i] for i in keep]
            tokens = np.concatenate([tokens[rows], np.asarray(next_tokens, dtype=np.int64)[:, None]], axis=1)
            beam_scores = np.asarray(next_scores).reshape(len(active), K)
            steps.select(rows)
        best = [h for b in range(B) for h in finished[b][:num_return_sequences]]
        return _pad_rows([h[1] for h in best], c.pad_id), np.array([h[0] for h in best])


def _source_done(finished, live, beam_width, length, max_new_tokens, length_penalty, early_stopping, last):
    """Whether a source's search is over after a step (`live`: its (row, token, score) beams)."""
    if last or not live:
        return True
    if len(finished) < beam_width:
        return False
    if early_stopping:
        return True
    best_live = max(s for _, _, s in live)
    return finished[beam_width - 1][0] >= _best_possible(best_live, length, max_new_tokens, length_penalty)


__all__ = ["DecoderSteps", "greedy_decode", "beam_search"]
