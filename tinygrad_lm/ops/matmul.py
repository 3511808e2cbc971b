"""Matrix product with batch dimensions that broadcast: (..., n, k) @ (..., k, m) -> (..., n, m)."""
from ..function import Function
from .arithmetic import unbroadcast


class MatMul(Function):
    """Z = X @ Y.

    For one matrix pair, Z_ij = sum_k X_ik Y_kj, so
      dL/dX = dL/dZ @ Y^T     (n, m) @ (m, k) -> (n, k)
      dL/dY = X^T @ dL/dZ     (k, n) @ (n, m) -> (k, m)
    Batch dimensions that were broadcast are summed back with ``unbroadcast``.
    Both inputs have at least 2 dimensions (Tensor.matmul lifts vectors first).
    """

    def forward(self, x, y):
        if x.shape[-1] != y.shape[-2]:
            raise ValueError(f"MatMul: shapes {x.shape} and {y.shape} cannot be multiplied "
                             f"(inner sizes {x.shape[-1]} and {y.shape[-2]} differ)")
        self.x, self.y = x, y
        return x @ y

    def backward(self, grad):
        x, y = self.x, self.y
        g_x = grad @ y.swapaxes(-1, -2)
        if y.ndim == 2 and x.ndim > 2:
            # y was shared by every batch entry: one (k, N) @ (N, m) product sums them all at once
            g_y = x.reshape(-1, x.shape[-1]).T @ grad.reshape(-1, grad.shape[-1])
        else:
            g_y = unbroadcast(x.swapaxes(-1, -2) @ grad, y.shape)
        return unbroadcast(g_x, x.shape), g_y
