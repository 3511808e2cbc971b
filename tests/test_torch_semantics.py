"""Issue #13: the Tensor API agrees with PyTorch wherever it borrows PyTorch's names.

Each test asserts the concrete values PyTorch gives (so it means something without torch), and
compares with torch itself when it is installed.
"""
import numpy as np
import pytest

import tinygrad_lm as tg


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def grads_of(fn, *arrays):
    """fn applied to tg leaves made from `arrays`: (output as NumPy, [gradient of each leaf])."""
    leaves = [tg.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    out.sum().backward()
    return out.numpy(), [np.asarray(t.grad) for t in leaves]


def torch_grads_of(fn, *arrays):
    torch = pytest.importorskip("torch")
    leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    out.sum().backward()
    return out.detach().numpy(), [t.grad.numpy() for t in leaves]


def assert_same_as_torch(fn, *arrays, torch_fn=None):
    out, grads = grads_of(fn, *arrays)
    if _torch() is None:
        return out, grads
    t_out, t_grads = torch_grads_of(torch_fn or fn, *arrays)
    np.testing.assert_allclose(out, t_out, rtol=1e-6, atol=1e-7)
    for g, tg_ in zip(grads, t_grads):
        np.testing.assert_allclose(g, tg_, rtol=1e-6, atol=1e-7)
    return out, grads


# ------------------------------------------------------------------- comparisons give bool tensors
def test_comparisons_give_bool_tensors_usable_as_masks_and_keys():
    pred, y = tg.tensor([1, 2, 3, 4]), tg.tensor([1, 0, 3, 0])
    eq = pred == y
    assert isinstance(eq, tg.Tensor) and eq.dtype == np.bool_
    assert (pred == y).float().mean().item() == 0.5
    x = tg.tensor([0.0, 1.5, 0.0, -2.0])
    assert (x != 0).tolist() == [False, True, False, True]
    assert x[x == 0].tolist() == [0.0, 0.0]
    assert x.masked_fill(x == 0, 9.0).tolist() == [9.0, 1.5, 9.0, -2.0]
    assert (~(x == 0)).tolist() == [False, True, False, True]
    assert ((x > -1) & (x < 1)).tolist() == [True, False, True, False]
    assert ((x > 1) | (x < -1)).tolist() == [False, True, False, True]
    assert (x == None) is False and (x != None) is True          # noqa: E711 (as PyTorch)
    # the hash stays the identity: tensors still work in sets and dicts, as parameters do
    a, b = tg.tensor([1.0]), tg.tensor([1.0])
    assert len({a, b}) == 2 and {a: 1, b: 2}[b] == 2
    torch = _torch()
    if torch is not None:
        assert torch.tensor([0.0, 1.5, 0.0, -2.0])[torch.tensor([0.0, 1.5, 0.0, -2.0]) == 0].tolist() == [0.0, 0.0]


def test_parameter_bookkeeping_uses_identity_not_equality():
    model = tg.nn.Linear(3, 2) if hasattr(tg, "nn") else None
    import tinygrad_lm.nn as nn
    from tinygrad_lm.optim import AdamW
    model = nn.Linear(3, 2)
    model.bias.data[...] = model.weight.data[0, :2]       # equal values must not confuse anything
    params = model.parameters()
    assert len(params) == 2 and params[0] is model.weight
    opt = AdamW(params, lr=0.1)
    model(tg.tensor(np.ones((1, 3), np.float32))).sum().backward()
    opt.step()


# ------------------------------------------------------------------- one-element tensors -> Python
def test_one_element_tensors_convert_to_python_values():
    assert bool(tg.tensor([0.0]) > 1) is False
    loss, best = tg.tensor(0.5), tg.tensor(1.0)
    improved = False
    if loss < best:
        improved = True
    assert improved
    assert float(tg.tensor([2.5])) == 2.5 and int(tg.tensor(7)) == 7
    assert [10, 20, 30][tg.tensor(1)] == 20
    with pytest.raises(RuntimeError, match="Boolean value of Tensor with more than one value is ambiguous"):
        bool(tg.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="only one element tensors can be converted to Python scalars"):
        float(tg.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="only integer tensors of a single element can be converted to an index"):
        [1, 2][tg.tensor(1.0)]


# ------------------------------------------------------------------- type promotion
PROMOTION_CASES = [
    # (build tg result, build torch result, expected dtype, expected values)
    (lambda m: m.tensor([1, 2, 3]) * 0.5, np.float32, [0.5, 1.0, 1.5]),
    (lambda m: m.tensor(1) + 0.5, np.float32, 1.5),
    (lambda m: m.tensor([1, 2]) / m.tensor([2, 4]), np.float32, [0.5, 0.5]),
    (lambda m: m.tensor([1.0, 2.0]) * 2.5, np.float32, [2.5, 5.0]),
    (lambda m: m.tensor([1.0], dtype=m.float32) + m.tensor([1.0], dtype=m.float64), np.float64, [2.0]),
    (lambda m: m.tensor([1], dtype=m.int64) + m.tensor([1], dtype=m.int32), np.int64, [2]),
    (lambda m: m.tensor([True, False]) + 1, np.int64, [2, 1]),
    (lambda m: m.tensor([1], dtype=m.int32) + 1, np.int32, [2]),
    (lambda m: m.tensor([1.0], dtype=m.float32) * m.tensor(2.0, dtype=m.float64), np.float32, [2.0]),
    (lambda m: m.tensor([1, 2]) + m.tensor(1.5, dtype=m.float64), np.float64, [2.5, 3.5]),
    (lambda m: m.tensor([1, 2]) ** 2, np.int64, [1, 4]),
    (lambda m: m.tensor([1, 4]) ** 0.5, np.float32, [1.0, 2.0]),
    (lambda m: 2.0 ** m.tensor([1, 2]), np.float32, [2.0, 4.0]),
    (lambda m: 1 - m.tensor([0.25]), np.float32, [0.75]),
]


@pytest.mark.parametrize("i", range(len(PROMOTION_CASES)))
def test_type_promotion_follows_torch(i):
    build, dtype, values = PROMOTION_CASES[i]
    out = build(tg)
    assert out.dtype == dtype, f"got {out.dtype}"
    np.testing.assert_allclose(out.numpy(), values)
    torch = _torch()
    if torch is not None:
        t = build(torch)
        assert str(t.dtype).replace("torch.", "") == np.dtype(dtype).name
        np.testing.assert_allclose(t.numpy(), values)


def test_promotion_keeps_the_graph_and_gradient_dtypes():
    x = tg.tensor([1.0, 2.0], dtype=tg.float32, requires_grad=True)
    w = tg.tensor([3.0, 4.0], dtype=tg.float64, requires_grad=True)
    y = x * w
    assert y.dtype == np.float64
    y.sum().backward()
    assert np.asarray(x.grad).dtype == np.float32 and np.asarray(x.grad).tolist() == [3.0, 4.0]


# ------------------------------------------------------------------- indexing: PyTorch's placement
INDEX_CASES = [
    lambda x, t: x[1, :, t([0, 2, 3])],
    lambda x, t: x[0, :, t([0, 1])],
    lambda x, t: x[t([0, 1]), :, 1],
    lambda x, t: x[:, 1, t([0, 1, 1])],
    lambda x, t: x[t([1, 0]), 2, t([3, 3])],
    lambda x, t: x[..., t([0, 0])],
    lambda x, t: x[1, t([[0, 1], [2, 2]])],
    lambda x, t: x[None, 1, :, t([0, 3])],
]


@pytest.mark.parametrize("i", range(len(INDEX_CASES)))
def test_mixed_int_and_array_indices_follow_torch(i):
    a = np.arange(24.0).reshape(2, 3, 4)
    fn = INDEX_CASES[i]
    out, (grad,) = grads_of(lambda x: fn(x, tg.tensor), a)
    expected_shapes = [(3, 3), (3, 2), (2, 3), (2, 3), (2,), (2, 3, 2), (2, 2, 4), (1, 3, 2)]
    assert out.shape == expected_shapes[i]
    if i == 0:     # PyTorch: rows are the slice, columns the list (NumPy would transpose this)
        np.testing.assert_array_equal(out, [[12, 14, 15], [16, 18, 19], [20, 22, 23]])
    assert grad.sum() == out.size           # every picked element sends its gradient back once
    if _torch() is not None:
        torch = _torch()
        t_out, (t_grad,) = torch_grads_of(lambda x: fn(x, torch.tensor), a)
        np.testing.assert_array_equal(out, t_out)
        np.testing.assert_array_equal(grad, t_grad)


# ------------------------------------------------------------------- gradients at edge points
def test_gradients_at_edge_points_match_torch():
    zero = np.array([0.0, 2.0])
    expected = {0: [0.0, 0.0], 1: [1.0, 1.0], 2: [0.0, 4.0], 0.5: [np.inf, 0.5 / np.sqrt(2)]}
    for p, g in expected.items():
        _, (grad,) = assert_same_as_torch(lambda x, p=p: x ** p, zero)
        np.testing.assert_allclose(grad, g)
    out, (grad,) = assert_same_as_torch(lambda x: x.relu(), np.array([0.0, -np.inf, np.inf, -1.0]))
    np.testing.assert_array_equal(out, [0.0, 0.0, np.inf, 0.0])
    np.testing.assert_array_equal(grad, [0.0, 0.0, 1.0, 0.0])
    _, (grad,) = assert_same_as_torch(lambda x: x.sqrt(), np.array([0.0]))
    assert grad[0] == np.inf
    _, (grad,) = assert_same_as_torch(lambda x: x.abs(), np.array([0.0, -3.0, 2.0]))
    np.testing.assert_array_equal(grad, [0.0, -1.0, 1.0])


def test_max_ties_route_the_gradient_as_torch():
    ties = np.array([[2.0, 2.0, 1.0], [0.0, 5.0, 5.0]])
    values, (grad,) = assert_same_as_torch(lambda x: x.max(dim=1).values, ties)
    np.testing.assert_array_equal(grad, [[1, 0, 0], [0, 1, 0]])           # the returned index only
    _, (grad,) = assert_same_as_torch(lambda x: x.min(dim=0).values, ties)
    np.testing.assert_array_equal(grad, [[0, 1, 1], [1, 0, 0]])
    for fn in (lambda x: x.max(), lambda x: x.amax(1), lambda x: x.amax()):
        _, (grad,) = assert_same_as_torch(fn, np.array([[2.0, 2.0, 1.0]]))
        np.testing.assert_allclose(grad, [[0.5, 0.5, 0.0]])                  # ties share
    _, (grad,) = assert_same_as_torch(lambda x: x.maximum(x.detach() * 0 + 2.0), np.array([2.0, 3.0]),
                                      torch_fn=lambda x: x.maximum(x.detach() * 0 + 2.0))
    np.testing.assert_allclose(grad, [0.5, 1.0])


# ------------------------------------------------------------------- construction copies
def test_tensor_copies_its_array_and_from_numpy_shares():
    a = np.zeros(3, dtype=np.float32)
    t, shared = tg.Tensor(a), tg.from_numpy(a)
    a[0] = 5.0
    assert t.tolist() == [0.0, 0.0, 0.0] and tg.tensor(a).tolist() == [5.0, 0.0, 0.0]
    assert shared.tolist() == [5.0, 0.0, 0.0]
    shared.data[1] = 7.0
    assert a[1] == 7.0
    with pytest.raises(TypeError, match="numpy.ndarray"):
        tg.from_numpy([1.0])


# ------------------------------------------------------------------- dims are checked
@pytest.mark.parametrize("build, message", [
    (lambda x: x.squeeze(50), r"Dimension out of range \(expected to be in range of \[-3, 2\], but got 50\)"),
    (lambda x: x.unsqueeze(6), r"in range of \[-4, 3\], but got 6"),
    (lambda x: tg.stack([x, x], dim=77), r"in range of \[-4, 3\], but got 77"),
    (lambda x: tg.cat([x, x], dim=3), r"in range of \[-3, 2\], but got 3"),
    (lambda x: x.sum(3), r"but got 3"),
    (lambda x: x.mean(-4), r"but got -4"),
    (lambda x: x.max(5), r"but got 5"),
    (lambda x: x.var(4), r"but got 4"),
    (lambda x: x.softmax(3), r"but got 3"),
    (lambda x: x.log_softmax(-5), r"but got -5"),
    (lambda x: x.split(1, dim=3), r"but got 3"),
    (lambda x: x.chunk(2, dim=3), r"but got 3"),
    (lambda x: x.transpose(0, 3), r"but got 3"),
    (lambda x: x.permute(0, 1, 3), r"but got 3"),
    (lambda x: x.flatten(3), r"but got 3"),
    (lambda x: x.argmax(3), r"but got 3"),
])
def test_out_of_range_dims_raise_torchs_index_error(build, message):
    x = tg.zeros(2, 3, 4)
    with pytest.raises(IndexError, match=message):
        build(x)


# ------------------------------------------------------------------- former crashes
def test_var_without_degrees_of_freedom_matches_torch():
    out, (grad,) = assert_same_as_torch(lambda x: x.var(), np.array([3.0]))
    assert np.isnan(out) and np.isnan(grad).all()
    out, (grad,) = assert_same_as_torch(lambda x: x.var(correction=2), np.array([0.0, 1.0]))
    assert out == np.inf and (grad == np.inf).all()
    out, (grad,) = assert_same_as_torch(lambda x: x.var(1), np.array([[3.0]]))
    assert np.isnan(out).all() and np.isnan(grad).all()


def test_zero_dim_tensors_and_scalar_where():
    x = tg.tensor(3.0)
    assert x.squeeze(0).shape == () and x.flatten().shape == (1,)
    assert x.sum(0).item() == 3.0 and x.sum(-1).shape == () and x.mean(0).item() == 3.0
    out = tg.where(tg.tensor([True, False]), 1, 3)
    assert out.tolist() == [1, 3] and out.dtype == np.int64
    out = tg.where(tg.tensor([True, False]), 1.0, 3)
    assert out.tolist() == [1.0, 3.0] and out.dtype == np.float32


# ------------------------------------------------------------------- NumPy's names accepted
def test_axis_and_keepdims_aliases_and_std_unbiased():
    a = np.arange(6.0).reshape(2, 3)
    x = tg.tensor(a)
    assert x.sum(axis=1, keepdims=True).shape == (2, 1)
    np.testing.assert_allclose(x.mean(axis=0).numpy(), a.mean(0))
    np.testing.assert_allclose(x.max(axis=1).values.numpy(), [2, 5])
    np.testing.assert_allclose(x.amin(axis=1, keepdims=True).numpy(), [[0], [3]])
    assert x.argmax(axis=1).tolist() == [2, 2] and x.argmin(axis=0).tolist() == [0, 0, 0]
    np.testing.assert_allclose(x.var(axis=1).numpy(), a.var(1, ddof=1))
    np.testing.assert_allclose(x.std(axis=1, unbiased=False).numpy(), a.std(1))
    np.testing.assert_allclose(x.std(1, False).numpy(), a.std(1))          # torch's std(dim, unbiased)
    np.testing.assert_allclose(x.softmax(axis=1).numpy().sum(1), [1, 1], rtol=1e-6)
    np.testing.assert_allclose(x.log_softmax(axis=0).exp().numpy().sum(0), [1, 1, 1], rtol=1e-6)
    assert tg.cat([x, x], axis=1).shape == (2, 6) and tg.stack([x, x], axis=2).shape == (2, 3, 2)


# ------------------------------------------------------------------- new methods, vs PyTorch
rng = np.random.default_rng(0)
M = rng.standard_normal((3, 4))
NEW_METHODS = {
    "abs": (lambda x: x.abs(), [M], None),
    "clamp": (lambda x: x.clamp(-0.5, 0.5), [M], None),
    "clamp_min_only": (lambda x: x.clamp(min=0.0), [M], None),
    "clip_tensor_bounds": (lambda x, lo: x.clip(lo, lo + 1), [M, M[0] * 0.5], None),
    "amin": (lambda x: x.amin(1), [M], None),
    "min": (lambda x: x.min(), [M], None),
    "expand": (lambda x: x[:1].expand(2, 3, 4), [M], None),
    "expand_as": (lambda x: x[:, :1].expand_as(x), [M], None),
    "tril": (lambda x: x.tril(), [M], None),
    "triu": (lambda x: x.triu(1), [M], None),
    "where_method": (lambda x, y: x.where(x > 0, y), [M, M * 2], None),
    "maximum": (lambda x, y: x.maximum(y), [M, M[::-1].copy()], None),
    "minimum": (lambda x, y: x.minimum(y), [M, M[0]], None),
    "rsqrt": (lambda x: x.rsqrt(), [np.abs(M) + 0.5], None),
    "cumsum": (lambda x: x.cumsum(1), [M], None),
    "logsumexp": (lambda x: x.logsumexp(1), [M], None),
    "flip": (lambda x: x.flip(0, 1), [M], None),
    "repeat": (lambda x: x.repeat(2, 1, 3), [M], None),
    "gather": (lambda x: x.gather(1, np.array([[0, 0], [3, 1], [2, 2]])), [M],
               lambda x: x.gather(1, __import__("torch").tensor([[0, 0], [3, 1], [2, 2]]))),
    "topk": (lambda x: x.topk(2, dim=1).values, [M], None),
    "sort": (lambda x: x.sort(0, descending=True).values, [M], None),
    "pow_tensor": (lambda x, y: x ** y, [np.abs(M) + 0.5, M], None),
    "rpow": (lambda x: 2.0 ** x, [M], None),
    "clone": (lambda x: x.clone() * 2, [M], None),
    "contiguous": (lambda x: x.T.contiguous(), [M], None),
}


@pytest.mark.parametrize("name", sorted(NEW_METHODS))
def test_new_methods_match_torch(name):
    fn, arrays, torch_fn = NEW_METHODS[name]
    out, grads = grads_of(fn, *arrays)
    assert all(g.shape == a.shape for g, a in zip(grads, arrays))
    if _torch() is not None:
        t_out, t_grads = torch_grads_of(torch_fn or fn, *arrays)
        np.testing.assert_allclose(out, t_out, rtol=1e-12, atol=1e-12)
        for g, t_g in zip(grads, t_grads):
            np.testing.assert_allclose(g, t_g, rtol=1e-12, atol=1e-12)


def test_new_methods_concrete_values():
    x = tg.tensor([[3.0, -1.0, 2.0], [0.0, 5.0, -4.0]])
    assert x.abs().tolist() == [[3, 1, 2], [0, 5, 4]]
    assert x.clamp(-1, 2).tolist() == [[2, -1, 2], [0, 2, -1]]
    assert x.min().item() == -4 and x.min(1).indices.tolist() == [1, 2] and x.argmin().item() == 5
    assert x.cumsum(1).tolist() == [[3, 2, 4], [0, 5, 1]]
    assert x.flip(1).tolist() == [[2, -1, 3], [-4, 5, 0]]
    assert x.sort(1).values.tolist() == [[-1, 2, 3], [-4, 0, 5]] and x.sort(1).indices.tolist() == [[1, 2, 0], [2, 0, 1]]
    assert x.topk(1).values.tolist() == [[3], [5]] and x.topk(1).indices.tolist() == [[0], [1]]
    assert x.gather(1, tg.tensor([[2], [0]])).tolist() == [[2], [0]]
    assert x.tril().tolist() == [[3, 0, 0], [0, 5, 0]] and x.triu().tolist() == [[3, -1, 2], [0, 5, -4]]
    assert x[:1].expand(2, 3).tolist() == [[3, -1, 2], [3, -1, 2]]
    assert x[:, :1].repeat(1, 2).tolist() == [[3, 3], [0, 0]]
    assert x.maximum(tg.tensor(1.0)).tolist() == [[3, 1, 2], [1, 5, 1]]
    assert tg.tensor([4.0]).rsqrt().tolist() == [0.5]
    assert (tg.tensor([2.0]) ** tg.tensor([3.0])).tolist() == [8.0]
    np.testing.assert_allclose(tg.tensor([0.0, 0.0]).logsumexp(0).item(), np.log(2), rtol=1e-6)
    c = x.clone()
    assert c.data is not x.data and c.tolist() == x.tolist()


# ------------------------------------------------------------------- casts and dtype names
def test_casts_and_dtype_names():
    x = tg.tensor([1.7, -2.2, 0.0], requires_grad=True)
    assert x.long().tolist() == [1, -2, 0] and x.long().dtype == tg.int64 and not x.long().requires_grad
    assert x.int().dtype == tg.int32 and x.bool().tolist() == [True, True, False]
    assert x.bool().dtype == tg.bool and x.double().dtype == tg.float64
    assert x.type_as(tg.tensor([1], dtype=tg.int64)).dtype == np.int64
    assert tg.tensor([1, 2]).float().dtype == tg.float32
    y = x.double()
    (y * 2).sum().backward()
    assert np.asarray(x.grad).dtype == np.float32 and np.asarray(x.grad).tolist() == [2.0, 2.0, 2.0]


# ------------------------------------------------------------------- constructors
def test_constructors_follow_torch():
    assert tg.arange(5).dtype == np.int64 and tg.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert tg.arange(0, 1, 0.25).dtype == np.float32 and tg.arange(0, 1, 0.25).tolist() == [0, 0.25, 0.5, 0.75]
    assert tg.zeros(2, 3).shape == (2, 3) and tg.zeros((2, 3)).dtype == np.float32
    assert tg.ones(2, dtype=tg.int64).tolist() == [1, 1]
    assert tg.full((2,), 7).dtype == np.int64 and tg.full((2,), 0.5).tolist() == [0.5, 0.5]
    assert tg.eye(2).tolist() == [[1, 0], [0, 1]]
    x = tg.tensor([[1.0, 2.0]], dtype=tg.float64)
    assert tg.zeros_like(x).dtype == np.float64 and tg.ones_like(x).tolist() == [[1, 1]]
    assert tg.zeros(3, requires_grad=True).requires_grad
    tg.manual_seed(3)
    a, b, c = tg.randn(2, 3), tg.rand(4), tg.randint(0, 10, (5,))
    tg.manual_seed(3)
    assert tg.randn(2, 3).tolist() == a.tolist() and tg.rand(4).tolist() == b.tolist()
    assert tg.randint(0, 10, (5,)).tolist() == c.tolist()
    assert a.dtype == np.float32 and b.dtype == np.float32 and c.dtype == np.int64
    assert 0 <= b.numpy().min() and b.numpy().max() < 1 and 0 <= c.numpy().min() and c.numpy().max() < 10
