"""Fill-in exercises on backward passes, and the checker that grades them.

A learner writes a backward pass in plain NumPy (stubs in lessons/exercises.py) and runs

    python lessons/check_exercise.py attention_backward

or, in a notebook, ``print(check("attention_backward", my_function))``. The checker draws small
random float64 inputs and a random upstream gradient G, runs the learner's function, and compares
each gradient it returns with two references: the engine's autograd (``y.backward(G)``) and
central finite differences of L = sum(y * G). The report names each gradient that is wrong, where
it is most wrong, and by how much.

Each exercise: the function's signature, a reference forward written with the engine, how to draw
its inputs, and the names of the gradients it returns (one per differentiable input, in order).
"""
from dataclasses import dataclass, field

import numpy as np

from ..gradcheck import numerical_gradients
from ..nn import functional as F
from ..tensor import Tensor

ATTENTION_SCALE = 0.5          # fixed, so a learner's function receives it and must use it


@dataclass
class Exercise:
    signature: str
    forward: object                 # Tensors -> Tensor: the reference, through the engine
    shapes: tuple                   # the shapes of the differentiable inputs
    grad_names: tuple               # what the learner's function returns, in order
    extra: dict = field(default_factory=dict)       # keyword arguments passed to the learner's function
    hint: str = ""


EXERCISES = {
    "linear_backward": Exercise(
        "linear_backward(x, weight, bias, G) -> (dx, dweight, dbias)   # y = x @ weight.T + bias",
        lambda x, w, b: F.linear(x, w, b), ((4, 3), (2, 3), (2,)), ("dx", "dweight", "dbias"),
        hint="y is linear in each input: dx = G @ weight, dweight = G.T @ x, dbias = G summed over rows"),
    "softmax_backward": Exercise(
        "softmax_backward(z, G) -> (dz,)   # p = softmax(z) along the last axis",
        lambda z: z.softmax(-1), ((3, 5),), ("dz",),
        hint="dz = p * (G - sum(G * p, axis=-1, keepdims=True))"),
    "attention_backward": Exercise(
        "attention_backward(Q, K, V, G, scale) -> (dQ, dK, dV)   # causal: P = softmax(Q K^T * scale), Y = P V",
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=ATTENTION_SCALE),
        ((5, 3), (5, 3), (5, 3)), ("dQ", "dK", "dV"), extra={"scale": ATTENTION_SCALE},
        hint="lesson 6: dV = P^T G; dP = G V^T; dS = P * (dP - rowsum(dP * P)); dQ = dS K s; dK = dS^T Q s"),
    "layer_norm_backward": Exercise(
        "layer_norm_backward(x, weight, bias, G, eps) -> (dx, dweight, dbias)   # over the last axis",
        lambda x, w, b: F.layer_norm(x, x.shape[-1], w, b, eps=1e-5), ((4, 6), (6,), (6,)),
        ("dx", "dweight", "dbias"), extra={"eps": 1e-5},
        hint="lesson 7: x_hat = (x - mean) * inv_std; g = G * weight; "
             "dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat))"),
}


@dataclass
class GradientReport:
    name: str
    ok: bool
    message: str


@dataclass
class CheckReport:
    exercise: str
    gradients: list

    @property
    def passed(self):
        return all(g.ok for g in self.gradients)

    @property
    def wrong(self):
        return [g.name for g in self.gradients if not g.ok]

    def __str__(self):
        head = f"{self.exercise}: " + ("all gradients correct" if self.passed else f"wrong: {', '.join(self.wrong)}")
        return "\n".join([head] + [f"  {'ok   ' if g.ok else 'WRONG'} {g.name}: {g.message}" for g in self.gradients])


def check(name, fn, seed=0, rtol=1e-6, atol=1e-8):
    """Grade `fn`, a learner's NumPy backward for exercise `name` (see EXERCISES). Returns a
    CheckReport: `passed`, `wrong` (the names of the wrong gradients), and a readable str."""
    if name not in EXERCISES:
        raise KeyError(f"no exercise {name!r}; there are: {', '.join(EXERCISES)}")
    ex = EXERCISES[name]
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape) for shape in ex.shapes]
    leaves = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    out = ex.forward(*leaves)
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    autograd = [leaf.grad.numpy() for leaf in leaves]
    numeric = numerical_gradients(ex.forward, arrays, upstream)

    try:
        yours = fn(*[a.copy() for a in arrays], upstream.copy(), **ex.extra)
    except NotImplementedError:
        return CheckReport(name, [GradientReport(", ".join(ex.grad_names), False,
                                                 f"not written yet (the stub raises NotImplementedError). Hint: {ex.hint}")])
    yours = list(yours) if isinstance(yours, (tuple, list)) else [yours]
    if len(yours) != len(ex.grad_names):
        return CheckReport(name, [GradientReport(", ".join(ex.grad_names), False,
                                                 f"returned {len(yours)} arrays; expected {len(ex.grad_names)} "
                                                 f"({', '.join(ex.grad_names)})")])
    reports = []
    for g_name, mine, ref, fd in zip(ex.grad_names, yours, autograd, numeric):
        reports.append(_compare(g_name, mine, ref, fd, rtol, atol))
    return CheckReport(name, reports)


def _compare(name, mine, ref, fd, rtol, atol):
    if not np.allclose(ref, fd, rtol=1e-5, atol=1e-7):          # the references themselves must agree
        raise AssertionError(f"{name}: autograd and finite differences disagree; the engine is wrong")
    mine = np.asarray(mine, dtype=np.float64)
    if mine.shape != ref.shape:
        return GradientReport(name, False, f"shape {mine.shape}, expected {ref.shape} (the input's shape)")
    err = np.abs(mine - ref)
    if np.all(err <= atol + rtol * np.abs(ref)):
        return GradientReport(name, True, f"matches autograd (max error {err.max():.1e}) "
                                          f"and finite differences (max error {np.abs(mine - fd).max():.1e})")
    worst = np.unravel_index(np.argmax(err), err.shape)
    index = tuple(int(i) for i in worst)
    off = int((err > atol + rtol * np.abs(ref)).sum())
    return GradientReport(name, False, f"{off} of {err.size} elements off; worst at {index}: yours {mine[worst]:.6g}, "
                                       f"autograd {ref[worst]:.6g}, finite differences {fd[worst]:.6g}")


def reference_solution(name):
    """A correct NumPy backward for exercise `name`, written from the formulas (used by the tests
    and by `check_exercise.py --solution`, for a learner who wants to compare after trying)."""
    return _SOLUTIONS[name]


def _linear(x, weight, bias, G):
    return G @ weight, G.T @ x, G.sum(0)


def _softmax(z, G):
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return (p * (G - (G * p).sum(-1, keepdims=True)),)


def _attention(Q, K, V, G, scale):
    T = Q.shape[0]
    S = np.where(np.triu(np.ones((T, T), dtype=bool), 1), -np.inf, Q @ K.T * scale)
    P = np.exp(S - S.max(-1, keepdims=True))
    P /= P.sum(-1, keepdims=True)
    dP = G @ V.T
    dS = P * (dP - (dP * P).sum(-1, keepdims=True))
    return dS @ K * scale, dS.T @ Q * scale, P.T @ G


def _layer_norm(x, weight, bias, G, eps):
    mean = x.mean(-1, keepdims=True)
    inv_std = 1 / np.sqrt(x.var(-1, keepdims=True) + eps)
    x_hat = (x - mean) * inv_std
    g = G * weight
    dx = inv_std * (g - g.mean(-1, keepdims=True) - x_hat * (g * x_hat).mean(-1, keepdims=True))
    return dx, (G * x_hat).sum(0), G.sum(0)


_SOLUTIONS = {"linear_backward": _linear, "softmax_backward": _softmax, "attention_backward": _attention,
              "layer_norm_backward": _layer_norm}
