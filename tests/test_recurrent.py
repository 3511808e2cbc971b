"""Recurrent layers (nn/recurrent.py, ops/recurrent.py): fused == composite == finite differences ==
PyTorch (outputs, final states, every parameter and input gradient, in float64), PyTorch's
state_dict names, initialisation, dropout between layers, and the errors on wrong shapes.
Every test body runs on cpu, strict and cuda (the ``device`` fixture)."""
import math
import warnings

import numpy as np
import pytest

import tinygrad_lm as tg
from tinygrad_lm import backend, nn
from tinygrad_lm.errors import ConfigError
from tinygrad_lm.gradcheck import gradcheck

# name, class, constructor arguments, input shape, whether h_0 (and c_0) are given
SEQUENCE_CASES = [
    ("rnn_tanh", "RNN", dict(input_size=3, hidden_size=4), (5, 2, 3), True),
    ("rnn_relu_2_layers", "RNN", dict(input_size=3, hidden_size=4, num_layers=2, nonlinearity="relu"), (5, 2, 3), False),
    ("rnn_bidirectional_unbatched", "RNN", dict(input_size=3, hidden_size=2, bidirectional=True), (4, 3), True),
    ("lstm", "LSTM", dict(input_size=3, hidden_size=4), (5, 2, 3), True),
    ("lstm_2_layers_batch_first", "LSTM", dict(input_size=3, hidden_size=3, num_layers=2, batch_first=True),
     (2, 5, 3), True),
    ("lstm_no_bias_no_state", "LSTM", dict(input_size=3, hidden_size=4, bias=False), (5, 2, 3), False),
    ("lstm_unbatched_2_layers", "LSTM", dict(input_size=3, hidden_size=3, num_layers=2), (4, 3), True),
    ("lstm_bidirectional_2_layers", "LSTM", dict(input_size=2, hidden_size=2, num_layers=2, bidirectional=True),
     (3, 2, 2), True),
    ("gru", "GRU", dict(input_size=3, hidden_size=4), (5, 2, 3), True),
    ("gru_2_layers_batch_first_no_bias", "GRU", dict(input_size=3, hidden_size=3, num_layers=2, bias=False,
                                                    batch_first=True), (2, 4, 3), True),
    ("gru_unbatched_no_state", "GRU", dict(input_size=3, hidden_size=4), (5, 3), False),
    ("gru_bidirectional_batch_first", "GRU", dict(input_size=3, hidden_size=2, bidirectional=True, batch_first=True),
     (2, 4, 3), True),
]
CELL_CASES = [
    ("rnn_cell", "RNNCell", dict(input_size=3, hidden_size=4), (2, 3), True),
    ("rnn_cell_relu_no_bias", "RNNCell", dict(input_size=3, hidden_size=4, nonlinearity="relu", bias=False),
     (2, 3), True),
    ("rnn_cell_unbatched_no_state", "RNNCell", dict(input_size=3, hidden_size=4), (3,), False),
    ("lstm_cell", "LSTMCell", dict(input_size=3, hidden_size=4), (2, 3), True),
    ("lstm_cell_unbatched", "LSTMCell", dict(input_size=3, hidden_size=4), (3,), True),
    ("lstm_cell_no_bias_no_state", "LSTMCell", dict(input_size=3, hidden_size=4, bias=False), (2, 3), False),
    ("gru_cell", "GRUCell", dict(input_size=3, hidden_size=4), (2, 3), True),
    ("gru_cell_unbatched_no_bias", "GRUCell", dict(input_size=3, hidden_size=4, bias=False), (3,), True),
]
CASES = {c[0]: c[1:] for c in SEQUENCE_CASES + CELL_CASES}


def _torch():
    return pytest.importorskip("torch")


def state_shapes(kind, kw, x_shape):
    """The shapes of h_0 (and c_0) for this module and input."""
    H = kw["hidden_size"]
    if kind.endswith("Cell"):
        shape = x_shape[:-1] + (H,)
    else:
        batched = len(x_shape) == 3
        layers = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
        batch = (x_shape[0] if kw.get("batch_first") else x_shape[1],) if batched else ()
        shape = (layers,) + batch + (H,)
    return [shape, shape] if kind.startswith("LSTM") else [shape]


def flat(result):
    """(output, h_n), (output, (h_n, c_n)), h or (h, c) as one list of tensors."""
    if isinstance(result, (tuple, list)):
        return [t for r in result for t in flat(r)]
    return [result]


def hx_arg(kind, states):
    if not states:
        return None
    return tuple(states) if kind.startswith("LSTM") else states[0]


def make(kind, kw, device="cpu", fused=True):
    tg.manual_seed(0)
    return getattr(nn, kind)(**kw, dtype=np.float64, fused=fused).to(device)


def arrays(name, seed=0):
    """The case's input, initial states (or none) and one upstream gradient per output."""
    kind, kw, x_shape, with_state = CASES[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    states = [rng.standard_normal(s) for s in state_shapes(kind, kw, x_shape)] if with_state else []
    return x, states, rng


def run_ours(module, kind, x, states, rng_or_grads, device):
    """Forward, then backward of sum_k <output_k, g_k> with random g_k on the output AND the final
    states. Returns (outputs, upstream grads, input grads [x, states...], parameter grads by name)."""
    xt = tg.Tensor(backend.to_device(x, device), requires_grad=True)
    st = [tg.Tensor(backend.to_device(s, device), requires_grad=True) for s in states]
    outs = flat(module(xt, hx_arg(kind, st)))
    grads = rng_or_grads if isinstance(rng_or_grads, list) else [rng_or_grads.standard_normal(o.shape) for o in outs]
    loss = sum((o * tg.Tensor(backend.to_device(g, device))).sum() for o, g in zip(outs, grads))
    loss.backward()
    inputs = [t.grad.numpy() for t in [xt] + st]
    params = {n: p.grad.numpy() for n, p in module.named_parameters()}
    return [o.numpy() for o in outs], grads, inputs, params


def assert_close(a, b, rtol, what):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-3, err_msg=what)


# ------------------------------------------------------------------ fused == composite == PyTorch
@pytest.mark.parametrize("name", sorted(CASES))
def test_fused_equals_composite_equals_pytorch(name, device):
    torch = _torch()
    kind, kw, _, _ = CASES[name]
    x, states, rng = arrays(name)
    fused = make(kind, kw, device, fused=True)
    composite = make(kind, kw, device, fused=False)
    f_out, grads, f_in, f_par = run_ours(fused, kind, x, states, rng, device)
    c_out, _, c_in, c_par = run_ours(composite, kind, x, states, grads, device)
    for a, b in zip(f_out, c_out):
        assert_close(a, b, 1e-12, f"{name}: fused vs composite output")
    for a, b in zip(f_in, c_in):
        assert_close(a, b, 1e-11, f"{name}: fused vs composite input gradient")
    for n in f_par:
        assert_close(f_par[n], c_par[n], 1e-11, f"{name}: fused vs composite gradient of {n}")

    theirs = getattr(torch.nn, kind)(**kw).double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in fused.state_dict().items()})
    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states]
    t_out = flat(theirs(xt, hx_arg(kind, st)))
    assert [tuple(o.shape) for o in t_out] == [o.shape for o in f_out]
    sum((o * torch.from_numpy(g)).sum() for o, g in zip(t_out, grads)).backward()
    for a, b in zip(f_out, t_out):
        assert_close(a, b.detach().numpy(), 1e-9, f"{name}: output vs PyTorch")
    for a, b in zip(f_in, [xt] + st):
        assert_close(a, b.grad.numpy(), 1e-9, f"{name}: input gradient vs PyTorch")
    for n, p in theirs.named_parameters():
        assert_close(f_par[n], p.grad.numpy(), 1e-9, f"{name}: gradient of {n} vs PyTorch")


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composite"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_equal_finite_differences(name, fused, device):
    kind, kw, _, _ = CASES[name]
    x, states, _ = arrays(name, seed=1)
    module = make(kind, kw, device, fused)
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().requires_grad_() for _, p in module.named_parameters()]
    leaves = [tg.Tensor(backend.to_device(a, device), requires_grad=True) for a in [x] + states]
    n_states = len(states)

    def fn(*tensors):
        xt, st, ps = tensors[0], list(tensors[1:1 + n_states]), tensors[1 + n_states:]
        outs = flat(nn.functional_call(module, dict(zip(names, ps)), xt, hx_arg(kind, st)))
        return tg.cat([o.reshape(-1) for o in outs])        # output and final states, one random upstream
    # element by element on the CPU; along random directions on the other devices (the same code)
    gradcheck(fn, leaves + params, rtol=1e-5, atol=1e-8, max_elements=512 if device == "cpu" else 0)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_float32_training_path_matches_pytorch(kind, device):
    """The default dtype, as a model trains: float32 output, final states and gradients agree with
    PyTorch's to float32 precision (a 2-layer batch_first model over 20 steps)."""
    torch = _torch()
    tg.manual_seed(0)
    ours = getattr(nn, kind)(6, 8, num_layers=2, batch_first=True).to(device)
    theirs = getattr(torch.nn, kind)(6, 8, num_layers=2, batch_first=True)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, 20, 6)).astype(np.float32)
    y, h = ours(tg.Tensor(backend.to_device(x, device)))
    ty, th = theirs(torch.from_numpy(x))
    (y.sum() + flat(h)[-1].sum()).backward()
    (ty.sum() + flat(th)[-1].sum()).backward()
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-6)
    for n, p in theirs.named_parameters():
        np.testing.assert_allclose(getattr(ours, n).grad.numpy(), p.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=n)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composite"])
def test_a_batch_of_zero_sequences_works_as_in_pytorch(fused):
    for kind in ("RNN", "LSTM", "GRU"):
        m = getattr(nn, kind)(3, 4, 2, bidirectional=True, fused=fused)
        x = tg.Tensor(np.zeros((5, 0, 3), dtype=np.float32), requires_grad=True)
        y, h = m(x)
        assert y.shape == (5, 0, 8) and all(t.shape == (4, 0, 4) for t in flat(h))
        y.sum().backward()
        assert x.grad.shape == (5, 0, 3) and not m.weight_hh_l1.grad.numpy().any()


# ------------------------------------------------------------------ parameters
@pytest.mark.parametrize("kind, kw", [
    ("RNN", dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True, nonlinearity="relu")),
    ("LSTM", dict(input_size=3, hidden_size=4, num_layers=3)),
    ("LSTM", dict(input_size=3, hidden_size=4, num_layers=2, bias=False, bidirectional=True)),
    ("GRU", dict(input_size=5, hidden_size=2, num_layers=2, batch_first=True)),
    ("RNNCell", dict(input_size=3, hidden_size=4)),
    ("LSTMCell", dict(input_size=3, hidden_size=4, bias=False)),
    ("GRUCell", dict(input_size=3, hidden_size=4)),
])
def test_state_dict_names_and_shapes_are_pytorchs_both_ways(kind, kw, device):
    torch = _torch()
    ours = getattr(nn, kind)(**kw).to(device)
    theirs = getattr(torch.nn, kind)(**kw)
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})         # torch -> ours
    for k, v in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[k].numpy(), v.numpy())
    fresh = getattr(torch.nn, kind)(**kw)
    fresh.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})   # and back
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), theirs.state_dict()[k].numpy())


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"])
def test_default_initialisation_is_uniform_in_plus_minus_one_over_sqrt_hidden(kind):
    hidden = 64
    kw = dict(input_size=48, hidden_size=hidden) if kind.endswith("Cell") else \
        dict(input_size=48, hidden_size=hidden, num_layers=2)
    tg.manual_seed(1)
    module = getattr(nn, kind)(**kw)
    tg.manual_seed(1)
    again = getattr(nn, kind)(**kw)
    bound = 1 / math.sqrt(hidden)
    values = []
    for (name, p), (_, q) in zip(module.named_parameters(), again.named_parameters()):
        v = p.numpy().astype(np.float64).ravel()
        np.testing.assert_array_equal(v, q.numpy().ravel(), err_msg=f"{name}: the same seed, the same values")
        assert p.dtype == np.float32
        assert np.abs(v).max() <= bound, name
        values.append(v)
    v = np.concatenate(values)
    n = v.size                  # U(-b, b): mean 0, variance b^2 / 3, |v| / b uniform on [0, 1]
    assert abs(v.mean()) < 5 * bound / math.sqrt(3 * n)
    assert abs(v.var() / (bound ** 2 / 3) - 1) < 5 * math.sqrt(0.8 / n)
    np.testing.assert_allclose(np.histogram(np.abs(v) / bound, bins=10, range=(0, 1))[0] / n, 0.1, atol=0.01)
    tg.manual_seed(2)
    other = getattr(nn, kind)(**kw)
    assert not np.array_equal(next(iter(other.parameters())).numpy(), next(iter(module.parameters())).numpy())


# ------------------------------------------------------------------ dropout between layers
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composite"])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_dropout_between_layers_only_and_only_in_training(kind, fused, device):
    x = tg.Tensor(backend.to_device(np.random.default_rng(0).standard_normal((6, 2, 3)), device))
    tg.manual_seed(0)
    full = getattr(nn, kind)(3, 4, num_layers=2, dropout=1.0, dtype=np.float64, fused=fused).to(device)
    tg.manual_seed(0)
    plain = getattr(nn, kind)(3, 4, num_layers=2, dtype=np.float64, fused=fused).to(device)
    y_train, h_train = full(x)
    y_eval, h_eval = full.eval()(x)
    y_plain, h_plain = plain(x)                   # dropout=0 in training mode: nothing dropped
    np.testing.assert_array_equal(y_eval.numpy(), y_plain.numpy())
    h_train, h_eval = flat(h_train), flat(h_eval)
    # layer 0's final states come before any dropout
    for a, b in zip(h_train, h_eval):
        np.testing.assert_array_equal(a.numpy()[0], b.numpy()[0])
    # p = 1 drops all of layer 0's output: layer 1 runs on zeros; no dropout on the last layer's output
    top = getattr(nn, kind)(4, 4, dtype=np.float64, fused=fused).to(device)
    top.load_state_dict({k.replace("_l1", "_l0"): v for k, v in full.state_dict().items() if "_l1" in k})
    y_top, _ = top(tg.zeros(6, 2, 4, dtype=np.float64, device=device))
    np.testing.assert_allclose(y_train.numpy(), y_top.numpy(), rtol=1e-14, atol=0)
    assert np.abs(y_train.numpy()).min() > 0
    with pytest.warns(UserWarning, match="dropout option adds dropout after all but last recurrent layer"):
        one = getattr(nn, kind)(3, 4, dropout=0.5, dtype=np.float64).to(device)
    np.testing.assert_array_equal(one(x)[0].numpy(), one.eval()(x)[0].numpy())


# ------------------------------------------------------------------ errors
def _same_error_as_pytorch(torch, kind, kw, call, ours_type):
    """Call `call` on our module and PyTorch's: both raise, ours `ours_type` (PyTorch's type)."""
    with pytest.raises(Exception) as theirs:
        call(getattr(torch.nn, kind)(**kw).double(), torch.from_numpy)
    with pytest.raises(ours_type) as ours:
        call(getattr(nn, kind)(**kw, dtype=np.float64), tg.Tensor)
    assert isinstance(ours.value, type(theirs.value)) or issubclass(type(theirs.value), ours_type), \
        (ours.value, theirs.value)
    return str(ours.value)


@pytest.mark.parametrize("kind, kw, call, error, match", [
    ("LSTM", dict(input_size=5, hidden_size=4), lambda m, t: m(t(np.zeros((7, 3, 6)))),
     RuntimeError, r"input.size\(-1\) must be equal to input_size. Expected 5, got 6"),
    ("GRU", dict(input_size=5, hidden_size=4), lambda m, t: m(t(np.zeros((7, 3, 5, 1)))),
     ValueError, r"Expected input to be 2D or 3D, got 4D"),
    ("GRU", dict(input_size=5, hidden_size=4, num_layers=2), lambda m, t: m(t(np.zeros((7, 3, 5))), t(np.zeros((1, 3, 4)))),
     RuntimeError, r"Expected hidden size \(2, 3, 4\), got \[1, 3, 4\]"),
    ("RNN", dict(input_size=5, hidden_size=4, batch_first=True), lambda m, t: m(t(np.zeros((3, 7, 5))), t(np.zeros((1, 7, 4)))),
     RuntimeError, r"Expected hidden size \(1, 3, 4\), got \[1, 7, 4\]"),
    ("LSTM", dict(input_size=5, hidden_size=4, num_layers=2),
     lambda m, t: m(t(np.zeros((7, 3, 5))), (t(np.zeros((2, 3, 4))), t(np.zeros((1, 3, 4))))),
     RuntimeError, r"Expected hidden\[1\] size \(2, 3, 4\), got \[1, 3, 4\]"),
    ("LSTM", dict(input_size=5, hidden_size=4),
     lambda m, t: m(t(np.zeros((7, 3, 5))), (t(np.zeros((3, 4))), t(np.zeros((3, 4))))),
     RuntimeError, r"For batched 3-D input, hx and cx should also be 3-D but got \(2-D, 2-D\) tensors"),
    ("GRU", dict(input_size=5, hidden_size=4), lambda m, t: m(t(np.zeros((7, 5))), t(np.zeros((1, 3, 4)))),
     RuntimeError, r"For unbatched 2-D input, hx should also be 2-D but got 3-D tensor"),
    ("GRU", dict(input_size=5, hidden_size=4), lambda m, t: m(t(np.zeros((0, 3, 5)))),
     RuntimeError, r"Expected sequence length to be larger than 0"),
    ("LSTMCell", dict(input_size=5, hidden_size=4), lambda m, t: m(t(np.zeros((3, 6)))),
     RuntimeError, r"input has inconsistent input_size: got 6 expected 5"),
    ("LSTMCell", dict(input_size=5, hidden_size=4),
     lambda m, t: m(t(np.zeros((3, 5))), (t(np.zeros((2, 4))), t(np.zeros((3, 4))))),
     RuntimeError, r"Input batch size 3 doesn't match hidden0 batch size 2"),
    ("LSTMCell", dict(input_size=5, hidden_size=4),
     lambda m, t: m(t(np.zeros((3, 5))), (t(np.zeros((3, 4))), t(np.zeros((3, 3))))),
     RuntimeError, r"hidden1 has inconsistent hidden_size: got 3, expected 4"),
    ("RNNCell", dict(input_size=5, hidden_size=4), lambda m, t: m(t(np.zeros((3, 5))), t(np.zeros((3, 3)))),
     RuntimeError, r"hidden0 has inconsistent hidden_size: got 3, expected 4"),
    ("GRUCell", dict(input_size=5, hidden_size=4), lambda m, t: m(t(np.zeros((3, 5, 1)))),
     ValueError, r"GRUCell: Expected input to be 1D or 2D, got 3D instead"),
])
def test_wrong_shapes_raise_pytorchs_errors(kind, kw, call, error, match):
    torch = _torch()
    message = _same_error_as_pytorch(torch, kind, kw, call, error)
    assert __import__("re").search(match, message), message


def test_wrong_arguments_are_refused_clearly():
    x = tg.Tensor(np.zeros((4, 2, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="hx must be one tensor h_0, got a tuple"):
        nn.GRU(3, 4)(x, (tg.zeros(1, 2, 4), tg.zeros(1, 2, 4)))
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, c_0\)"):
        nn.LSTM(3, 4)(x, tg.zeros(1, 2, 4))
    with pytest.raises(TypeError, match="input must be a Tensor, got ndarray"):
        nn.LSTM(3, 4)(np.zeros((4, 2, 3)))
    with pytest.raises(ValueError, match=r"input dtype \(float64\) does not match weight dtype \(float32\)"):
        nn.LSTM(3, 4)(x.double())
    with pytest.raises(ValueError, match=r"hx dtype \(float64\) does not match weight dtype \(float32\)"):
        nn.RNNCell(3, 4)(x[0], tg.Tensor(np.zeros((2, 4))))
    with pytest.raises(RuntimeError, match="for 2-D input, hidden should also be 2-D but got 1-D"):
        nn.GRUCell(3, 4)(x[0], tg.zeros(4))
    for make, error, match in [
        (lambda: nn.LSTM(3, 0), ConfigError, "hidden_size must be greater than zero"),
        (lambda: nn.GRU(3, 4, num_layers=0), ConfigError, "num_layers must be greater than zero"),
        (lambda: nn.RNN(3, 4.0), TypeError, "hidden_size should be of type int, got: float"),
        (lambda: nn.RNN(3, 4, nonlinearity="sigmoid"), ConfigError, "Unknown nonlinearity 'sigmoid'"),
        (lambda: nn.RNNCell(3, 4, nonlinearity="gelu"), ConfigError, "Unknown nonlinearity 'gelu'"),
        (lambda: nn.LSTM(3, 4, dropout=1.5), ConfigError, r"dropout should be a number in range \[0, 1\]"),
        (lambda: nn.GRU(3, 4, bias=1), TypeError, "bias should be of type bool, got: int"),
        (lambda: nn.LSTMCell(0, 4), ConfigError, "input_size must be greater than zero"),
        (lambda: nn.LSTM(3, 4, proj_size=4), ValueError, "proj_size has to be smaller than hidden_size"),
    ]:
        with pytest.raises(error, match=match):
            make()
    assert issubclass(ConfigError, ValueError)          # PyTorch raises ValueError for these


def test_repr_and_attributes_are_pytorchs():
    assert repr(nn.GRU(5, 4, 2, batch_first=True, dropout=0.1)) == "GRU(5, 4, num_layers=2, batch_first=True, dropout=0.1)"
    assert repr(nn.LSTMCell(5, 4, bias=False)) == "LSTMCell(5, 4, bias=False)"
    rnn = nn.RNN(5, 4, 2, "relu", bidirectional=True)
    assert (rnn.nonlinearity, rnn.num_layers, rnn.bidirectional, rnn.hidden_size, rnn.input_size) == \
        ("relu", 2, True, 4, 5)
    assert [[p.shape for p in w] for w in rnn.all_weights][2] == [(4, 8), (4, 4), (4,), (4,)]
    assert nn.RNNCell(3, 4, True, "relu").nonlinearity == "relu"


def test_outputs_keep_the_graph_through_time_and_layers():
    """h_n of a 2-layer LSTM depends on the first input step (the gradient reaches x[0])."""
    tg.manual_seed(0)
    lstm = nn.LSTM(3, 4, 2, dtype=np.float64)
    x = tg.Tensor(np.random.default_rng(0).standard_normal((10, 1, 3)), requires_grad=True)
    _, (h, c) = lstm(x)
    (h.sum() + c.sum()).backward()
    assert np.abs(x.grad.numpy()[0]).sum() > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tg.no_grad():
            y, _ = lstm(x)
        assert not y.requires_grad
