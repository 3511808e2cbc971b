# %% [markdown]
# # Lesson 6 — Backprop through attention by hand
#
# Forward, for one head (all matrices T × D or T × T):
#
#     S = Q Kᵀ · s        P = softmax(S) row by row (future masked)        Y = P V
#
# Backward, given G = dL/dY:
#
# 1. dV = Pᵀ G                                   (Y is linear in V)
# 2. dP = G Vᵀ                                   (Y is linear in P)
# 3. softmax's Jacobian for one row: dP_i/dS_j = P_i (δ_ij − P_j), so
#    dS = P ⊙ (dP − rowsum(dP ⊙ P))             (masked entries have P = 0, so dS = 0 there)
# 4. dQ = dS K · s,   dK = dSᵀ Q · s
#
# We implement it in plain NumPy, then compare with the engine and with finite differences.
# Runs in about 2 seconds.

# %%
import numpy as np

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm.gradcheck import gradcheck
from tinygrad_lm.lesson_utils import figure_path, pyplot

rng = np.random.default_rng(0)
T, D = 6, 4
scale = D ** -0.5
Q, K, V = (rng.standard_normal((T, D)) for _ in range(3))
G = rng.standard_normal((T, D))
future = np.triu(np.ones((T, T), dtype=bool), 1)


def forward(Q, K, V):
    S = Q @ K.T * scale
    S = np.where(future, -np.inf, S)
    P = np.exp(S - S.max(-1, keepdims=True))
    P /= P.sum(-1, keepdims=True)
    return P, P @ V


P, Y = forward(Q, K, V)
dV = P.T @ G
dP = G @ V.T
dS = P * (dP - (dP * P).sum(-1, keepdims=True))
dQ = dS @ K * scale
dK = dS.T @ Q * scale

# %% [markdown]
# ## The softmax Jacobian, explicitly, for one row

# %%
p = P[3]
J = np.diag(p) - np.outer(p, p)
assert np.allclose(J @ dP[3], dS[3])
print("row 3: J @ dP == P * (dP - sum(dP * P))")

# %% [markdown]
# ## Against the engine (fused op and composite) and finite differences

# %%
q, k, v = (tg.Tensor(a.copy(), requires_grad=True) for a in (Q, K, V))
y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
y.backward(G)
for name, ours, engine in (("dQ", dQ, q.grad), ("dK", dK, k.grad), ("dV", dV, v.grad)):
    assert np.allclose(ours, engine, rtol=1e-12, atol=1e-12), name
print("by hand == fused op's backward")
q2, k2, v2 = (tg.Tensor(a.copy(), requires_grad=True) for a in (Q, K, V))
F.scaled_dot_product_attention_composite(q2, k2, v2, is_causal=True).backward(G)
assert np.allclose(q2.grad, dQ) and np.allclose(k2.grad, dK) and np.allclose(v2.grad, dV)
print("by hand == autograd through the primitive ops")

h = 1e-6
numeric_dQ = np.zeros_like(Q)
for i in range(T):
    for j in range(D):
        Qp, Qm = Q.copy(), Q.copy()
        Qp[i, j] += h
        Qm[i, j] -= h
        numeric_dQ[i, j] = ((forward(Qp, K, V)[1] - forward(Qm, K, V)[1]) * G).sum() / (2 * h)
assert np.allclose(numeric_dQ, dQ, atol=1e-8)
gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True),
          [tg.Tensor(a, requires_grad=True) for a in (Q, K, V)])
print("finite differences agree")

plt = pyplot()
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
for ax, (title, m) in zip(axes, (("P (attention)", P), ("dP = G Vᵀ", dP), ("dS (through softmax)", dS))):
    im = ax.imshow(m, cmap="RdBu" if title != "P (attention)" else "viridis")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8)
fig.tight_layout()
fig.savefig(figure_path("06_attention_grads.png"), dpi=90)
assert np.all(dS[future] == 0)                 # no gradient flows into masked scores

# %% [markdown]
# ## Exercises
# 1. Show that each row of dS sums to zero. Why must it? (Hint: adding a constant to a row of S changes nothing.)
# 2. Derive the backward of attention dropout (P_drop = P ⊙ mask / (1 − p)) and compare with `ops/fused.py`.
# 3. Count the T × T arrays the fused backward keeps versus the composite graph (see bench/bench_attention.py).
