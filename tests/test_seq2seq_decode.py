"""Decoding a Seq2Seq model (decoding/beam_search.py): caches, greedy, beam search, per-sequence stop.

1. with caches (decoder self-attention KVCache, cross-attention keys/values projected once) the
   logits equal a full recompute at every step, also after beam search reorders the rows;
2. greedy == beam search of width 1;
3. beam search wide enough to keep every prefix finds the sequence exhaustive search finds (the
   best length-normalised score over every possible output), for several length penalties;
4. in a batch each source stops at its own EOS, and gets what it gets decoded alone.
The bodies run on every device (cpu, strict, cuda).
"""
import itertools

import numpy as np
import pytest

import tinygrad_lm as tg
from tinygrad_lm import backend
from tinygrad_lm.errors import ConfigError
from tinygrad_lm.models import Seq2Seq, Seq2SeqConfig
from tinygrad_lm.decoding.beam_search import DecoderSteps, _best_possible, beam_search, greedy_decode
from tinygrad_lm.tensor import no_grad

PAD, BOS, EOS = 0, 1, 2


def model_for(device, seed=0, tgt_vocab_size=8, block_size=6, peaky=3.0, **kw):
    """A small random model whose outputs end at various lengths: the head is scaled up (peaky,
    not uniform distributions) and EOS's row is shifted so that EOS is neither always nor never likely."""
    tg.manual_seed(seed)
    cfg = Seq2SeqConfig(**{**dict(src_vocab_size=10, tgt_vocab_size=tgt_vocab_size, block_size=block_size,
                                  d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=2,
                                  dim_feedforward=16, dropout=0.0, tie_weights=False), **kw})
    model = Seq2Seq(cfg).to(dtype=np.float64)
    model.lm_head.weight.data *= peaky
    return model.to(device).eval()


SOURCES = np.array([[3, 4, 5, 6, EOS], [7, 8, EOS, PAD, PAD], [9, 3, 3, EOS, PAD], [4, 4, 4, 4, 4],
                    [5, 9, EOS, PAD, PAD], [6, 3, 8, 7, EOS]])


def log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@no_grad()
def sequence_logprob(model, src, ys):
    """Sum of log p(y_t | y_<t, src) for each output ys (a list of token lists), by teacher forcing."""
    width = max(len(y) for y in ys)
    tgt_in = np.full((len(ys), width), PAD)
    for i, y in enumerate(ys):
        tgt_in[i, :len(y)] = [BOS, *y[:-1]]
    logits, _ = model(np.repeat(src[None], len(ys), 0), tgt_in)
    lp = log_softmax(logits.numpy())
    return np.array([lp[i, np.arange(len(y)), y].sum() for i, y in enumerate(ys)])


# ------------------------------------------------------------------ 1. caches
def test_cached_logits_equal_uncached_at_every_step(device):
    model = model_for(device)
    src = SOURCES[:3]
    rng = np.random.default_rng(0)
    targets = np.concatenate([np.full((3, 1), BOS), rng.integers(3, 8, size=(3, 5))], axis=1)
    with no_grad():
        memory, pad = model.encode(src)
        cached = DecoderSteps(model, memory, pad, use_cache=True)
        plain = DecoderSteps(model, memory, pad, use_cache=False)
        for t in range(1, targets.shape[1] + 1):
            a, b = cached.step(targets[:, :t]), plain.step(targets[:, :t])
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
            full = log_softmax(model(src, targets[:, :t])[0].numpy()[:, -1])      # the model's own forward
            np.testing.assert_allclose(a[:, 2:], full[:, 2:], rtol=1e-10, atol=1e-12)
            assert np.all(a[:, [PAD, BOS]] == -np.inf)                            # never outputs
            if t == 3:                       # beam search's reordering: rows repeated, swapped, dropped
                rows = np.array([2, 0, 0])
                cached.select(rows), plain.select(rows)
                targets, src = targets[rows], src[rows]
        assert cached.caches[0][0].length == targets.shape[1]


def test_cross_attention_keys_and_values_are_projected_once(device, monkeypatch):
    """During decoding the memory goes through the cross-attention's key/value projection once per
    decoder layer (before the first step), however many steps follow."""
    model = model_for(device)
    calls = []
    layer = model.transformer.decoder.layers[0].multihead_attn
    original = type(layer)._project_kv

    def counting(self, key, value):
        calls.append(self is layer)
        return original(self, key, value)
    monkeypatch.setattr(type(layer), "_project_kv", counting)
    greedy_decode(model, SOURCES[:2], max_new_tokens=5)
    beam_search(model, SOURCES[:2], beam_width=3, max_new_tokens=5)
    assert calls.count(True) == 2                        # once per decoding call, for this layer
    calls.clear()
    greedy_decode(model, SOURCES[:2], max_new_tokens=5, use_cache=False)
    assert calls.count(True) > 2                         # without the cache: every step


# ------------------------------------------------------------------ 2. greedy == beam of width 1
@pytest.mark.parametrize("length_penalty, early_stopping", [(0.0, False), (1.0, True), (0.7, True)])
def test_greedy_equals_beam_search_of_width_one(length_penalty, early_stopping, device):
    model = model_for(device)
    greedy = greedy_decode(model, SOURCES)
    beam, scores = beam_search(model, SOURCES, beam_width=1, length_penalty=length_penalty,
                               early_stopping=early_stopping)
    np.testing.assert_array_equal(beam, greedy)
    lengths = (greedy != PAD).sum(1)
    assert len(set(lengths)) > 1                          # the sources do end at different lengths
    ys = [list(g[:n]) for g, n in zip(greedy, lengths)]
    expected = [sequence_logprob(model, s, [y])[0] / len(y) ** length_penalty for s, y in zip(SOURCES, ys)]
    np.testing.assert_allclose(scores, expected, rtol=1e-9)


# ------------------------------------------------------------------ 3. beam search == exhaustive search
def exhaustive_best(model, src, max_new_tokens, length_penalty):
    """Every possible output: tokens then EOS (at most max_new_tokens in all), or max_new_tokens
    tokens without EOS; the best by sum log p / length**length_penalty."""
    V = model.config.tgt_vocab_size
    others = [t for t in range(V) if t not in (PAD, BOS, EOS)]
    outputs = [[*body, EOS] for n in range(max_new_tokens) for body in itertools.product(others, repeat=n)]
    outputs += [list(body) for body in itertools.product(others, repeat=max_new_tokens)]
    scores = sequence_logprob(model, src, outputs) / np.array([len(y) for y in outputs]) ** length_penalty
    best = int(np.argmax(scores))
    return outputs[best], scores[best], np.sort(scores)[-2]


@pytest.mark.parametrize("length_penalty", [0.0, 1.0, 2.0])
def test_wide_beam_search_finds_the_exhaustive_best(length_penalty, device):
    model = model_for(device, tgt_vocab_size=6, peaky=1.0)
    max_new = 3
    ids, scores = beam_search(model, SOURCES[:3], beam_width=6 ** max_new, max_new_tokens=max_new,
                              length_penalty=length_penalty)
    for src, got, score in zip(SOURCES[:3], ids, scores):
        best, best_score, runner_up = exhaustive_best(model, src, max_new, length_penalty)
        assert best_score - runner_up > 1e-9             # one best, not a tie
        assert [t for t in got if t != PAD] == best
        np.testing.assert_allclose(score, best_score, rtol=1e-9)


def test_beam_search_returns_its_hypotheses_best_first(device):
    model = model_for(device)
    ids, scores = beam_search(model, SOURCES[:2], beam_width=4, num_return_sequences=3)
    assert ids.shape[0] == 6 and scores.shape == (6,)
    for b in range(2):
        s = scores[3 * b:3 * b + 3]
        assert np.all(np.diff(s) <= 0)
        rows = [list(r[r != PAD]) for r in ids[3 * b:3 * b + 3]]
        assert len({tuple(r) for r in rows}) == 3
        np.testing.assert_allclose(s, sequence_logprob(model, SOURCES[b], rows) / np.array([len(r) for r in rows]),
                                   rtol=1e-9)


# ------------------------------------------------------------------ 4. per-sequence EOS, batched
@pytest.mark.parametrize("decode", ["greedy", "beam"])
def test_each_source_stops_at_its_own_eos_and_decodes_as_alone(decode, device):
    model = model_for(device)
    run = (lambda s: greedy_decode(model, s)) if decode == "greedy" else \
        (lambda s: beam_search(model, s, beam_width=3)[0])
    batch = run(SOURCES)
    for src, row in zip(SOURCES, batch):
        alone = run(src[None])[0]
        np.testing.assert_array_equal(row[:len(alone)], alone)
        assert not np.any(row[len(alone):])               # only padding after its own end
        eos = np.flatnonzero(alone == EOS)
        assert len(eos) <= 1 and (len(eos) == 0 or eos[0] == len(alone) - 1)    # EOS ends it, once
    ended = [(r == EOS).any() for r in batch]
    assert any(ended)
    assert len({int((r != PAD).sum()) for r in batch}) > 1


def test_decoding_leaves_the_training_mode_and_refuses_bad_settings():
    model = model_for("cpu")
    model.train()
    greedy_decode(model, SOURCES[:1], max_new_tokens=2)
    assert model.training
    with pytest.raises(ConfigError, match="max_new_tokens"):
        greedy_decode(model, SOURCES[:1], max_new_tokens=model.config.block_size + 1)
    with pytest.raises(ConfigError, match="beam_width"):
        beam_search(model, SOURCES[:1], beam_width=0)
    with pytest.raises(ConfigError, match="num_return_sequences"):
        beam_search(model, SOURCES[:1], beam_width=2, num_return_sequences=3)


def test_decoding_accepts_a_tensor_on_the_device(device):
    model = model_for(device)
    src = tg.Tensor(backend.to_device(SOURCES[:2], device))
    np.testing.assert_array_equal(greedy_decode(model, src), greedy_decode(model, SOURCES[:2]))



@pytest.mark.parametrize("length_penalty", [-0.5, 0.0, 0.6, 1.0, 2.0])
def test_the_stopping_bound_is_never_beaten(length_penalty):
    """Beam search stops a source when no live beam can beat its finished hypotheses: the bound
    must be >= the score of every way a live beam (log-probability s, n tokens so far) can finish:
    any lower log-probability, any length n + 1 .. max_new_tokens."""
    rng = np.random.default_rng(0)
    max_new = 7
    for _ in range(200):
        s, n = -rng.exponential(2.0), int(rng.integers(1, max_new))
        bound = _best_possible(s, n, max_new, length_penalty)
        for L in range(n + 1, max_new + 1):
            for drop in (0.0, 0.01, 1.0):
                assert (s - drop) / L ** length_penalty <= bound + 1e-12
