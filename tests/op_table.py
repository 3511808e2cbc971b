"""The op table (in the spirit of PyTorch's OpInfo): every public Tensor method, every public
``F`` function and the module-level constructors, listed once, with sample inputs.

An entry is ``Op(name, fn, samples)``:
  name     "Tensor.<attr>", "F.<function>" or "tg.<function>" (the attribute it tests; the
           coverage check in tests/test_op_table.py matches names against the library);
  fn       the same code for both libraries. For "Tensor.*" it takes the inputs
           (``lambda x, y: x.maximum(y)``); for "F.*" the functional module first
           (``lambda F, x: F.silu(x)``, F = tinygrad_lm.nn.functional or torch.nn.functional);
           for "tg.*" the top-level module first (``lambda m: m.arange(5)``, m = tinygrad_lm or
           torch). Each sample's keyword arguments are passed on to fn;
  samples  ``S(*inputs, grad=..., note=..., **kwargs)``. NumPy arrays among the inputs become
           tensors of either library (same dtype: float64, int64, bool; non-contiguous arrays stay
           non-contiguous for tinygrad_lm); anything else (numbers, tuples) is passed as is.
           ``grad`` lists the positions of the inputs that are differentiable (default: every
           float array); ``grad=()`` makes a forward-only sample;
  ref      optional: the torch-side function when torch spells it differently;
  values   False for random constructors: only shape and dtype category are compared.

Every comparison is float64 (forward rtol 1e-10, gradients rtol 1e-9).
"""
import math

import numpy as np

inf, nan = math.inf, math.nan
_rng = np.random.default_rng(20240613)

FORWARD_RTOL, FORWARD_ATOL = 1e-10, 1e-12
GRAD_RTOL, GRAD_ATOL = 1e-9, 1e-12


class S:
    """One sample: the inputs (arrays become tensors), the differentiable positions, kwargs for fn."""

    def __init__(self, *inputs, grad=None, note="", **kwargs):
        self.inputs, self.kwargs, self.note = inputs, kwargs, note
        if grad is None:
            grad = tuple(i for i, x in enumerate(inputs) if isinstance(x, np.ndarray) and x.dtype.kind == "f")
        self.grad = tuple(grad)

    def __repr__(self):
        return f"S({self.note})"


class Raw:
    """An array passed to fn as a NumPy array (a copy), not turned into a tensor."""

    def __init__(self, value):
        self.value = value


class Op:
    def __init__(self, name, fn, samples, ref=None, values=True):
        self.name, self.fn, self.samples, self.ref, self.values = name, fn, samples, ref, values
        self.kind, self.attr = name.split(".", 1)

    def __repr__(self):
        return f"Op({self.name})"


# ------------------------------------------------------------------ sample arrays
def r(*shape):
    return _rng.standard_normal(shape)


def pos(*shape):
    return np.asarray(np.abs(_rng.standard_normal(shape)) + 0.5)


def f64(values):
    return np.array(values, dtype=np.float64)


def i64(values):
    return np.array(values, dtype=np.int64)


def b(values):
    return np.array(values, dtype=bool)


def nc(x):
    """The same values, stored transposed (Fortran order): not C-contiguous."""
    out = np.asfortranarray(x)
    assert not out.flags.c_contiguous
    return out


def strided(x):
    """The same values as a step-2 view of a larger buffer (every other column)."""
    buf = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)
    buf[..., ::2] = x
    out = buf[..., ::2]
    assert not out.flags.c_contiguous and not out.flags.f_contiguous
    return out


def no_ties(*shape):
    """Distinct values (so sort/topk indices and their gradients are unambiguous)."""
    n = int(np.prod(shape)) if shape else 1
    return (_rng.permutation(n).astype(np.float64) + _rng.uniform(0.1, 0.9, n)).reshape(shape)


# ------------------------------------------------------------------ helpers shared by both libraries
def setitem(x, v, at):
    """y = copy of x (through an op, so the graph reaches x); y[at] = v; return y."""
    y = x * 1
    y[at] = v
    return y


def setitem_leaf(x, v, at):
    x[at] = v
    return x


def inplace(method):
    """fn for an in-place method: returns (its result, the tensor it changed). With nonleaf=True it
    acts on x * 1, so that x and the other inputs can be differentiable (PyTorch forbids in-place
    ops on leaves that require grad)."""
    def fn(x, *args, nonleaf=False, **kwargs):
        t = x * 1 if nonleaf else x
        out = getattr(t, method)(*args, **kwargs)
        return out, t
    return fn


def _dtype(m, name):
    """{"dtype": m.<name>} (tinygrad_lm.float64 or torch.float64...), or no keyword for None."""
    return {} if name is None else {"dtype": getattr(m, name)}


def causal_attention_ref(F, q, k, v, **kw):
    """causal_attention aligns the causal mask bottom-right (query i sees keys j <= S - T + i): in torch,
    an explicit boolean mask (torch.nn.attention.bias.causal_lower_right)."""
    import torch
    T, S_ = q.shape[-2], k.shape[-2]
    mask = torch.ones(T, S_, dtype=torch.bool).tril(S_ - T)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **kw)


def causal_self_attention_ref(F, qkv, n_head, scale=None, dropout_p=0.0):
    """torch has no fused causal_self_attention: the same attention from torch's own SDPA."""
    B, T, C3 = qkv.shape
    C = C3 // 3
    q, k, v = qkv.split(C, dim=-1)
    heads = [t.reshape(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v)]
    out = F.scaled_dot_product_attention(*heads, is_causal=True, scale=scale, dropout_p=dropout_p)
    return out.transpose(1, 2).reshape(B, T, C)


def swiglu_ref(F, gate, up):
    """torch has no swiglu: what a PyTorch Llama's MLP writes (transformers' LlamaMLP)."""
    return F.silu(gate) * up


def dpo_loss_ref(F, c, r, c_ref, r_ref, beta=0.1):
    """torch has no DPO loss: trl's "sigmoid" loss, -logsigmoid(beta [(c - c_ref) - (r - r_ref)]), mean."""
    return -F.logsigmoid(beta * ((c - c_ref) - (r - r_ref))).mean()


def sequence_log_probs_ref(F, logits, labels, ignore_index=-100):
    """torch has no such function: log_softmax, gather the labels, sum the kept positions (trl's way)."""
    keep = labels != ignore_index
    picked = F.log_softmax(logits, -1).gather(-1, (labels * keep)[..., None])[..., 0]     # ignored: any id
    return (picked * keep).sum(-1)


def rotary_ref(F, x, cos, sin, layout="half"):
    """torch has no rotary function: "half" as transformers' apply_rotary_pos_emb (rotate_half on
    tables repeated to the full width); "interleaved" as Meta's Llama, pairs as complex numbers
    multiplied by exp(i t f) (torch.view_as_complex)."""
    import torch
    if layout == "half":
        cos2, sin2 = torch.cat([cos, cos], dim=-1), torch.cat([sin, sin], dim=-1)
        x1, x2 = x.chunk(2, dim=-1)
        return x * cos2 + torch.cat([-x2, x1], dim=-1) * sin2
    pairs = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2).contiguous())
    return torch.view_as_real(pairs * torch.complex(cos, sin)).flatten(-2)


def rope_table(T, D, base=10000.0):
    angles = np.arange(T)[:, None] * base ** (-np.arange(0, D, 2) / D)
    return np.cos(angles), np.sin(angles)


# ------------------------------------------------------------------ sample families
def unary_samples(edge=None, positive=False, ints=None):
    make = pos if positive else r
    samples = [S(make(3, 4), note="2d"), S(nc(make(4, 3)), note="transposed"),
               S(strided(make(2, 3)), note="strided"), S(make(), note="0d"),
               S(np.zeros((0, 3)), note="empty"), S(make(2, 1, 3), note="3d")]
    if edge is not None:
        samples.append(S(f64(edge), note="edge"))
    if ints is not None:
        samples.append(S(ints, note="int"))
    return samples


def binary_samples(positive_rhs=False, ints=None, edge=None, scalar=2.5):
    rhs = pos if positive_rhs else r
    samples = [
        S(r(3, 4), rhs(3, 4), note="same-shape"),
        S(r(2, 3, 4), rhs(4), note="broadcast-rhs"),
        S(r(4), rhs(2, 3, 4), note="broadcast-lhs"),
        S(r(3, 1), rhs(1, 5), note="broadcast-both"),
        S(r(), rhs(3), note="0d-lhs"),
        S(r(3), rhs(), note="0d-rhs"),
        S(r(), rhs(), note="0d-0d"),
        S(np.zeros((0, 3)), rhs(3), note="empty"),
        S(nc(r(4, 3)), strided(rhs(4, 3)), note="noncontig"),
        S(r(3, 4), scalar, note="python-scalar"),
        S(r(2, 3), rhs(2, 3), grad=(0,), note="grad-lhs-only"),
    ]
    if ints is not None:
        samples.append(S(*ints, note="int-int"))
        samples.append(S(ints[0], 2, note="int-pyint"))
        samples.append(S(r(2, 2), ints[1][:2] if ints[1].ndim else ints[1], note="float-int-promotion"))
    if edge is not None:
        samples.append(S(f64(edge[0]), f64(edge[1]), note="edge"))
    return samples


def reduce_samples(ints=True, empty_all=True):
    """x.op(**kwargs) over several dims."""
    samples = [S(r(3, 4), note="all"), S(r(3, 4), dim=1, note="dim1"),
               S(r(3, 4), dim=0, keepdim=True, note="dim0-keepdim"),
               S(r(2, 3, 4), dim=(0, 2), note="dims-tuple"), S(r(2, 3, 4), dim=-1, note="dim-neg"),
               S(nc(r(4, 3)), dim=0, note="transposed"), S(r(), note="0d"),
               S(np.zeros((0, 3)), dim=1, note="empty-along-other")]
    if empty_all:
        samples.append(S(np.zeros((0, 3)), note="empty-all"))
        samples.append(S(np.zeros((0, 3)), dim=0, note="empty-dim"))
    if ints:
        samples.append(S(i64([[1, -2, 3], [4, 5, -6]]), dim=1, note="int"))
    return samples


def cmp_samples():
    x = r(3, 4)
    y = x.copy()
    y[0] = r(4)
    return [S(x, y, note="same-shape-with-ties"), S(r(2, 3, 4), r(4), note="broadcast"),
            S(r(3, 4), 0.0, note="python-scalar"), S(r(), r(3), note="0d"),
            S(np.zeros((0, 3)), r(3), note="empty"), S(nc(r(4, 3)), strided(r(4, 3)), note="noncontig"),
            S(f64([nan, 1.0, inf, -inf, 0.0]), f64([nan, nan, inf, 1.0, -0.0]), note="nan-inf"),
            S(i64([1, 2, 3]), i64([3, 2, 1]), note="int"),
            S(i64([1, 2, 3]), f64([1.5, 2.0, 2.5]), note="int-float")]


def extreme_samples(method):
    """max/min-style reductions that return a value, or (values, indices) with dim."""
    ties = f64([[2.0, 2.0, 1.0], [0.0, -1.0, 0.0]]) * (1 if method.startswith(("max", "amax")) else -1)
    samples = [S(r(3, 4), note="all"), S(r(3, 4), dim=1, note="dim1"),
               S(r(3, 4), dim=0, keepdim=True, note="dim0-keepdim"), S(r(2, 3, 4), dim=-1, note="dim-neg"),
               S(nc(r(4, 3)), dim=0, note="transposed"), S(r(), note="0d"),
               S(ties, note="ties-all"), S(ties, dim=1, note="ties-dim"),
               S(f64([[1.0, nan, 3.0], [-inf, -inf, 2.0]]), dim=1, grad=(), note="nan-forward"),
               S(f64([[-inf, -inf], [inf, 0.0]]), dim=1, note="inf"),
               S(i64([[1, -2, 3], [4, 5, -6]]), dim=1, note="int"),
               S(np.zeros((0, 3)), dim=1, note="empty-along-other")]
    if method in ("amax", "amin"):
        samples.append(S(r(2, 3, 4), dim=(0, 2), note="dims-tuple"))
    return samples


def arg_samples():
    return [S(r(3, 4), note="all"), S(r(3, 4), dim=1, note="dim1"), S(r(3, 4), dim=0, keepdim=True, note="keepdim"),
            S(f64([[2.0, 2.0, 1.0], [-1.0, -1.0, -1.0]]), dim=1, note="ties-first"),
            S(f64([[1.0, nan, 3.0, nan]]), dim=1, note="nan"), S(nc(r(4, 3)), dim=0, note="transposed"),
            S(i64([[1, -2, 3], [4, 5, -6]]), dim=1, note="int"), S(r(), note="0d")]


def var_samples():
    return [S(r(3, 4), note="all"), S(r(3, 4), dim=1, note="dim1"),
            S(r(3, 4), dim=0, keepdim=True, note="keepdim"), S(r(2, 3, 4), dim=(0, 2), note="dims-tuple"),
            S(r(3, 4), dim=1, correction=0, note="correction0"),
            S(r(3, 4), dim=-1, unbiased=False, note="unbiased-false"),
            S(nc(r(4, 3)), dim=0, note="transposed"),
            S(r(3, 1), dim=1, note="one-element-nan"),
            S(f64([[1.5, 1.5, 1.5], [0.0, 1.0, 2.0]]), dim=1, note="constant-row"),
            S(f64([[1.0, inf, 2.0]]), dim=1, grad=(), note="inf-forward")]


def softmax_samples():
    return [S(r(3, 5), dim=-1, note="dim-1"), S(r(4, 3), dim=0, note="dim0"), S(r(2, 3, 4), dim=1, note="3d"),
            S(nc(r(5, 3)), dim=-1, note="transposed"),
            S(f64([[-inf, 0.0, 1.0], [1000.0, 1001.0, -1e4]]), dim=-1, note="inf-large"),
            S(np.zeros((0, 3)), dim=-1, note="empty"), S(r(4), dim=0, note="1d")]


# ------------------------------------------------------------------ the table
OPS = [
    # ---- arithmetic dunders and their named aliases
    Op("Tensor.__add__", lambda x, y: x + y, binary_samples(
        ints=(i64([[1, 2], [3, 4]]), i64([5, -6])), edge=([inf, -inf, nan, 1.0], [inf, inf, 1.0, -inf]))
        + [S(b([True, False, True]), b([True, True, False]), note="bool-bool"),
           S(b([True, False]), i64([2, 3]), note="bool-int"),
           S(i64([1, 2]), r(2), note="int-lhs-float-rhs"),
           S(i64([1, 2]), f64(0.5), note="int-tensor-float-0d-tensor"),
           S(b([True, False]), 0.5, note="bool-pyfloat")]),
    Op("Tensor.add", lambda x, y: x.add(y), binary_samples(ints=(i64([[1, 2], [3, 4]]), i64([5, -6])))),
    Op("Tensor.__radd__", lambda x, y: x.__radd__(y),
       [S(r(3, 4), 2.5, note="scalar"), S(r(3), r(2, 3), note="tensor"), S(i64([1, 2]), 3, note="int"),
        S(r(), 1.0, note="0d")]),
    Op("Tensor.__sub__", lambda x, y: x - y, binary_samples(
        ints=(i64([[1, 2], [3, 4]]), i64([5, -6])), edge=([inf, inf, nan, 0.0], [inf, -inf, 1.0, -0.0]))),
    Op("Tensor.sub", lambda x, y: x.sub(y), binary_samples(ints=(i64([[1, 2], [3, 4]]), i64([5, -6])))),
    Op("Tensor.__rsub__", lambda x, y: x.__rsub__(y),
       [S(r(3, 4), 2.5, note="scalar"), S(r(3), r(2, 3), note="tensor"), S(i64([1, 2]), 3, note="int"),
        S(r(), 1.0, note="0d")]),
    Op("Tensor.__mul__", lambda x, y: x * y, binary_samples(
        ints=(i64([[1, 2], [3, 4]]), i64([5, -6])), edge=([inf, 0.0, nan, -inf], [0.0, 1.0, 2.0, -2.0]))
        + [S(b([True, False, True]), b([True, True, False]), note="bool-bool")]),
    Op("Tensor.mul", lambda x, y: x.mul(y), binary_samples(ints=(i64([[1, 2], [3, 4]]), i64([5, -6])))),
    Op("Tensor.__rmul__", lambda x, y: x.__rmul__(y),
       [S(r(3, 4), 2.5, note="scalar"), S(r(3), r(2, 3), note="tensor"), S(i64([1, 2]), 3, note="int"),
        S(r(), -1.0, note="0d")]),
    Op("Tensor.__truediv__", lambda x, y: x / y, binary_samples(
        positive_rhs=True, ints=(i64([[7, -3], [4, 1]]), i64([2, 4])),
        edge=([1.0, -1.0, 0.0, inf, 1.0, nan], [0.0, 0.0, 0.0, 2.0, inf, 1.0]))
        + [S(i64([1, 0, -1]), i64([0, 0, 0]), note="int-by-zero")]),
    Op("Tensor.div", lambda x, y: x.div(y), binary_samples(positive_rhs=True, ints=(i64([[7, -3], [4, 1]]), i64([2, 4])))),
    Op("Tensor.__rtruediv__", lambda x, y: x.__rtruediv__(y),
       [S(pos(3, 4), 2.5, note="scalar"), S(pos(3), r(2, 3), note="tensor"), S(i64([2, 4]), 1, note="int"),
        S(pos(), 1.0, note="0d"), S(f64([0.0, -0.0, inf]), 1.0, note="edge")]),
    Op("Tensor.__neg__", lambda x: -x, unary_samples(edge=[inf, -inf, nan, 0.0], ints=i64([-3, 0, 2]))),
    Op("Tensor.neg", lambda x: x.neg(), unary_samples(edge=[inf, -inf, nan, 0.0], ints=i64([-3, 0, 2]))),
    Op("Tensor.__pow__", lambda x, y: x ** y, [
        S(r(3, 4), 2, note="square"), S(r(3, 4), 3.0, note="cube"), S(pos(3, 4), 0.5, note="sqrt"),
        S(pos(2, 3), -1.5, note="negative-exponent"), S(nc(r(4, 3)), 2, note="transposed"), S(r(), 2, note="0d"),
        S(np.zeros((0, 3)), 2, note="empty"),
        S(f64([0.0, 1.0, -2.0]), 0, note="zero-exponent-at-zero"),
        S(f64([0.0, 4.0, -1.0]), 0.5, note="frac-at-zero-and-negative"),
        S(f64([0.0, 2.0, -3.0]), 2, note="square-at-zero"),
        S(i64([[1, -2], [3, 0]]), 2, note="int"),
        # Tensor ** Tensor
        S(pos(3, 4), r(3, 4), note="tensor-exponent"), S(pos(2, 3), r(3), note="tensor-exponent-broadcast"),
        S(f64([0.0, 0.0, 2.0, -2.0]), f64([2.0, 0.0, 3.0, 2.0]), note="tensor-exponent-edge"),
        S(pos(3), r(), note="tensor-exponent-0d"),
        S(i64([2, -3, 0]), i64([3, 2, 0]), note="int-int-tensors"),
    ]),
    Op("Tensor.pow", lambda x, y: x.pow(y), [S(r(3, 4), 2, note="square"), S(pos(3, 4), 0.5, note="sqrt"),
                                             S(pos(3, 4), r(3, 4), note="tensor-exponent")]),
    Op("Tensor.__rpow__", lambda x, y: x.__rpow__(y), [
        S(r(3, 4), 2.0, note="base-2"), S(r(), 0.5, note="0d"), S(f64([-inf, 0.0, inf]), 2.0, note="edge"),
        S(i64([0, 1, 3]), 2, note="int")]),
    Op("Tensor.__matmul__", lambda x, y: x @ y, [
        S(r(3, 4), r(4, 5), note="2d"), S(r(2, 3, 4), r(4, 2), note="batched"),
        S(r(2, 1, 3, 4), r(5, 4, 2), note="broadcast-batch"), S(r(4), r(4, 3), note="1d-2d"),
        S(r(3, 4), r(4), note="2d-1d"), S(r(4), r(4), note="1d-1d"), S(r(3, 0), r(0, 2), note="empty-inner"),
        S(nc(r(4, 3)), strided(r(3, 2)), note="noncontig"), S(i64([[1, 2], [3, 4]]), i64([[5], [-6]]), note="int")]),
    Op("Tensor.matmul", lambda x, y: x.matmul(y), [S(r(3, 4), r(4, 5), note="2d"), S(r(4), r(2, 4, 3), note="1d-3d")]),
    Op("Tensor.__rmatmul__", lambda x, y: x.__rmatmul__(y), [S(r(4, 5), r(3, 4), note="2d"), S(r(4), r(4), note="1d")]),

    # ---- comparisons and logic (bool results, no gradient)
    Op("Tensor.__lt__", lambda x, y: x < y, cmp_samples()),
    Op("Tensor.__le__", lambda x, y: x <= y, cmp_samples()),
    Op("Tensor.__gt__", lambda x, y: x > y, cmp_samples()),
    Op("Tensor.__ge__", lambda x, y: x >= y, cmp_samples()),
    Op("Tensor.__eq__", lambda x, y: x == y, cmp_samples()),
    Op("Tensor.__ne__", lambda x, y: x != y, cmp_samples()),
    Op("Tensor.eq", lambda x, y: x.eq(y), cmp_samples()),
    Op("Tensor.ne", lambda x, y: x.ne(y), cmp_samples()),
    Op("Tensor.lt", lambda x, y: x.lt(y), cmp_samples()),
    Op("Tensor.le", lambda x, y: x.le(y), cmp_samples()),
    Op("Tensor.gt", lambda x, y: x.gt(y), cmp_samples()),
    Op("Tensor.ge", lambda x, y: x.ge(y), cmp_samples()),
    Op("Tensor.logical_not", lambda x: x.logical_not(), [
        S(b([[True, False], [False, True]]), note="bool"), S(f64([0.0, -0.0, 1.5, nan, inf]), note="float"),
        S(i64([0, 5, -1]), note="int"), S(b(True), note="0d"), S(np.zeros((0, 2), bool), note="empty")]),
    Op("Tensor.any", lambda x, **k: x.any(**k), [
        S(b([[True, False], [False, False]]), note="bool"), S(f64([0.0, -0.0, nan]), note="float, NaN is true"),
        S(i64([0, 0, 3]), note="int"), S(b(False), note="0d"), S(np.zeros((0, 2), bool), note="empty"),
        S(b([[True, False], [False, False]]), dim=1, note="dim1"), S(i64([[0, 2], [0, 0]]), dim=0, note="int-dim0")]),
    Op("Tensor.all", lambda x, **k: x.all(**k), [
        S(b([[True, False], [True, True]]), note="bool"), S(f64([1.0, -2.0, nan]), note="float"),
        S(i64([1, 0, 3]), note="int"), S(b(True), note="0d"), S(np.zeros((0, 2), bool), note="empty"),
        S(b([[True, False], [True, True]]), dim=0, keepdim=True, note="dim0-keepdim"),
        S(i64([[1, 2], [0, 3]]), dim=1, note="int-dim1")]),
    Op("Tensor.__invert__", lambda x: ~x, [S(b([[True, False], [False, True]]), note="bool"),
                                           S(i64([0, 5, -1]), note="int"), S(b(True), note="0d")]),
    Op("Tensor.__and__", lambda x, y: x & y, [S(b([True, False, True]), b([True, True, False]), note="bool"),
                                              S(b([[True], [False]]), b([True, False]), note="broadcast"),
                                              S(i64([12, 5]), i64([10, 3]), note="int")]),
    Op("Tensor.__or__", lambda x, y: x | y, [S(b([True, False, False]), b([True, True, False]), note="bool"),
                                             S(b([[True], [False]]), b([True, False]), note="broadcast"),
                                             S(i64([12, 5]), i64([10, 3]), note="int")]),

    # ---- elementwise
    Op("Tensor.exp", lambda x: x.exp(), unary_samples(edge=[-inf, inf, 0.0, nan, -1000.0, 700.0], ints=i64([0, 0]))),
    Op("Tensor.log", lambda x: x.log(), unary_samples(positive=True, edge=[0.0, -1.0, inf, nan, 1e-300, 1.0],
                                                      ints=i64([1, 1]))),
    Op("Tensor.sqrt", lambda x: x.sqrt(), unary_samples(positive=True, edge=[0.0, -1.0, inf, nan, 4.0],
                                                        ints=i64([0, 1, 4, 9]))),
    Op("Tensor.rsqrt", lambda x: x.rsqrt(), unary_samples(positive=True, edge=[0.0, -1.0, inf, nan, 0.25],
                                                          ints=i64([1, 4]))),
    Op("Tensor.tanh", lambda x: x.tanh(), unary_samples(edge=[-inf, inf, 0.0, nan, 20.0, -20.0], ints=i64([0]))),
    Op("Tensor.sigmoid", lambda x: x.sigmoid(), unary_samples(edge=[-inf, inf, 0.0, nan, 40.0, -40.0, -800.0],
                                                              ints=i64([0]))),
    Op("Tensor.relu", lambda x: x.relu(), unary_samples(edge=[-1.0, 0.0, 2.0, -inf, inf, nan], ints=i64([-1, 0, 3]))),
    Op("Tensor.abs", lambda x: x.abs(), unary_samples(edge=[-2.0, 0.0, -0.0, 3.0, -inf, inf, nan],
                                                      ints=i64([-3, 0, 2]))),
    Op("Tensor.__abs__", lambda x: abs(x), unary_samples(edge=[-2.0, 0.0, 3.0, -inf], ints=i64([-3, 0, 2]))),
    Op("Tensor.clamp", lambda x, *a, **k: x.clamp(*a, **k), [
        S(r(3, 4), min=-0.5, max=0.5, note="both"), S(r(3, 4), min=0.0, note="min-only"),
        S(r(3, 4), max=0.0, note="max-only"), S(nc(r(4, 3)), min=-0.3, max=0.2, note="transposed"),
        S(r(), min=-0.1, max=0.1, note="0d"), S(np.zeros((0, 2)), min=0.0, max=1.0, note="empty"),
        S(f64([-0.5, 0.5, -1.0, 1.0, 0.0]), min=-0.5, max=0.5, note="at-bounds"),
        S(f64([-inf, inf, nan]), min=-1.0, max=1.0, note="inf-nan"),
        S(i64([-5, 0, 5]), min=-2, max=3, note="int"),
        S(r(3, 4), np.full(4, -0.3), np.full(4, 0.4), note="tensor-bounds")]),
    Op("Tensor.clip", lambda x, **k: x.clip(**k), [
        S(r(3, 4), min=-0.5, max=0.5, note="both"), S(r(3, 4), min=0.0, note="min-only"),
        S(f64([-0.5, 0.5, 2.0]), min=-0.5, max=0.5, note="at-bounds")]),
    Op("Tensor.maximum", lambda x, y: x.maximum(y), binary_samples(scalar=None)[:9] + [
        S(f64([1.0, 2.0, 3.0]), f64([1.0, 0.0, 3.0]), note="ties"), S(i64([1, 5]), i64([3, 2]), note="int"),
        S(f64([1.0, nan, -inf, 0.0]), f64([nan, 1.0, inf, -0.0]), note="nan-inf")]),
    Op("Tensor.minimum", lambda x, y: x.minimum(y), binary_samples(scalar=None)[:9] + [
        S(f64([1.0, 2.0, 3.0]), f64([1.0, 0.0, 3.0]), note="ties"), S(i64([1, 5]), i64([3, 2]), note="int"),
        S(f64([1.0, nan, inf]), f64([nan, 1.0, 0.0]), note="nan")]),
    Op("Tensor.softmax", lambda x, **k: x.softmax(**k), softmax_samples()),
    Op("Tensor.log_softmax", lambda x, **k: x.log_softmax(**k), softmax_samples()),

    # ---- reductions
    Op("Tensor.sum", lambda x, **k: x.sum(**k), reduce_samples() + [
        S(f64([[1.0, inf], [nan, 2.0]]), dim=1, note="inf-nan"), S(b([[True, False], [True, True]]), dim=1, note="bool")]),
    Op("Tensor.mean", lambda x, **k: x.mean(**k), reduce_samples(ints=False) + [
        S(f64([[1.0, inf], [-inf, inf]]), dim=1, grad=(), note="inf-forward")]),
    Op("Tensor.amax", lambda x, **k: x.amax(**k), extreme_samples("amax")),
    Op("Tensor.amin", lambda x, **k: x.amin(**k), extreme_samples("amin")),
    Op("Tensor.max", lambda x, *a, **k: x.max(*a, **k), extreme_samples("max") + [
        S(r(3, 4), r(4), note="other-tensor-is-maximum"), S(f64([1.0, 2.0]), f64([1.0, 3.0]), note="other-ties")]),
    Op("Tensor.min", lambda x, *a, **k: x.min(*a, **k), extreme_samples("min") + [
        S(r(3, 4), r(4), note="other-tensor-is-minimum"), S(f64([1.0, 2.0]), f64([1.0, 3.0]), note="other-ties")]),
    Op("Tensor.argmax", lambda x, **k: x.argmax(**k), arg_samples()),
    Op("Tensor.argmin", lambda x, **k: x.argmin(**k), arg_samples()),
    Op("Tensor.var", lambda x, **k: x.var(**k), var_samples()),
    Op("Tensor.std", lambda x, **k: x.std(**k), var_samples()),
    Op("Tensor.logsumexp", lambda x, **k: x.logsumexp(**k), [
        S(r(3, 4), dim=1, note="dim1"), S(r(3, 4), dim=0, keepdim=True, note="keepdim"),
        S(r(2, 3, 4), dim=(0, 2), note="dims-tuple"), S(r(2, 3, 4), dim=-1, note="dim-neg"),
        S(nc(r(4, 3)), dim=0, note="transposed"), S(r(), dim=0, note="0d"),
        S(f64([[1000.0, 1000.0, -1000.0], [-inf, 0.0, 1.0]]), dim=1, note="large-and-minus-inf"),
        S(f64([[-inf, -inf], [inf, 0.0]]), dim=1, grad=(), note="all-minus-inf-and-plus-inf-forward"),
        S(np.zeros((2, 0)), dim=1, grad=(), note="empty-reduced")]),
    Op("Tensor.cumsum", lambda x, **k: x.cumsum(**k), [
        S(r(3, 4), dim=1, note="dim1"), S(r(3, 4), dim=0, note="dim0"), S(r(2, 3, 4), dim=-1, note="dim-neg"),
        S(nc(r(4, 3)), dim=0, note="transposed"), S(r(), dim=0, note="0d"), S(np.zeros((0, 3)), dim=1, note="empty"),
        S(f64([1.0, inf, -inf, 2.0]), dim=0, note="inf"),
        S(i64([[1, 2, 3], [4, 5, 6]]), dim=1, note="int"), S(b([True, False, True]), dim=0, note="bool")]),

    # ---- shapes and indexing
    Op("Tensor.reshape", lambda x, *s: x.reshape(*s), [
        S(r(3, 4), 4, 3, note="2d"), S(r(3, 4), (2, -1), note="tuple-infer"), S(r(3, 4), -1, note="flat"),
        S(r(), 1, note="0d-to-1"), S(r(1, 1), (), note="to-0d"), S(np.zeros((0, 3)), 3, 0, note="empty"),
        S(nc(r(4, 3)), 12, note="transposed"), S(i64([[1, 2], [3, 4]]), 4, note="int")]),
    Op("Tensor.view", lambda x, *s: x.view(*s), [S(r(3, 4), 4, 3, note="2d"), S(r(2, 3, 4), -1, 4, note="infer")]),
    Op("Tensor.permute", lambda x, *d: x.permute(*d), [
        S(r(2, 3, 4), 2, 0, 1, note="3d"), S(r(2, 3, 4), (1, 2, 0), note="tuple"), S(r(2, 3), -1, 0, note="neg"),
        S(nc(r(4, 3)), 1, 0, note="transposed"), S(np.zeros((0, 3)), 1, 0, note="empty"), S(r(), (), note="0d")]),
    Op("Tensor.transpose", lambda x, d0, d1: x.transpose(d0, d1), [
        S(r(3, 4), 0, 1, note="2d"), S(r(2, 3, 4), -1, 0, note="neg"), S(r(2, 3), 1, 1, note="same"),
        S(nc(r(4, 3)), 0, 1, note="transposed")]),
    Op("Tensor.T", lambda x: x.T, [S(r(3, 4), note="2d"), S(r(4), note="1d"), S(nc(r(4, 3)), note="transposed")]),
    Op("Tensor.unsqueeze", lambda x, d: x.unsqueeze(d), [
        S(r(3, 4), 0, note="front"), S(r(3, 4), -1, note="back"), S(r(3, 4), 1, note="middle"),
        S(r(), 0, note="0d"), S(np.zeros((0, 3)), 1, note="empty")]),
    Op("Tensor.squeeze", lambda x, *d: x.squeeze(*d), [
        S(r(1, 3, 1), note="all"), S(r(1, 3, 1), 0, note="dim0"), S(r(1, 3, 1), -1, note="dim-neg"),
        S(r(2, 3), 1, note="not-1"), S(r(1), note="to-0d"), S(r(), note="0d"), S(r(), 0, note="0d-dim")]),
    Op("Tensor.flatten", lambda x, *a: x.flatten(*a), [
        S(r(2, 3, 4), note="all"), S(r(2, 3, 4), 1, note="start1"), S(r(2, 3, 4, 2), 1, 2, note="middle"),
        S(r(), note="0d"), S(np.zeros((0, 3)), note="empty"), S(nc(r(4, 3)), note="transposed")]),
    Op("Tensor.expand", lambda x, *s: x.expand(*s), [
        S(r(3, 1), 3, 4, note="2d"), S(r(4), 2, 3, 4, note="new-dims"), S(r(3, 1), -1, 5, note="minus-one"),
        S(r(), 2, 2, note="0d"), S(r(1, 3), (2, 3), note="tuple"), S(r(3, 1), 3, 0, note="to-empty"),
        S(nc(r(2, 3)), 4, 2, 3, note="transposed"), S(i64([[1], [2]]), 2, 3, note="int")]),
    Op("Tensor.expand_as", lambda x, y: x.expand_as(y), [
        S(r(3, 1), r(3, 4), grad=(0,), note="2d"), S(r(4), r(2, 3, 4), grad=(0,), note="new-dims"),
        S(r(), np.zeros((2, 2), bool), note="0d-like-bool")]),
    Op("Tensor.repeat", lambda x, *s: x.repeat(*s), [
        S(r(2, 3), 2, 1, note="2d"), S(r(2, 3), 1, 2, 2, note="new-dim"), S(r(), 3, note="0d"),
        S(r(3), (2, 2), note="tuple"), S(np.zeros((0, 2)), 2, 2, note="empty"), S(nc(r(3, 2)), 2, 3, note="transposed"),
        S(i64([1, 2]), 3, note="int")]),
    Op("Tensor.flip", lambda x, *d: x.flip(*d), [
        S(r(3, 4), 0, note="dim0"), S(r(3, 4), (0, 1), note="both"), S(r(2, 3, 4), -1, note="neg"),
        S(nc(r(4, 3)), 1, note="transposed"), S(np.zeros((0, 3)), 0, note="empty"), S(i64([1, 2, 3]), 0, note="int")]),
    Op("Tensor.tril", lambda x, **k: x.tril(**k), [
        S(r(4, 4), note="square"), S(r(3, 5), note="wide"), S(r(5, 3), diagonal=1, note="tall-diag1"),
        S(r(2, 3, 3), diagonal=-1, note="batched-diag-1"), S(nc(r(4, 3)), note="transposed"),
        S(i64([[1, 2], [3, 4]]), note="int"), S(b([[True, True], [True, True]]), note="bool")]),
    Op("Tensor.triu", lambda x, **k: x.triu(**k), [
        S(r(4, 4), note="square"), S(r(3, 5), note="wide"), S(r(5, 3), diagonal=1, note="tall-diag1"),
        S(r(2, 3, 3), diagonal=-1, note="batched-diag-1"), S(nc(r(4, 3)), note="transposed"),
        S(i64([[1, 2], [3, 4]]), note="int"), S(b([[True, True], [True, True]]), note="bool")]),
    Op("Tensor.__getitem__", lambda x, *ix, at: x[at(*ix)], [
        S(r(3, 5), at=lambda: (slice(1, None), slice(None, None, 2)), note="slices"),
        S(r(3, 5), at=lambda: 1, note="int"), S(r(3, 5), at=lambda: (-1, 2), note="to-0d"),
        S(r(3, 5), at=lambda: (None, slice(None), 1), note="newaxis"),
        S(r(2, 3, 4), at=lambda: (Ellipsis, 0), note="ellipsis"),
        S(r(3, 4), i64([0, 2, 0]), at=lambda i: i, note="int-tensor-repeats"),
        S(r(3, 4), i64([0, 1, 1]), i64([2, 0, 2]), at=lambda i, j: (i, j), note="pairs"),
        S(r(3, 4), i64([[0, 1], [2, 2]]), at=lambda i: (slice(None), i), note="2d-index-on-dim1"),
        S(r(3, 4), b([True, False, True]), at=lambda m: m, note="bool-mask-rows"),
        S(r(3, 4), b([[True, False, True, False]] * 3), at=lambda m: m, note="bool-mask-full"),
        S(r(3, 4), at=lambda: (slice(None), [0, 2]), note="list"),
        S(r(3, 4), i64([-1, 0]), at=lambda i: i, note="negative-index"),
        S(r(), at=lambda: (), note="0d"), S(r(3, 4), at=lambda: slice(2, 2), note="empty-slice"),
        S(nc(r(4, 3)), at=lambda: (slice(None), 1), note="transposed"),
        S(i64([[1, 2], [3, 4]]), at=lambda: (1,), note="int-dtype")]),
    Op("Tensor.__setitem__", lambda x, v, at, leaf=False: (setitem_leaf if leaf else setitem)(x, v, at), [
        S(r(3, 4), r(3), at=(slice(None), 1), note="column"),
        S(r(3, 4), r(4), at=0, note="row"),
        S(r(3, 4), 5.0, at=(slice(1, None), slice(None, None, 2)), note="scalar-into-slice"),
        S(r(3, 4), r(), at=(1, 2), note="0d-value"),
        S(r(3, 4), r(1, 4), at=slice(0, 2), note="broadcast-value"),
        S(r(3, 4), 0.0, at=b([True, False, True]), note="bool-mask"),
        S(r(3, 4), r(2, 4), at=i64([2, 0]), note="int-array"),
        S(r(3, 4), r(4), at=0, leaf=True, grad=(), note="on-leaf-forward"),
        S(i64([[1, 2], [3, 4]]), 7, at=(0, 1), leaf=True, note="int")]),
    Op("Tensor.split", lambda x, *a, **k: x.split(*a, **k), [
        S(r(5, 2), 2, note="size"), S(r(2, 5), [1, 3, 1], dim=1, note="sections"), S(r(4, 3), 4, note="one-piece"),
        S(r(2, 6), 3, dim=-1, note="dim-neg"), S(nc(r(4, 3)), 2, note="transposed")]),
    Op("Tensor.chunk", lambda x, *a, **k: x.chunk(*a, **k), [
        S(r(6, 2), 3, note="even"), S(r(5, 2), 2, note="uneven"), S(r(2, 5), 3, dim=1, note="dim1"),
        S(r(2, 3), 5, dim=1, note="more-chunks-than-size")]),
    Op("Tensor.masked_fill", lambda x, m, v: x.masked_fill(m, v), [
        S(r(3, 4), b(np.arange(12).reshape(3, 4) % 3 == 0), 0.0, note="same-shape"),
        S(r(2, 4, 4), b(np.triu(np.ones((4, 4)), 1)), -inf, note="broadcast-mask-minus-inf"),
        S(r(3, 4), b([[True], [False], [True]]), 2.5, note="broadcast-column"),
        S(r(), b(True), 1.0, note="0d"), S(nc(r(4, 3)), b([True, False, False]), nan, note="transposed-nan"),
        S(i64([1, 2, 3]), b([True, False, True]), 9, note="int"),
        S(r(3, 4), b([True, False, False, True]), r(), note="0d-tensor-value-grad")]),
    Op("Tensor.where", lambda x, c, y: x.where(c, y), [
        S(r(3, 4), b(np.arange(12).reshape(3, 4) % 3 == 0), r(3, 4), grad=(0, 2), note="same-shape"),
        S(r(3, 1), b([True, False, True, False]), r(), grad=(0, 2), note="broadcast"),
        S(r(3), b([True, False, True]), 0.0, grad=(0,), note="python-scalar"),
        S(i64([1, 2]), b([False, True]), i64([7, 8]), note="int")]),
    Op("Tensor.gather", lambda x, d, i: x.gather(d, i), [
        S(r(3, 4), 1, i64([[0, 0], [3, 1], [2, 2]]), note="dim1-repeats"),
        S(r(3, 4), 0, i64([[2, 1, 0, 0]]), note="dim0"),
        S(r(3, 4), -1, i64([[1], [0]]), note="smaller-index"),
        S(r(2, 3, 4), 2, i64(np.zeros((2, 3, 1), int)), note="3d"),
        S(nc(r(4, 3)), 1, i64([[2], [0], [1], [1]]), note="transposed"),
        S(i64([[1, 2], [3, 4]]), 1, i64([[1], [0]]), note="int")]),
    Op("Tensor.topk", lambda x, k, **kw: x.topk(k, **kw), [
        S(no_ties(3, 5), 2, note="last-dim"), S(no_ties(3, 5), 2, largest=False, note="smallest"),
        S(no_ties(4, 3), 3, dim=0, note="dim0"), S(nc(no_ties(4, 3)), 1, note="transposed"),
        S(no_ties(5), 0, note="k0"), S(f64([1.0, inf, -inf, 2.0]), 2, note="inf"),
        S(i64([[3, 1, 2]]), 2, note="int")]),
    Op("Tensor.sort", lambda x, **kw: x.sort(**kw), [
        S(no_ties(3, 5), note="last-dim"), S(no_ties(3, 5), descending=True, note="descending"),
        S(no_ties(4, 3), dim=0, note="dim0"), S(nc(no_ties(4, 3)), note="transposed"),
        S(f64([2.0, -inf, inf, 0.0]), note="inf"), S(np.zeros((0, 3)), note="empty"),
        S(f64([2.0, 1.0, 2.0, 1.0, 3.0]), stable=True, note="stable-ties"),
        S(f64([2.0, 1.0, 2.0, 1.0, 3.0]), stable=True, descending=True, note="stable-ties-descending"),
        S(i64([[3, 1, 2]]), note="int"), S(no_ties(), note="0d")]),

    # ---- copies and casts
    Op("Tensor.clone", lambda x: x.clone(), [S(r(3, 4), note="2d"), S(nc(r(4, 3)), note="transposed"),
                                             S(r(), note="0d"), S(i64([1, 2]), note="int"), S(b([True]), note="bool")]),
    Op("Tensor.contiguous", lambda x: x.contiguous(), [S(r(3, 4), note="2d"), S(nc(r(4, 3)), note="transposed"),
                                                       S(strided(r(2, 3)), note="strided")]),
    Op("Tensor.float", lambda x: x.float(), [S(r(3, 4), note="from-float64"), S(i64([1, -2]), note="from-int"),
                                             S(b([True, False]), note="from-bool")]),
    Op("Tensor.double", lambda x: x.double(), [S(r(3, 4), note="from-float64"), S(i64([1, -2]), note="from-int"),
                                               S(b([True, False]), note="from-bool")]),
    Op("Tensor.half", lambda x: x.half(), [S(r(3, 4), note="from-float64"), S(i64([1, -2]), note="from-int"),
                                           S(f64([1e5, -1e5, 1e-8, 0.1]), note="overflow-underflow")]),
    Op("Tensor.type_as", lambda x, y: x.type_as(y), [
        S(r(3), np.zeros(2, np.float32), grad=(0,), note="to-float32"), S(f64([1.7, -1.2]), i64([0]), note="to-int"),
        S(i64([1, 2]), r(2), grad=(), note="int-to-float64"), S(r(3), r(2), grad=(0,), note="same-dtype")]),
    Op("Tensor.long", lambda x: x.long(), [S(f64([1.7, -1.7, 0.0, 3.0]), note="from-float-truncates"),
                                           S(b([True, False]), note="from-bool")]),
    Op("Tensor.int", lambda x: x.int(), [S(f64([1.7, -1.7, 0.0]), note="from-float-truncates"),
                                         S(i64([5, -6]), note="from-long")]),
    Op("Tensor.bool", lambda x: x.bool(), [S(f64([0.0, 1.5, -0.0, nan]), note="from-float"),
                                           S(i64([0, 2, -1]), note="from-int")]),

    # ---- in place
    Op("Tensor.add_", inplace("add_"), [S(r(3, 4), r(3, 4), grad=(), note="leaf"),
                                        S(r(3, 4), r(4), nonleaf=True, note="broadcast-nonleaf-grad"),
                                        S(i64([1, 2]), i64([3, 4]), note="int")]),
    Op("Tensor.sub_", inplace("sub_"), [S(r(3, 4), r(3, 4), grad=(), note="leaf"),
                                        S(r(3, 4), r(4), nonleaf=True, note="broadcast-nonleaf-grad"),
                                        S(r(3), 1.5, grad=(), note="scalar")]),
    Op("Tensor.mul_", inplace("mul_"), [S(r(3, 4), r(3, 4), grad=(), note="leaf"),
                                        S(r(3, 4), r(4), nonleaf=True, note="broadcast-nonleaf-grad"),
                                        S(r(3), 0.5, grad=(), note="scalar")]),
    Op("Tensor.div_", inplace("div_"), [S(r(3, 4), pos(3, 4), grad=(), note="leaf"),
                                        S(r(3, 4), pos(4), nonleaf=True, note="broadcast-nonleaf-grad"),
                                        S(r(3), 4.0, grad=(), note="scalar")]),
    Op("Tensor.zero_", inplace("zero_"), [S(r(3, 4), grad=(), note="leaf"), S(r(3, 4), nonleaf=True, note="nonleaf-grad"),
                                          S(i64([1, 2]), note="int")]),
    Op("Tensor.clamp_", inplace("clamp_"), [S(r(3, 4), -0.5, 0.5, grad=(), note="leaf"),
                                            S(r(3, 4), -0.5, 0.5, nonleaf=True, note="nonleaf-grad"),
                                            S(r(3, 4), min=0.0, grad=(), note="min-only"),
                                            S(f64([-0.5, 0.5, 2.0]), -0.5, 0.5, nonleaf=True, note="at-bounds")]),
    Op("Tensor.masked_fill_", inplace("masked_fill_"), [
        S(r(3, 4), b(np.arange(12).reshape(3, 4) % 3 == 0), 0.0, grad=(), note="leaf"),
        S(r(2, 3), b([True, False, True]), -inf, nonleaf=True, note="broadcast-nonleaf-grad")]),
    Op("Tensor.copy_", inplace("copy_"), [S(r(3, 4), r(3, 4), grad=(), note="leaf"),
                                          S(r(3, 4), r(4), nonleaf=True, note="broadcast-nonleaf-grad"),
                                          S(r(2), i64([3, 4]), grad=(), note="int-into-float")]),
    Op("Tensor.fill_", inplace("fill_"), [S(r(3, 4), 1.5, grad=(), note="leaf"),
                                          S(r(3, 4), 2.0, nonleaf=True, note="nonleaf-grad"),
                                          S(r(3, 4), r(), nonleaf=True, note="0d-tensor-value-grad")]),

    # ---- module-level functions and constructors (tinygrad_lm.X vs torch.X)
    Op("tg.tensor", lambda m, data: m.tensor(data), [
        S([[1.0, 2.0], [3.0, 4.0]], note="floats"), S([1, 2, 3], note="ints"), S([True, False], note="bools"),
        S(2.5, note="0d-float"), S(7, note="0d-int"), S(Raw(f64([[1.0, 2.0]])), note="float64-array"),
        S(Raw(i64([1, 2])), note="int64-array")]),
    Op("tg.cat", lambda m, *xs, dim=0: m.cat(list(xs), dim=dim), [
        S(r(2, 3), r(2, 4), dim=1, note="dim1"), S(r(1, 3), r(2, 3), r(3, 3), note="three"),
        S(r(2, 3), np.zeros((0, 3)), note="empty-piece"), S(r(2, 3), r(2, 2), dim=-1, note="dim-neg"),
        S(nc(r(3, 2)), r(1, 2), note="transposed"), S(i64([1, 2]), i64([3]), note="int")]),
    Op("tg.stack", lambda m, *xs, dim=0: m.stack(list(xs), dim=dim), [
        S(r(2, 3), r(2, 3), dim=1, note="dim1"), S(r(3), r(3), r(3), note="three"),
        S(r(2, 3), r(2, 3), dim=-1, note="dim-neg"), S(r(), r(), note="0d"),
        S(i64([1, 2]), i64([3, 4]), note="int")]),
    Op("tg.where", lambda m, c, x, y: m.where(c, x, y), [
        S(b(np.arange(12).reshape(3, 4) % 3 == 0), r(3, 4), r(4), note="broadcast"),
        S(b([[True], [False]]), r(1, 3), r(), note="broadcast-0d"),
        S(b([True, False]), r(2), 0.0, note="python-scalar"),
        S(b([True, False]), f64([inf, 1.0]), f64([1.0, nan]), note="inf-nan"),
        S(b([True, False]), i64([1, 2]), i64([3, 4]), note="int"),
        S(b([True, False]), 1.0, r(2), note="python-scalar-lhs")]),
    Op("tg.arange", lambda m, *a, dt=None: m.arange(*a, **_dtype(m, dt)), [
        S(5, note="stop"), S(1, 7, 2, note="start-stop-step"), S(0.0, 1.0, 0.25, note="float"), S(0, note="empty"),
        S(5, 0, -2, note="negative-step"), S(4, dt="float64", note="dtype-float64")]),
    Op("tg.zeros", lambda m, *s, dt=None: m.zeros(*s, **_dtype(m, dt)), [
        S(2, 3, note="varargs"), S((2, 3), note="tuple"), S(0, 3, note="empty"), S((), note="0d"),
        S(2, dt="float64", note="dtype-float64"), S(2, dt="int64", note="dtype-int64"), S(2, dt="bool", note="dtype-bool")]),
    Op("tg.ones", lambda m, *s, dt=None: m.ones(*s, **_dtype(m, dt)), [
        S(2, 3, note="varargs"), S((4,), note="tuple"), S(0, note="empty"), S(3, dt="int32", note="dtype-int32")]),
    Op("tg.full", lambda m, s, v: m.full(s, v), [S((2, 3), 1.5, note="float"), S((2,), 7, note="int"),
                                                 S((2, 2), True, note="bool"), S((), -inf, note="0d-inf")]),
    Op("tg.eye", lambda m, *a, dt=None: m.eye(*a, **_dtype(m, dt)), [
        S(3, note="square"), S(2, 4, note="wide"), S(0, note="empty"), S(2, dt="float64", note="dtype")]),
    Op("tg.zeros_like", lambda m, x, dt=None: m.zeros_like(x, **_dtype(m, dt)), [
        S(r(2, 3), grad=(), note="float64"), S(i64([1, 2]), note="int"), S(r(2), grad=(), dt="int64", note="dtype")]),
    Op("tg.ones_like", lambda m, x: m.ones_like(x), [S(r(2, 3), grad=(), note="float64"), S(b([True]), note="bool")]),
    Op("tg.randn", lambda m, *s: m.randn(*s), [S(2, 3, note="varargs"), S((4,), note="tuple")], values=False),
    Op("tg.rand", lambda m, *s: m.rand(*s), [S(2, 3, note="varargs")], values=False),
    Op("tg.randint", lambda m, *a: m.randint(*a), [S(0, 10, (3, 2), note="low-high"), S(5, (4,), note="high-only")],
       values=False),
    Op("tg.randn_like", lambda m, x: m.randn_like(x), [S(r(2, 3), grad=(), note="float64")], values=False),
    Op("tg.rand_like", lambda m, x: m.rand_like(x), [S(r(4,), grad=(), note="float64")], values=False),
    Op("tg.randint_like", lambda m, x, *a: m.randint_like(x, *a), [
        S(i64([[1, 2], [3, 4]]), 10, note="high-only"), S(r(3,), 2, 7, grad=(), note="low-high-float")], values=False),
    # the function forms (torch.maximum(x, y) ...), the same ops as the methods above
    Op("tg.maximum", lambda m, x, y: m.maximum(x, y), binary_samples(scalar=None)[:6]),
    Op("tg.minimum", lambda m, x, y: m.minimum(x, y), binary_samples(scalar=None)[:6]),
    Op("tg.split", lambda m, x, *a, **k: m.split(x, *a, **k), [
        S(r(5, 2), 2, note="size"), S(r(2, 5), [1, 3, 1], dim=1, note="sections")]),
    Op("tg.tril", lambda m, x, **k: m.tril(x, **k), [S(r(4, 4), note="square"), S(r(3, 5), diagonal=1, note="diag1")]),
    Op("tg.triu", lambda m, x, **k: m.triu(x, **k), [S(r(4, 4), note="square"), S(r(5, 3), diagonal=-1, note="diag-1")]),
    # (not var_samples' inf sample: torch's one-pass var_mean gives a NaN mean for [1, inf, 2], ours
    # x.mean()'s inf; README's table of differences says so)
    Op("tg.var_mean", lambda m, x, **k: m.var_mean(x, **k), var_samples()[:-1]),
    Op("tg.std_mean", lambda m, x, **k: m.std_mean(x, **k), var_samples()[:-1]),
    Op("tg.from_numpy", lambda m, x: m.from_numpy(x), [
        S(Raw(f64([[1.0, 2.0], [3.0, 4.0]])), note="float64"), S(Raw(i64([1, 2])), note="int64"),
        S(Raw(b([True, False])), note="bool"), S(Raw(np.float32([1.5])), note="float32")]),

    # ---- F.* (tinygrad_lm.nn.functional vs torch.nn.functional)
    Op("F.relu", lambda F, x: F.relu(x), unary_samples(edge=[-1.0, 0.0, 2.0, -inf, inf, nan])),
    Op("F.gelu", lambda F, x, **k: F.gelu(x, **k), unary_samples(edge=[0.0, -10.0, 10.0, -1e-3]) + [
        S(r(3, 4), approximate="tanh", note="tanh"), S(f64([0.0, -10.0, 10.0, 50.0, -50.0]), approximate="tanh",
                                                        note="tanh-edge")]),
    Op("F.silu", lambda F, x: F.silu(x), unary_samples(edge=[0.0, -inf, inf, nan, 40.0, -40.0, -800.0])),
    Op("F.swiglu", lambda F, a, u: F.swiglu(a, u), [
        S(r(3, 4), r(3, 4), note="2d"), S(r(2, 3, 5), r(2, 3, 5), note="3d"), S(nc(r(4, 3)), r(4, 3), note="transposed"),
        S(f64([0.0, -40.0, 40.0, -800.0, 3.0]), r(5), note="edge"), S(np.zeros((0, 3)), np.zeros((0, 3)), note="empty")],
       ref=swiglu_ref),
    Op("F.rotary_embedding", lambda F, x, c, s_, **k: F.rotary_embedding(x, c, s_, **k), [
        S(r(2, 3, 5, 8), *rope_table(5, 8), grad=(0,), note="half"),
        S(r(2, 3, 5, 8), *rope_table(5, 8), grad=(0,), layout="interleaved", note="interleaved"),
        S(r(4, 6), *rope_table(4, 6, base=500000.0), grad=(0,), note="2d-theta"),
        S(nc(r(6, 4)), *rope_table(6, 4), grad=(0,), layout="interleaved", note="transposed-interleaved"),
        S(r(1, 2, 0, 4), *rope_table(0, 4), grad=(0,), note="no-positions")],
       ref=rotary_ref),
    Op("F.softmax", lambda F, x, **k: F.softmax(x, **k), softmax_samples()),
    Op("F.log_softmax", lambda F, x, **k: F.log_softmax(x, **k), softmax_samples()),
    Op("F.dropout", lambda F, x, **k: F.dropout(x, **k), [
        S(r(3, 4), p=0.5, training=False, note="eval"), S(r(3, 4), p=0.0, training=True, note="p0"),
        S(r(), p=0.3, training=False, note="0d-eval")]),
    Op("F.linear", lambda F, *a: F.linear(*a), [
        S(r(3, 4), r(5, 4), r(5), note="bias"), S(r(3, 4), r(5, 4), note="no-bias"),
        S(r(2, 3, 4), r(5, 4), r(5), note="batched"), S(r(4), r(5, 4), r(5), note="1d-input"),
        S(nc(r(4, 3)), nc(r(2, 3)), r(2), note="noncontig"), S(r(0, 4), r(5, 4), r(5), note="empty-batch")]),
    Op("F.embedding", lambda F, i, w, **k: F.embedding(i, w, **k), [
        S(i64([[0, 2, 2], [1, 0, 3]]), r(4, 3), note="repeats"), S(i64(2), r(4, 3), note="0d-index"),
        S(i64([1, 2]), nc(r(3, 4)), note="transposed-weight"), S(i64(np.zeros((0,), int)), r(4, 3), note="empty"),
        S(i64([[0, 2, 0], [1, 0, 3]]), r(4, 3), padding_idx=0, note="padding-idx")]),
    Op("F.layer_norm", lambda F, x, *a, n, **k: F.layer_norm(x, n if isinstance(n, tuple) else (n,), *a, **k), [
        S(r(3, 5), r(5), r(5), n=5, note="affine"), S(r(3, 5), n=5, note="plain"), S(r(3, 5), r(5), n=5, note="weight-only"),
        S(r(2, 3, 4), r(4), r(4), n=4, eps=1e-3, note="3d-eps"),
        S(f64([[1.5, 1.5, 1.5], [0.0, 1.0, 2.0]]), r(3), r(3), n=3, note="constant-row"),
        S(nc(r(4, 3)), r(3), r(3), n=3, note="transposed"),
        S(r(2, 3, 4), r(3, 4), r(3, 4), n=(3, 4), note="two-normalized-dims")]),
    Op("F.rms_norm", lambda F, x, *a, n, **k: F.rms_norm(x, n if isinstance(n, tuple) else (n,), *a, **k), [
        S(r(3, 5), r(5), n=5, eps=1e-5, note="affine"), S(r(3, 5), n=5, note="plain-default-eps"),
        S(r(2, 3, 4), r(4), n=4, eps=1e-3, note="3d-eps"), S(f64([[0.0, 0.0, 0.0], [1.0, -2.0, 3.0]]), r(3), n=3,
                                                            eps=1e-6, note="zero-row"),
        S(nc(r(4, 3)), r(3), n=3, eps=1e-6, note="transposed"),
        S(r(2, 3, 4), r(3, 4), n=(3, 4), eps=1e-6, note="two-normalized-dims")]),
    Op("F.scaled_dot_product_attention", lambda F, q, k, v, *m, **kw: F.scaled_dot_product_attention(q, k, v, *m, **kw), [
        S(r(2, 3, 4), r(2, 3, 4), r(2, 3, 4), note="plain"),
        S(r(2, 3, 4), r(2, 3, 4), r(2, 3, 4), is_causal=True, note="causal"),
        S(r(2, 3, 4), r(2, 5, 4), r(2, 5, 2), is_causal=True, note="causal-T-ne-S"),
        S(r(1, 2, 3, 4), r(1, 2, 3, 4), r(1, 2, 3, 4), scale=0.3, note="heads-scale"),
        S(r(2, 3, 4), r(2, 3, 4), r(2, 3, 4), b(np.tril(np.ones((3, 3)))), note="bool-mask"),
        S(r(2, 3, 4), r(2, 4, 4), r(2, 4, 4), b([[True, False, True, True], [True, True, False, False],
                                                [False, True, True, True]]), note="bool-mask-rect"),
        S(r(2, 3, 4), r(2, 3, 4), r(2, 3, 4), r(3, 3), grad=(0, 1, 2), note="float-mask-additive"),
        S(r(2, 3, 4), r(2, 3, 4), r(2, 3, 4), b([[True, True, True], [False, False, False], [True, False, True]]),
          note="bool-mask-fully-masked-row"),
        S(r(2, 3, 4), r(2, 3, 4), r(2, 3, 4), f64([[0.0, -inf, 0.5], [-inf, 0.0, 0.0], [1.0, 2.0, -inf]]),
          grad=(0, 1, 2), note="float-mask-with-minus-inf"),
        S(r(2, 2, 3, 4), r(2, 2, 3, 4), r(2, 2, 3, 4), b([[True, False, True]]), note="bool-mask-broadcast"),
        S(r(2, 2, 3, 4), r(2, 2, 5, 4), r(2, 2, 5, 3), b([[[[True, True, True, False, False]]], [[[True] * 5]]]),
          note="cross-attention-padding"),
        S(nc(r(4, 3)), nc(r(4, 3)), nc(r(4, 3)), note="transposed-2d"),
        S(r(2, 6, 3, 4), r(2, 2, 3, 4), r(2, 2, 3, 4), enable_gqa=True, note="grouped-query"),
        S(r(1, 4, 3, 4), r(1, 2, 5, 4), r(1, 2, 5, 2), enable_gqa=True, is_causal=True, note="grouped-query-causal")]),
    Op("F.causal_attention", lambda F, q, k, v, **kw: F.causal_attention(q, k, v, **kw), [
        S(r(2, 3, 4), r(2, 3, 4), r(2, 3, 4), note="plain"), S(r(1, 2, 4, 3), r(1, 2, 4, 3), r(1, 2, 4, 2), scale=0.4,
                                                               note="heads-scale"),
        S(r(2, 3, 4), r(2, 5, 4), r(2, 5, 4), note="T-ne-S")],
       ref=causal_attention_ref),
    Op("F.causal_self_attention", lambda F, qkv, **k: F.causal_self_attention(qkv, **k), [
        S(r(2, 3, 12), n_head=2, note="two-heads"), S(r(1, 4, 6), n_head=1, scale=0.5, note="one-head-scale")],
       ref=causal_self_attention_ref),
    Op("F.cross_entropy", lambda F, x, t, *a, **k: F.cross_entropy(x, t, *a, **k), [
        S(r(3, 5), i64([1, 0, 4]), note="mean"),
        S(r(3, 5), i64([1, 0, 4]), reduction="sum", note="sum"),
        S(r(3, 5), i64([1, 0, 4]), reduction="none", note="none"),
        S(r(4, 5), i64([1, -100, 3, 2]), note="ignore-index"),
        S(r(3, 5), i64([1, 7, 4]), ignore_index=7, reduction="none", note="ignore-index-none"),
        S(r(2, 5), i64([-100, -100]), note="all-ignored-nan"),
        S(r(3, 5), i64([1, 0, 4]), label_smoothing=0.1, note="label-smoothing"),
        S(r(4, 5), i64([1, -100, 3, 2]), label_smoothing=0.2, reduction="sum", note="smoothing-ignore-sum"),
        S(r(3, 5), np.abs(r(3, 5)) / 3, grad=(0,), note="probability-targets"),
        S(r(3, 5), np.abs(r(3, 5)) / 3, grad=(0,), label_smoothing=0.1, reduction="none", note="probability-smoothing"),
        S(r(2, 4, 3), i64([[1, 0, 3], [2, 2, 1]]), note="NCd-layout"),
        S(r(2, 4, 3), i64([[1, -100, 3], [2, 2, 1]]), reduction="none", note="NCd-none-ignore"),
        S(r(5), i64(2), note="unbatched"),
        S(f64([[1000.0, 0.0, -1000.0], [-inf, 0.0, 1.0]]), i64([0, 2]), note="large-and-minus-inf"),
        S(nc(r(5, 3)), i64([2, 0, 1, 1, 0]), note="transposed"),
        S(r(4, 5), i64([1, -100, 3, 3]), pos(5), grad=(0,), note="class-weight-ignore"),
        S(r(4, 5), i64([1, 0, 3, 3]), pos(5), grad=(0,), label_smoothing=0.1, note="class-weight-smoothing"),
        S(r(3, 5), np.abs(r(3, 5)) / 3, pos(5), grad=(0,), reduction="sum", note="class-weight-probabilities"),
        S(r(2, 4, 3), i64([[1, 0, 3], [2, 2, 1]]), pos(4), grad=(0,), label_smoothing=0.2, note="NCd-weight-smoothing")]),
    Op("F.nll_loss", lambda F, x, t, *a, **k: F.nll_loss(x, t, *a, **k), [
        S(r(3, 5), i64([1, 0, 4]), note="mean"), S(r(3, 5), i64([1, 0, 4]), reduction="sum", note="sum"),
        S(r(3, 5), i64([1, 0, 4]), reduction="none", note="none"),
        S(r(4, 5), i64([1, -100, 3, 2]), note="ignore-index"),
        S(r(2, 4, 3), i64([[1, 0, 3], [2, 2, 1]]), note="NCd-layout"),
        S(r(5), i64(2), note="unbatched"),
        S(r(4, 5), i64([1, -100, 3, 3]), pos(5), grad=(0,), note="class-weight-ignore"),
        S(r(2, 5), i64([-100, -100]), note="all-ignored-nan")]),
    Op("F.mse_loss", lambda F, x, y, **k: F.mse_loss(x, y, **k), [
        S(r(3, 4), r(3, 4), note="mean"), S(r(3, 4), r(3, 4), reduction="sum", note="sum"),
        S(r(3, 4), r(3, 4), reduction="none", note="none"), S(r(), r(), note="0d"),
        S(r(3, 4), r(3, 4), grad=(0,), note="input-grad-only"), S(nc(r(4, 3)), strided(r(4, 3)), note="noncontig"),
        S(f64([inf, 1.0]), f64([inf, 2.0]), grad=(), note="inf-minus-inf-nan-forward")]),
    Op("F.dpo_loss", lambda F, c, r_, cr, rr, **k: F.dpo_loss(c, r_, cr, rr, **k), [
        S(r(4) - 10, r(4) - 12, r(4) - 10, r(4) - 12, grad=(0, 1), note="beta-default"),
        S(r(3) * 30, r(3) * 30, r(3), r(3), grad=(0, 1), beta=0.5, note="saturated"),
        S(r(1), r(1), r(1), r(1), grad=(0, 1), beta=2.0, note="one-pair")],
       ref=dpo_loss_ref),
    Op("F.sequence_log_probs", lambda F, x, t, **k: F.sequence_log_probs(x, t, **k), [
        S(r(2, 5, 7), i64([[1, 2, -100, 3, 0], [-100, -100, 6, 6, 5]]), note="masked"),
        S(r(1, 3, 4), i64([[0, 1, 2]]), note="all-labelled"),
        S(r(2, 4, 3), i64([[7, 1, 7, 7], [2, 7, 7, 0]]), ignore_index=7, note="ignore-index")],
       ref=sequence_log_probs_ref),
    Op("F.one_hot", lambda F, i, **k: F.one_hot(i, **k), [
        S(i64([0, 2, 1]), note="inferred-classes"), S(i64([0, 2, 1]), num_classes=4, note="num-classes"),
        S(i64([[0, 1], [3, 2]]), num_classes=5, note="2d"), S(i64(1), num_classes=3, note="0d")]),
]

# Members that are not math on values, or that every sample already exercises. Each is listed
# with the reason it needs no entry; keep this small.
TG_EXEMPT = {
    "manual_seed": "seeds the generator (the random constructors are in the table)",
    "is_grad_enabled": "autograd flag",
}
TENSOR_EXEMPT = {
    # attributes/properties compared on every sample (shape, dtype) or bookkeeping
    "shape": "compared on every sample", "dtype": "compared (category) on every sample",
    "ndim": "len(shape), compared on every sample", "is_leaf": "graph bookkeeping",
    "size": "shape accessor", "dim": "ndim accessor", "numel": "element count",
    # conversions out of the library, and device moves
    "numpy": "used to read every result", "item": "Python number out", "tolist": "Python lists out",
    "to": "device/dtype move; casts are covered by float/double/long/int/bool",
    "cpu": "device move", "cuda": "device move",
    # autograd machinery, exercised by every differentiable sample
    "backward": "called by every differentiable sample", "detach": "cuts the graph (no values change)",
    "requires_grad_": "flag", "retain_grad": "flag",
    "grad": "the accumulated gradient, compared on every differentiable sample",
}
F_EXEMPT = {
    "check_dropout_p": "argument check shared by F.dropout and nn.Dropout (raises or returns None)",
    "padding_index": "argument check shared by F.embedding and nn.Embedding (an int or None, no tensor)",
}
