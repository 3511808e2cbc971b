"""Ops that neural networks add to the array basics: embedding lookup and dropout."""
from .. import random
from ..function import Function
from .checks import check_indices
from .shape import scatter_add


class Embedding(Function):
    """y[..., :] = W[idx[...], :]  (a row lookup; the same as one_hot(idx) @ W).

    Backward: row r of dL/dW is the sum of the upstream gradients of every position that looked
    up r. Rows repeat, so this is a scatter-add. The row `padding_idx`, if given, gets no gradient
    (as PyTorch's padding_idx: the padding vector is never trained).
    """

    def forward(self, weight, indices, checked=False, padding_idx=None):
        if not checked:        # the caller may have checked on the host already (GPT does)
            check_indices(self.xp, indices, weight.shape[0], "Embedding")
        self.indices, self.weight_shape, self.dtype = indices, weight.shape, weight.dtype
        self.padding_idx = padding_idx
        return weight[indices]

    def backward(self, grad):
        xp = self.xp
        vocab, dim = self.weight_shape
        rows = self.indices.reshape(-1)
        grad = grad.reshape(-1, dim)
        if rows.size * vocab <= 1 << 22:
            # small vocabulary: one_hot(idx)^T @ grad is the same sum, as one fast matrix product
            one_hot = (rows[:, None] == xp.arange(vocab)).astype(self.dtype)
            g_weight = one_hot.T @ grad
        else:
            g_weight = xp.zeros(self.weight_shape, dtype=self.dtype)
            scatter_add(xp, g_weight, rows, grad)
        if self.padding_idx is not None:
            g_weight[self.padding_idx] = 0
        return g_weight


def dropout_scale(xp, keep, p, dtype):
    """keep / (1 - p): the kept elements scaled so the expected value is unchanged; all zeros when
    p = 1 (nothing is kept, as PyTorch), where 1 / (1 - p) would divide by zero."""
    return keep.astype(dtype) / (1 - p) if p < 1 else xp.zeros(keep.shape, dtype=dtype)


class Dropout(Function):
    """y = x * mask / (1 - p), with mask_i ~ Bernoulli(1 - p): the expected value is x.

    dy/dx = mask / (1 - p). With p = 1 nothing is kept: y = 0 and dy/dx = 0, as PyTorch.
    (In eval mode, or with p = 0, the op is skipped altogether.)
    """

    def forward(self, x, p):
        keep = random.uniform(x.shape, device=self.device, dtype=x.dtype) >= p
        self.scale = dropout_scale(self.xp, keep, p, x.dtype)
        return x * self.scale

    def backward(self, grad):
        return grad * self.scale
