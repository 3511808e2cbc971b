# %% [markdown]
# # Lesson 4 — Positional encodings
#
# Attention treats its inputs as a *set*: shuffle the tokens and each output moves with its token
# but does not change. So "The man ate the sandwich" and "The sandwich ate the man" would look
# alike. Positional encodings break that symmetry. Three kinds: learned (a trained table, GPT-2),
# sinusoidal (fixed waves, "Attention is all you need"), rotary (RoPE: rotate queries and keys).

# %%
import numpy as np

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm import nn
from tinygrad_lm.teaching.lesson_utils import figure_path, pyplot
from tinygrad_lm.nn.positional import sinusoidal_table

words = sorted(set("the man ate sandwich".split()))
vocab = {w: i for i, w in enumerate(words)}
a = [vocab[w] for w in "the man ate the sandwich".split()]
b = [vocab[w] for w in "the sandwich ate the man".split()]
tg.manual_seed(0)
emb = nn.Embedding(len(vocab), 8)
attn = nn.CausalSelfAttention(8, 2, block_size=8)


def bag(ids):
    # attention without a mask and without positions: a permutation-invariant summary
    x = emb(np.array([ids]))
    q = k = v = x
    return F.scaled_dot_product_attention(q, k, v, is_causal=False).numpy()[0]


same = np.allclose(np.sort(bag(a), axis=0), np.sort(bag(b), axis=0))
print("without positions, the two sentences give the same set of outputs:", same)
assert same

pos = nn.SinusoidalPositionalEncoding(8, 8)
with_pos = [emb(np.array([s])) + pos(5) for s in (a, b)]
outs = [F.scaled_dot_product_attention(x, x, x).numpy()[0] for x in with_pos]
assert not np.allclose(np.sort(outs[0], axis=0), np.sort(outs[1], axis=0))
print("with positions they differ")

# %% [markdown]
# ## Sinusoidal: PE[p, 2i] = sin(p / 10000^(2i/d)),  PE[p, 2i+1] = cos(...)
# Each pair of dimensions is a clock at its own speed; nearby positions have similar codes.

# %%
table = sinusoidal_table(64, 32)
plt = pyplot()
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
axes[0].imshow(table.T, aspect="auto", cmap="RdBu")
axes[0].set(title="sinusoidal table (dims x positions)", xlabel="position", ylabel="dimension")
similarity = table @ table.T
axes[1].imshow(similarity, cmap="viridis")
axes[1].set(title="dot product between positions", xlabel="position", ylabel="position")
assert np.argmax(similarity[20]) == 20 and similarity[20, 21] > similarity[20, 40]
fig.tight_layout()
fig.savefig(figure_path("04_sinusoidal.png"), dpi=90)

# %% [markdown]
# ## Learned: an Embedding over positions, trained like the tokens.

# %%
learned = nn.LearnedPositionalEmbedding(64, 32)
print("learned table shape:", learned.weight.shape, "(random until trained)")

# %% [markdown]
# ## Rotary: rotate (q, k) coordinate pairs by an angle proportional to the position.
# Then q_i · k_j depends only on i - j: shift both positions and the score stays the same.

# %%
rope = nn.RotaryEmbedding(16, 64, dtype=np.float64)
rng = np.random.default_rng(0)
q, k = rng.standard_normal(16), rng.standard_normal(16)
Q = rope(tg.Tensor(np.tile(q, (64, 1)))).numpy()
K = rope(tg.Tensor(np.tile(k, (64, 1)))).numpy()
scores = Q @ K.T
for shift in (0, 7, 30):
    assert np.isclose(scores[10 + shift, 3 + shift], scores[10, 3])
print("score(i, j) == score(i + s, j + s): relative positions only")
fig, ax = plt.subplots(figsize=(4.8, 4))
image = ax.imshow(scores, cmap="RdBu")
fig.colorbar(image, ax=ax, shrink=0.8)
ax.set(title="RoPE: q_i . k_j (constant along diagonals)", xlabel="key position j", ylabel="query position i")
fig.savefig(figure_path("04_rope.png"), dpi=90, bbox_inches="tight")

# %% [markdown]
# ## Exercises
# 1. Train the lesson-9 model with `pos_encoding="sinusoidal"` and `"rotary"`. Which reaches the lowest val loss?
# 2. With learned positions, can the model handle a sequence longer than block_size? With rotary?
# 3. Plot the learned position table of a trained model (lesson 9): does it look like waves?
