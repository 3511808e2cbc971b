"""One differentiable op: ``Function``, with ``forward`` and ``backward`` side by side, and ``apply``,
which runs forward on tensors and links the result into the graph. Also ``no_grad``, the switch
that stops ops from recording a graph, and ``Version``, the in-place write counter that lets
backward refuse an array changed since forward.

Every op in ``tinygrad_lm/ops`` subclasses ``Function``; ``tensor.py`` (the ``Tensor`` class) sits
on top and calls the ops. This module needs neither: it imports only ``backend`` and ``errors``.
"""
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


_clock = 0      # in-place writes so far, to any tensor: the time stamp of the version checks


class Version:
    """The in-place writes (``add_``, ``x[i] = v``, ...) to one tensor's memory.

    Why it exists: backward reads the arrays that forward kept (Exp keeps its output, Mul its
    inputs). If one of them was overwritten in place in between, backward would silently return a
    wrong gradient; instead it raises, as PyTorch does. Each Function notes the clock (the number
    of in-place writes so far, anywhere) when it runs forward; backward compares it with the clock
    now, one int compare: when no write happened since (always, in a training step) that is all.
    A view (reshape, permute, x[1:], detach) shares the memory of its base, so it shares this
    counter too: writing through either one changes the version of both.
    A tensor gets a counter only when it is first written or viewed (``Tensor._counter_``).
    """
    __slots__ = ("writes",)

    def __init__(self):
        self.writes = []                        # the clock at each write

    @property
    def value(self):
        """The version: how many times this memory was written in place."""
        return len(self.writes)

    def bump(self):
        global _clock
        _clock += 1
        self.writes.append(_clock)

    def at(self, clock):
        """The version this memory had when the clock read `clock`."""
        return sum(1 for w in self.writes if w <= clock)


def clock():
    return _clock


class Function:
    """One differentiable operation.

    Subclasses implement
      ``forward(self, *arrays, **params) -> array``: compute with ``self.xp`` and keep on ``self``
      what backward will need;
      ``backward(self, grad) -> array or tuple``: one gradient per input (``None`` where an input
      needs none: ``self.needs_input_grad[i]`` says which do), each with that input's shape.
    ``Function.apply(*tensors, **params)`` runs forward and links the result into the graph.
    """
    inputs = ()
    needs_input_grad = ()   # per input: does it require a gradient (set when the graph is recorded)
    clock = 0          # the in-place write clock when forward ran (see Version)

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
        # Every input is a Tensor: asking the first one for the output (Tensor._from_array) keeps
        # this module from importing tensor.py, which imports the ops, which import this module.
        result = inputs[0]._from_array(out, device, needs_grad)
        if _is_view(out, inputs[0].data):          # reshape, permute, x[1:]: same memory, same version
            base = inputs[0]._base
            result._counter, result._base = inputs[0]._counter_(), inputs[0] if base is None else base
        if needs_grad:
            fn.inputs, fn.clock = inputs, _clock
            # PyTorch's ctx.needs_input_grad: backward may skip a gradient nobody asked for (a frozen
            # weight's: the (out, in) product of a LoRA model's head is never needed)
            fn.needs_input_grad = tuple(t.requires_grad for t in inputs)
            result._ctx = fn
        return result

    def check_versions(self, output):
        """Raise if an array that forward kept was changed in place since (see ``Version``)."""
        if _clock == self.clock:        # no in-place write anywhere since forward: the common case
            return
        for i, t in enumerate(self.inputs):
            self._refuse_if_kept(t, f"input {i}")
        self._refuse_if_kept(output, "output 0")

    def _refuse_if_kept(self, t, role):
        counter = t._counter
        if counter is None or not counter.writes or counter.writes[-1] <= self.clock:
            return                                          # not written since forward
        if _keeps(self, t.data):
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [{t.dtype} tensor of shape {list(t.shape)}], which is {role} of "
                f"{self.name}, is at version {counter.value}; expected version {counter.at(self.clock)} "
                f"instead. Hint: change a copy (x.clone()) instead, or make the change after backward()")

    @property
    def name(self):
        return type(self).__name__


def _root(array):
    """The array that owns `array`'s memory: ``.base``, which NumPy, CuPy and the strict test
    device all return as one stable object (a view's base is the array it was taken from)."""
    base = getattr(array, "base", None)
    return array if base is None else base


def _is_view(out, x):
    """Whether forward returned a view of (part of) x's memory rather than a new array."""
    return getattr(out, "base", None) is not None and _root(out) is _root(x)


def _keeps(fn, array):
    """Whether `fn` (or a Function inside it) holds an array that shares memory with `array`.
    Runs only when a version changed, so its cost does not matter."""
    for value in vars(fn).values():
        if isinstance(value, Function):
            if _keeps(value, array):
                return True
        elif hasattr(value, "strides") and fn.xp.may_share_memory(value, array):   # an array
            return True
    return False
