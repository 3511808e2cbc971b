"""Check analytic gradients against finite differences, as Chainer's ``check_backward``.

For a function f of tensors x_1..x_m with output y, pick a random upstream gradient g of y's
shape and look at the scalar L = sum(y * g). Then
  analytic:  dL/dx_i from ``y.backward(g)``;
  numeric:   (L(x + eps e) - L(x - eps e)) / (2 eps), central differences in float64,
either per element (e = one unit vector at a time; small inputs), or along a few random
directions d over all inputs at once (large inputs), where the analytic value is sum_i <dL/dx_i, d_i>.

A random g (not ``.sum()``, which is g = 1) catches backward bugs that a uniform gradient hides,
such as a missing transpose. The caller's arrays are never modified.
"""
import numpy as np

from . import backend
from .tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree."""


def _as_float64_leaf(x):
    if isinstance(x, Tensor):
        return x
    return Tensor(np.asarray(x, dtype=np.float64), requires_grad=True)


def _loss(fn, arrays, templates, upstream):
    """L = sum(f(inputs) * upstream), computed without a graph."""
    with no_grad():
        inputs = [Tensor._from_array(a, t.device, False) if t.requires_grad else t
                  for a, t in zip(arrays, templates)]
        out = fn(*inputs)
        return float(backend.to_numpy((out.data * upstream).sum()))


def gradcheck(fn, inputs, eps=1e-6, rtol=1e-6, atol=1e-8, seed=0, max_elements=512, n_directions=4,
              upstream=None):
    """Raise ``GradcheckError`` unless analytic == numeric gradients for every input with grad.

    fn: callable taking the tensors in `inputs` and returning one Tensor.
    inputs: Tensors (float64; those with requires_grad=True are checked) or arrays (made leaves).
    Inputs with at most `max_elements` elements in total are checked element by element;
    larger ones along `n_directions` random directions. Passes when
    |analytic - numeric| <= atol + rtol * |numeric| everywhere. Returns a small report dict.
    """
    tensors = [_as_float64_leaf(x) for x in inputs]
    checked = [i for i, t in enumerate(tensors) if t.requires_grad]
    for i in checked:
        if tensors[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {tensors[i].dtype}; finite differences need "
                            "float64 (use .double())")
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    rng = np.random.default_rng(seed)

    # analytic gradients through fresh leaves (never touching the caller's .grad)
    leaves = [Tensor._from_array(t.data.copy(), t.device, True) if t.requires_grad else t for t in tensors]
    out = fn(*leaves)
    device = out.device
    if upstream is None:
        upstream = rng.standard_normal(out.shape)
    upstream = backend.to_device(np.asarray(upstream, dtype=out.dtype), device)
    out.backward(upstream)
    analytic = {}
    for i in checked:
        g = leaves[i].grad
        analytic[i] = backend.to_numpy(g.data) if g is not None else np.zeros(tensors[i].shape)

    arrays = [t.data.copy() for t in tensors]     # our own copies, perturbed in place
    total = sum(tensors[i].data.size for i in checked)
    report = {"mode": "elementwise" if total <= max_elements else "directions", "max_rel_error": 0.0}

    def fail(message):
        raise GradcheckError(f"gradcheck failed for {getattr(fn, '__name__', fn)}: {message}")

    if total <= max_elements:
        for i in checked:
            numeric = _central_differences(fn, arrays, tensors, upstream, i, eps)
            err = np.abs(analytic[i] - numeric)
            bad = err > atol + rtol * np.abs(numeric)
            rel = err / np.maximum(np.abs(numeric), atol / rtol)
            report["max_rel_error"] = max(report["max_rel_error"], float(rel.max(initial=0)))
            if bad.any():
                worst = np.unravel_index(np.argmax(np.where(bad, rel, -1)), numeric.shape)
                fail(f"input {i} (shape {tensors[i].shape}), worst index {tuple(int(k) for k in worst)}: "
                     f"analytic {analytic[i][worst]:.10g} vs numeric {numeric[worst]:.10g} "
                     f"(relative error {rel[worst]:.3g}; {int(bad.sum())} of {bad.size} elements off)")
    else:
        for k in range(n_directions):
            directions = {i: rng.standard_normal(tensors[i].shape) for i in checked}
            predicted = sum(float((analytic[i] * directions[i]).sum()) for i in checked)
            for sign, name in ((1, "plus"), (-1, "minus")):
                for i in checked:
                    arrays[i] = tensors[i].data + backend.to_device(sign * eps * directions[i], device)
                if name == "plus":
                    plus = _loss(fn, arrays, tensors, upstream)
                else:
                    minus = _loss(fn, arrays, tensors, upstream)
            numeric = (plus - minus) / (2 * eps)
            err = abs(predicted - numeric)
            rel = err / max(abs(numeric), atol / rtol)
            report["max_rel_error"] = max(report["max_rel_error"], rel)
            if err > atol + rtol * abs(numeric):
                fail(f"random direction {k} over inputs {checked}: analytic {predicted:.10g} vs "
                     f"numeric {numeric:.10g} (relative error {rel:.3g})")
    return report


def numerical_gradients(fn, inputs, upstream, eps=1e-6):
    """Central-difference gradients of L = sum(fn(*inputs) * upstream) with respect to every input,
    element by element (float64 NumPy arrays in, one NumPy array per input out). For small inputs:
    each element costs two forward passes. The caller's arrays are never modified."""
    arrays = [np.array(a, dtype=np.float64) for a in inputs]
    templates = [Tensor(a, requires_grad=True) for a in arrays]
    upstream = np.asarray(upstream, dtype=np.float64)
    return [_central_differences(fn, arrays, templates, upstream, i, eps) for i in range(len(arrays))]


def _central_differences(fn, arrays, templates, upstream, i, eps):
    """dL/d arrays[i] element by element: (L(x + eps) - L(x - eps)) / (2 eps), nudging one element of
    arrays[i] in place and putting it back (a NumPy array shaped like templates[i])."""
    flat = arrays[i].reshape(-1)
    numeric = np.zeros(flat.size)
    for j in range(flat.size):
        original = float(flat[j])
        flat[j] = original + eps
        plus = _loss(fn, arrays, templates, upstream)
        flat[j] = original - eps
        minus = _loss(fn, arrays, templates, upstream)
        flat[j] = original
        numeric[j] = (plus - minus) / (2 * eps)
    return numeric.reshape(templates[i].shape)
