# %% [markdown]
# # Lesson 3 — Token embeddings
#
# An embedding table W (vocab × dim) turns token id i into the vector W[i]. That lookup is the same
# as multiplying a one-hot row vector by W, which tells us its gradient: dL/dW = one_hot^T · dL/dy,
# i.e. each position adds its upstream gradient into the row it looked up (a *scatter-add*; a
# token used twice gets two contributions). Then we train a tiny model and look at its learned
# embeddings with PCA.

# %%
import numpy as np

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm import nn
from tinygrad_lm.teaching.lesson_utils import QUICK, figure_path, pyplot, quick, shakespeare_text
from tinygrad_lm.viz.plots import visible
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
# A bigram model (embedding -> logits of the next character) trained for a few thousand steps.
# Characters that predict similar next characters drift together. Four classes to look for:
# vowels (followed by consonants), consonants (often followed by vowels), capitals (start names
# and lines, e.g. "ROMEO:") and punctuation, space and newline (followed by spaces and capitals).

# %%
text = shakespeare_text(limit=quick(None, 50_000))
tok = CharTokenizer.from_text(text)
data = np.array(tok.encode(text))
tg.manual_seed(0)
emb = nn.Embedding(tok.vocab_size, 16)
head = nn.Linear(16, tok.vocab_size)
params = emb.parameters() + head.parameters()
from tinygrad_lm.optim import AdamW
opt = AdamW(params, lr=1e-2, weight_decay=0.0)
losses = []
for step in range(quick(2000, 150)):
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
# Space is drawn as ␣ and newline as ⏎, so that they can be found.

# %%
def char_class(ch):
    if ch in "aeiou":
        return "vowel"
    if ch.islower():
        return "consonant"
    if ch.isupper():
        return "capital"
    return "punctuation, space, digit"


CLASSES = {"vowel": "C3", "consonant": "C0", "capital": "C2", "punctuation, space, digit": "C1"}
labels = np.array([char_class(ch) for ch in tok.itos])
E = emb.weight.numpy().astype(np.float64)
centered = E - E.mean(0)
U, S, Vt = np.linalg.svd(centered, full_matrices=False)
coords = centered @ Vt[:2].T
explained = (S[:2] ** 2).sum() / (S ** 2).sum()
assert np.all(np.diff(S) <= 0) and np.allclose(U * S @ Vt, centered)     # SVD: sorted, and exact
print(f"two components explain {explained:.0%} of the variance")
plt = pyplot()
fig, ax = plt.subplots(figsize=(7.5, 6.5))
for name, color in CLASSES.items():
    members = labels == name
    ax.scatter(coords[members, 0], coords[members, 1], s=12, color=color, alpha=0.4, label=name)
for i, ch in enumerate(tok.itos):
    ax.annotate(visible(ch), coords[i], fontsize=10, color=CLASSES[labels[i]])
ax.set(title="character embeddings, first two principal components", xlabel="PC1", ylabel="PC2")
ax.legend(fontsize=8)
fig.savefig(figure_path("03_embedding_pca.png"), dpi=90, bbox_inches="tight")

# %% [markdown]
# ## Measuring the clusters
# A picture in two dimensions can mislead, so measure in all 16: for each class, the mean distance
# between its members against the mean distance to the other characters; and, for each character,
# whether the nearest class centre (computed without it) is its own class. By chance that
# classification is right about 40% of the time (the largest class, capitals, holds ~40%).

# %%
distances = np.linalg.norm(E[:, None] - E[None], axis=-1)
for name in CLASSES:
    members = labels == name
    within = distances[np.ix_(members, members)][~np.eye(members.sum(), dtype=bool)].mean()
    between = distances[np.ix_(members, ~members)].mean()
    print(f"{name:>26}: {members.sum():2d} characters, mean distance within {within:.2f}, to the others {between:.2f}")
    if not QUICK:
        assert within < 0.95 * between, name


def nearest_centre_accuracy(E, labels):
    right = 0
    for i in range(len(E)):
        others = np.arange(len(E)) != i
        centres = {n: E[others & (labels == n)].mean(0) for n in CLASSES}
        right += min(centres, key=lambda n: np.linalg.norm(E[i] - centres[n])) == labels[i]
    return right / len(E)


accuracy = nearest_centre_accuracy(E, labels)
print(f"nearest class centre (leave one out): {accuracy:.0%} right")
if QUICK:
    print("(quick mode: 150 steps on 50,000 characters is too short to show the classes reliably; "
          "run without TINYGRAD_LM_QUICK to see them separate)")
else:
    assert accuracy > 0.7, accuracy

# %% [markdown]
# ## Exercises
# 1. Replace the Embedding with an explicit one-hot matrix product. Compare speed on 50,000 tokens.
# 2. Train with width 2 instead of 16 and plot the embeddings directly. What clusters appear?
# 3. Why does `Embedding` check token ids on every device? (Hint: what does CuPy do with index -1?)
