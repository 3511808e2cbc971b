"""Tensor and reverse-mode autograd: the whole engine in one file.

A ``Tensor`` holds an array (``.data``: NumPy on "cpu", CuPy on "cuda") and, when it was made by a
differentiable op, the ``Function`` that made it (``._ctx``). ``loss.backward()`` walks that graph
from the loss back to the leaves in reverse topological order, asking each Function for the
gradient of its inputs, and adds the results into the leaves' ``.grad``.

Each op is one small class in ``tinygrad_lm/ops`` with ``forward`` and ``backward`` side by side.
"""
import numpy as np

from . import backend

_grad_enabled = True


def is_grad_enabled():
    return _grad_enabled


class no_grad:
    """Context manager (and decorator) under which ops record no graph, as ``torch.no_grad``."""

    def __enter__(self):
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = False

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._previous
        return False

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        return wrapper


class GradientShapeError(RuntimeError):
    """A backward returned a gradient whose shape or dtype is not its input's: a bug in that op."""


class Function:
    """One differentiable operation.

    Subclasses implement
      ``forward(self, *arrays, **params) -> array``: compute with ``self.xp`` and keep on ``self``
      what backward will need;
      ``backward(self, grad) -> array or tuple``: one gradient per input (``None`` where an input
      needs none), each with that input's shape.
    ``Function.apply(*tensors, **params)`` runs forward and links the result into the graph.
    """
    inputs = ()

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        device = inputs[0].device
        for t in inputs[1:]:
            if t.device != device:
                shapes = ", ".join(f"{tuple(x.shape)} on {x.device!r}" for x in inputs)
                raise backend.DeviceError(
                    f"{cls.__name__}: inputs are on different devices ({shapes}); "
                    f"move them with .to({device!r}) first")
        fn = cls()
        fn.xp, fn.device = backend.get_array_module(device), device
        out = fn.forward(*[t.data for t in inputs], **params)
        needs_grad = _grad_enabled and any(t.requires_grad for t in inputs)
        result = Tensor._from_array(out, device, needs_grad)
        if needs_grad:
            fn.inputs = inputs
            result._ctx = fn
        return result

    @property
    def name(self):
        return type(self).__name__


def _default_dtype(data):
    """PyTorch's rule: Python floats -> float32, Python ints -> int64, arrays keep their dtype."""
    if isinstance(data, (bool, np.bool_)):
        return np.bool_
    if isinstance(data, (int, np.integer)) and not isinstance(data, bool):
        return np.int64
    if isinstance(data, float):
        return np.float32
    return None


class Tensor:
    """An n-dimensional array that remembers how it was computed, for ``backward()``."""

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "device", "_retain_grad", "name",
                 "__weakref__")

    def __init__(self, data, device=None, dtype=None, requires_grad=False):
        if isinstance(data, Tensor):
            data = data.data
        source_device = backend.device_of(data)
        device = backend.normalize_device(device if device is not None else source_device)
        xp = backend.get_array_module(device)
        if dtype is None and not hasattr(data, "dtype"):
            dtype = _default_dtype(data)
            if dtype is None:  # a (nested) list: let NumPy look, then apply the same rule
                probe = np.asarray(data)
                dtype = np.float32 if probe.dtype.kind == "f" else probe.dtype
        data = backend.to_device(data, device) if hasattr(data, "dtype") else data
        self.data = xp.asarray(data, dtype=dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, got {self.data.dtype}")
        self.device = device
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._ctx = None
        self._retain_grad = False
        self.name = None

    @classmethod
    def _from_array(cls, array, device, requires_grad=False):
        """Wrap an array that is already on `device` without copying (used by every op)."""
        t = cls.__new__(cls)
        t.data, t.device, t.requires_grad = array, device, requires_grad
        t.grad, t._ctx, t._retain_grad, t.name = None, None, False, None
        return t

    # ----------------------------------------------------------------- properties
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        return self.ndim

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        dev = f", device={self.device!r}" if self.device != "cpu" else ""
        body = np.array2string(self.numpy(), precision=4, separator=", ", threshold=50)
        return f"tensor({body}, dtype={self.dtype}{dev}{grad})"

    # ----------------------------------------------------------------- conversions
    def numpy(self):
        """A NumPy copy of the data (the explicit device->host copy on a GPU)."""
        return backend.to_numpy(self.data)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return backend.to_numpy(self.data).reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor._from_array(self.data, self.device, False)

    def requires_grad_(self, flag=True):
        self.requires_grad = flag
        return self

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward (as PyTorch's)."""
        self._retain_grad = True
        return self

    def to(self, device=None, dtype=None):
        """Move to another device and/or dtype. The result is a new leaf when data changes."""
        device, dtype = backend.device_and_dtype(device, dtype)
        device = self.device if device is None else backend.normalize_device(device)
        if device == self.device and (dtype is None or np.dtype(dtype) == self.dtype):
            return self
        data = backend.to_device(self.data, device)
        if dtype is not None:
            data = data.astype(dtype)
        return Tensor._from_array(data, device, self.requires_grad and self.is_leaf)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def zero_(self):
        self.data[...] = 0
        return self

    # ----------------------------------------------------------------- autograd
    def backward(self, gradient=None):
        """Accumulate d(self)/d(leaf) * gradient into every leaf's ``.grad``.

        Walks the graph in reverse topological order with an explicit stack (no recursion, so a
        chain of any length works). Gradients add up over calls until they are zeroed.
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no graph "
                               "(was it made under no_grad(), or from tensors without requires_grad=True?)")
        xp = backend.get_array_module(self.device)
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a scalar, but this tensor has shape "
                    f"{self.shape}; pass gradient= an array of that shape (or reduce with .sum()/.mean())")
            gradient = xp.ones_like(self.data)
        else:
            if isinstance(gradient, Tensor):
                gradient = gradient.data
            elif backend.device_of(gradient) != self.device or not hasattr(gradient, "dtype"):
                gradient = backend.to_device(np.asarray(gradient, dtype=self.dtype), self.device)
            gradient = gradient.astype(self.dtype, copy=False)
            if gradient.shape != self.data.shape:
                raise GradientShapeError(f"backward(): gradient has shape {gradient.shape} but the "
                                         f"tensor has shape {self.shape}")
        grads = {id(self): gradient}
        for node in reversed(_topological_order(self)):
            grad = grads.pop(id(node), None)
            if grad is None:
                continue
            if node._ctx is None or node._retain_grad:
                _accumulate(node, grad)
            if node._ctx is None:
                continue
            fn = node._ctx
            input_grads = fn.backward(grad)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for inp, g in zip(fn.inputs, input_grads):
                if g is None or not inp.requires_grad:
                    continue
                if g.shape != inp.data.shape or g.dtype != inp.data.dtype:
                    raise GradientShapeError(
                        f"{fn.name}.backward returned a gradient of shape {tuple(g.shape)} and dtype "
                        f"{g.dtype} for an input of shape {inp.shape} and dtype {inp.dtype}")
                previous = grads.get(id(inp))
                grads[id(inp)] = g if previous is None else previous + g


def _accumulate(leaf, grad):
    """leaf.grad += grad, owning its memory (so in-place updates never touch another array)."""
    if leaf.grad is None:
        leaf.grad = grad.copy()
    else:
        leaf.grad += grad


def _topological_order(root):
    """Tensors reachable from `root` (through tensors that require grad), inputs before outputs."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for inp in node._ctx.inputs:
                if inp.requires_grad and id(inp) not in visited:
                    stack.append((inp, False))
    return order


def tensor(data, device=None, dtype=None, requires_grad=False):
    """``torch.tensor``-like constructor."""
    return Tensor(data, device=device, dtype=dtype, requires_grad=requires_grad)


# The methods that map Python operators and PyTorch names onto ops live in ops/__init__.py,
# next to the ops themselves; importing it attaches them to Tensor.
from . import ops as _ops  # noqa: E402,F401
