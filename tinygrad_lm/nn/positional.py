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

from ..ops.rotary import pair_slices
from ..tensor import Tensor
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


ROPE_TYPES = ("default", "linear", "llama3")


def rope_inv_freq(head_dim, base=10000.0, rope_scaling=None):
    """The rotation speeds f_i = base^(-2i/D), i < D/2, as Hugging Face computes them for
    rope_scaling's "rope_type" (or "type"):
    - None / "default": as is;
    - "linear": every f_i / factor (positions squeezed by the factor);
    - "llama3" (Llama 3.1): wavelengths 2 pi / f_i shorter than original_max_position_embeddings /
      high_freq_factor kept, longer than ... / low_freq_factor divided by factor, and those between
      blended: f (1 - s) / factor + f s with s = (original / wavelength - low) / (high - low).
      Fast rotations (local order) stay, slow ones (long range) stretch to the longer context.
    Any other type is refused by name."""
    inv_freq = base ** (-np.arange(0, head_dim, 2) / head_dim)
    if not rope_scaling:
        return inv_freq
    kind = rope_scaling.get("rope_type", rope_scaling.get("type", "default"))
    if kind not in ROPE_TYPES:
        raise ValueError(f"rope_scaling type {kind!r} is not built here (built: {', '.join(ROPE_TYPES)})")
    if kind == "default":
        return inv_freq
    try:
        factor = float(rope_scaling["factor"])
        if kind == "linear":
            return inv_freq / factor
        low, high = float(rope_scaling["low_freq_factor"]), float(rope_scaling["high_freq_factor"])
        original = float(rope_scaling["original_max_position_embeddings"])
    except KeyError as e:
        raise ValueError(f"rope_scaling {rope_scaling}: {kind} scaling needs {e.args[0]!r}") from None
    if not (factor > 0 and high > low > 0 and original > 0):
        raise ValueError(f"rope_scaling {rope_scaling}: needs factor > 0 and high_freq_factor > low_freq_factor > 0")
    wavelength = 2 * math.pi / inv_freq
    scaled = np.where(wavelength > original / low, inv_freq / factor, inv_freq)
    smooth = (original / wavelength - low) / (high - low)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    between = (wavelength >= original / high) & (wavelength <= original / low)
    return np.where(between, blended, scaled)


class RotaryEmbedding(Module):
    """RoPE: for a head vector at position t, each pair (x1, x2) of coordinates is turned by the
    angle t f_i, f_i = base^(-2i/D) (see rope_inv_freq for rope_scaling):
        rope(x) = [x1 cos(t f) - x2 sin(t f),  x2 cos(t f) + x1 sin(t f)].
    A rotation keeps lengths; rotating q by t_q and k by t_k makes q.k depend on t_q - t_k only.
    layout "half" pairs coordinate i with i + D/2 (Hugging Face's), "interleaved" 2i with 2i + 1
    (Meta's, GGUF's); fused=False runs the composite twin (autograd derives the backward).
    """

    def __init__(self, head_dim, block_size, base=10000.0, dtype=np.float32, rope_scaling=None, layout="half",
                 fused=True):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head size, got {head_dim}")
        pair_slices(layout, head_dim)
        self.layout, self.fused = layout, fused
        inv_freq = rope_inv_freq(head_dim, base, rope_scaling)
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
        T = x.shape[-2]
        if start + T > self.cos_table.shape[0]:
            raise ValueError(f"positions {start}..{start + T - 1} exceed the rotary tables' {self.cos_table.shape[0]}")
        cos, sin = self.tables(x.dtype, x.device)
        cos, sin = cos[start:start + T], sin[start:start + T]
        rotate = F.rotary_embedding if self.fused else F.rotary_embedding_composite
        return rotate(x, cos, sin, self.layout)
