"""Optimizers: ten steps equal torch.optim in float64; clipping; schedules; state round trip; flat buffers."""
import math

import numpy as np
import pytest

import tinygrad_lm as tg
from tinygrad_lm import backend, nn, optim

try:
    import torch
except ImportError:
    torch = None


def make_params(rng, device="cpu"):
    shapes = [(4, 3), (3,), (2, 5, 2)]
    arrays = [rng.standard_normal(s) for s in shapes]
    return arrays, [nn.Parameter(backend.to_device(a, device)) for a in arrays]


def loss_of(params, xs):
    total = None
    for p, x in zip(params, xs):
        term = ((p * x).tanh() * p).sum()
        total = term if total is None else total + term
    return total


CASES = {
    "sgd": (lambda ps: optim.SGD(ps, lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
    "sgd_momentum_wd": (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
                        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    "adam": (lambda ps: optim.Adam(ps, lr=0.01, betas=(0.8, 0.95), weight_decay=0.1),
             lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.95), weight_decay=0.1)),
    "adamw": (lambda ps: optim.AdamW(ps, lr=0.01), lambda ps: torch.optim.AdamW(ps, lr=0.01)),
    "adamw_groups": (lambda ps: optim.AdamW([{"params": ps[:1], "weight_decay": 0.3}, {"params": ps[1:], "lr": 0.02}],
                                            lr=0.01, betas=(0.9, 0.99)),
                     lambda ps: torch.optim.AdamW([{"params": ps[:1], "weight_decay": 0.3}, {"params": ps[1:], "lr": 0.02}],
                                                  lr=0.01, betas=(0.9, 0.99))),
}


@pytest.mark.skipif(torch is None, reason="torch is not installed (optional cross-check)")
@pytest.mark.parametrize("name", sorted(CASES))
def test_ten_steps_equal_torch(name, rng):
    ours_opt, torch_opt = CASES[name]
    arrays, params = make_params(rng)
    xs = [rng.standard_normal(a.shape) for a in arrays]
    t_params = [torch.tensor(a, requires_grad=True) for a in arrays]
    opt, t_opt = ours_opt(params), torch_opt(t_params)
    sched = optim.WarmupCosineLR(0.01, 0.001, 3, 8)
    for step in range(10):
        opt.zero_grad()
        loss_of(params, [tg.Tensor(x) for x in xs]).backward()
        optim.clip_grad_norm_(params, 0.5)
        opt.step()
        t_opt.zero_grad()
        loss_of(t_params, [torch.tensor(x) for x in xs]).backward()
        torch.nn.utils.clip_grad_norm_(t_params, 0.5)
        t_opt.step()
        if name == "adamw":        # a schedule changes lr between steps, for both
            for g, tg_ in zip(opt.param_groups, t_opt.param_groups):
                g["lr"] = tg_["lr"] = sched(step)
    for p, t in zip(params, t_params):
        np.testing.assert_allclose(p.numpy(), t.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_clip_grad_norm_matches_definition(rng, device):
    _, params = make_params(rng, device)
    grads = [rng.standard_normal(p.shape) for p in params]
    for p, g in zip(params, grads):
        p.grad = tg.Tensor(backend.to_device(g.copy(), device))
    norm = math.sqrt(sum((g * g).sum() for g in grads))
    got = optim.clip_grad_norm_(params, 1.0)
    assert float(got) == pytest.approx(norm, rel=1e-12)
    after = math.sqrt(sum(float((backend.to_numpy(p.grad.data) ** 2).sum()) for p in params))
    assert after == pytest.approx(1.0, rel=1e-5)
    optim.clip_grad_norm_(params, 10.0)                 # below the limit: unchanged
    assert math.sqrt(sum(float((backend.to_numpy(p.grad.data) ** 2).sum()) for p in params)) == pytest.approx(after)


def test_flat_buffers_and_relinking(rng, device):
    _, params = make_params(rng, device)
    opt = optim.AdamW(params, lr=0.1)
    assert all(p.data.base is not None for p in params) or device == "strict"
    loss_of(params, [tg.Tensor(backend.to_device(np.ones(p.shape), device)) for p in params]).backward()
    before = [p.numpy().copy() for p in params]
    opt.step()
    assert all(not np.allclose(b, p.numpy()) for b, p in zip(before, params))
    for p in params:                       # something replaces gradients (Module.zero_grad)
        p.grad = None
    opt.step()                             # zero gradients: only the moments move the weights
    for p in params:
        p.grad = tg.Tensor(backend.to_device(np.ones(p.shape), device))
    opt.step()
    assert all(p.grad.data is g for p, g in zip(params, opt.flat[0].grad_views))


def test_state_dict_round_trip_continues_identically(rng):
    arrays, params_a = make_params(rng)
    params_b = [nn.Parameter(a.copy()) for a in arrays]
    xs = [tg.Tensor(rng.standard_normal(a.shape)) for a in arrays]
    opt_a = optim.AdamW(params_a, lr=0.01)
    for _ in range(3):
        opt_a.zero_grad()
        loss_of(params_a, xs).backward()
        opt_a.step()
    for pa, pb in zip(params_a, params_b):
        pb.data[...] = pa.data
    opt_b = optim.AdamW(params_b, lr=0.5)
    opt_b.load_state_dict(opt_a.state_dict())
    assert opt_b.param_groups[0]["lr"] == 0.01 and opt_b.step_count == 3
    for opt, ps in ((opt_a, params_a), (opt_b, params_b)):
        opt.zero_grad()
        loss_of(ps, xs).backward()
        opt.step()
    for pa, pb in zip(params_a, params_b):
        np.testing.assert_array_equal(pa.data, pb.data)
    with pytest.raises(ValueError, match="from AdamW"):
        optim.SGD(params_b).load_state_dict(opt_a.state_dict())


def test_gpt2_param_groups_decay_only_matrices():
    from tinygrad_lm.models.gpt import GPT, GPTConfig
    model = GPT(GPTConfig.gpt2(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=8))
    decay, no_decay = optim.gpt2_param_groups(model, 0.1)
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(model.parameters())


def test_schedules():
    s = optim.WarmupCosineLR(1e-3, 1e-4, 100, 2000)
    assert s(0) == pytest.approx(1e-3 / 101)
    assert s(100) == pytest.approx(1e-3)
    assert s(1050) == pytest.approx((1e-3 + 1e-4) / 2)
    assert s(2000) == pytest.approx(1e-4) and s(5000) == 1e-4
    assert optim.ConstantLR(3e-4)(123) == 3e-4
    with pytest.raises(ValueError, match="AdamW: invalid lr -1"):
        optim.AdamW([nn.Parameter(np.ones(2))], lr=-1)
    with pytest.raises(ValueError, match="AdamW: invalid weight_decay -0.1"):
        optim.AdamW([nn.Parameter(np.ones(2))], weight_decay=-0.1)
    with pytest.raises(ValueError, match="SGD: invalid momentum -0.9"):
        optim.SGD([nn.Parameter(np.ones(2))], lr=0.1, momentum=-0.9)
    with pytest.raises(ValueError, match="Adam: invalid lr nan"):
        optim.Adam([{"params": [nn.Parameter(np.ones(2))], "lr": float("nan")}])
