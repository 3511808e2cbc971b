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
# First a two-token example to follow on paper; then the same steps in plain NumPy on random
# matrices, compared with the engine and with finite differences; then a checker for your own version.

# %%
import numpy as np

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm.gradcheck import gradcheck
from tinygrad_lm.teaching.lesson_utils import figure_path, pyplot

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



# %% [markdown]
# ## On paper first: two tokens, small integers
# Before random matrices, an example small enough to do by hand (take scale s = 1, D = 2):
#
#     Q = [[1, 0],      K = [[1, 1],      V = [[1, 2],      G = dL/dY = [[1, 0],
#          [0, 1]]           [2, 1]]           [3, 0]]                    [0, 1]]
#
# Forward. S = Q Kᵀ = [[1, 2], [1, 1]]; the mask hides S[0, 1] (token 0 cannot see token 1), so
# row 0 of P is [1, 0]; row 1 has equal scores, so P[1] = [1/2, 1/2]. Y = P V = [[1, 2], [2, 1]].
#
# Backward, step by step:
# 1. dV = Pᵀ G = [[1, 1/2], [0, 1/2]]
# 2. dP = G Vᵀ = Vᵀ = [[1, 3], [2, 0]]
# 3. row 0: rowsum(dP ⊙ P) = 1, dS[0] = [1, 0] ⊙ ([1, 3] − 1) = [0, 0] (the masked entry gets nothing);
#    row 1: rowsum = ½·2 + ½·0 = 1, dS[1] = [½, ½] ⊙ ([2, 0] − 1) = [½, −½]
# 4. dQ = dS K = [[0, 0], [½·1 − ½·2, ½·1 − ½·1]] = [[0, 0], [−½, 0]]
#    dK = dSᵀ Q = [[0, ½], [0, −½]]
#
# Work it out yourself, then run the cell: every number above is checked, against the engine too.

# %%
Q2 = np.array([[1.0, 0.0], [0.0, 1.0]])
K2 = np.array([[1.0, 1.0], [2.0, 1.0]])
V2 = np.array([[1.0, 2.0], [3.0, 0.0]])
G2 = np.eye(2)
S2 = Q2 @ K2.T
assert np.array_equal(S2, [[1, 2], [1, 1]])
masked = np.where(np.triu(np.ones((2, 2), dtype=bool), 1), -np.inf, S2)       # token 0 cannot see token 1
P2 = np.exp(masked - masked.max(-1, keepdims=True))
P2 /= P2.sum(-1, keepdims=True)
assert np.array_equal(P2, [[1, 0], [0.5, 0.5]])
Y2 = P2 @ V2
assert np.array_equal(Y2, [[1, 2], [2, 1]])
dV2 = P2.T @ G2
assert np.array_equal(dV2, [[1, 0.5], [0, 0.5]])
dP2 = G2 @ V2.T
assert np.array_equal(dP2, [[1, 3], [2, 0]])
rowsums = (dP2 * P2).sum(-1, keepdims=True)
assert np.array_equal(rowsums, [[1], [1]])
dS2 = P2 * (dP2 - rowsums)
assert np.array_equal(dS2, [[0, 0], [0.5, -0.5]])
dQ2, dK2 = dS2 @ K2, dS2.T @ Q2
assert np.array_equal(dQ2, [[0, 0], [-0.5, 0]]) and np.array_equal(dK2, [[0, 0.5], [0, -0.5]])
q_, k_, v_ = (tg.Tensor(a, requires_grad=True) for a in (Q2, K2, V2))
y_ = F.scaled_dot_product_attention(q_, k_, v_, is_causal=True, scale=1.0)
assert np.allclose(y_.numpy(), Y2)
y_.backward(G2)
assert np.allclose(q_.grad, dQ2) and np.allclose(k_.grad, dK2) and np.allclose(v_.grad, dV2)
print("the paper example: every intermediate as computed by hand, and the engine agrees")
print("dQ =", dQ2.tolist(), " dK =", dK2.tolist(), " dV =", dV2.tolist())

# %% [markdown]
# ## The same steps on random 6 × 4 matrices

# %%
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
# ## Your turn: write it, and let the checker grade it
# `lessons/exercises.py` holds stubs: `attention_backward(Q, K, V, G, scale)` (and `softmax_backward`,
# `linear_backward`, `layer_norm_backward`). Fill one in and run
# `python lessons/check_exercise.py attention_backward`: it compares each gradient you return with
# autograd and with finite differences, and names the wrong one. Here is what it says about this
# lesson's own code, and about a version with a classic bug (dK without the transpose of dS).

# %%
from tinygrad_lm.teaching.exercises import check


def attention_backward(Q, K, V, G, scale):                    # this lesson's steps, as a function
    T = Q.shape[0]
    S = np.where(np.triu(np.ones((T, T), dtype=bool), 1), -np.inf, Q @ K.T * scale)
    P = np.exp(S - S.max(-1, keepdims=True))
    P /= P.sum(-1, keepdims=True)
    dP = G @ V.T
    dS = P * (dP - (dP * P).sum(-1, keepdims=True))
    return dS @ K * scale, dS.T @ Q * scale, P.T @ G


def attention_backward_with_a_bug(Q, K, V, G, scale):
    dQ, _, dV = attention_backward(Q, K, V, G, scale)
    T = Q.shape[0]
    S = np.where(np.triu(np.ones((T, T), dtype=bool), 1), -np.inf, Q @ K.T * scale)
    P = np.exp(S - S.max(-1, keepdims=True))
    P /= P.sum(-1, keepdims=True)
    dP = G @ V.T
    dS = P * (dP - (dP * P).sum(-1, keepdims=True))
    return dQ, dS @ Q * scale, dV                            # should be dS.T @ Q * scale


report = check("attention_backward", attention_backward)
print(report)
assert report.passed
report = check("attention_backward", attention_backward_with_a_bug)
print(report)
assert report.wrong == ["dK"]

# %% [markdown]
# ## Exercises
# 1. Show that each row of dS sums to zero. Why must it? (Hint: adding a constant to a row of S changes nothing.)
# 2. Derive the backward of attention dropout (P_drop = P ⊙ mask / (1 − p)) and compare with `ops/fused.py`.
# 3. Count the T × T arrays the fused backward keeps versus the composite graph (see bench/bench_attention.py).
# 4. Fill in `softmax_backward` and `attention_backward` in `lessons/exercises.py`; check them with
#    `python lessons/check_exercise.py softmax_backward` and `python lessons/check_exercise.py attention_backward`.
