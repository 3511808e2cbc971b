"""Device hygiene: code that would break under CuPy fails on CPU CI through the "strict" device;
training on every device matches the CPU; a training step copies nothing device->host but the
logged loss."""
import numpy as np
import pytest

import tinygrad_lm as tg
from tinygrad_lm import backend, optim
from tinygrad_lm.models.gpt import GPT, GPTConfig
from tinygrad_lm.ops import Exp

from . import strict_backend

CONFIGS = {
    "gpt2": GPTConfig.gpt2(vocab_size=29, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.1),
    "seed_mini": GPTConfig.seed_mini(vocab_size=29, block_size=16, n_layer=2, n_head=2, n_embd=32),
}


class ExpThatCopiesToHost(Exp):
    """A planted bug: an op that silently turns its device array into a NumPy array."""

    def forward(self, x):
        self.y = np.exp(np.asarray(x))
        return self.y


def test_strict_device_catches_a_planted_host_conversion():
    strict_backend.register()
    cpu = tg.Tensor(np.ones(3), requires_grad=True)
    ExpThatCopiesToHost.apply(cpu)                       # NumPy does not mind...
    dev = tg.Tensor(np.ones(3), device="strict", requires_grad=True)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        ExpThatCopiesToHost.apply(dev)                   # ...CuPy would, and so does "strict"
    Exp.apply(dev)                                       # the real op is clean


def train_losses(config, device, steps=8):
    tg.manual_seed(0)
    model = GPT(config).to(device)
    opt = optim.AdamW(optim.gpt2_param_groups(model, 0.1), lr=3e-3)
    params = model.parameters()
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(steps):
        x = rng.integers(0, config.vocab_size, (4, 16))
        _, loss = model(x, np.roll(x, -1, 1))
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
    return losses, model


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_training_on_every_device_matches_the_cpu(name, device):
    """"strict" must give the CPU's losses to the bit, under every OpenBLAS kernel (Haswell,
    SkylakeX, Zen, SandyBridge: each rounds a matrix product its own way). That holds because of one
    assumption, checked by the next two tests: strict is NumPy underneath and takes the very same
    code path as "cpu" -- the same NumPy calls on arrays of the same shapes, strides and dtypes, in
    the same order, with the same BLAS thread count -- and one OpenBLAS kernel gives the same bits
    for the same call. Any branch that goes one way on strict and another on cpu (as when strict's
    ``.base`` was a new object on every access and the optimizer's flat-buffer check failed there)
    may round differently, and on some kernels it does."""
    if device == "cpu":
        pytest.skip("the CPU is the reference")
    config = CONFIGS[name]
    if device != "strict":                             # device RNG streams differ: compare without dropout
        config = GPTConfig.from_dict({**config.to_dict(), "dropout": 0.0})
    cpu_losses, cpu_model = train_losses(config, "cpu")
    dev_losses, dev_model = train_losses(config, device)
    # the strict device is NumPy underneath: the same losses to the bit. A GPU sums in other orders:
    # the loss curve must match within float32 tolerance. (Weights are not compared one by one:
    # some have a true gradient of exactly zero, e.g. the key bias, which softmax ignores, and
    # AdamW turns the rounding noise of such gradients into full-size steps on any two machines.)
    np.testing.assert_allclose(dev_losses, cpu_losses, rtol=1e-3 if device == "cuda" else 0)
    assert dev_losses[-1] < dev_losses[0]


def test_views_name_their_owner_on_every_device_as_on_the_cpu(device):
    """The optimizer's flat buffer is found through ``grad.base``: it must be one stable object on
    every device (as NumPy's and CuPy's ``.base``), so clipping sums and scales the same buffers."""
    def covering(device):
        tg.manual_seed(0)
        model = GPT(CONFIGS["gpt2"]).to(device)
        opt = optim.AdamW(optim.gpt2_param_groups(model, 0.1), lr=1e-3)
        x = np.zeros((2, 16), dtype=np.int64)
        opt.zero_grad()
        model(x, x)[1].backward()
        grads = [p.grad.data for p in model.parameters()]
        assert all(g.base is g.base for g in grads)
        assert {id(g.base) for g in grads} == {id(f.grad) for f in opt.flat}
        return [(b.ndim, b.size) for b in optim._covering_buffers(grads)]
    on_cpu = covering("cpu")
    assert len(on_cpu) == 2                    # the decayed and the undecayed group's buffers
    assert covering(device) == on_cpu


class _SqrtOneUlpHigh:
    """A planted divergence in one path's arithmetic: strict's sqrt rounds one float up."""

    def __call__(self, x, out=None, **kwargs):
        r = np.nextafter(np.sqrt(x._a, **kwargs), np.inf)
        if out is None:
            return strict_backend._wrap(r)
        out._a[...] = r
        return out


def test_the_exact_comparison_fails_when_strict_rounds_differently(monkeypatch):
    strict_backend.register()
    config = CONFIGS["gpt2"]
    cpu_losses, _ = train_losses(config, "cpu")
    assert train_losses(config, "strict")[0] == cpu_losses
    monkeypatch.setattr(strict_backend._StrictModule, "sqrt", _SqrtOneUlpHigh(), raising=False)
    planted, _ = train_losses(config, "strict")
    assert planted[0] == cpu_losses[0]         # the first loss comes before any optimizer step
    with pytest.raises(AssertionError, match="Not equal to tolerance rtol=0"):
        np.testing.assert_allclose(planted, cpu_losses, rtol=0)


def test_same_seed_same_initial_model_on_every_device(device):
    tg.manual_seed(11)
    a = GPT(CONFIGS["gpt2"])
    tg.manual_seed(11)
    b = GPT(CONFIGS["gpt2"]).to(device)
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(backend.to_numpy(q.data), p.numpy(), err_msg=n)


def test_a_training_step_copies_only_the_logged_loss_to_the_host():
    strict_backend.register()
    config = CONFIGS["gpt2"]
    model = GPT(config).to("strict")
    opt = optim.AdamW(optim.gpt2_param_groups(model, 0.1), lr=1e-3)
    params = model.parameters()
    x = np.random.default_rng(0).integers(0, 29, (4, 16))
    for step in range(3):
        before = strict_backend.DEVICE_TO_HOST["count"]
        _, loss = model(x, x)                 # host batch: ids are checked before the copy up
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(params, 1.0)
        opt.step()
        loss.item()                           # the one crossing a log line needs
        crossings = strict_backend.DEVICE_TO_HOST["count"] - before
        assert crossings == 1, f"step {step}: {crossings} device->host copies"


def test_optimizer_state_moves_with_the_model(device):
    tg.manual_seed(0)
    model = GPT(CONFIGS["gpt2"])
    opt = optim.AdamW(model.parameters(), lr=1e-3)
    x = np.zeros((2, 16), dtype=np.int64)
    model(x, x)[1].backward()
    opt.step()
    model.to(device)
    opt.zero_grad()
    model(x, x)[1].backward()
    opt.step()                                # re-links onto the moved parameters
    assert all(backend.device_of(v) == device for s in opt.state for v in s.values())
    assert all(p.device == device and backend.device_of(p.data) == device for p in model.parameters())
