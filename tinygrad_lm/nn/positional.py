"""Positional encodings: attention alone is blind to order ("The man ate the sandwich" and "The
sandwich ate the man" give the same set of vectors), so position must be added somewhere.

- learned:    a table of block_size vectors, trained like the token embedding (GPT-2);
- sinusoidal: fixed sin/cos waves of geometric wavelengths ("Attention is all you need");
- rotary:     RoPE, rotating each (query, key) pair of coordinates by an angle proportional to the
              position, so q.k depends only on the positions' difference.
"""
import math

import numpy as np

from .. import backend

from ..tensor import Tensor, cat
from . import functional as F
from .layers import Embedding
from .module import Module


class LearnedPositionalEmbedding(Embedding):
    """An Embedding over positions 0..block_size-1."""

    def forward(self, T, start=0):
        if start + T > self.num_embeddings:
            raise ValueError(f"positions {start}..{start + T - 1} exceed block_size {self.num_embeddings}")
        # positions are in range by the check above: no device-side index check needed
        return F.embedding(np.arange(start, start + T), self.weight, check_indices=False)


def sinusoidal_table(n_positions, dim):
    """PE[pos, 2i] = sin(pos / 10000^(2i/dim)), PE[pos, 2i+1] = cos(same angle)."""
    pos = np.arange(n_positions)[:, None]
    inv_freq = np.exp(-math.log(10000.0) * np.arange(0, dim, 2) / dim)
    table = np.zeros((n_positions, dim))
    table[:, 0::2] = np.sin(pos * inv_freq)
    table[:, 1::2] = np.cos(pos * inv_freq[: dim // 2])
    return table


class SinusoidalPositionalEncoding(Module):
    """Fixed (not learned) sin/cos table, added to the token embeddings."""

    def __init__(self, block_size, dim, dtype=np.float32):
        super().__init__()
        self.register_buffer("table", Tensor(sinusoidal_table(block_size, dim).astype(dtype)))

    def forward(self, T, start=0):
        if start + T > self.table.shape[0]:
            raise ValueError(f"positions {start}..{start + T - 1} exceed block_size {self.table.shape[0]}")
        return self.table[start:start + T]


class RotaryEmbedding(Module):
    """RoPE (half-split layout): for a head vector x = [x1, x2] (halves of size D/2) at position t,
        rope(x) = [x1 cos(t f) - x2 sin(t f),  x2 cos(t f) + x1 sin(t f)],  f_i = base^(-2i/D).
    A rotation keeps lengths; rotating q by t_q and k by t_k makes q.k depend on t_q - t_k only.
    """

    def __init__(self, head_dim, block_size, base=10000.0, dtype=np.float32):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head size, got {head_dim}")
        inv_freq = base ** (-np.arange(0, head_dim, 2) / head_dim)
        angles = np.arange(block_size)[:, None] * inv_freq[None, :]       # (T, D/2)
        # the tables in float64, cast once for each dtype and device that asks (a float64 model
        # gets float64 tables, not float32 ones widened: gradient checks see the exact rotation)
        self.cos_table, self.sin_table = np.cos(angles), np.sin(angles)
        self._cast = {}

    def tables(self, dtype, device):
        """(cos, sin) Tensors (T, D/2) of `dtype` on `device`."""
        key = (np.dtype(dtype).name, str(device))
        if key not in self._cast:
            self._cast[key] = tuple(Tensor(backend.to_device(t.astype(dtype), device), device=device)
                                    for t in (self.cos_table, self.sin_table))
        return self._cast[key]

    def forward(self, x, start=0):
        """Rotate x of shape (..., T, D) for positions start..start+T-1."""
        T, half = x.shape[-2], x.shape[-1] // 2
        cos, sin = self.tables(x.dtype, x.device)
        cos, sin = cos[start:start + T], sin[start:start + T]
        x1, x2 = x[..., :half], x[..., half:]
        return cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


