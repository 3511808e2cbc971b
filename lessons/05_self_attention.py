# %% [markdown]
# # Lesson 5 — Self-attention from scratch
#
# Every position emits a query ("what am I looking for?"), a key ("what do I contain?") and a
# value ("what I will tell you"). Position t mixes the values of positions ≤ t, weighted by
# softmax(q_t · k_j / sqrt(head_size)). The tutorial's example: B, T, C = 4, 8, 32, one head of 16.
# Then a one-head model trained for a few seconds shows what attention picks on real text.

# %%
import numpy as np

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm import nn
from tinygrad_lm.teaching.lesson_utils import figure_path, pyplot

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
# Why about 1/9 here, not 1: nn.Linear draws its weights from U(-1/sqrt(C), 1/sqrt(C)) (PyTorch's
# default), of variance 1/(3C), so each entry of q and of k has variance C / (3C) = 1/3, each
# product q_i k_i 1/9, and the scaled sum of head_size of them 1/9 again. With q and k of unit
# variance (the cell below) the scaled variance is 1.
assert 0.06 < scores.numpy().var() < 0.17
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


# %% [markdown]
# ## What a trained head attends to
# The weights above come from random inputs and random projections, so the heat map would show
# little beyond the causal mask. To see attention doing something, train the smallest GPT that has
# it, one layer with one head of width 32, on tiny Shakespeare for a few hundred steps (a few
# seconds), and look at its weights on a line of real text. Before training they are close to
# uniform (each query spreads evenly over the keys it may see); after, each query picks a few keys.

# %%
from tinygrad_lm.data.text import CausalLMBatches
from tinygrad_lm.teaching.lesson_utils import distance_from_uniform, quick, shakespeare_text
from tinygrad_lm.models.gpt import GPT, GPTConfig
from tinygrad_lm.optim import AdamW
from tinygrad_lm.tokenizers import CharTokenizer
from tinygrad_lm.viz.plots import visible

text = shakespeare_text(limit=300_000)
tok = CharTokenizer.from_text(text)
tg.manual_seed(0)
small = GPT(GPTConfig.seed_mini(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=1, n_embd=32))
line = "ROMEO:\nI will not"
prompt = np.array([tok.encode(line)])
before = distance_from_uniform(small.attention_maps(prompt))
opt = AdamW(small.parameters(), lr=3e-3)
batches = CausalLMBatches(np.array(tok.encode(text)), 32, 16, seed=0)
for step in range(quick(1000, 300)):
    _, loss = small(*batches.next())
    opt.zero_grad()
    loss.backward()
    opt.step()
trained = small.attention_maps(prompt)[0, 0, 0]                # layer 0, batch 0, head 0: (T, T)
after = distance_from_uniform(trained)
print(f"loss after training {loss.item():.2f} (uniform guess {np.log(tok.vocab_size):.2f})")
print(f"distance from uniform attention: {before:.3f} nats untrained, {after:.3f} trained")
assert after > 5 * before and after > 0.2              # the trained head is selective, the random one is not
assert np.allclose(trained.sum(-1), 1, atol=1e-5) and np.all(np.triu(trained, 1) == 0)

# %% [markdown]
# Where did `attention_maps` get those weights? Every attention module passes its softmax weights
# through a child module, `attn_probs`, while someone is looking, and a **forward hook** looks, as
# in PyTorch: `module.register_forward_hook(hook)` makes `hook(module, inputs, output)` run after
# each forward of that module. (With no hook registered, the attention runs its fused op, which
# keeps no weights at all.) One hook by hand gives the same numbers:

# %%
seen = {}
probs = small.transformer.h[0].attn.attn_probs
handle = probs.register_forward_hook(lambda module, inputs, weights: seen.update(weights=weights.numpy()))
with tg.no_grad():
    small(prompt)
handle.remove()                                                  # the fused op runs again
print(f"hooked weights {seen['weights'].shape} (batch, heads, T, T), same as attention_maps:",
      np.allclose(seen["weights"][0, 0], trained))
assert np.allclose(seen["weights"][0, 0], trained) and not probs.wanted

# %%
plt = pyplot()
fig, ax = plt.subplots(figsize=(5.5, 5))
image = ax.imshow(trained, cmap="viridis", vmin=0, vmax=1)
chars = [visible(c) for c in line]
ax.set_xticks(range(len(chars)), chars)
ax.set_yticks(range(len(chars)), chars)
ax.set(title="a trained head's attention (1 layer, 1 head)", xlabel="key (attended to)", ylabel="query (position t)")
fig.colorbar(image, ax=ax, shrink=0.8)
fig.savefig(figure_path("05_attention.png"), dpi=90, bbox_inches="tight")

# %% [markdown]
# ## The same head, interactive
# The figure above is for printing. In a notebook the next cell draws the view the tutorial opens
# with bertviz: query tokens on the left, key tokens on the right, one line per weight (the darker,
# the larger). Hover over a token, or Tab to it and move with the arrow keys, to keep only its
# lines; click it or press Enter to pin it, Esc to let go. "Model view" shows every layer x head as
# a small map (here one of each). `view.save("attention.html")` writes the same page as a file
# that opens offline in any browser.

# %%
from tinygrad_lm.viz.attention_view import attention_view

view = attention_view(small, tok, line)
assert np.allclose(view.weights[0, 0], trained)       # the page shows the weights the model computed
view

# %% [markdown]
# ## Exercises
# 1. Remove the mask. Which rows change? Why can't a language model train that way?
# 2. Replace the softmax weights by a plain average over the past (the tutorial's `tril / sum`). Compare.
# 3. Set the scale to 1 and head_size to 256: look at the weights. What happens to the gradients?
