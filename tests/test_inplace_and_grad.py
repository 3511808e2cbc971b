"""In-place operations with PyTorch's rules (leaf error, graph recording, version counter, views),
and ``.grad`` as a Tensor that wraps the optimizer's flat gradient buffer without a copy."""
import numpy as np
import pytest

import tinygrad_lm as tg
from tinygrad_lm import backend, optim
from tinygrad_lm.models.gpt import GPT, GPTConfig
from tinygrad_lm.training.loop import train_step

torch = pytest.importorskip("torch")

X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
OTHER = np.array([[2.0, -0.5, 1.0], [0.5, 3.0, -2.0]])

# name, our in-place call, torch's in-place call (x is a non-leaf; o a second input with grad)
CASES = [
    ("add_", lambda x, o: x.add_(o), lambda x, o: x.add_(o)),
    ("add_ number", lambda x, o: x.add_(2.0), lambda x, o: x.add_(2.0)),
    ("sub_", lambda x, o: x.sub_(o), lambda x, o: x.sub_(o)),
    ("mul_", lambda x, o: x.mul_(o), lambda x, o: x.mul_(o)),
    ("mul_ number", lambda x, o: x.mul_(3.0), lambda x, o: x.mul_(3.0)),
    ("div_", lambda x, o: x.div_(o), lambda x, o: x.div_(o)),
    ("fill_", lambda x, o: x.fill_(1.5), lambda x, o: x.fill_(1.5)),
    ("zero_", lambda x, o: x.zero_(), lambda x, o: x.zero_()),
    ("copy_", lambda x, o: x.copy_(o), lambda x, o: x.copy_(o)),
    ("copy_ broadcast", lambda x, o: x.copy_(o[0]), lambda x, o: x.copy_(o[0])),
    ("clamp_", lambda x, o: x.clamp_(-0.5, 1.0), lambda x, o: x.clamp_(-0.5, 1.0)),
    ("masked_fill_", lambda x, o: x.masked_fill_(tg.Tensor(X > 0), 0.0),
     lambda x, o: x.masked_fill_(torch.tensor(X > 0), 0.0)),
    ("setitem number", lambda x, o: x.__setitem__(0, 7.0), lambda x, o: x.__setitem__(0, 7.0)),
    ("setitem slice tensor", lambda x, o: x.__setitem__((slice(None), slice(0, 2)), o[:, 1:]),
     lambda x, o: x.__setitem__((slice(None), slice(0, 2)), o[:, 1:])),
    ("setitem broadcast row", lambda x, o: x.__setitem__((slice(None), 1), o[0, :2]),
     lambda x, o: x.__setitem__((slice(None), 1), o[0, :2])),
    ("setitem int array", lambda x, o: x.__setitem__((1, [0, 2]), o[0, :2]),
     lambda x, o: x.__setitem__((1, [0, 2]), o[0, :2])),
]


@pytest.mark.parametrize("name, ours, theirs", CASES, ids=[c[0] for c in CASES])
def test_inplace_values_and_gradients_match_torch(name, ours, theirs):
    a, b = tg.Tensor(X, requires_grad=True), tg.Tensor(OTHER, requires_grad=True)
    x = a * 2                               # a non-leaf: the in-place op is recorded in the graph
    assert ours(x, b) is x and not x.is_leaf
    (x * x).sum().backward()
    ta, tb = (torch.tensor(v, requires_grad=True) for v in (X, OTHER))
    tx = ta * 2
    theirs(tx, tb)
    (tx * tx).sum().backward()
    np.testing.assert_allclose(x.numpy(), tx.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-12)
    if tb.grad is None:
        assert b.grad is None
    else:
        np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-12)


def test_inplace_on_a_tensor_without_grad_writes_its_memory_and_bumps_the_version(device):
    x = tg.Tensor(backend.to_device(X.copy(), device))
    data, view = x.data, x.reshape(6)
    x.add_(1.0)
    x[0, 0] = 9.0
    view.mul_(2.0)                          # through a view: the base sees it, and its version moves
    assert x.data is data and x._version == 3 and view._counter is x._counter
    expected = (X + 1) * 2
    expected[0, 0] = 18.0
    np.testing.assert_allclose(x.numpy(), expected)


def test_inplace_makes_a_tensor_without_grad_part_of_the_graph():
    w = tg.Tensor(OTHER, requires_grad=True)
    buf = tg.Tensor(np.zeros((2, 3)))
    buf.add_(w * 3)
    assert buf.requires_grad and not buf.is_leaf
    buf.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.full((2, 3), 3.0))


def test_inplace_on_a_leaf_that_requires_grad_raises_as_torch():
    w = tg.Tensor(X, requires_grad=True)
    tw = torch.tensor(X, requires_grad=True)
    for op in (lambda t: t.add_(1.0), lambda t: t.zero_(), lambda t: t.__setitem__(0, 1.0)):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
            op(tw)
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
            op(w)
    with pytest.raises(RuntimeError, match="view of a leaf Variable that requires grad"):
        w[0].mul_(2.0)
    with tg.no_grad():                      # how optimizers and init change parameters
        w.mul_(0.5)
        w[1] = 0.0
    np.testing.assert_allclose(w.numpy(), np.vstack([X[0] * 0.5, np.zeros(3)]))


def _version_error(fn, module):
    with pytest.raises(RuntimeError, match="modified by an inplace operation") as info:
        fn(module)
    return str(info.value)


def test_changing_an_array_that_backward_needs_raises_as_torch():
    def exp_then_add(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x.exp()                         # exp keeps its output for backward
        y.add_(1.0)
        y.sum().backward()
    message = _version_error(exp_then_add, tg)
    _version_error(exp_then_add, torch)
    assert "output 0 of Exp, is at version 1; expected version 0" in message

    def exp_then_setitem(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x.exp()
        y[0] = 0.0
        y.sum().backward()
    _version_error(exp_then_setitem, tg)
    _version_error(exp_then_setitem, torch)

    def mul_input_changed_twice(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        h = x * 1.0
        y = h * h                           # mul keeps its inputs
        h.add_(1.0)
        h.add_(1.0)
        y.sum().backward()
    assert "is at version 2; expected version 0" in _version_error(mul_input_changed_twice, tg)
    _version_error(mul_input_changed_twice, torch)


def test_changing_through_a_view_or_detach_is_seen_by_backward():
    def through(lib, make_view):
        x = lib.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
        y = x.exp()
        make_view(y)
        y.sum().backward()
    for make_view in (lambda y: y.detach().zero_(),                    # detach shares memory (and version)
                      lambda y: y.detach()[1:3].mul_(2.0),             # a view of that
                      lambda y: y.detach().reshape(2, 2)[0].fill_(1.0)):
        _version_error(lambda lib: through(lib, make_view), tg)
        _version_error(lambda lib: through(lib, make_view), torch)


def test_inplace_that_backward_does_not_need_is_allowed_as_torch():
    for lib in (tg, torch):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        h = x * 2.0
        y = h + 1.0                         # add keeps nothing: changing h later is harmless
        h.mul_(3.0)
        (y.sum() + h.sum()).backward()
        np.testing.assert_allclose(np.array(x.grad.tolist()), [8.0, 8.0, 8.0])


def test_inplace_refuses_a_wider_result_and_a_lossy_cast():
    x = tg.Tensor(np.zeros(3))
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        x.add_(tg.Tensor(np.ones((2, 3))))
    n = tg.Tensor(np.zeros(3, dtype=np.int64))
    with pytest.raises(RuntimeError, match="can't be cast"):
        n.add_(tg.Tensor(np.ones(3)))


# ----------------------------------------------------------------------------- .grad is a Tensor
def test_grad_is_a_tensor_and_accumulates_over_backward_calls():
    x = tg.Tensor(X, requires_grad=True)
    (x * x).sum().backward()
    assert isinstance(x.grad, tg.Tensor) and not x.grad.requires_grad
    np.testing.assert_allclose(x.grad, 2 * X)                   # np.asarray(x.grad) works on the CPU
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(np.asarray(x.grad), 2 * X + 3)
    assert x.grad.shape == X.shape and x.grad.dtype == X.dtype
    with pytest.raises(TypeError, match="expected to be a Tensor or None"):
        x.grad = np.zeros_like(X)
    with pytest.raises(RuntimeError, match="different size"):
        x.grad = tg.Tensor(np.zeros(3))
    x.grad = None
    assert x.grad is None


def test_grad_of_an_optimized_parameter_is_a_view_into_the_flat_buffer(device):
    w = tg.nn.Parameter(backend.to_device(X.copy(), device))
    b = tg.nn.Parameter(backend.to_device(OTHER[0].copy(), device))
    opt = optim.SGD([w, b], lr=0.1)
    flat = opt.flat[0].grad
    for p in (w, b):
        assert isinstance(p.grad, tg.Tensor) and p.grad.data.base is not None or device == "strict"
    if device == "cpu":
        assert np.shares_memory(w.grad.data, flat) and np.shares_memory(b.grad.data, flat)
    for _ in range(2):                      # two backward calls add up, into the flat buffer
        ((w * 2.0).sum() + (b * b).sum()).backward()
    np.testing.assert_allclose(backend.to_numpy(w.grad.data), np.full(X.shape, 4.0))
    np.testing.assert_allclose(backend.to_numpy(flat)[:6], np.full(6, 4.0))
    np.testing.assert_allclose(backend.to_numpy(b.grad.data), 4 * OTHER[0])
    before = backend.to_numpy(w.data).copy()
    opt.step()
    np.testing.assert_allclose(backend.to_numpy(w.data), before - 0.1 * 4.0)
    norm = float(backend.to_numpy(optim.clip_grad_norm_([w, b], 1.0)))
    assert norm == pytest.approx(np.sqrt(6 * 16 + (16 * OTHER[0] ** 2).sum()))
    opt.zero_grad()
    assert float(backend.to_numpy(abs(flat).sum())) == 0.0
    assert w.grad.data is opt.flat[0].grad_views[0]


def test_numpy_protocol_refuses_device_tensors_and_tensors_that_require_grad():
    assert np.asarray(tg.Tensor(X)) is not None
    with pytest.raises(RuntimeError, match="requires grad"):
        np.asarray(tg.Tensor(X, requires_grad=True))
    with pytest.raises(RuntimeError, match="requires grad"):
        np.asarray(torch.tensor(X, requires_grad=True))
    from . import strict_backend
    strict_backend.register()
    with pytest.raises(TypeError, match="can't convert strict device type tensor to numpy"):
        np.asarray(tg.Tensor(strict_backend.to_strict(X)))
    out = np.ones(3) * tg.Tensor(np.array([1.0, 2.0, 3.0]))     # NumPy defers to the Tensor's operator
    assert isinstance(out, tg.Tensor)


# ----------------------------------------------------------------------------- the training step
def test_train_step_matches_torch_adamw_with_clipping():
    """Three steps of train_step (AdamW, clipping) on a tiny GPT equal PyTorch's in float64."""
    from tinygrad_lm.crosscheck.torch_gpt import from_ours
    config = GPTConfig.gpt2(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8)
    tg.manual_seed(3)
    model = GPT(config).double()
    ref = from_ours(model)
    opt = optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    t_opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, weight_decay=0.1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        idx, targets = (rng.integers(0, 13, (2, 8)) for _ in range(2))
        loss = train_step(model, opt, (idx, targets), lr=1e-2, grad_clip=0.5)
        t_opt.zero_grad()
        t_loss = ref(torch.tensor(idx), torch.tensor(targets))[1]
        t_loss.backward()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.5)
        t_opt.step()
        assert loss == pytest.approx(t_loss.item(), rel=1e-10)
    t_params = dict(ref.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.numpy(), t_params[name].detach().numpy(), rtol=1e-8, atol=1e-12)
