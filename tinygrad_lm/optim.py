"""Optimizers written out: SGD, Adam, AdamW; gradient clipping; learning-rate schedules.

Names and arguments follow torch.optim, and ten steps equal torch.optim's in float64
(tests/test_optim.py).

Flat buffers. An optimizer copies the parameters of each group into one contiguous array and
makes every parameter's ``.data`` (and ``.grad.data``: ``.grad`` is a Tensor, as PyTorch's) a view
into it. An update is then a handful of
whole-array operations instead of a handful per parameter, and the gradients can be clipped,
zeroed or all-reduced (distributed.py) in one call. If something replaces a parameter's data or
gradient (``model.to(device)``, ``model.zero_grad()``), the next step notices and re-links.
"""
import math

import numpy as np

from . import backend
from .errors import CheckpointError, ConfigError
from .tensor import Tensor


class _FlatGroup:
    """The parameters of one group as views into a data buffer and a gradient buffer."""

    def __init__(self, params):
        self.params = params
        self.build()

    def build(self, state=None):
        first = self.params[0]
        xp = backend.get_array_module(first.device)
        self.device, self.dtype = first.device, first.dtype
        for p in self.params:
            if p.device != self.device or p.dtype != self.dtype:
                raise ValueError(f"optimizer: parameters of one group must share device and dtype, got "
                                 f"{p.device}/{p.dtype} and {self.device}/{self.dtype}")
        sizes = [p.numel() for p in self.params]
        self.data = xp.empty(sum(sizes), dtype=self.dtype)
        self.grad = xp.zeros(sum(sizes), dtype=self.dtype)
        self.views, self.grad_views, self.grads, start = [], [], [], 0
        for p, n in zip(self.params, sizes):
            self.data[start:start + n] = p.data.reshape(-1)
            if p.grad is not None:
                self.grad[start:start + n] = p.grad.data.reshape(-1)
            view, grad_view = self.data[start:start + n].reshape(p.shape), self.grad[start:start + n].reshape(p.shape)
            p.data, p.grad = view, Tensor._from_array(grad_view, self.device)
            self.views.append(view)
            self.grad_views.append(grad_view)
            self.grads.append(p.grad)
            start += n

    def sync(self):
        """Re-link parameters whose data or grad was replaced since the last step."""
        for i, p in enumerate(self.params):
            if p.data is not self.views[i]:
                if p.device != self.device or p.dtype != self.dtype:
                    return "rebuild"
                self.views[i][...] = p.data
                p.data = self.views[i]
            grad = p.grad
            if grad is not self.grads[i] or grad.data is not self.grad_views[i]:
                if grad is None:
                    self.grad_views[i][...] = 0
                elif grad.data is not self.grad_views[i]:
                    self.grad_views[i][...] = grad.data
                self.grads[i].data = self.grad_views[i]
                p.grad = self.grads[i]
        return "ok"


class Optimizer:
    defaults = {}

    def __init__(self, params, **defaults):
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        for g in groups:
            group = {**self.defaults, **defaults, **g}
            group["params"] = list(g["params"])
            if not group["params"]:
                continue                      # e.g. a no-decay group that happens to be empty
            self.param_groups.append(group)
        self._check_hyperparameters()
        self.flat = [_FlatGroup(g["params"]) for g in self.param_groups]
        self.state = [self._init_state(f) for f in self.flat]
        self.step_count = 0

    def _check_hyperparameters(self):
        """As torch.optim does: a negative rate, decay or momentum is refused, not silently used."""
        for g in self.param_groups:
            for name in ("lr", "weight_decay", "momentum", "dampening"):
                if name in g and not g[name] >= 0:
                    raise ValueError(f"{type(self).__name__}: invalid {name} {g[name]} (must be >= 0)")

    def _init_state(self, flat):
        return {}

    def sync_buffers(self):
        """Link parameters whose data was replaced (a load, a broadcast, a move to another device
        or dtype) back into the flat buffers. Every step does it; call it after changing
        parameter data outside the optimizer, before reading the buffers."""
        for i, f in enumerate(self.flat):
            if f.sync() == "rebuild":            # parameters moved to another device or dtype
                old = self.state[i]
                f.build()
                self.state[i] = {k: backend.to_device(v, f.device).astype(f.dtype) for k, v in old.items()}

    def zero_grad(self, set_to_none=False):
        """Zero the flat gradient buffers (the views stay linked; set_to_none is accepted for PyTorch
        compatibility and does the same, because an unlinked gradient would cost a copy)."""
        self.sync_buffers()
        for f in self.flat:
            f.grad[...] = 0

    def step(self):
        self.sync_buffers()
        self.step_count += 1
        for group, flat, state in zip(self.param_groups, self.flat, self.state):
            self._update(group, flat.data, flat.grad, state, self.step_count)

    def _update(self, group, p, g, state, t):
        raise NotImplementedError

    def to(self, device):
        """Move the optimizer's state (and the parameters it holds) to `device`."""
        for f, state in zip(self.flat, self.state):
            for p in f.params:
                p.data, p.device = backend.to_device(p.data, device), backend.normalize_device(device)
                if p.grad is not None:
                    p.grad = Tensor._from_array(backend.to_device(p.grad.data, device), p.device)
        self.sync_buffers()
        return self

    # ----------------------------------------------------------------- state
    def state_dict(self):
        """{'step': t, 'param_groups': [hyperparameters], 'state': [{name: NumPy array}]} (flat arrays)."""
        groups = [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]
        state = [{k: backend.to_numpy(v).copy() for k, v in s.items()} for s in self.state]
        return {"type": type(self).__name__, "step": self.step_count, "param_groups": groups, "state": state}

    def load_state_dict(self, sd):
        """Take a state from state_dict(): every group's hyperparameters and its complete state (a
        missing or extra moment, or one of another shape, is refused, naming it: reset moments would
        resume silently as another run). Checked whole before anything changes."""
        me = f"{type(self).__name__}.load_state_dict"
        if sd.get("type") != type(self).__name__:
            raise CheckpointError(f"{me}: the state is from {sd.get('type')}")
        if len(sd["param_groups"]) != len(self.param_groups) or len(sd["state"]) != len(self.param_groups):
            raise CheckpointError(f"{me}: {len(sd['param_groups'])} parameter groups and {len(sd['state'])} "
                                  f"states in the state, {len(self.param_groups)} groups here")
        step = sd["step"]
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise CheckpointError(f"{me}: step {step!r} is not a count of steps")
        problems = []
        for i, (state, saved_state) in enumerate(zip(self.state, sd["state"])):
            missing = sorted(set(state) - set(saved_state))
            extra = sorted(map(str, set(saved_state) - set(state)))
            if missing:
                problems.append(f"group {i} lacks {', '.join(missing)}")
            if extra:
                problems.append(f"group {i} has unknown {', '.join(extra)}")
            for k in set(state) & set(saved_state):
                v = saved_state[k]
                if getattr(getattr(v, "dtype", None), "kind", "") not in "fiu" or tuple(v.shape) != state[k].shape:
                    problems.append(f"group {i} {k} of shape {tuple(np.shape(v))} ({getattr(v, 'dtype', type(v))}), "
                                    f"not {state[k].shape}")
        if problems:
            raise CheckpointError(f"{me}: the state does not fit these parameters: " + "; ".join(problems))
        self.sync_buffers()
        for group, saved, flat, state, saved_state in zip(self.param_groups, sd["param_groups"], self.flat,
                                                          self.state, sd["state"]):
            for k, v in saved_state.items():
                state[k][...] = backend.to_device(v, flat.device)
            group.update({k: (tuple(v) if isinstance(v, list) else v) for k, v in saved.items() if k != "params"})
        self.step_count = int(step)


class SGD(Optimizer):
    """p -= lr * v, with v = momentum * v + (1 - dampening) * (g + weight_decay * p)  (torch.optim.SGD)."""

    defaults = {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0}

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0):
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay)

    def _init_state(self, flat):
        return {"momentum_buffer": backend.get_array_module(flat.device).zeros_like(flat.data)}

    def _update(self, group, p, g, state, t):
        lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
        d_p = g + wd * p if wd else g
        if mu:
            buf = state["momentum_buffer"]
            if t == 1:
                buf[...] = d_p                      # PyTorch starts the buffer at the first gradient
            else:
                buf *= mu
                buf += (1 - group["dampening"]) * d_p
            d_p = buf
        p -= lr * d_p


class Adam(Optimizer):
    """Adam (torch.optim.Adam); weight_decay here is L2: it is added to the gradient.

        m = b1 m + (1 - b1) g              first moment (mean of gradients)
        v = b2 v + (1 - b2) g^2            second moment
        p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    """

    defaults = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}
    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)

    def _check_hyperparameters(self):
        super()._check_hyperparameters()
        for g in self.param_groups:
            b1, b2 = g["betas"]
            if not (0 <= b1 < 1 and 0 <= b2 < 1) or g["eps"] < 0:
                raise ValueError(f"{type(self).__name__}: invalid betas {g['betas']} or eps {g['eps']}")

    def _init_state(self, flat):
        xp = backend.get_array_module(flat.device)
        return {"exp_avg": xp.zeros_like(flat.data), "exp_avg_sq": xp.zeros_like(flat.data)}

    def _update(self, group, p, g, state, t):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if wd and not self.decoupled:
            g = g + wd * p
        if wd and self.decoupled:
            p *= 1 - lr * wd                        # AdamW: decay the weights directly
        xp = backend.get_array_module_of(v := state["exp_avg_sq"])
        m = state["exp_avg"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        g2 = g * g
        g2 *= 1 - b2
        v += g2
        denom = xp.sqrt(v, out=g2)                  # reuse the buffer: sqrt(v) / sqrt(1 - b2^t) + eps
        denom *= 1 / math.sqrt(1 - b2 ** t)
        denom += eps
        update = xp.divide(m, denom, out=denom)
        update *= lr / (1 - b1 ** t)
        p -= update


class AdamW(Adam):
    """Adam with decoupled weight decay (torch.optim.AdamW): p *= 1 - lr * weight_decay, then Adam."""

    defaults = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2}
    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def gpt2_param_groups(model, weight_decay):
    """nanoGPT's preset: decay every weight of 2 or more dimensions (matmuls, embeddings), not the
    biases and LayerNorm gains. Frozen parameters (requires_grad False: LoRA's base) are left
    out (the optimizer skips a group left empty)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def clip_grad_norm_(parameters, max_norm):
    """Scale all gradients together so that their global L2 norm is at most max_norm
    (torch.nn.utils.clip_grad_norm_). Returns the norm before clipping, as a 0-d array on the
    parameters' device (no device->host copy)."""
    grads = [p.grad.data for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    xp = backend.get_array_module_of(grads[0])
    buffers = _covering_buffers(grads)
    total = xp.sqrt(sum((b * b).sum() for b in buffers))
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0).astype(grads[0].dtype)
    for b in buffers:
        b *= coef
    return total


def _covering_buffers(grads):
    """The flat buffers the gradients are views of, when they exactly cover them (one multiply for
    all); otherwise the gradients themselves."""
    bases = {}
    for g in grads:
        base = g.base if getattr(g, "base", None) is not None else None
        if base is None or base.ndim != 1:
            return grads
        bases.setdefault(id(base), [base, 0])[1] += g.size
    if all(base.size == n for base, n in bases.values()):
        return [base for base, _ in bases.values()]
    return grads


# ------------------------------------------------------------------ learning-rate schedules
class ConstantLR:
    def __init__(self, lr):
        self.lr = lr

    def __call__(self, step):
        return self.lr


class WarmupCosineLR:
    """Linear warmup to max_lr over warmup_iters, cosine decay to min_lr at decay_iters, then flat
    (nanoGPT's get_lr)."""

    def __init__(self, max_lr, min_lr, warmup_iters, decay_iters):
        if decay_iters < warmup_iters:
            raise ConfigError(f"decay_iters ({decay_iters}) must be >= warmup_iters ({warmup_iters})")
        self.max_lr, self.min_lr, self.warmup_iters, self.decay_iters = max_lr, min_lr, warmup_iters, decay_iters

    def __call__(self, step):
        if step < self.warmup_iters:
            return self.max_lr * (step + 1) / (self.warmup_iters + 1)
        if step > self.decay_iters:
            return self.min_lr
        ratio = (step - self.warmup_iters) / max(self.decay_iters - self.warmup_iters, 1)
        coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))
        return self.min_lr + coeff * (self.max_lr - self.min_lr)
