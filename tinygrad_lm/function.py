"""One differentiable op: ``Function``, with ``forward`` and ``backward`` side by side, and ``apply``,
which runs forward on tensors and links the result into the graph. Also ``no_grad``, the switch
that stops ops from recording a graph.

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
        # Every input is a Tensor: asking the first one for the output (Tensor._from_array) keeps
        # this module from importing tensor.py, which imports the ops, which import this module.
        result = inputs[0]._from_array(out, device, needs_grad)
        if needs_grad:
            fn.inputs = inputs
            result._ctx = fn
        return result

    @property
    def name(self):
        return type(self).__name__
