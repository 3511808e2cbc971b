# %% [markdown]
# # Lesson 10 — Generation
#
# A language model gives a distribution over the next token; generation picks one, appends it,
# and repeats. Greedy takes the most likely token; temperature sharpens (< 1) or flattens (> 1)
# the distribution; top-k keeps the k likeliest; top-p (nucleus) keeps the smallest set with
# probability ≥ p. A KV cache keeps each layer's keys and values so a step only runs the new token;
# we time both, after a warm-up run as lesson 11 advises.

# %%
import time

import numpy as np

import tinygrad_lm as tg
from tinygrad_lm.models.generation import sample_next
from tinygrad_lm.models.gpt import GPT, GPTConfig
from tinygrad_lm.teaching.lesson_utils import figure_path, pyplot, quick

logits = np.array([[3.0, 2.0, 1.0, 0.0, -1.0]])
for temperature in (0.5, 1.0, 2.0):
    z = logits / temperature
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    print(f"temperature {temperature}: {p.round(3)}")
assert sample_next(logits, temperature=0)[0] == 0
rng = np.random.default_rng(0)
draws = [sample_next(logits, top_k=2, rng=rng)[0] for _ in range(500)]
assert set(draws) == {0, 1}
draws = [sample_next(logits, top_p=0.9, rng=rng)[0] for _ in range(500)]
print("top-p 0.9 keeps tokens", sorted(set(draws)))

# %% [markdown]
# ## The KV cache gives the same logits, faster

# %%
tg.manual_seed(0)
model = GPT(GPTConfig.gpt2(vocab_size=65, block_size=128, n_layer=4, n_head=4, n_embd=128))
prompt = np.zeros((1, 4), dtype=np.int64)
n = quick(120, 40)
timings = {}
outputs = {}
for use_cache in (True, False):
    model.generate(prompt, 4, temperature=0, use_cache=use_cache)      # warm-up (lesson 11): first calls pay for setup
    t = time.perf_counter()
    outputs[use_cache] = model.generate(prompt, n, temperature=0, use_cache=use_cache)
    timings[use_cache] = time.perf_counter() - t
assert np.array_equal(outputs[True], outputs[False])
print(f"{n} tokens: cache {timings[True]:.2f} s, no cache {timings[False]:.2f} s")

caches = model.new_kv_caches()
ids = prompt
with tg.no_grad():
    model(ids, kv_caches=caches)
    for step in range(5):
        nxt = np.array([[step + 1]])
        ids = np.concatenate([ids, nxt], 1)
        cached, _ = model(nxt, kv_caches=caches)
        full, _ = model(ids)
        assert np.allclose(cached.numpy()[:, -1], full.numpy()[:, -1], atol=1e-5)
print("cached logits == full recompute at every step")

plt = pyplot()
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.bar(["KV cache", "recompute"], [n / timings[True], n / timings[False]])
ax.set(ylabel="tokens / s (after a warm-up)", title=f"generating {n} tokens")
fig.savefig(figure_path("10_kv_cache.png"), dpi=90)

# %% [markdown]
# ## What to expect from a small model
# The tutorial's 200k-parameter model learns spelling, line breaks and names of speakers, but not
# meaning: train it in lesson 9 and sample with `python -m tinygrad_lm sample --out-dir out`.
#
# ## Exercises
# 1. Sample the lesson-9 model at temperatures 0.5, 1 and 1.5. Which text looks most like Shakespeare?
# 2. Implement "min-p" sampling (keep tokens with p ≥ min_p · p_max) in `sample_next`.
# 3. Why must the cache restart when the text grows past block_size with learned positions?
