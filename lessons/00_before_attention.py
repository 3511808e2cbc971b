# %% [markdown]
# # Lesson 0 — Sequential data and the models before attention
#
# A language model assigns a probability to a sequence of tokens, and the chain rule of
# probability splits it into one prediction per position:
#
#     P(t_1, ..., t_n) = P(t_1) · P(t_2 | t_1) · P(t_3 | t_1, t_2) · ... = Π_i P(t_i | t_<i)
#
# so a model only ever has to answer one question: *given the tokens so far, what comes next?*
# Its loss is the mean of −log P(t_i | t_<i) over a text (nats per token). This lesson walks the
# road to attention: a count table that looks one character back, a recurrent network that
# carries a summary of everything before in a fixed-size state, why that summary forgets
# (measured), the gates of the LSTM and GRU that forget less, and the measured reasons that
# attention replaced them.
#
# Runs in about 40 seconds (quick mode, `TINYGRAD_LM_QUICK=1`: about 5 seconds).

# %%
import dataclasses
import math
import time

import numpy as np

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm import nn, optim
from tinygrad_lm.viz import plots as viz
from tinygrad_lm.teaching.gradient_flow import (comparison_models, gradient_by_distance, sequential_depth,
    train_briefly)
from tinygrad_lm.teaching.lesson_utils import figure_path, pyplot, quick, shakespeare_text
from tinygrad_lm.models import GPT, RNNLM, GPTConfig, RNNLMConfig
from tinygrad_lm.training.presets import PRESETS
from tinygrad_lm.tokenizers import CharTokenizer

text = shakespeare_text()
tok = CharTokenizer.from_text(text)
ids = np.array(tok.encode(text), dtype=np.int64)
n = int(0.9 * len(ids))                       # the same split as `python -m tinygrad_lm prepare`
train_ids, val_ids = ids[:n], ids[n:]
V = tok.vocab_size
print(f"{len(ids):,} characters, vocabulary {V}; train {len(train_ids):,}, val {len(val_ids):,}")

# %% [markdown]
# ## The chain rule, with the simplest model that uses it
# A **bigram** model says P(t_i | t_<i) = P(t_i | t_{i−1}): only the previous character matters.
# Its maximum-likelihood estimate is a table of counts, N[a, b] = how often b follows a in the
# training text, each row divided by its sum. We add α = 1 to every count ("add-one smoothing"),
# so that a pair never seen in training does not get probability 0 (and an infinite loss).

# %%
counts = np.zeros((V, V))
np.add.at(counts, (train_ids[:-1], train_ids[1:]), 1)          # one count per adjacent pair
alpha = 1.0
P = (counts + alpha) / (counts + alpha).sum(1, keepdims=True)   # each row a distribution over the next char
assert np.allclose(P.sum(1), 1)


def nll(ids_):
    """Mean −log P(t_i | t_{i−1}) over a text: the bigram model's loss in nats per character."""
    return float(-np.log(P[ids_[:-1], ids_[1:]]).mean())


unigram = np.bincount(train_ids, minlength=V) + alpha
unigram_loss = float(-np.log(unigram[val_ids] / unigram.sum()).mean())
bigram_val = nll(val_ids)
print(f"val loss (nats/char): uniform {math.log(V):.3f}, unigram {unigram_loss:.3f}, bigram {bigram_val:.3f}")
assert bigram_val < unigram_loss < math.log(V)             # every look further back helps

word = "Citizen"
pieces = [P[a, b] for a, b in zip(tok.encode(word), tok.encode(word)[1:])]
print(f"P({word[1:]!r} | {word[0]!r}) = " + " · ".join(f"{p:.3f}" for p in pieces) + f" = {np.prod(pieces):.2e}")

# %% [markdown]
# This bigram loss (2.48 on tiny Shakespeare) is the **floor**: a model that reads a longer
# context must do better than it, or it has learned nothing a count table could not.
# (`python -m tinygrad_lm train --preset bigram` learns the same table by gradient descent: about
# 2.50 on its 20 validation batches after 3000 steps.) Looking further back with counts does not
# scale: a table over the previous k characters has V^k rows, almost all of them never seen. We
# need a model that *summarises* the past in a vector of fixed size.
#
# ## A recurrent network, one step at a time
# An Elman RNN keeps a hidden state h (size H) and updates it with every token:
#
#     h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)        x_t = the embedding of token t
#     logits_t = W_hy h_t + b_y                               the prediction of token t+1
#
# Training needs the gradient of the loss through all those steps: **backpropagation through
# time** (BPTT). Going backwards, the gradient reaching h_t is what the output at t sends plus
# what h_{t+1} sends back through W_hh:
#
#     dh_t = W_hyᵀ dlogits_t + W_hhᵀ da_{t+1},        da_t = dh_t ⊙ (1 − h_t²)
#     dW_hh += da_t h_{t−1}ᵀ,  dW_ih += da_t x_tᵀ,  db += da_t,  dx_t = W_ihᵀ da_t
#
# Here it is in NumPy (float64), checked against the engine's `nn.RNN` (PyTorch's API and names).

# %%
rng = np.random.default_rng(0)
B, T, E, H = 3, 10, 8, 16
emb = rng.standard_normal((V, E)) * 0.5
W_ih, W_hh = rng.standard_normal((H, E)) / math.sqrt(E), rng.standard_normal((H, H)) / math.sqrt(H)
b_ih, b_hh = rng.standard_normal(H) * 0.1, rng.standard_normal(H) * 0.1
W_hy, b_y = rng.standard_normal((V, H)) / math.sqrt(H), np.zeros(V)
starts = rng.integers(0, len(train_ids) - T - 1, B)
xb = np.stack([train_ids[s:s + T] for s in starts])
yb = np.stack([train_ids[s + 1:s + T + 1] for s in starts])

# forward, keeping every h_t
x = emb[xb]                                   # (B, T, E)
hs = [np.zeros((B, H))]                       # h_0 = 0
for t in range(T):
    hs.append(np.tanh(x[:, t] @ W_ih.T + b_ih + hs[-1] @ W_hh.T + b_hh))
h = np.stack(hs[1:], axis=1)                  # (B, T, H)
logits = h @ W_hy.T + b_y
probs = np.exp(logits - logits.max(-1, keepdims=True))
probs /= probs.sum(-1, keepdims=True)
loss = -np.log(np.take_along_axis(probs, yb[..., None], -1)).mean()

# backward through time, by hand
dlogits = probs.copy()
np.put_along_axis(dlogits, yb[..., None], np.take_along_axis(probs, yb[..., None], -1) - 1, -1)
dlogits /= B * T
dW_hy, db_y = np.einsum("btv,bth->vh", dlogits, h), dlogits.sum((0, 1))
dh_out = dlogits @ W_hy                       # what each output sends to its h_t
g = {k: np.zeros_like(v) for k, v in (("W_ih", W_ih), ("W_hh", W_hh), ("b_ih", b_ih), ("b_hh", b_hh))}
dx = np.zeros_like(x)
da_next = np.zeros((B, H))
for t in reversed(range(T)):
    dh = dh_out[:, t] + da_next @ W_hh        # from the output, and from the step after
    da = dh * (1 - h[:, t] ** 2)              # through tanh
    g["W_ih"] += da.T @ x[:, t]
    g["W_hh"] += da.T @ hs[t]                 # hs[t] is h_{t-1}
    g["b_ih"] += da.sum(0)
    g["b_hh"] += da.sum(0)
    dx[:, t] = da @ W_ih
    da_next = da

# the same network in the engine
rnn = nn.RNN(E, H, batch_first=True).double()
head = nn.Linear(H, V).double()
rnn.load_state_dict({"weight_ih_l0": W_ih, "weight_hh_l0": W_hh, "bias_ih_l0": b_ih, "bias_hh_l0": b_hh})
head.load_state_dict({"weight": W_hy, "bias": b_y})
x_t = tg.Tensor(x, requires_grad=True)
out, h_n = rnn(x_t)
eng_loss = F.cross_entropy(head(out).reshape(B * T, V), yb.reshape(-1))
eng_loss.backward()
assert np.allclose(out.numpy(), h) and np.allclose(h_n.numpy()[0], h[:, -1])
assert abs(eng_loss.item() - loss) < 1e-12
for name, mine in (("W_ih", "weight_ih_l0"), ("W_hh", "weight_hh_l0"), ("b_ih", "bias_ih_l0"), ("b_hh", "bias_hh_l0")):
    assert np.allclose(g[name], getattr(rnn, mine).grad.numpy(), rtol=1e-10, atol=1e-13), name
assert np.allclose(dx, x_t.grad.numpy(), rtol=1e-10, atol=1e-13)
assert np.allclose(dW_hy, head.weight.grad.numpy()) and np.allclose(db_y, head.bias.grad.numpy())
print(f"loss {loss:.4f}: BPTT by hand == nn.RNN's gradients (W_ih, W_hh, biases, head, inputs)")

# %% [markdown]
# ## The gradient vanishes with the distance: measured
# Unroll the backward loop: the gradient that reaches x_t from the loss at the last position
# T−1 has gone through d = T−1−t factors diag(1 − h²) W_hhᵀ. When they shrink vectors (spectral
# radius of W_hh below 1, and tanh' ≤ 1), ‖dL/dx_t‖ falls *geometrically* with d: the model
# cannot learn from what lies far back, however long its window. (When they grow, the gradient
# explodes instead; clipping handles that one.)
#
# `tinygrad_lm.teaching.gradient_flow` measures g(d) = ‖dL/dx_{T−1−d}‖ (x = the token embeddings, L = the
# cross-entropy of the last prediction) on windows of real text, for three models of about 62k
# parameters: a tanh RNN, an LSTM and a one-layer GPT, each at initialisation and after a short
# training (the same steps, batches and AdamW for all three).

# %%
T_far = quick(64, 40)
tg.manual_seed(0)
models = comparison_models(vocab_size=V, block_size=T_far)
rng = np.random.default_rng(1)
starts = rng.integers(0, len(val_ids) - T_far - 1, quick(16, 8))
probe_x = np.stack([val_ids[s:s + T_far] for s in starts])
probe_y = np.stack([val_ids[s + 1:s + T_far + 1] for s in starts])
steps = quick(200, 30)
reach = {}
t0 = time.perf_counter()
for name, model in models.items():
    before = gradient_by_distance(model, probe_x, probe_y)
    final_loss = train_briefly(model, train_ids, steps, batch_size=16, lr=2e-3, seed=0)
    after = gradient_by_distance(model, probe_x, probe_y)
    reach[name] = (before, after)
    print(f"{name:20s} g(30)/g(1): init {before[30] / before[1]:.1e}, after {steps} steps {after[30] / after[1]:.1e} "
          f"(train loss {final_loss:.3f})")
print(f"({time.perf_counter() - t0:.1f} s)")
rnn_init, attn_init = reach["tanh RNN"][0], reach["attention (1 layer)"][0]
assert rnn_init[30] < 1e-4 * rnn_init[1]             # the tanh RNN forgets by orders of magnitude
assert attn_init[30] > 0.05 * attn_init[1]           # attention reaches 30 back in one step
lstm_init, lstm_after = reach["LSTM"]
assert lstm_after[30] / lstm_after[1] > 10 * lstm_init[30] / lstm_init[1]   # training lengthens the LSTM's reach

# %%
plt = pyplot()
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, which, title in ((axes[0], 0, "initialised"), (axes[1], 1, f"after {steps} training steps")):
    for name, curves in reach.items():
        g_d = curves[which]
        ax.semilogy(np.arange(1, T_far), g_d[1:] / g_d[1], label=name)
    ax.set(xlabel="distance d = (T − 1) − t", title=title)
    ax.grid(alpha=0.3, which="both")
axes[0].set_ylabel("‖dL/dx_t‖ / its value at d = 1")
axes[0].legend()
fig.suptitle("how much the last prediction's loss feels each earlier input")
fig.tight_layout()
viz.save(fig, figure_path("00_gradient_distance.png"))

# %% [markdown]
# The tanh RNN's curve is a straight line on a log scale (geometric decay), many orders of
# magnitude down by d = 30. At initialisation the LSTM decays as well: its forget gates start at
# σ(≈0) ≈ 0.5, and 0.5^30 is small too. Attention's curve stays flat: every position is one
# step away from every other. After training, the LSTM's curve has lifted by orders of magnitude
# (the next section shows its forget gates opening); the tanh RNN's has not moved.
#
# ## LSTM and GRU: gates that decide what to keep
# The LSTM (Hochreiter & Schmidhuber, 1997) adds a **cell state** c that is updated *additively*:
#
#     i, f, g, o = the four blocks of W_ih x_t + b_ih + W_hh h_{t−1} + b_hh
#     c_t = σ(f) ⊙ c_{t−1} + σ(i) ⊙ tanh(g)         forget some of the old, write some new
#     h_t = σ(o) ⊙ tanh(c_t)                         show some of it
#
# Along the cell, dc_{t−1} = σ(f) ⊙ dc_t: no matrix, no tanh', just the forget gate. Where the
# network learns σ(f) ≈ 1, the gradient travels far. The GRU (Cho et al., 2014) merges the two
# states and uses two gates, r (reset) and z (update):
#
#     n = tanh(x_n + r ⊙ h_n),   h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
#
# Both, written out in NumPy, against the engine's `nn.LSTM` and `nn.GRU` — and the LSTM we just
# trained: how open are its forget gates now?

# %%
sig = lambda a: 1 / (1 + np.exp(-a))          # noqa: E731


def lstm_by_hand(rnn, x):
    """Run a one-layer nn.LSTM's weights over x (B, T, E) in NumPy; also return every σ(f)."""
    W_ih, W_hh = rnn.weight_ih_l0.numpy(), rnn.weight_hh_l0.numpy()
    b = rnn.bias_ih_l0.numpy() + rnn.bias_hh_l0.numpy()
    Hs = rnn.hidden_size
    h, c, outs, forgets = np.zeros((x.shape[0], Hs)), np.zeros((x.shape[0], Hs)), [], []
    for t in range(x.shape[1]):
        i, f, g_, o = np.split(x[:, t] @ W_ih.T + h @ W_hh.T + b, 4, axis=-1)   # PyTorch's order: i, f, g, o
        c = sig(f) * c + sig(i) * np.tanh(g_)
        h = sig(o) * np.tanh(c)
        outs.append(h)
        forgets.append(sig(f))
    return np.stack(outs, 1), np.stack(forgets, 1)


def gru_by_hand(rnn, x):
    W_ih, W_hh = rnn.weight_ih_l0.numpy(), rnn.weight_hh_l0.numpy()
    b_ih, b_hh = rnn.bias_ih_l0.numpy(), rnn.bias_hh_l0.numpy()
    h, outs = np.zeros((x.shape[0], rnn.hidden_size)), []
    for t in range(x.shape[1]):
        x_r, x_z, x_n = np.split(x[:, t] @ W_ih.T + b_ih, 3, axis=-1)
        h_r, h_z, h_n = np.split(h @ W_hh.T + b_hh, 3, axis=-1)
        r, z = sig(x_r + h_r), sig(x_z + h_z)
        n_ = np.tanh(x_n + r * h_n)
        h = (1 - z) * n_ + z * h
        outs.append(h)
    return np.stack(outs, 1)


trained_lstm = models["LSTM"]
x_emb = trained_lstm.embedding.weight.numpy()[probe_x].astype(np.float64)
mine, forgets = lstm_by_hand(trained_lstm.rnn, x_emb)
with tg.no_grad():
    theirs, _ = trained_lstm.rnn(tg.Tensor(x_emb.astype(np.float32)))
assert np.allclose(mine, theirs.numpy(), atol=1e-4)
tg.manual_seed(2)
gru = nn.GRU(E, H, batch_first=True).double()
with tg.no_grad():
    gru_out, _ = gru(tg.tensor(x))
assert np.allclose(gru_by_hand(gru, x), gru_out.numpy(), atol=1e-12)
tg.manual_seed(0)
fresh = comparison_models(vocab_size=V, block_size=T_far)["LSTM"]        # the same LSTM, untrained
_, forgets0 = lstm_by_hand(fresh.rnn, fresh.embedding.weight.numpy()[probe_x].astype(np.float64))
print(f"LSTM and GRU steps by hand == nn.LSTM / nn.GRU. Mean forget gate σ(f): initialised "
      f"{forgets0.mean():.2f}, after {steps} steps {forgets.mean():.2f} "
      f"(share above 0.9: {(forgets0 > 0.9).mean():.1%} -> {(forgets > 0.9).mean():.1%})")
assert forgets.mean() > forgets0.mean()         # training opened the forget gates: the cell keeps more

# %% [markdown]
# ## Why attention won: the measurements
# Gates fix much of the forgetting. Then why did attention replace recurrence? First, what this
# machine measures (`BENCHMARKS.md`, "Before attention"; `bash bench/rnn_vs_gpt.sh`): the three
# presets of about 209k parameters, trained by the same command (batch 16, windows of 32
# characters, AdamW lr 1e-3), one BLAS thread each:
#
# | preset | model | val loss at step 1500 | its training time | val loss at step 5000 |
# | --- | --- | ---: | ---: | ---: |
# | `atpesc` | GPT, 4 layers × 4 heads, width 64 | 2.055 | 75 s | 1.831 |
# | `char-lstm` | embedding 64 → LSTM 189 → head | 1.901 | 47 s | 1.720 |
# | `char-gru` | embedding 64 → GRU 222 → head | 1.831 | 46 s | 1.690 |
#
# At this size, with 32-character windows on a CPU, **the recurrent models win**, per step and
# per second. (All three beat the bigram floor of about 2.48 from the first section.) Attention's
# advantages are not about this regime; they are these:
#
# 1. **Work that must wait.** An RNN's step t needs h_{t−1}: the chain of operations from the
#    first input to the loss grows with T (counted below in the engine's own graph, built from
#    composite ops). A CPU core runs everything one after another anyway, so here it costs
#    little; a GPU, with thousands of lanes, cannot fill them with a (16 × 189)·(189 × 756)
#    product per step, while attention computes all T positions in one large product. That
#    is what made large models trainable.
# 2. **Path length.** The gradient figure above: d steps from x_t to the loss in an RNN, each
#    shrinking the signal; one step in attention.
# 3. **Scale.** Longer contexts, more layers and more data favour the model whose cost is in a
#    few large matrix products (measured for our engine only as far as this 2-core machine allows).
#
# What the RNN keeps: a state of fixed size at generation (no KV cache that grows with the text;
# `generate` carries `(h, c)` and reads one token per step), which is why recurrent ideas came
# back in state-space models.
#
# Below, live: one training step of each model as the window T grows (our engine, this
# process: noisy on a shared machine), and the length of the longest chain of ops to the loss.

# %%
def step_ms(model_config, train_config, steps):
    """Median ms of a training step (forward, backward, AdamW) on random batches, this process."""
    tg.manual_seed(0)
    model = (GPT if isinstance(model_config, GPTConfig) else RNNLM)(model_config)
    opt = optim.AdamW(model.parameters(), lr=1e-3)
    r = np.random.default_rng(0)
    times = []
    for i in range(steps + 1):
        xb_ = r.integers(0, V, (train_config.batch_size, model_config.block_size))
        t = time.perf_counter()
        _, loss_ = model(xb_, np.roll(xb_, -1, 1))
        opt.zero_grad()
        loss_.backward()
        opt.step()
        if i:                                   # the first step warms up
            times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def chain(model_config):
    """Ops on the longest chain to the loss, the model built from composite ops."""
    if isinstance(model_config, RNNLMConfig):
        model_config = dataclasses.replace(model_config, fused=False)
    tg.manual_seed(0)
    model = (GPT if isinstance(model_config, GPTConfig) else RNNLM)(model_config)
    xb_ = np.zeros((2, model_config.block_size), dtype=np.int64)
    return sequential_depth(model(xb_, xb_)[1])


rows = []
gpt_cfg, tc = PRESETS["atpesc"](V)
lstm_cfg, _ = PRESETS["char-lstm"](V)
for T_ in quick([32, 64, 128, 256], [32, 96]):
    g_cfg, l_cfg = (dataclasses.replace(c, block_size=T_) for c in (gpt_cfg, lstm_cfg))
    rows.append((T_, step_ms(g_cfg, tc, quick(10, 2)), step_ms(l_cfg, tc, quick(10, 2)), chain(g_cfg), chain(l_cfg)))
print("| T | GPT ms/step | LSTM ms/step | GPT chain (ops) | LSTM chain (ops) |")
print("| ---: | ---: | ---: | ---: | ---: |")
for T_, gpt_ms, lstm_ms, gpt_chain, lstm_chain in rows:
    print(f"| {T_} | {gpt_ms:.1f} | {lstm_ms:.1f} | {gpt_chain} | {lstm_chain} |")
assert rows[0][3] == rows[-1][3]                # attention's chain does not grow with T
per_step = (rows[-1][4] - rows[0][4]) / (rows[-1][0] - rows[0][0])
assert per_step >= 5 and rows[-1][4] > 5 * rows[-1][3]   # the LSTM's grows by several ops per time step
print(f"the LSTM's chain grows by {per_step:.0f} ops per time step; the GPT's stays at {rows[0][3]}")

# %% [markdown]
# ## Exercises
# 1. Add-α smoothing: find the α that minimises the bigram's validation loss. Then build a
#    trigram table (V² rows): how many of its rows are empty in the training text?
# 2. In the BPTT cell, scale `W_hh` by 3 and by 0.3 and plot ‖dh_t‖ against t: exploding and
#    vanishing gradients. Which one does `clip_grad_norm_` fix?
# 3. Initialise the LSTM's forget-gate bias to +1 (the second block of `bias_hh_l0`, as
#    Jozefowicz et al. 2015 recommend) and redraw the gradient-distance figure at initialisation.
# 4. Train the three presets yourself (`python -m tinygrad_lm train --preset char-lstm`, then
#    `char-gru` and `atpesc`, each with its own `--out-dir`) for the full 5000 steps: does the
#    order of the table above hold? Then sample from each (`python -m tinygrad_lm sample --out-dir DIR`).
# 5. The RNN's generation state is (h, c), a few hundred numbers; a GPT's KV cache grows with the
#    text. Compute both in bytes for a 10,000-token text at the atpesc size.
