# %% [markdown]
# # Lesson 2 — Autograd by hand
#
# Take f(a, b) = (a * b + tanh(a))². On paper, with u = a b + tanh(a):
#
# - df/du = 2u
# - du/da = b + (1 - tanh(a)²),  du/db = a
# - so df/da = 2u (b + 1 - tanh(a)²) and df/db = 2u a.
#
# The engine records each op as it runs and, on `backward()`, applies exactly these chain-rule
# steps in reverse. Then finite differences check both.

# %%
import math

import numpy as np

import tinygrad_lm as tg
from tinygrad_lm.gradcheck import gradcheck
from tinygrad_lm.viz.graph import Graph
from tinygrad_lm.teaching.lesson_utils import figure_path, pyplot

a_val, b_val = 0.7, -1.3
u = a_val * b_val + math.tanh(a_val)
by_hand = {"a": 2 * u * (b_val + 1 - math.tanh(a_val) ** 2), "b": 2 * u * a_val}

a = tg.Tensor(np.array(a_val), requires_grad=True)
b = tg.Tensor(np.array(b_val), requires_grad=True)
a.name, b.name = "a", "b"          # names show up in the graph below
f = (a * b + a.tanh()) ** 2
graph = Graph(f)            # remember the graph, keep intermediate gradients
f.backward()
print("engine :", a.grad, b.grad)
print("by hand:", by_hand)
assert abs(a.grad.item() - by_hand["a"]) < 1e-12 and abs(b.grad.item() - by_hand["b"]) < 1e-12

# %% [markdown]
# ## Finite differences
# (f(a + h) - f(a - h)) / 2h approaches df/da as h shrinks (central differences, error ~ h²).

# %%
def f_of(a_, b_):
    return (a_ * b_ + math.tanh(a_)) ** 2


h = 1e-6
numeric = (f_of(a_val + h, b_val) - f_of(a_val - h, b_val)) / (2 * h)
print("numeric df/da:", numeric)
assert abs(numeric - by_hand["a"]) < 1e-8

# %% [markdown]
# `gradcheck` does this for whole tensors, with a random upstream gradient so that no bug hides
# behind a sum. Here it checks a small expression on 3×4 inputs.

# %%
x = tg.Tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
w = tg.Tensor(np.random.default_rng(1).standard_normal((4, 2)), requires_grad=True)
report = gradcheck(lambda x, w: (x @ w).tanh().softmax(-1), [x, w])
print(report)
assert report["max_rel_error"] < 1e-6

# %% [markdown]
# ## The computation graph
# Each node is an op with its output shape, the value it computed on the way forward, and, after
# backward, the gradient df/d(node) with its sign. Trace it by hand: start at the output with
# grad = 1 and walk right to left, multiplying by each op's local derivative; every number you
# get should be in a box. (For arrays, a box shows the shape, a summary of the values, the norm
# |grad| and the sum of the gradient.)

# %%
print(graph.text())
plt = pyplot()
fig = graph.draw(figure_path("02_graph.png"))
text = graph.text()
assert "Tanh ()" in text and "Pow ()" in text and "a ()" in text
assert f"a ()  value = {a_val:.4g}  grad = {by_hand['a']:+.4g}" in text       # the leaf: value and signed gradient
assert "Pow ()" in text and f"value = {u ** 2:.4g}  grad = +1" in text        # the output: f, and df/df = 1
assert f"value = {u:.4g}  grad = {2 * u:+.4g}" in text                          # u = a b + tanh(a), df/du = 2u

# %% [markdown]
# ## Exercises
# 1. Derive df/db for f = a / (a + b) on paper, then check it with the engine.
# 2. Open `tinygrad_lm/ops/unary.py` and find the backward of `Sigmoid`. Why does it keep the output?
# 3. Plant a bug (return `grad` instead of `grad * self.y` in `Exp.backward`) and watch gradcheck fail.
