# %% [markdown]
# # Lesson 5 — Self-attention from scratch
#
# Every position emits a query ("what am I looking for?"), a key ("what do I contain?") and a
# value ("what I will tell you"). Position t mixes the values of positions ≤ t, weighted by
# softmax(q_t · k_j / sqrt(head_size)). The tutorial's example: B, T, C = 4, 8, 32, one head of 16.
# Runs in about 2 seconds.

# %%
import numpy as np

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm import nn
from tinygrad_lm.lesson_utils import figure_path, pyplot

tg.manual_seed(1337)
B, T, C, head_size = 4, 8, 32, 16
x = tg.Tensor(np.random.default_rng(1337).standard_normal((B, T, C)).astype(np.float32))
key, query, value = (nn.Linear(C, head_size, bias=False) for _ in range(3))
k, q, v = key(x), query(x), value(x)                          # (B, T, 16) each

# %% [markdown]
# ## Scores, scaling, causal mask, softmax

# %%
scores = q @ k.transpose(-2, -1) * head_size ** -0.5           # (B, T, T)
print("score variance with scaling:", scores.numpy().var().round(3))
mask = np.triu(np.ones((T, T), dtype=bool), k=1)               # True above the diagonal: the future
weights = scores.masked_fill(mask, float("-inf")).softmax(dim=-1)
out = weights @ v                                              # (B, T, 16)
w = weights.numpy()
print(w[0].round(2))
assert np.allclose(w.sum(-1), 1, atol=1e-6)                    # each row is a distribution
assert np.all(w[:, mask] == 0)                                 # nothing from the future
assert np.allclose(w[:, 0, 0], 1)                              # the first token sees only itself

# %% [markdown]
# Why scale by 1/sqrt(head_size)? q · k sums head_size products of unit-variance numbers, so its
# variance grows with head_size; large scores make softmax nearly one-hot ("peaky").

# %%
qu = np.random.default_rng(0).standard_normal((1000, 64))
ku = np.random.default_rng(1).standard_normal((1000, 64))
raw_var = (qu * ku).sum(-1).var()
print(f"variance of q.k for head_size 64: {raw_var:.1f} unscaled, {raw_var / 64:.2f} scaled")
assert 40 < raw_var < 90

# %% [markdown]
# ## The same with the library's fused op, and with the Head module

# %%
fused = F.scaled_dot_product_attention(q, k, v, is_causal=True)
assert np.allclose(fused.numpy(), out.numpy(), atol=1e-6)
head = nn.Head(C, head_size, block_size=T)
head.key, head.query, head.value = key, query, value
assert np.allclose(head(x).numpy(), out.numpy(), atol=1e-6)
print("hand-written == fused op == Head module")

plt = pyplot()
fig, ax = plt.subplots(figsize=(4.5, 4))
ax.imshow(w[0], cmap="viridis")
ax.set(title="attention weights, batch 0", xlabel="key position j", ylabel="query position t")
fig.savefig(figure_path("05_attention.png"), dpi=90)

# %% [markdown]
# ## Exercises
# 1. Remove the mask. Which rows change? Why can't a language model train that way?
# 2. Replace the softmax weights by a plain average over the past (the tutorial's `tril / sum`). Compare.
# 3. Set the scale to 1 and head_size to 256: look at the weights. What happens to the gradients?
