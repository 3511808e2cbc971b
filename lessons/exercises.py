"""Fill-in exercises: write each backward pass in plain NumPy, then check it.

    python lessons/check_exercise.py linear_backward        # or softmax_backward,
    python lessons/check_exercise.py attention_backward     # layer_norm_backward, or --all

The checker (tinygrad_lm/teaching/exercises.py) feeds your function small random float64 arrays and a random
upstream gradient G = dL/dy, and compares each gradient you return with the engine's autograd and
with finite differences; it names the gradient that is wrong and where. Every function returns one
gradient per input (each the input's shape), in the order of the inputs. In a notebook:

    from tinygrad_lm.teaching.exercises import check
    print(check("attention_backward", attention_backward))
"""
import numpy as np  # noqa: F401  (you will need it)


def linear_backward(x, weight, bias, G):
    """y = x @ weight.T + bias, x (N, in), weight (out, in), bias (out,), G = dL/dy (N, out).
    Return (dx, dweight, dbias). Warm-up; see lesson 2 and tinygrad_lm/ops/fused.py."""
    raise NotImplementedError


def softmax_backward(z, G):
    """p = softmax(z) along the last axis, z (N, V), G = dL/dp. Return (dz,). Lesson 6, step 3."""
    raise NotImplementedError


def attention_backward(Q, K, V, G, scale):
    """One causal head, Q, K, V (T, D): S = Q K^T * scale (future masked), P = softmax(S) by rows,
    Y = P V; G = dL/dY (T, D). Return (dQ, dK, dV). Lesson 6 derives each step."""
    raise NotImplementedError


def layer_norm_backward(x, weight, bias, G, eps):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis (var without Bessel's
    correction), x (N, C), weight and bias (C,), G = dL/dy. Return (dx, dweight, dbias). Lesson 7."""
    raise NotImplementedError
