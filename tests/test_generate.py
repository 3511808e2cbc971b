"""Sampling and the KV cache."""
import numpy as np
import pytest

import tinygrad_lm as tg
from tinygrad_lm import backend
from tinygrad_lm.models.generation import generate, sample_next
from tinygrad_lm.models.gpt import GPT, GPTConfig

CONFIGS = {
    "gpt2": GPTConfig.gpt2(vocab_size=23, block_size=12, n_layer=2, n_head=2, n_embd=16),
    "seed_mini": GPTConfig.seed_mini(vocab_size=23, block_size=12, n_layer=2, n_head=2, n_embd=16),
    "rotary": GPTConfig(vocab_size=23, block_size=12, n_layer=2, n_head=2, n_embd=16, pos_encoding="rotary"),
    "sinusoidal": GPTConfig(vocab_size=23, block_size=12, n_layer=1, n_head=2, n_embd=16, pos_encoding="sinusoidal"),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("batch, prompt_len", [(1, 1), (3, 4), (2, 7)])
def test_kv_cache_logits_equal_full_recompute(name, batch, prompt_len, rng, device):
    tg.manual_seed(1)
    model = GPT(CONFIGS[name]).to(device)
    model.eval()
    idx = rng.integers(0, 23, (batch, prompt_len))
    caches = model.new_kv_caches()
    with tg.no_grad():
        logits, _ = model(backend.to_device(idx, device), kv_caches=caches)
        for _ in range(12 - prompt_len):
            nxt = rng.integers(0, 23, (batch, 1))
            idx = np.concatenate([idx, nxt], axis=1)
            step_logits, _ = model(backend.to_device(nxt, device), kv_caches=caches)
            full, _ = model(backend.to_device(idx, device))
            np.testing.assert_allclose(step_logits.numpy()[:, -1], full.numpy()[:, -1], rtol=1e-5, atol=1e-5)


def test_generate_with_and_without_cache_agree_and_crop_context():
    tg.manual_seed(0)
    model = GPT(CONFIGS["gpt2"])
    prompt = np.array([[1, 2, 3]])
    with_cache = model.generate(prompt, 20, temperature=0)         # 23 tokens > block_size 12
    without = model.generate(prompt, 20, temperature=0, use_cache=False)
    np.testing.assert_array_equal(with_cache, without)
    assert with_cache.shape == (1, 23)
    np.testing.assert_array_equal(with_cache[:, :3], prompt)


def test_greedy_top_k_top_p_and_seed():
    tg.manual_seed(0)
    model = GPT(CONFIGS["gpt2"])
    prompt = [[5, 6]]
    greedy = model.generate(prompt, 8, temperature=0)
    assert np.array_equal(model.generate(prompt, 8, top_k=1, seed=3), greedy)
    assert np.array_equal(model.generate(prompt, 8, top_p=1e-9, seed=3), greedy)
    a = model.generate(prompt, 8, temperature=1.0, seed=42)
    b = model.generate(prompt, 8, temperature=1.0, seed=42)
    np.testing.assert_array_equal(a, b)


def test_generate_refuses_bad_settings_before_running_the_model():
    class NoModel:                             # generate must not reach the model at all
        config = None
    for kwargs, message in (({"max_new_tokens": -1}, "max_new_tokens must be >= 0"),
                            ({"max_new_tokens": 0, "temperature": -0.5}, "temperature must be >= 0"),
                            ({"max_new_tokens": 0, "top_k": 0}, "top_k must be >= 1"),
                            ({"max_new_tokens": 0, "top_p": 0.0}, r"top_p must be in \(0, 1\]")):
        with pytest.raises(ValueError, match=message):
            generate(NoModel(), [[1]], **kwargs)
    tg.manual_seed(0)
    model = GPT(CONFIGS["gpt2"])
    for empty in ([], [[]]):
        with pytest.raises(ValueError, match="at least one prompt of at least one token"):
            model.generate(empty, 3)
    assert model.generate([[4, 5]], 0).tolist() == [[4, 5]]      # zero new tokens: the prompt back


def test_sample_next_distribution():
    rng = np.random.default_rng(0)
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    draws = np.array([sample_next(logits, rng=rng)[0] for _ in range(4000)])
    np.testing.assert_allclose(np.bincount(draws, minlength=4) / 4000, [0.5, 0.3, 0.15, 0.05], atol=0.03)
    top2 = np.array([sample_next(logits, top_k=2, rng=rng)[0] for _ in range(2000)])
    assert set(top2) == {0, 1}
    nucleus = np.array([sample_next(logits, top_p=0.7, rng=rng)[0] for _ in range(2000)])
    assert set(nucleus) == {0, 1}              # 0.5 + 0.3 reaches 0.7: two tokens kept
    assert sample_next(logits, temperature=0)[0] == 0
    with pytest.raises(ValueError, match="top_p"):
        sample_next(logits, top_p=1.5)
