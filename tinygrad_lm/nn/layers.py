"""The basic layers: Linear, Embedding, LayerNorm, Dropout, ReLU, GELU (as torch.nn)."""
import numpy as np

from . import functional as F
from . import init
from .module import Module, Parameter


def _param(shape, dtype):
    return Parameter(np.zeros(shape, dtype=dtype or np.float32))


class Linear(Module):
    """y = x @ W^T + b, with W stored (out_features, in_features) as PyTorch."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _param((out_features, in_features), dtype)
        self.bias = _param((out_features,), dtype) if bias else None
        init.linear_default_(self.weight, self.bias)
        if device is not None:
            self.to(device)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A table of num_embeddings vectors; forward(ids) looks up rows (init N(0, 1) as PyTorch).
    padding_idx: that row starts at zero and is never trained, as PyTorch's."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, *, device=None, dtype=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx = F.padding_index(padding_idx, num_embeddings, "Embedding")
        self.weight = _param((num_embeddings, embedding_dim), dtype)
        init.normal_(self.weight)
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0
        if device is not None:
            self.to(device)

    def forward(self, indices):
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self):
        padding = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{padding}"


class LayerNorm(Module):
    """Normalise the last dimension to mean 0, variance 1, then scale and shift (fused op)."""

    def __init__(self, normalized_shape, eps=1e-5, bias=True, device=None, dtype=None):
        super().__init__()
        n = normalized_shape if isinstance(normalized_shape, int) else normalized_shape[0]
        self.normalized_shape, self.eps = n, eps
        self.weight = init.ones_(_param((n,), dtype))
        self.bias = _param((n,), dtype) if bias else None
        if device is not None:
            self.to(device)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"({self.normalized_shape},), eps={self.eps}"


class RMSNorm(Module):
    """Scale the last dimension to root mean square 1, then by a learned weight (torch.nn.RMSNorm;
    Llama's norm). eps None: the dtype's machine epsilon, as PyTorch."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        n = normalized_shape if isinstance(normalized_shape, int) else normalized_shape[0]
        self.normalized_shape, self.eps = n, eps
        self.weight = init.ones_(_param((n,), dtype)) if elementwise_affine else None
        if device is not None:
            self.to(device)

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"({self.normalized_shape},), eps={self.eps}"


class Dropout(Module):
    """Zero elements with probability p while training; the identity in eval mode."""

    def __init__(self, p=0.5):
        super().__init__()
        F.check_dropout_p(p, "Dropout")     # said now, not at the first training step
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class GELU(Module):
    """GELU; approximate='tanh' is GPT-2's, 'none' the exact erf form (PyTorch's default)."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"
