"""Sampling text from a GPT: greedy, temperature, top-k, top-p, with a KV cache.

Without a cache, every new token runs the whole context through the model again. With one, each
attention layer keeps the keys and values of the positions already seen, so a step only runs the
new token: its logits are the same as a full recompute (tests/test_generate.py).
"""
import math

import numpy as np

from .. import backend
from ..errors import ConfigError
from ..nn import eval_mode
from ..nn.attention import cache_length
from ..tensor import no_grad


def check_sampling(temperature=1.0, top_k=None, top_p=None, max_new_tokens=0, seed=None):
    """Raise ConfigError for a setting no sampler can use (checked before any token is produced)."""
    if max_new_tokens < 0:
        raise ConfigError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if not (temperature >= 0 and math.isfinite(temperature)):          # also refuses nan
        raise ConfigError(f"temperature must be >= 0 and finite, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")
    if isinstance(seed, (int, np.integer)) and seed < 0:
        raise ConfigError(f"seed must be >= 0 (NumPy's generators take no negative seed), got {seed}")


def sample_next(logits, temperature=1.0, top_k=None, top_p=None, rng=None):
    """Pick one token id per row of `logits` (B, V) (a NumPy array).

    temperature 0: the most likely token (greedy). Otherwise divide by the temperature, keep the
    top_k largest logits and/or the smallest set of tokens whose probability adds up to top_p
    (nucleus), renormalise, and draw.
    """
    logits = np.asarray(logits, dtype=np.float64)
    check_sampling(temperature, top_k, top_p)
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k is not None:
        k = min(top_k, logits.shape[-1])
        kth = np.partition(logits, -k, axis=-1)[:, -k][:, None]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    if top_p is not None:
        order = np.argsort(-probs, axis=-1, kind="stable")
        sorted_probs = np.take_along_axis(probs, order, -1)
        before = np.cumsum(sorted_probs, -1) - sorted_probs     # mass of the tokens ranked above
        keep_sorted = before < top_p                            # always keeps the first token
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, -1)
        probs = np.where(keep, probs, 0.0)
        probs /= probs.sum(-1, keepdims=True)
    rng = rng if rng is not None else np.random.default_rng()
    u = rng.random((probs.shape[0], 1))
    return np.minimum((np.cumsum(probs, -1) < u).sum(-1), probs.shape[-1] - 1)


@no_grad()
def generate(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, seed=None, use_cache=True,
             eos_token_id=None, streamer=None):
    """Continue token ids `idx` (B, T) by max_new_tokens; returns a NumPy array (B, T + new).

    Any model family whose forward maps (B, T) ids to (logits (B, T, V), loss) works; one with
    ``new_kv_caches()`` (GPT) also gets the KV cache. The context is cropped to the model's
    block_size. A recurrent model (``forward_with_state``, models/rnnlm.py) is not cropped: its
    state carries the whole text, and with use_cache it reads only the newest token each step.
    `seed` makes sampling repeatable. eos_token_id (an id or a list, as Hugging Face's): a row
    that produced one is finished and gets that id again at every later step; generation ends when
    every row is finished. streamer(ids): called with each step's new ids (B,), as they are made.
    """
    check_sampling(temperature, top_k, top_p, max_new_tokens, seed)
    with eval_mode(model):
        idx = np.asarray(backend.to_numpy(getattr(idx, "data", idx)), dtype=np.int64)
        if idx.ndim == 1:
            idx = idx[None]
        if idx.ndim != 2 or idx.shape[0] == 0 or idx.shape[1] == 0:
            raise ConfigError(f"generate needs at least one prompt of at least one token, shape (batch, time); "
                             f"got shape {idx.shape}")
        block = model.config.block_size
        recurrent = hasattr(model, "forward_with_state")             # its state, not a window, holds the past
        use_cache = use_cache and (recurrent or hasattr(model, "new_kv_caches"))  # else recompute
        rng = np.random.default_rng(seed)
        caches = state = None
        out = idx
        stops = None if eos_token_id is None else np.atleast_1d(np.asarray(eos_token_id, dtype=np.int64))
        finished = np.zeros(len(idx), dtype=bool)
        for _ in range(max_new_tokens):
            if recurrent:                                     # the state after out[:, :-1], or the whole text
                step_input = backend.to_device(out[:, -1:] if state is not None else out, model.device)
                logits, state = model.forward_with_state(step_input, state)
                state = state if use_cache else None
            else:
                if use_cache and caches is not None and cache_length(caches[0]) < block:
                    step_input = out[:, -1:]                     # only the newest token
                else:
                    caches = model.new_kv_caches() if use_cache else None
                    step_input = out[:, -block:]                  # (re)start from the cropped context
                step_input = backend.to_device(step_input, model.device)
                logits, _ = model(step_input, kv_caches=caches, last_only=True) if use_cache else model(step_input)
            last = backend.to_numpy(logits.data[:, -1, :])
            nxt = sample_next(last, temperature, top_k, top_p, rng)
            if stops is not None:
                nxt = np.where(finished, out[:, -1], nxt)        # a finished row repeats its stop id
                finished = finished | np.isin(nxt, stops)
            out = np.concatenate([out, nxt[:, None].astype(np.int64)], axis=1)
            if streamer is not None:
                streamer(nxt)
            if stops is not None and finished.all():
                break
        return out
