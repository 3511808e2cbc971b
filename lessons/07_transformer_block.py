# %% [markdown]
# # Lesson 7 — Multi-head attention and the transformer block
#
# Several small heads look for different things in parallel; their outputs are concatenated and
# projected back to the model width. A block wraps attention ("communication") and an MLP
# ("computation") in residual connections with LayerNorm before each:
#
#     x = x + attn(ln_1(x));   x = x + mlp(ln_2(x))
#
# LayerNorm's backward is the classic derivation (see `ops/fused.py`): with x̂ = (x − μ)·inv_std,
#     dx = inv_std · (g_x̂ − mean(g_x̂) − x̂ · mean(g_x̂ · x̂)),   g_x̂ = g · weight.

# %%
import numpy as np

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm import nn
from tinygrad_lm.models.gpt import Block, GPTConfig
from tinygrad_lm.gradcheck import gradcheck
from tinygrad_lm.teaching.lesson_utils import figure_path, pyplot

tg.manual_seed(0)
B, T, C, H = 2, 8, 32, 4
x = tg.Tensor(np.random.default_rng(0).standard_normal((B, T, C)), requires_grad=True)

# %% [markdown]
# ## Heads one by one (the tutorial's way) == all heads in one batched op (GPT-2's way)

# %%
mha = nn.MultiHeadAttention(C, H, block_size=T, scale=C ** -0.5).double()
csa = nn.CausalSelfAttention.from_heads(mha).double()
per_head = mha.forward_per_head(x)
batched = csa(x)
assert np.allclose(per_head.numpy(), batched.numpy(), atol=1e-12)
print(f"{H} heads of size {C // H}: per-head == batched, max difference "
      f"{np.abs(per_head.numpy() - batched.numpy()).max():.1e}")

# %% [markdown]
# ## Two scalings: the tutorial's C ** -0.5 and lesson 5's head_size ** -0.5
# Above, `scale=C ** -0.5` follows the tutorial's code (and the "Let's build GPT" video it comes
# from): scores divided by the square root of the model width C = 32. Lesson 5 divided by the
# square root of head_size instead, as "Attention is all you need" and GPT-2 do. The reason for
# either: q · k sums head_size products, so for unit-variance q and k its variance is head_size;
# dividing by sqrt(head_size) brings it back to 1. Dividing by sqrt(C) with H heads of size C / H
# leaves variance head_size / C = 1 / H: the scores are sqrt(H) times smaller in spread, and the
# softmax is flatter (closer to a plain average). A model can still learn larger query and key
# weights to make up for it, so both train; `GPTConfig.seed_mini` keeps the tutorial's choice
# (`attn_scale="embd"`) so its numbers match the tutorial, `GPTConfig.gpt2` uses `"head"`.

# %%
head_size = C // H
rng_s = np.random.default_rng(7)
qs, ks = rng_s.standard_normal((2, 2000, 16, head_size))       # 2000 examples, 16 keys each
raw = qs @ ks.transpose(0, 2, 1)


def softmax_rows(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


sharpness = {}
for name, s_ in (("head_size ** -0.5", head_size ** -0.5), ("C ** -0.5", C ** -0.5)):
    p_ = softmax_rows(raw * s_)
    entropy = -(p_ * np.log(p_)).sum(-1).mean()
    sharpness[name] = (float((raw * s_).var()), float(p_.max(-1).mean()), float(entropy), p_[0])
    print(f"{name:>18} = {s_:.3f}: score variance {sharpness[name][0]:.2f}, mean largest weight "
          f"{sharpness[name][1]:.3f}, entropy {sharpness[name][2]:.3f} nats (uniform: {np.log(16):.3f})")
ratio = sharpness["head_size ** -0.5"][0] / sharpness["C ** -0.5"][0]
assert abs(sharpness["head_size ** -0.5"][0] - 1) < 0.05 and abs(ratio - H) < 0.05 * H     # variance 1 vs 1/H
assert sharpness["C ** -0.5"][2] > sharpness["head_size ** -0.5"][2]                         # flatter
assert sharpness["C ** -0.5"][1] < sharpness["head_size ** -0.5"][1]                         # smaller peaks
plt = pyplot()
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for ax, (name, (var, peak, ent, weights)) in zip(axes, sharpness.items()):
    ax.imshow(weights, cmap="viridis", vmin=0, vmax=1)
    ax.set(title=f"scale {name}: entropy {ent:.2f} nats", xlabel="key", ylabel="query")
fig.suptitle(f"the same random q, k (head_size {head_size}, C {C}): softmax weights under each scaling")
fig.tight_layout()
fig.savefig(figure_path("07_scalings.png"), dpi=90)

# %% [markdown]
# ## LayerNorm: fused backward == autograd of the composite == finite differences

# %%
w = tg.Tensor(np.random.default_rng(1).standard_normal(C), requires_grad=True)
b = tg.Tensor(np.random.default_rng(2).standard_normal(C), requires_grad=True)
y = F.layer_norm(x, C, w, b)
print("after LayerNorm: mean", y.numpy().mean(-1)[0, :3].round(6), "(then scaled and shifted)")
g = np.random.default_rng(3).standard_normal((B, T, C))
y.backward(g)
fused_grad = x.grad.numpy().copy()
x.grad = None
F.layer_norm_composite(x, C, w.detach(), b.detach()).backward(g)
assert np.allclose(fused_grad, x.grad, atol=1e-12)
gradcheck(lambda a, ww, bb: F.layer_norm(a, 5, ww, bb),
          [tg.Tensor(np.random.default_rng(4).standard_normal((2, 3, 5)), requires_grad=True),
           tg.Tensor(np.ones(5), requires_grad=True), tg.Tensor(np.zeros(5), requires_grad=True)])
print("LayerNorm backward: fused == composite == finite differences")

# %% [markdown]
# ## The block, and why residuals matter
# Gradients reach early layers through the identity path of each residual connection. Compare the
# gradient norm at the input of 8 stacked blocks with and without residuals.

# %%
config = GPTConfig(vocab_size=10, block_size=T, n_layer=8, n_head=H, n_embd=C)
blocks = [Block(config).double() for _ in range(8)]


def input_grad_norm(residual):
    inp = tg.Tensor(np.random.default_rng(5).standard_normal((B, T, C)), requires_grad=True)
    h = inp
    for blk in blocks:
        h = blk(h) if residual else blk.mlp(blk.ln_2(blk.attn(blk.ln_1(h))))
    h.backward(np.ones((B, T, C)))
    return float(np.linalg.norm(inp.grad))


with_res, without_res = input_grad_norm(True), input_grad_norm(False)
print(f"|dL/dinput| through 8 blocks: with residuals {with_res:.2f}, without {without_res:.2e}")
assert with_res > 3 * without_res
plt = pyplot()
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.bar(["with residuals", "without"], [with_res, without_res], color=["C0", "C3"])
ax.set(yscale="log", title="gradient norm reaching the input of 8 blocks")
fig.savefig(figure_path("07_residuals.png"), dpi=90)

# %% [markdown]
# ## Exercises
# 1. Move LayerNorm after the residual add (post-norm, as the original Transformer). Train lesson 9's model. Better or worse?
# 2. Replace ReLU by GELU in the MLP of the tutorial's model. What changes in the loss curve?
# 3. Count the parameters of one block of width C by hand (it is 12C² + 13C with biases) and check with `num_parameters()`.
# 4. Fill in `layer_norm_backward` in `lessons/exercises.py` from the formula above and check it:
#    `python lessons/check_exercise.py layer_norm_backward` names any gradient (dx, dweight, dbias) that is wrong.
