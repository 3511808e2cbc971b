"""Ops that neural networks add to the array basics: embedding lookup and dropout."""
from .. import random
from ..function import Function
from .checks import check_indices
from .shape import scatter_add


class Embedding(Function):
    """y[..., :] = W[idx[...], :]  (a row lookup; the same as one_hot(idx) @ W).

    Backward: row r of dL/dW is the sum of the upstream gradients of every position that looked
    up r. Rows repeat, so this is a scatter-add.
    """

    def forward(self, weight, indices, checked=False):
        if not checked:        # the caller may have checked on the host already (GPT does)
            check_indices(self.xp, indices, weight.shape[0], "Embedding")
        self.indices, self.weight_shape, self.dtype = indices, weight.shape, weight.dtype
        return weight[indices]

    def backward(self, grad):
        xp = self.xp
        vocab, dim = self.weight_shape
        rows = self.indices.reshape(-1)
        grad = grad.reshape(-1, dim)
        if rows.size * vocab <= 1 << 22:
            # small vocabulary: one_hot(idx)^T @ grad is the same sum, as one fast matrix product
            one_hot = (rows[:, None] == xp.arange(vocab)).astype(self.dtype)
            return one_hot.T @ grad
        g_weight = xp.zeros(self.weight_shape, dtype=self.dtype)
        scatter_add(xp, g_weight, rows, grad)
        return g_weight


class Dropout(Function):
    """y = x * mask / (1 - p), with mask_i ~ Bernoulli(1 - p): the expected value is x.

    dy/dx = mask / (1 - p). (In eval mode, or with p = 0, the op is skipped altogether.)
    """

    def forward(self, x, p):
        keep = random.uniform(x.shape, device=self.device, dtype=x.dtype) >= p
        self.scale = keep.astype(x.dtype) / (1 - p)
        return x * self.scale

    def backward(self, grad):
        return grad * self.scale
