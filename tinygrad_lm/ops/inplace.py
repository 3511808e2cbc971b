"""The op behind ``x[index] = value`` (Tensor.__setitem__), written out of place: y = x with
y[index] = value. The in-place methods (tensor.py) compute their new value with ops like this one,
then write it into the tensor's memory and link the tensor to the op in the graph.
"""
from ..function import Function
from .arithmetic import unbroadcast
from .shape import torch_index


class SetItem(Function):
    """y = a copy of x with y[index] = value (value broadcasts to the indexed shape).

    Backward:
      1. x's gradient is grad, except at index, where value replaced x: zero there;
      2. value's gradient is grad[index], summed over the dims value was broadcast along.
    The index is applied in PyTorch's two steps (``torch_index``): y[basic][advanced] = value.
    """

    def forward(self, x, value, index):
        self.basic, self.advanced = torch_index(index, x.ndim)
        self.value_shape = value.shape
        y = x.copy()
        self._put(y, value)
        return y

    def _put(self, a, value):
        """a[index] = value, in the two steps (a[basic] is then a view of a, written through)."""
        if self.advanced is None:
            a[self.basic] = value
        else:
            (a if self.basic is None else a[self.basic])[self.advanced] = value

    def _take(self, a):
        """a[index], in the same two steps."""
        a = a if self.basic is None else a[self.basic]
        return a if self.advanced is None else a[self.advanced]

    def backward(self, grad):
        g_x = grad.copy()
        self._put(g_x, 0)
        return g_x, self.xp.asarray(unbroadcast(self._take(grad), self.value_shape))
