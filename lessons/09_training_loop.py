# %% [markdown]
# # Lesson 9 — The training loop
#
# Batches of random windows → forward → cross-entropy → backward → AdamW step, with periodic
# evaluation on held-out text. AdamW written out (as `tinygrad_lm/optim.py` does it, on one flat
# buffer):
#
#     p ← p · (1 − lr·λ)                        decoupled weight decay
#     m ← β1 m + (1 − β1) g                      running mean of gradients
#     v ← β2 v + (1 − β2) g²                     running mean of squared gradients
#     p ← p − lr/(1 − β1ᵗ) · m / (sqrt(v)/sqrt(1 − β2ᵗ) + ε)
#
# Then we train the tutorial's model (preset `atpesc`) and plot loss and perplexity.
# Full run: 5000 steps, about 3 minutes, val loss ≈ 1.82. Quick mode: 60 steps, seconds.

# %%
import math

import numpy as np

from tinygrad_lm import Tensor, nn, optim
from tinygrad_lm.lesson_utils import figure_path, quick, shakespeare_text
from tinygrad_lm.data import prepare
from tinygrad_lm.presets import PRESETS
from tinygrad_lm.train import train
from tinygrad_lm.viz import plot_losses

# AdamW by hand on one parameter vector, against the library
rng = np.random.default_rng(0)
p0, grads = rng.standard_normal(5), [rng.standard_normal(5) for _ in range(3)]
lr, b1, b2, eps, wd = 1e-2, 0.9, 0.999, 1e-8, 0.1
p, m, v = p0.copy(), np.zeros(5), np.zeros(5)
for t, g in enumerate(grads, start=1):
    p *= 1 - lr * wd
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    p -= lr / (1 - b1 ** t) * m / (np.sqrt(v) / math.sqrt(1 - b2 ** t) + eps)
param = nn.Parameter(p0.copy())
opt = optim.AdamW([param], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
for g in grads:
    param.grad = Tensor(g)                   # .grad is a Tensor, as in PyTorch
    opt.step()
assert np.allclose(param.numpy(), p, rtol=1e-12)
print("AdamW by hand == tinygrad_lm.optim.AdamW")

# %% [markdown]
# ## Train the tutorial's model
# `PRESETS["atpesc"]`: batch 16, block 32, width 64, 4 heads, 4 layers, AdamW lr 1e-3.

# %%
import pathlib
import tempfile

work = pathlib.Path(tempfile.mkdtemp(prefix="lesson09_"))
source = work / "input.txt"
source.write_text(shakespeare_text(limit=quick(None, 300_000)), encoding="utf-8")
meta = prepare(source, work / "data", tokenizer="char")
model_config, train_config = PRESETS["atpesc"](meta["vocab_size"])
train_config.max_iters = quick(5000, 60)
train_config.eval_interval = quick(500, 30)
train_config.eval_iters = quick(100, 5)
train_config.log_interval = quick(500, 30)
train_config.out_dir = str(work / "out")
result = train(model_config, train_config, work / "data")
evals = result["evals"]
assert evals[-1]["val"] < evals[0]["val"] - quick(2.0, 0.5)
assert math.exp(evals[0]["val"]) > 0.8 * meta["vocab_size"]     # untrained: about uniform over 65
plot_losses(result["history"], evals, figure_path("09_loss.png"), title="atpesc")
print(f"val loss {evals[0]['val']:.3f} -> {evals[-1]['val']:.3f}, perplexity {math.exp(evals[-1]['val']):.2f}")

# %% [markdown]
# ## A sample

# %%
from tinygrad_lm.data import load_tokenizer

tok = load_tokenizer(meta)
ids = result["model"].generate([tok.encode("\n")], 200, temperature=1.0, seed=0)
print(tok.decode(ids[0].tolist()))

# %% [markdown]
# ## Exercises (the tutorial's homework)
# 1. Sweep one hyperparameter: `results = tinygrad_lm.train.sweep("n_embd", [32, 64, 128], model_config, train_config, work / "data")`, then `tinygrad_lm.viz.plot_sweep(results, "n_embd", "sweep.png")`
#    plots the val perplexity curves together. Try `learning_rate`, `n_layer`, `block_size`, `dropout`.
# 2. Which change lowers the val loss most for the same training time?
# 3. Train with `decay_lr=True` (warmup + cosine). Does the final loss improve?
