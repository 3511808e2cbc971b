"""Module and Parameter: the containers that layers and models are built from (as torch.nn)."""
import contextlib
from collections import OrderedDict

import numpy as np

from .. import backend
from ..errors import StateDictError  # noqa: F401  (raised by load_state_dict)
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as learnable: requires_grad=True by default."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class RemovableHandle:
    """What register_forward_hook returns (torch.utils.hooks.RemovableHandle): ``remove()`` takes the
    hook off; ``with handle:`` removes it at the end of the block."""
    _next_id = 0

    def __init__(self, hooks, hook):
        RemovableHandle._next_id += 1
        self.hooks, self.id = hooks, RemovableHandle._next_id
        hooks[self.id] = hook

    def remove(self):
        self.hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class Module:
    """Base class of every layer. Attributes that are Parameters or Modules are registered in
    assignment order, which fixes the order of ``parameters()`` and the keys of ``state_dict()``.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 f"before assigning {name!r}")
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name, tensor):
        """A non-learnable tensor that moves with the module (a fixed table, a mask)."""
        self._buffers[name] = tensor
        object.__setattr__(self, name, tensor)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        output = self.forward(*args, **kwargs)
        if not self._forward_hooks:
            return output
        for hook in tuple(self._forward_hooks.values()):     # a hook may remove itself
            result = hook(self, args, output)
            if result is not None:                            # as PyTorch: a hook may replace the output
                output = result
        return output

    def register_forward_hook(self, hook):
        """Call ``hook(module, args, output)`` after every forward of this module (as PyTorch's):
        a way to look inside a model without changing it. A hook that returns a value replaces the
        output. Returns a handle whose ``remove()`` takes the hook off again."""
        if not callable(hook):
            raise TypeError(f"register_forward_hook: a hook must be callable, got {type(hook).__name__}")
        return RemovableHandle(self._forward_hooks, hook)

    # ----------------------------------------------------------------- traversal
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, module in self._modules.items():
            yield from module.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self, prefix="", remove_duplicate=True):
        """(name, Parameter) pairs in registration order; a shared (tied) parameter once."""
        seen = set()
        for module_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if remove_duplicate:
                    if id(p) in seen:
                        continue
                    seen.add(id(p))
                yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self):
        for module_name, module in self.named_modules():
            for name, b in module._buffers.items():
                yield (f"{module_name}.{name}" if module_name else name), b

    def num_parameters(self):
        return sum(p.numel() for p in self.parameters())

    # ----------------------------------------------------------------- state
    def state_dict(self):
        """name -> Tensor (sharing data) for every parameter; tied parameters appear under each name."""
        return OrderedDict((name, p.detach()) for name, p in self.named_parameters(remove_duplicate=False))

    def load_state_dict(self, state_dict, strict=True):
        """Copy values in. Missing, unexpected or mis-shaped keys raise one error listing them all."""
        if not hasattr(state_dict, "items"):
            raise StateDictError(f"load_state_dict into {type(self).__name__}: expected a mapping of names to "
                                 f"arrays, got {type(state_dict).__name__}")
        own = OrderedDict(self.named_parameters(remove_duplicate=False))
        missing = [k for k in own if k not in state_dict]
        unexpected = [str(k) for k in state_dict if k not in own]
        mismatched, not_numbers, values = [], [], {}
        for k, p in own.items():
            if k in state_dict:
                value = state_dict[k]
                value = value.data if isinstance(value, Tensor) else value
                value = values[k] = np.asarray(value) if isinstance(value, (list, tuple, int, float)) else value
                dtype = getattr(value, "dtype", None)
                if dtype is None or getattr(dtype, "kind", "") not in "fiub" or not hasattr(value, "shape"):
                    not_numbers.append(f"{k} ({type(value).__name__}{f' of {dtype}' if dtype is not None else ''})")
                elif tuple(value.shape) != p.shape:
                    mismatched.append(f"{k}: checkpoint {tuple(value.shape)} vs model {p.shape}")
        problems = []
        if not_numbers:
            problems.append("not arrays of numbers: " + ", ".join(not_numbers))
        if mismatched:
            problems.append("shape mismatch: " + "; ".join(mismatched))
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise StateDictError(f"load_state_dict into {type(self).__name__}: " + " | ".join(problems) +
                                 " (was the state_dict saved from a model with another config?)")
        for k, p in own.items():
            if k in values:
                p.data[...] = backend.to_device(values[k], p.device).astype(p.dtype, copy=False)
        return self

    # ----------------------------------------------------------------- modes, devices
    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data[...] = 0       # the array itself (with an optimizer: its flat buffer)

    def to(self, device=None, dtype=None):
        """Move (and/or cast) every parameter and buffer in place; returns self, as PyTorch."""
        device, dtype = backend.device_and_dtype(device, dtype)
        for p in self.parameters():
            _move(p, device, dtype)
        for _, b in self.named_buffers():
            if isinstance(b, Tensor):
                _move(b, device, dtype)
        return self

    def double(self):
        return self.to(dtype=np.float64)

    def float(self):
        return self.to(dtype=np.float32)

    def cuda(self):
        return self.to("cuda")

    def cpu(self):
        return self.to("cpu")

    @property
    def device(self):
        for p in self.parameters():
            return p.device
        return "cpu"

    # ----------------------------------------------------------------- printing
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        return "\n".join(lines) + ("\n)" if len(lines) > 1 else ")")


def _move(t, device, dtype):
    device = t.device if device is None else backend.normalize_device(device)
    data = backend.to_device(t.data, device)
    if dtype is not None:
        data = data.astype(dtype, copy=False)
    t.data, t.device = data, device
    if t.grad is not None:
        grad = backend.to_device(t.grad.data, device)
        t.grad = Tensor._from_array(grad.astype(dtype, copy=False) if dtype is not None else grad, device)


class _NumberedModules(Module):
    """Children named '0', '1', ... with list-like access (shared by Sequential and ModuleList)."""

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(_NumberedModules):
    """Modules applied one after another; indexable, named '0', '1', ... as PyTorch."""

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


@contextlib.contextmanager
def eval_mode(module):
    """``with eval_mode(model):`` runs the block with every submodule in eval mode (dropout off)
    and gives each submodule back the mode it had, also when the block raises: decoding or an
    evaluation in the middle of training must not leave the model in eval mode."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)


class ModuleList(_NumberedModules):
    """A list of modules whose parameters are registered ('0', '1', ...)."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        setattr(self, str(len(self._modules)), module)
        return self


def functional_call(module, parameters, *args, **kwargs):
    """Call `module` with some parameters replaced by the given tensors (``torch.func.functional_call``).

    parameters: {name: Tensor} with names from ``named_parameters()``. Used by gradcheck to treat
    a layer's weights as inputs. A tied parameter is replaced everywhere it is used.
    """
    own = dict(module.named_parameters())
    unknown = set(parameters) - set(own)
    if unknown:
        raise KeyError(f"functional_call: {type(module).__name__} has no parameters {sorted(unknown)}")
    replacement = {id(own[name]): t for name, t in parameters.items()}
    swapped = []
    for m in module.modules():
        for attr, p in list(m._parameters.items()):
            if id(p) in replacement:
                swapped.append((m, attr, p))
                m._parameters[attr] = replacement[id(p)]
                object.__setattr__(m, attr, replacement[id(p)])
    try:
        return module(*args, **kwargs)
    finally:
        for m, attr, p in swapped:
            m._parameters[attr] = p
            object.__setattr__(m, attr, p)
