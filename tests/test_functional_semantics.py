"""tinygrad_lm.nn.functional agrees with torch.nn.functional wherever it borrows its names (issue #13).

Each test compares with PyTorch in float64: the forward, and the gradient of every input that
requires one under a random upstream gradient; the fused functions also against their composite
twins and finite differences.
"""
import inspect
import math

import numpy as np
import pytest

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm import nn
from tinygrad_lm.gradcheck import gradcheck

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def as_torch(x):
    """A constant (numpy array or non-grad Tensor) as a torch tensor; anything else unchanged."""
    if isinstance(x, tg.Tensor):
        return torch.from_numpy(x.numpy())
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    return x


def agree_with_torch(ours, theirs, leaves, constants=(), rng=None, kwargs=None, rtol=1e-10, atol=1e-12):
    """ours(*leaves, *constants, **kwargs) == theirs(same in torch), forward and every leaf's gradient
    under a random upstream gradient. `leaves` are float64 arrays (made to require grad)."""
    rng = rng or np.random.default_rng(0)
    kwargs = kwargs or {}
    a = [tg.Tensor(x, requires_grad=True) for x in leaves]
    b = [torch.tensor(x, requires_grad=True) for x in leaves]
    ya = ours(*a, *constants, **kwargs)
    yb = theirs(*b, *[as_torch(c) for c in constants], **{k: as_torch(v) for k, v in kwargs.items()})
    np.testing.assert_allclose(ya.numpy(), yb.detach().numpy(), rtol=rtol, atol=atol)
    g = rng.standard_normal(ya.shape)
    ya.backward(g)
    yb.backward(torch.from_numpy(np.asarray(g)))
    for x, y in zip(a, b):
        expected = y.grad.numpy() if y.grad is not None else np.zeros(x.shape)
        got = x.grad if x.grad is not None else np.zeros(x.shape)
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)
    return ya


def fused_equals_composite(fused, composite, leaves, rng):
    a = [tg.Tensor(x, requires_grad=True) for x in leaves]
    b = [tg.Tensor(x, requires_grad=True) for x in leaves]
    ya, yb = fused(*a), composite(*b)
    np.testing.assert_allclose(ya.numpy(), yb.numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(ya.shape)
    ya.backward(g)
    yb.backward(g)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.grad, y.grad, rtol=1e-10, atol=1e-12)
    gradcheck(fused, [tg.Tensor(x, requires_grad=True) for x in leaves])
    gradcheck(composite, [tg.Tensor(x, requires_grad=True) for x in leaves])


# ------------------------------------------------------------ 1. is_causal with fewer queries than keys
def test_is_causal_aligns_top_left_as_pytorch_and_causal_attention_bottom_right(rng):
    q, k, v = rng.standard_normal((2, 2, 3, 4)), rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((2, 2, 5, 6))
    y = agree_with_torch(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True),
                         lambda a, b, c: TF.scaled_dot_product_attention(a, b, c, is_causal=True), [q, k, v], rng=rng)
    np.testing.assert_allclose(y.numpy()[..., 0, :], v[..., 0, :], rtol=1e-12)   # query 0 sees key 0 only
    fused_equals_composite(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True),
                           lambda a, b, c: F.scaled_dot_product_attention_composite(a, b, c, is_causal=True),
                           [q, k, v], rng)
    # the KV cache's alignment: query i sees keys j <= S - T + i (PyTorch: causal_lower_right)
    lower_right = np.tril(np.ones((3, 5), dtype=bool), k=2)
    y = agree_with_torch(F.causal_attention,
                         lambda a, b, c: TF.scaled_dot_product_attention(a, b, c, attn_mask=torch.from_numpy(lower_right)),
                         [q, k, v], rng=rng)
    np.testing.assert_allclose(y.numpy()[..., -1, :], F.scaled_dot_product_attention(
        tg.Tensor(q[..., -1:, :]), tg.Tensor(k), tg.Tensor(v)).numpy()[..., 0, :], rtol=1e-12)   # the last sees all
    fused_equals_composite(F.causal_attention, F.causal_attention_composite, [q, k, v], rng)


# ------------------------------------------------------------ 2. boolean and float attention masks
@pytest.mark.parametrize("mask_shape", [(3, 5), (2, 1, 3, 5)])
def test_float_attention_mask_is_added_to_the_scores_with_its_gradient(mask_shape, rng):
    q, k, v = rng.standard_normal((2, 2, 3, 4)), rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((2, 2, 5, 6))
    mask = rng.standard_normal(mask_shape)
    agree_with_torch(lambda a, b, c, m: F.scaled_dot_product_attention(a, b, c, attn_mask=m, scale=0.7),
                     lambda a, b, c, m: TF.scaled_dot_product_attention(a, b, c, attn_mask=m, scale=0.7),
                     [q, k, v, mask], rng=rng)
    fused_equals_composite(lambda a, b, c, m: F.scaled_dot_product_attention(a, b, c, attn_mask=m),
                           lambda a, b, c, m: F.scaled_dot_product_attention_composite(a, b, c, attn_mask=m),
                           [q, k, v, mask], rng)
    # a float mask of -inf and 0 is the same as the boolean mask it spells
    keep = rng.random(mask_shape) > 0.3
    additive = np.where(keep, 0.0, -np.inf)
    qt, kt, vt = tg.Tensor(q), tg.Tensor(k), tg.Tensor(v)
    np.testing.assert_allclose(F.scaled_dot_product_attention(qt, kt, vt, attn_mask=tg.Tensor(additive)).numpy(),
                               F.scaled_dot_product_attention(qt, kt, vt, attn_mask=keep).numpy(), rtol=1e-12)


def test_boolean_attention_mask_broadcasts_empty_rows_give_zeros_and_is_causal_excludes_it(rng):
    q, k, v = rng.standard_normal((2, 2, 3, 4)), rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((2, 2, 5, 6))
    keep = rng.random((2, 1, 3, 5)) > 0.4
    keep[0, 0, 1] = False                                     # query 1 of batch 0 sees no key at all
    y = agree_with_torch(lambda a, b, c, m: F.scaled_dot_product_attention(a, b, c, attn_mask=m),
                         lambda a, b, c, m: TF.scaled_dot_product_attention(a, b, c, attn_mask=m),
                         [q, k, v], constants=[keep], rng=rng)
    np.testing.assert_array_equal(y.numpy()[0, :, 1], 0.0)
    fused_equals_composite(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=keep),
                           lambda a, b, c: F.scaled_dot_product_attention_composite(a, b, c, attn_mask=keep),
                           [q, k, v], rng)
    with pytest.raises(ValueError, match="attn_mask or is_causal=True, not both"):
        F.scaled_dot_product_attention(tg.Tensor(q), tg.Tensor(k), tg.Tensor(v), attn_mask=keep, is_causal=True)
    with pytest.raises(ValueError, match="does not broadcast"):
        F.scaled_dot_product_attention(tg.Tensor(q), tg.Tensor(k), tg.Tensor(v), attn_mask=np.ones((3, 4), bool))


# ------------------------------------------------------------ 3. cross_entropy: PyTorch's layout and options
def test_cross_entropy_takes_the_classes_on_dim_1(rng):
    logits = rng.standard_normal((2, 5, 3))                   # (N, C, d1)
    targets = np.array([[1, 4, 0], [2, -100, 4]])
    agree_with_torch(F.cross_entropy, TF.cross_entropy, [logits], constants=[targets], rng=rng)
    fused_equals_composite(lambda z: F.cross_entropy(z, targets), lambda z: F.cross_entropy_composite(z, targets),
                           [logits], rng)
    with pytest.raises(ValueError, match=r"targets of shape \(2, 3\)"):
        F.cross_entropy(tg.Tensor(logits), np.zeros((2, 5), dtype=np.int64))
    # the models' (B, T, V) logits go in as PyTorch's (B*T, V)
    from tinygrad_lm.models.bigram import Bigram, BigramConfig
    from tinygrad_lm.models.gpt import GPT, GPTConfig
    idx, targets = rng.integers(0, 11, (2, 6)), rng.integers(0, 11, (2, 6))
    tg.manual_seed(0)
    for model in (GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)),
                  Bigram(BigramConfig(vocab_size=11, block_size=8))):
        logits, loss = model(idx, targets)
        expected = TF.cross_entropy(torch.from_numpy(logits.numpy()).transpose(1, 2), torch.from_numpy(targets))
        np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_reduction_label_smoothing_and_weight(reduction, label_smoothing, weighted, rng):
    logits = rng.standard_normal((4, 5, 2))
    targets = np.array([[1, 4], [0, -100], [3, 3], [-100, 2]])
    weight = rng.random(5) + 0.5 if weighted else None
    kwargs = {"weight": weight, "reduction": reduction, "label_smoothing": label_smoothing}
    agree_with_torch(F.cross_entropy, TF.cross_entropy, [logits], constants=[targets], kwargs=kwargs, rng=rng)
    agree_with_torch(F.cross_entropy_composite, TF.cross_entropy, [logits], constants=[targets], kwargs=kwargs, rng=rng)
    fused_equals_composite(lambda z: F.cross_entropy(z, targets, **kwargs),
                           lambda z: F.cross_entropy_composite(z, targets, **kwargs), [logits], rng)
    flat = rng.standard_normal((6, 7))                       # the training path: (N, C) logits
    flat_targets = np.array([0, 6, 3, -100, 3, 1])
    agree_with_torch(F.cross_entropy, TF.cross_entropy, [flat], constants=[flat_targets],
                     kwargs={**kwargs, "weight": None}, rng=rng)


def test_cross_entropy_probability_targets_and_the_tutorials_value(rng):
    # the tutorial's call: unbatched (C,) logits, a probability target
    loss = F.cross_entropy(tg.tensor([0.5, 0.1, 0.3]), tg.tensor([1.0, 0.0, 0.0]))
    assert loss.shape == () and math.isclose(loss.item(), 0.9119, abs_tol=1e-4)
    logits = rng.standard_normal((3, 4, 2))
    probs = rng.random((3, 4, 2))
    probs /= probs.sum(1, keepdims=True)
    for kwargs in ({}, {"reduction": "sum", "label_smoothing": 0.1}, {"reduction": "none", "weight": rng.random(4)}):
        # the gradient reaches the targets too, as in PyTorch
        agree_with_torch(F.cross_entropy, TF.cross_entropy, [logits, probs], kwargs=kwargs, rng=rng)
    gradcheck(lambda z, p: F.cross_entropy(z, p, label_smoothing=0.1), [tg.Tensor(logits, requires_grad=True),
                                                                       tg.Tensor(probs, requires_grad=True)])


def test_cross_entropy_unbatched_class_index_and_all_ignored(rng):
    z = rng.standard_normal(6)
    for reduction in ("mean", "sum", "none"):
        agree_with_torch(F.cross_entropy, TF.cross_entropy, [z], constants=[np.array(4)],
                         kwargs={"reduction": reduction}, rng=rng)
    agree_with_torch(F.cross_entropy, TF.cross_entropy, [z], constants=[np.array(4)],
                     kwargs={"label_smoothing": 0.3}, rng=rng)
    # every target ignored: NaN loss and a zero gradient, as PyTorch
    x = tg.Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    loss = F.cross_entropy(x, np.full(3, -100))
    assert math.isnan(loss.item())
    loss.backward()
    np.testing.assert_array_equal(x.grad, 0.0)
    assert math.isnan(F.cross_entropy_composite(x, np.full(3, -100)).item())


# ------------------------------------------------------------ 4. nll_loss, mse_loss, silu, one_hot, dropout(p=1)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss(reduction, rng):
    log_p = rng.standard_normal((4, 5, 2))
    targets = np.array([[1, 4], [0, -100], [3, 3], [-100, 2]])
    agree_with_torch(F.nll_loss, TF.nll_loss, [log_p], constants=[targets], kwargs={"reduction": reduction}, rng=rng)
    agree_with_torch(F.nll_loss, TF.nll_loss, [log_p], constants=[np.where(targets == -100, -1, targets)],
                     kwargs={"reduction": reduction, "weight": rng.random(5), "ignore_index": -1}, rng=rng)
    agree_with_torch(F.nll_loss, TF.nll_loss, [rng.standard_normal(5)], constants=[np.array(2)],
                     kwargs={"reduction": reduction}, rng=rng)
    with pytest.raises(ValueError, match="weight cannot require grad"):
        F.nll_loss(tg.Tensor(log_p), targets, weight=tg.Tensor(np.ones(5), requires_grad=True))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction, rng):
    x, y, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.random((3, 4))
    agree_with_torch(F.mse_loss, TF.mse_loss, [x, y], kwargs={"reduction": reduction}, rng=rng)
    agree_with_torch(lambda a, b, c: F.mse_loss(a, b, reduction=reduction, weight=c),
                     lambda a, b, c: TF.mse_loss(a, b, reduction=reduction, weight=c), [x, y, w], rng=rng)
    assert F.mse_loss(tg.tensor([1.0, 2.0]), tg.tensor([0.0, 0.0])).item() == 2.5


def test_silu_one_hot_and_dropout_p_one(rng):
    x = rng.standard_normal((3, 4)) * 3
    agree_with_torch(F.silu, TF.silu, [x], rng=rng)
    gradcheck(F.silu, [tg.Tensor(x, requires_grad=True)])
    ids = np.array([[0, 3], [2, 1]])
    for n in (-1, 6):
        out = F.one_hot(tg.Tensor(ids), num_classes=n)
        expected = TF.one_hot(torch.from_numpy(ids), num_classes=n).numpy()
        assert out.dtype == np.int64 and not out.requires_grad
        np.testing.assert_array_equal(out.numpy(), expected)
    with pytest.raises(ValueError, match="smaller than num_classes"):
        F.one_hot(tg.Tensor(ids), 3)
    a = tg.Tensor(x, requires_grad=True)
    y = F.dropout(a, p=1.0)
    np.testing.assert_array_equal(y.numpy(), 0.0)          # PyTorch: zeros, and a zero gradient
    y.sum().backward()
    np.testing.assert_array_equal(a.grad, 0.0)
    assert F.dropout(a, p=0.0) is a and F.dropout(a, p=1.0, training=False) is a
    nn.Dropout(1.0)                                        # allowed, as torch.nn.Dropout(1.0)
    q = tg.Tensor(rng.standard_normal((1, 3, 2)))
    np.testing.assert_array_equal(F.scaled_dot_product_attention(q, q, q, dropout_p=1.0).numpy(), 0.0)


# ------------------------------------------------------------ 5. signatures and the other functions
SAME_SIGNATURE = ["relu", "silu", "gelu", "dropout", "linear", "layer_norm", "embedding", "one_hot",
                  "scaled_dot_product_attention"]
# PyTorch's deprecated arguments (size_average, reduce) are left out; what follows them is keyword-only
WITHOUT_DEPRECATED = ["cross_entropy", "nll_loss", "mse_loss"]


def torch_signature(fn):
    """inspect.signature, or for a builtin the one its docstring starts with ("gelu(input, ...) -> Tensor")."""
    try:
        return inspect.signature(fn)
    except ValueError:
        header = " ".join(fn.__doc__.strip().split("->")[0].split())
        namespace = {}
        exec(f"def {header}: pass", namespace)
        return inspect.signature(namespace[fn.__name__])


@pytest.mark.parametrize("name", SAME_SIGNATURE + WITHOUT_DEPRECATED)
def test_signatures_match_pytorch(name):
    ours = inspect.signature(getattr(F, name)).parameters
    theirs = {n: p for n, p in torch_signature(getattr(TF, name)).parameters.items()
              if n not in ("size_average", "reduce")}
    for n, p in theirs.items():
        assert n in ours, f"{name}: PyTorch's argument {n!r} is missing"
        assert ours[n].default == p.default, f"{name}({n}=...): default {ours[n].default!r} != {p.default!r}"
    if name in SAME_SIGNATURE:          # the same order, so positional calls mean the same
        assert list(ours)[:len(theirs)] == list(theirs)


def test_layer_norm_over_several_dims_gelu_linear_softmax_embedding_padding(rng):
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    agree_with_torch(lambda a, c, d: F.layer_norm(a, (3, 4), c, d), lambda a, c, d: TF.layer_norm(a, (3, 4), c, d),
                     [x, w, b], rng=rng)
    fused_equals_composite(lambda a, c, d: F.layer_norm(a, [3, 4], c, d),
                           lambda a, c, d: F.layer_norm_composite(a, [3, 4], c, d), [x, w, b], rng)
    for approximate in ("none", "tanh"):
        agree_with_torch(lambda a: F.gelu(a, approximate=approximate),
                         lambda a: TF.gelu(a, approximate=approximate), [x], rng=rng)
    agree_with_torch(lambda a, c: F.linear(input=a, weight=c), lambda a, c: TF.linear(input=a, weight=c),
                     [x, rng.standard_normal((5, 4))], rng=rng)
    for dim in (0, 1, -1):
        agree_with_torch(lambda a: F.softmax(a, dim), lambda a: TF.softmax(a, dim), [x], rng=rng)
        agree_with_torch(lambda a: F.log_softmax(a, dim=dim), lambda a: TF.log_softmax(a, dim=dim), [x], rng=rng)
    ids = np.array([[0, 2, 2], [1, 0, 3]])
    agree_with_torch(lambda t: F.embedding(ids, t, padding_idx=2), lambda t: TF.embedding(torch.from_numpy(ids), t,
                                                                                          padding_idx=2),
                     [rng.standard_normal((4, 3))], rng=rng)
    emb = nn.Embedding(4, 3, padding_idx=-2)                # as torch.nn.Embedding: a zero row, never trained
    assert emb.padding_idx == 2 and not emb.weight.numpy()[2].any()
    emb(ids).sum().backward()
    assert not emb.weight.grad.data[2].any() and emb.weight.grad.data[0].all()


def test_masks_losses_and_one_hot_on_every_device(device, rng):
    """The new paths make no implicit device->host conversion (the "strict" device) and agree with NumPy."""
    from tinygrad_lm import backend

    def on(x, grad=True):
        return tg.Tensor(backend.to_device(x, device), requires_grad=grad)

    q, k, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 4))
    keep = rng.random((3, 5)) > 0.3
    keep[1] = False
    bias = rng.standard_normal((2, 3, 5))
    for mask in (keep, bias):
        expected = F.scaled_dot_product_attention(tg.Tensor(q), tg.Tensor(k), tg.Tensor(v), attn_mask=tg.Tensor(mask))
        out = F.scaled_dot_product_attention(on(q), on(k), on(v), attn_mask=on(mask, grad=mask.dtype != bool))
        np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-12)
        out.sum().backward()
    out = F.causal_attention(on(q), on(k), on(v))
    out.sum().backward()
    logits, targets = rng.standard_normal((4, 5, 2)), np.array([[1, 4], [0, -100], [3, 3], [-100, 2]])
    for kwargs in ({}, {"reduction": "none", "label_smoothing": 0.1, "weight": rng.random(5)}):
        w = kwargs.get("weight")
        dev_kwargs = {**kwargs, **({"weight": backend.to_device(w, device)} if w is not None else {})}
        for fn in (F.cross_entropy, F.cross_entropy_composite):
            loss = fn(on(logits), backend.to_device(targets, device), **dev_kwargs)
            np.testing.assert_allclose(loss.numpy(), fn(tg.Tensor(logits), targets, **kwargs).numpy(), rtol=1e-12)
            loss.sum().backward()
    probs = rng.random((4, 5, 2))
    F.cross_entropy(on(logits), on(probs)).backward()
    F.nll_loss(on(logits), backend.to_device(targets, device)).backward()
    F.mse_loss(on(logits), on(probs)).backward()
    F.dropout(on(logits), p=1.0).sum().backward()
    ids = backend.to_device(np.array([[0, 3], [2, 1]]), device)
    np.testing.assert_array_equal(F.one_hot(tg.Tensor(ids, device=device)).numpy(), np.eye(4, dtype=np.int64)[[[0, 3], [2, 1]]])
