# %% [markdown]
# # Lesson 3 — Token embeddings
#
# An embedding table W (vocab × dim) turns token id i into the vector W[i]. That lookup is the same
# as multiplying a one-hot row vector by W, which tells us its gradient: dL/dW = one_hot^T · dL/dy,
# i.e. each position adds its upstream gradient into the row it looked up (a *scatter-add*; a
# token used twice gets two contributions). Then we train a tiny model and look at its learned
# embeddings with PCA. Runs in about 30 seconds (5 in quick mode).

# %%
import numpy as np

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm import nn
from tinygrad_lm.lesson_utils import figure_path, pyplot, quick, shakespeare_text
from tinygrad_lm.tokenizers import CharTokenizer

rng = np.random.default_rng(0)
V, D = 6, 4
W = tg.Tensor(rng.standard_normal((V, D)), requires_grad=True)
ids = np.array([2, 5, 2, 0])
looked_up = F.embedding(ids, W)
one_hot = np.eye(V)[ids]                              # (4, V)
assert np.allclose(looked_up.numpy(), one_hot @ W.numpy())
print("lookup == one_hot @ W")

# %% [markdown]
# ## The gradient is a scatter-add

# %%
upstream = rng.standard_normal((4, D))
looked_up.backward(upstream)
expected = one_hot.T @ upstream                       # row 2 receives two contributions
manual = np.zeros((V, D))
np.add.at(manual, ids, upstream)
print("dL/dW rows:\n", W.grad.numpy().round(3))
assert np.allclose(W.grad, expected) and np.allclose(W.grad, manual)
assert np.allclose(W.grad[2], upstream[0] + upstream[2]) and np.allclose(W.grad[[1, 3, 4]], 0)

# %% [markdown]
# ## Learned embeddings
# A bigram model (embedding -> logits of the next character) trained for a few hundred steps.
# Characters that predict similar next characters drift together: look for vowels, capitals, punctuation.

# %%
text = shakespeare_text(limit=quick(300_000, 50_000))
tok = CharTokenizer.from_text(text)
data = np.array(tok.encode(text))
tg.manual_seed(0)
emb = nn.Embedding(tok.vocab_size, 16)
head = nn.Linear(16, tok.vocab_size)
params = emb.parameters() + head.parameters()
from tinygrad_lm.optim import AdamW
opt = AdamW(params, lr=1e-2, weight_decay=0.0)
losses = []
for step in range(quick(600, 150)):
    starts = rng.integers(0, len(data) - 1, 256)
    x, y = data[starts], data[starts + 1]
    loss = F.cross_entropy(head(emb(x)), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
print(f"bigram loss {losses[0]:.3f} -> {losses[-1]:.3f} (uniform guess: {np.log(tok.vocab_size):.3f})")
assert losses[-1] < losses[0] - 0.8

# %% [markdown]
# ## PCA with NumPy's SVD
# Center the table, take its SVD; the first two right-singular directions are the principal axes.

# %%
E = emb.weight.numpy().astype(np.float64)
centered = E - E.mean(0)
U, S, Vt = np.linalg.svd(centered, full_matrices=False)
coords = centered @ Vt[:2].T
explained = (S[:2] ** 2).sum() / (S ** 2).sum()
print(f"two components explain {explained:.0%} of the variance")
plt = pyplot()
fig, ax = plt.subplots(figsize=(7, 6))
for i, ch in enumerate(tok.itos):
    ax.annotate(repr(ch)[1:-1], coords[i], fontsize=9, color="C3" if ch in "aeiouAEIOU" else "k")
ax.scatter(coords[:, 0], coords[:, 1], s=4, alpha=0.3)
ax.set(title="character embeddings, first two principal components", xlabel="PC1", ylabel="PC2")
fig.savefig(figure_path("03_embedding_pca.png"), dpi=90)
vowels = [tok.stoi[c] for c in "aeiou" if c in tok.stoi]
others = [tok.stoi[c] for c in "bcdfgklmnprst" if c in tok.stoi]
within = np.mean([np.linalg.norm(E[i] - E[j]) for i in vowels for j in vowels if i < j])
between = np.mean([np.linalg.norm(E[i] - E[j]) for i in vowels for j in others])
print(f"mean distance vowel-vowel {within:.2f}, vowel-consonant {between:.2f} (after a short training the gap is small)")
assert np.all(np.diff(S) <= 0) and np.allclose(U * S @ Vt, centered)     # SVD: sorted, and exact

# %% [markdown]
# ## Exercises
# 1. Replace the Embedding with an explicit one-hot matrix product. Compare speed on 50,000 tokens.
# 2. Train with width 2 instead of 16 and plot the embeddings directly. What clusters appear?
# 3. Why does `Embedding` check token ids on every device? (Hint: what does CuPy do with index -1?)
