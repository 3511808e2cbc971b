"""Every primitive op: gradcheck in float64 on several shapes (broadcasting, non-contiguous),
forward == NumPy, and forward + every input gradient == PyTorch (when torch is installed)."""
import math

import numpy as np
import pytest

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm import backend
from tinygrad_lm.gradcheck import gradcheck

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed (optional cross-check)")


def erf(x):
    return np.vectorize(math.erf)(x)


# name: (our function, input shapes (one list per case), NumPy reference, torch function, input kind)
CASES = {
    "add": (lambda a, b: a + b, [[(3, 4), (3, 4)], [(2, 3, 4), (4,)], [(3, 1), (1, 5)]],
            lambda a, b: a + b, lambda a, b: a + b, "any"),
    "sub": (lambda a, b: a - b, [[(3, 4), (3, 4)], [(4,), (2, 3, 4)]],
            lambda a, b: a - b, lambda a, b: a - b, "any"),
    "mul": (lambda a, b: a * b, [[(3, 4), (3, 4)], [(2, 1, 4), (3, 1)]],
            lambda a, b: a * b, lambda a, b: a * b, "any"),
    "div": (lambda a, b: a / b, [[(3, 4), (3, 4)], [(2, 3, 4), (3, 1)]],
            lambda a, b: a / b, lambda a, b: a / b, "positive"),
    "neg": (lambda a: -a, [[(3, 4)]], lambda a: -a, lambda a: -a, "any"),
    "pow": (lambda a: a ** 3, [[(3, 4)]], lambda a: a ** 3, lambda a: a ** 3, "any"),
    "pow_frac": (lambda a: a ** 0.5, [[(2, 5)]], lambda a: a ** 0.5, lambda a: a ** 0.5, "positive"),
    "matmul": (lambda a, b: a @ b, [[(3, 4), (4, 5)], [(2, 3, 4), (4, 2)], [(2, 1, 3, 4), (5, 4, 2)], [(4,), (4, 3)]],
               lambda a, b: a @ b, lambda a, b: a @ b, "any"),
    "sum": (lambda a: a.sum(), [[(3, 4)]], lambda a: a.sum(), lambda a: a.sum(), "any"),
    "sum_dim": (lambda a: a.sum(1, keepdim=True), [[(3, 4, 2)]], lambda a: a.sum(1, keepdims=True),
                lambda a: a.sum(1, keepdim=True), "any"),
    "sum_dims": (lambda a: a.sum((0, 2)), [[(3, 4, 2)]], lambda a: a.sum((0, 2)), lambda a: a.sum((0, 2)), "any"),
    "mean": (lambda a: a.mean(-1), [[(3, 4)], [(2, 3, 5)]], lambda a: a.mean(-1), lambda a: a.mean(-1), "any"),
    "max": (lambda a: a.amax(1), [[(3, 4)], [(2, 5, 3)]], lambda a: a.max(1), lambda a: a.amax(1), "any"),
    "max_all": (lambda a: a.max(), [[(3, 4)]], lambda a: a.max(), lambda a: a.max(), "any"),
    "var": (lambda a: a.var(1), [[(3, 4)], [(2, 6, 3)]], lambda a: a.var(1, ddof=1), lambda a: a.var(1), "any"),
    "var_biased": (lambda a: a.var(-1, keepdim=True, correction=0), [[(3, 4)]],
                   lambda a: a.var(-1, keepdims=True), lambda a: a.var(-1, keepdim=True, correction=0), "any"),
    "exp": (lambda a: a.exp(), [[(3, 4)]], np.exp, torch and torch.exp, "any"),
    "log": (lambda a: a.log(), [[(3, 4)]], np.log, torch and torch.log, "positive"),
    "sqrt": (lambda a: a.sqrt(), [[(3, 4)]], np.sqrt, torch and torch.sqrt, "positive"),
    "tanh": (lambda a: a.tanh(), [[(3, 4)]], np.tanh, torch and torch.tanh, "any"),
    "sigmoid": (lambda a: a.sigmoid(), [[(3, 4)]], lambda a: 1 / (1 + np.exp(-a)), torch and torch.sigmoid, "any"),
    "relu": (lambda a: a.relu(), [[(3, 4)]], lambda a: np.maximum(a, 0), torch and torch.relu, "any"),
    "gelu_tanh": (lambda a: F.gelu(a, "tanh"), [[(3, 4)]],
                  lambda a: 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3))),
                  torch and (lambda a: torch.nn.functional.gelu(a, approximate="tanh")), "any"),
    "gelu_erf": (lambda a: F.gelu(a), [[(3, 4)]], lambda a: 0.5 * a * (1 + erf(a / math.sqrt(2))),
                 torch and torch.nn.functional.gelu, "any"),
    "softmax": (lambda a: a.softmax(-1), [[(3, 5)], [(2, 3, 4)]],
                lambda a: np.exp(a - a.max(-1, keepdims=True)) / np.exp(a - a.max(-1, keepdims=True)).sum(-1, keepdims=True),
                lambda a: a.softmax(-1), "any"),
    "softmax_dim0": (lambda a: a.softmax(0), [[(4, 3)]],
                     lambda a: np.exp(a) / np.exp(a).sum(0, keepdims=True), lambda a: a.softmax(0), "any"),
    "log_softmax": (lambda a: a.log_softmax(-1), [[(3, 5)], [(2, 3, 4)]],
                    lambda a: a - np.log(np.exp(a).sum(-1, keepdims=True)), lambda a: a.log_softmax(-1), "any"),
    "reshape": (lambda a: a.reshape(4, 3), [[(3, 4)], [(2, 6)]], lambda a: a.reshape(4, 3),
                lambda a: a.reshape(4, 3), "any"),
    "transpose": (lambda a: a.transpose(0, 1), [[(3, 4)], [(2, 3, 4)]], lambda a: a.swapaxes(0, 1),
                  lambda a: a.transpose(0, 1), "any"),
    "permute": (lambda a: a.permute(2, 0, 1), [[(2, 3, 4)]], lambda a: a.transpose(2, 0, 1),
                lambda a: a.permute(2, 0, 1), "any"),
    "getitem_slice": (lambda a: a[1:, ::2], [[(3, 5)]], lambda a: a[1:, ::2], lambda a: a[1:, ::2], "any"),
    "getitem_int_array": (lambda a: a[np.array([0, 2, 0, 1])], [[(3, 4)]], lambda a: a[[0, 2, 0, 1]],
                          lambda a: a[[0, 2, 0, 1]], "any"),
    "getitem_pairs": (lambda a: a[np.array([0, 1, 1]), np.array([2, 0, 2])], [[(3, 4)]],
                      lambda a: a[[0, 1, 1], [2, 0, 2]], lambda a: a[[0, 1, 1], [2, 0, 2]], "any"),
    "masked_fill": (lambda a: a.masked_fill(np.triu(np.ones((4, 4), bool), 1), 0.0), [[(2, 4, 4)]],
                    lambda a: np.where(np.triu(np.ones((4, 4), bool), 1), 0.0, a),
                    lambda a: a.masked_fill(torch.triu(torch.ones(4, 4, dtype=torch.bool), 1), 0.0), "any"),
    "where": (lambda a, b: tg.where(np.arange(12).reshape(3, 4) % 3 == 0, a, b), [[(3, 4), (4,)]],
              lambda a, b: np.where(np.arange(12).reshape(3, 4) % 3 == 0, a, b),
              lambda a, b: torch.where(torch.arange(12).reshape(3, 4) % 3 == 0, a, b), "any"),
    "cat": (lambda a, b: tg.cat([a, b], dim=1), [[(2, 3), (2, 4)]], lambda a, b: np.concatenate([a, b], 1),
            lambda a, b: torch.cat([a, b], 1), "any"),
    "stack": (lambda a, b: tg.stack([a, b], dim=1), [[(2, 3), (2, 3)]], lambda a, b: np.stack([a, b], 1),
              lambda a, b: torch.stack([a, b], 1), "any"),
    "split": (lambda a: a.split([1, 3], dim=1)[1], [[(2, 4)]], lambda a: a[:, 1:],
              lambda a: a.split([1, 3], dim=1)[1], "any"),
    "embedding": (lambda w: F.embedding(np.array([[0, 2, 2], [1, 0, 3]]), w), [[(4, 3)]],
                  lambda w: w[np.array([[0, 2, 2], [1, 0, 3]])],
                  lambda w: torch.nn.functional.embedding(torch.tensor([[0, 2, 2], [1, 0, 3]]), w), "any"),
    "cross_entropy": (lambda a: F.cross_entropy(a, np.array([1, 0, 4])), [[(3, 5)]],
                      lambda a: -np.mean((a - np.log(np.exp(a).sum(-1, keepdims=True)))[np.arange(3), [1, 0, 4]]),
                      lambda a: torch.nn.functional.cross_entropy(a, torch.tensor([1, 0, 4])), "any"),
    "cross_entropy_ignore": (lambda a: F.cross_entropy(a, np.array([[1, -100], [3, 2]])), [[(2, 5, 2)]],
                             lambda a: -np.mean((a - np.log(np.exp(a).sum(1, keepdims=True)))[[0, 1, 1], [1, 3, 2], [0, 0, 1]]),
                             lambda a: torch.nn.functional.cross_entropy(a, torch.tensor([[1, -100], [3, 2]])), "any"),
    # issue #13: the methods added to agree with PyTorch
    "abs": (lambda a: a.abs(), [[(3, 4)]], np.abs, lambda a: a.abs(), "any"),
    "clamp": (lambda a: a.clamp(-0.5, 0.5), [[(3, 4)]], lambda a: np.clip(a, -0.5, 0.5),
              lambda a: a.clamp(-0.5, 0.5), "any"),
    "clamp_tensor": (lambda a, b: a.clamp(min=b), [[(3, 4), (4,)]], np.maximum, lambda a, b: a.clamp(min=b), "any"),
    "min_all": (lambda a: a.min(), [[(3, 4)]], lambda a: a.min(), lambda a: a.min(), "any"),
    "amin": (lambda a: a.amin(1), [[(3, 4)]], lambda a: a.min(1), lambda a: a.amin(1), "any"),
    "max_dim": (lambda a: a.max(1).values, [[(3, 4)]], lambda a: a.max(1), lambda a: a.max(1).values, "any"),
    "expand": (lambda a: a.expand(2, 3, 4), [[(3, 1)]], lambda a: np.broadcast_to(a, (2, 3, 4)),
               lambda a: a.expand(2, 3, 4), "any"),
    "tril": (lambda a: a.tril(), [[(2, 3, 3)]], np.tril, lambda a: a.tril(), "any"),
    "triu": (lambda a: a.triu(1), [[(3, 4)]], lambda a: np.triu(a, 1), lambda a: a.triu(1), "any"),
    "maximum": (lambda a, b: a.maximum(b), [[(3, 4), (4,)]], np.maximum, lambda a, b: a.maximum(b), "any"),
    "minimum": (lambda a, b: a.minimum(b), [[(3, 4), (3, 1)]], np.minimum, lambda a, b: a.minimum(b), "any"),
    "rsqrt": (lambda a: a.rsqrt(), [[(3, 4)]], lambda a: 1 / np.sqrt(a), lambda a: a.rsqrt(), "positive"),
    "cumsum": (lambda a: a.cumsum(1), [[(3, 4)]], lambda a: a.cumsum(1), lambda a: a.cumsum(1), "any"),
    "logsumexp": (lambda a: a.logsumexp(-1), [[(3, 4)]], lambda a: np.log(np.exp(a).sum(-1)),
                  lambda a: a.logsumexp(-1), "any"),
    "flip": (lambda a: a.flip(0), [[(3, 4)]], lambda a: a[::-1], lambda a: a.flip(0), "any"),
    "repeat": (lambda a: a.repeat(2, 1, 3), [[(3, 4)]], lambda a: np.tile(a, (2, 1, 3)),
               lambda a: a.repeat(2, 1, 3), "any"),
    "gather": (lambda a: a.gather(1, np.array([[0, 0], [3, 1], [2, 2]])), [[(3, 4)]],
               lambda a: np.take_along_axis(a, np.array([[0, 0], [3, 1], [2, 2]]), 1),
               lambda a: a.gather(1, torch.tensor([[0, 0], [3, 1], [2, 2]])), "any"),
    "sort": (lambda a: a.sort(1).values, [[(3, 4)]], lambda a: np.sort(a, 1), lambda a: a.sort(1).values, "any"),
    "topk": (lambda a: a.topk(2, dim=1).values, [[(3, 4)]], lambda a: -np.sort(-a, 1)[:, :2],
             lambda a: a.topk(2, dim=1).values, "any"),
    "pow_tensor": (lambda a, b: a ** b, [[(3, 4), (4,)]], lambda a, b: a ** b, lambda a, b: a ** b, "positive"),
    "getitem_int_and_array": (lambda a: a[1, :, np.array([0, 2, 3])], [[(2, 3, 4)]], lambda a: a[1][:, [0, 2, 3]],
                              lambda a: a[1, :, [0, 2, 3]], "any"),
    "clone": (lambda a: a.clone(), [[(3, 4)]], lambda a: a.copy(), lambda a: a.clone(), "any"),
    "var_all": (lambda a: a.var(), [[(3, 4)]], lambda a: a.var(ddof=1), lambda a: a.var(), "any"),
}


def make_inputs(shapes, kind, rng, device="cpu", non_contiguous=False):
    arrays = []
    for s in shapes:
        a = rng.standard_normal(s)
        if kind == "positive":
            a = np.abs(a) + 0.5
        if non_contiguous and a.ndim >= 2:
            a = np.ascontiguousarray(a.swapaxes(-1, -2)).swapaxes(-1, -2)   # same values, F-ordered
            assert not a.flags.c_contiguous or min(a.shape[-2:]) == 1
        arrays.append(a)
    return arrays, [tg.Tensor(backend.to_device(a, device), requires_grad=True) for a in arrays]


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck_float64(name, rng, device):
    fn, shape_cases, _, _, kind = CASES[name]
    for shapes in shape_cases:
        for non_contiguous in (False, True):
            _, tensors = make_inputs(shapes, kind, rng, device, non_contiguous)
            report = gradcheck(fn, tensors)
            assert report["max_rel_error"] <= 1e-6


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_numpy_and_preserves_dtype(name, rng, device):
    fn, shape_cases, reference, _, kind = CASES[name]
    for dtype in (np.float32, np.float64):
        for shapes in shape_cases:
            arrays, _ = make_inputs(shapes, kind, rng)
            tensors = [tg.Tensor(backend.to_device(a.astype(dtype), device)) for a in arrays]
            out = fn(*tensors)
            assert out.dtype == dtype, f"{name} turned {dtype} into {out.dtype}"
            assert out.device == device
            expected = reference(*[a.astype(np.float64) for a in arrays])
            tol = 1e-5 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(out.numpy(), expected, rtol=tol, atol=tol)


@needs_torch
@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_and_gradients_match_torch(name, rng):
    fn, shape_cases, _, torch_fn, kind = CASES[name]
    for shapes in shape_cases:
        arrays, tensors = make_inputs(shapes, kind, rng)
        out = fn(*tensors)
        upstream = rng.standard_normal(out.shape)
        out.backward(upstream)
        ts = [torch.tensor(a, requires_grad=True) for a in arrays]
        t_out = torch_fn(*ts)
        t_out.backward(torch.tensor(upstream))
        np.testing.assert_allclose(out.numpy(), t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
        for ours, theirs in zip(tensors, ts):
            assert ours.grad.shape == ours.shape and ours.grad.dtype == ours.dtype
            np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_softmax_is_stable_for_large_and_masked_inputs(device):
    x = tg.Tensor(backend.to_device(np.array([[1000.0, 1001.0, -np.inf], [-1e4, 0.0, -np.inf]]), device),
                  requires_grad=True)
    p = x.softmax(-1)
    assert np.all(np.isfinite(p.numpy()))
    np.testing.assert_allclose(p.numpy()[:, 2], 0.0)
    np.testing.assert_allclose(p.numpy().sum(-1), 1.0)
    lp = x.log_softmax(-1)
    assert np.isfinite(lp.numpy()[:, :2]).all()
    p.backward(backend.to_device(np.ones((2, 3)), device))
    assert np.all(np.isfinite(backend.to_numpy(x.grad.data)))


def test_dropout_is_identity_in_eval_and_scaled_in_training():
    tg.manual_seed(0)
    x = tg.Tensor(np.ones((200, 50)), requires_grad=True)
    assert F.dropout(x, 0.3, training=False) is x
    y = F.dropout(x, 0.3, training=True)
    values = np.unique(y.numpy())
    np.testing.assert_allclose(values, [0.0, 1 / 0.7])
    assert abs((y.numpy() == 0).mean() - 0.3) < 0.02
    y.backward(np.full(y.shape, 2.0))
    np.testing.assert_allclose(x.grad, 2.0 * y.numpy())


def test_dropout_gradcheck_with_fixed_mask():
    x = tg.Tensor(np.random.default_rng(0).standard_normal((4, 6)), requires_grad=True)

    def fn(a):
        tg.manual_seed(7)    # the same mask in every evaluation, so finite differences apply
        return F.dropout(a, 0.5, training=True)
    gradcheck(fn, [x])


def test_max_with_dim_returns_values_and_indices():
    x = tg.Tensor(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 7.5]]))
    values, indices = x.max(1)
    np.testing.assert_array_equal(values.numpy(), [5.0, 7.5])
    np.testing.assert_array_equal(indices.numpy(), [1, 2])


def test_max_splits_gradient_between_ties():
    x = tg.Tensor(np.array([[2.0, 2.0, 1.0]]), requires_grad=True)
    x.amax(1).backward(np.array([1.0]))
    np.testing.assert_allclose(x.grad, [[0.5, 0.5, 0.0]])
