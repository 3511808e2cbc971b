"""Rotary position embeddings (RoPE) as one op: each pair of a head vector's coordinates turned by
an angle t * f_i that grows with the position t.

Two layouts name which coordinates make a pair (the same rotation, the coordinates in another order):
- "half" (Hugging Face's rotate_half, GPT-NeoX): coordinate i pairs with i + D/2;
- "interleaved" (Meta's original Llama, GPT-J, llama.cpp's default): coordinate 2i pairs with 2i + 1.
A llama-architecture GGUF file stores q and k rows in the order the interleaved layout needs;
io/gguf.py's unpermute_rows reorders them for the half layout (tests/test_llama.py shows both
give the same logits).
"""
from ..function import Function

LAYOUTS = ("half", "interleaved")


def pair_slices(layout, D):
    """(first, second): the index of each pair's first and second coordinate along the last axis."""
    if layout == "half":
        return slice(0, D // 2), slice(D // 2, D)
    if layout == "interleaved":
        return slice(0, D, 2), slice(1, D, 2)
    raise ValueError(f"rotary layout must be one of {LAYOUTS}, got {layout!r}")


class Rotary(Function):
    """y = R(t) x for x (..., T, D): each pair (x1, x2) of coordinates at position t turned by the
    angle theta = t f_i, with cos and sin given as tables (T, D/2):
        y1 = x1 cos - x2 sin
        y2 = x2 cos + x1 sin

    Backward, with g = dL/dy split into the same pairs (g1, g2):
      1. the rotation is linear in x, so dL/dx = R(t)^T g;
      2. R^T is the rotation by -theta (cos even, sin odd):
         g_x1 =  g1 cos + g2 sin
         g_x2 = -g1 sin + g2 cos
    The tables are constants (not parameters): no gradient for them. A rotation keeps lengths,
    so ||g_x|| == ||g|| row by row.
    """

    def forward(self, x, cos, sin, layout):
        first, second = pair_slices(layout, x.shape[-1])
        self.cos, self.sin, self.pairs = cos, sin, (first, second)
        x1, x2 = x[..., first], x[..., second]
        y = self.xp.empty_like(x)
        y[..., first] = x1 * cos - x2 * sin
        y[..., second] = x2 * cos + x1 * sin
        return y

    def backward(self, grad):
        (first, second), cos, sin = self.pairs, self.cos, self.sin
        g1, g2 = grad[..., first], grad[..., second]
        g_x = self.xp.empty_like(grad)
        g_x[..., first] = g1 * cos + g2 * sin                        # 2: R(-theta) g
        g_x[..., second] = g2 * cos - g1 * sin
        return g_x
