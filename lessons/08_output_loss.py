# %% [markdown]
# # Lesson 8 — Output layer, cross-entropy and perplexity
#
# The last hidden state goes through LayerNorm and a Linear "head" to one logit per vocabulary
# entry. Softmax turns logits into probabilities; the loss is −log p(correct token); perplexity
# exp(loss) is "how many tokens the model hesitates between". The tutorial's three-number example
# first: logits [0.5, 0.1, 0.3], the first class correct: loss 0.9119, perplexity 2.4891.

# %%
import math

import numpy as np

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm.gradcheck import gradcheck
from tinygrad_lm.teaching.lesson_utils import figure_path, pyplot

logits = np.array([0.5, 0.1, 0.3])                 # the tutorial's three logits
probs = np.exp(logits) / np.exp(logits).sum()
print("logits", logits, "-> probabilities", probs.round(4))
assert np.allclose(probs, [0.4018, 0.2693, 0.3289], atol=1e-4)
loss = F.cross_entropy(tg.Tensor(logits[None]), np.array([0]))
perplexity = math.exp(loss.item())
print(f"if the answer is the first class: loss {loss.item():.4f} = -log {probs[0]:.4f}, perplexity {perplexity:.4f}")
assert math.isclose(loss.item(), -math.log(probs[0]), rel_tol=1e-12)
assert round(loss.item(), 4) == 0.9119 and round(perplexity, 4) == 2.4891       # the tutorial's numbers
assert math.isclose(perplexity, 1 / probs[0], rel_tol=1e-12)                    # perplexity = 1 / p(correct)

# %% [markdown]
# ## The fused gradient: probs − one_hot
# d(−log softmax(z)_y)/dz = softmax(z) − one_hot(y). The fused op uses exactly this; autograd
# through log_softmax and indexing finds the same thing.

# %%
z = tg.Tensor(logits[None].copy(), requires_grad=True)
F.cross_entropy(z, np.array([0])).backward()
print("dL/dz =", z.grad.numpy().round(3), "= probs - one_hot")
assert np.allclose(z.grad[0], probs - np.eye(3)[0])
z2 = tg.Tensor(logits[None].copy(), requires_grad=True)
F.cross_entropy_composite(z2, np.array([0])).backward()
assert np.allclose(z2.grad, z.grad)
gradcheck(lambda a: F.cross_entropy(a, np.array([1, 0, 4, 2])),
          [tg.Tensor(np.random.default_rng(0).standard_normal((4, 5)), requires_grad=True)])
print("fused == composite == finite differences")

# %% [markdown]
# ## Perplexity: a uniform guess over V tokens has loss log V and perplexity V.

# %%
V = 65
uniform = F.cross_entropy(tg.Tensor(np.zeros((10, V))), np.arange(10))
print(f"uniform over {V}: loss {uniform.item():.4f}, perplexity {math.exp(uniform.item()):.1f}")
assert math.isclose(math.exp(uniform.item()), V, rel_tol=1e-6)

confidence = np.linspace(0.02, 0.98, 50)
plt = pyplot()
fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
a1.plot(confidence, -np.log(confidence))
a1.set(xlabel="probability of the correct token", ylabel="cross-entropy loss", title="loss = -log p")
a2.plot(confidence, 1 / confidence)
a2.set(xlabel="probability of the correct token", ylabel="perplexity", yscale="log", title="perplexity = 1/p")
fig.tight_layout()
fig.savefig(figure_path("08_loss.png"), dpi=90)

# %% [markdown]
# ## Exercises
# 1. Temperature: divide the logits by 0.5 and by 2. How do the probabilities and the loss change?
# 2. What loss does a model reach that always predicts the unigram frequencies of tiny Shakespeare?
# 3. Use `ignore_index=-100` to skip padding positions; check the mean is over the counted rows only.
