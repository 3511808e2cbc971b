"""The op table (tests/op_table.py) against PyTorch, and its coverage of the library.

1. every entry x sample: forward == torch in float64 (values with NaN/inf positions, shape, dtype
   category, requires_grad), and every differentiable input's gradient == torch's for a seeded
   random upstream gradient passed to ``.backward(gradient)``;
2. coverage: every public Tensor method/property, operator dunder, F function and function in
   tinygrad_lm.__all__ has an entry or a reasoned exemption, and no entry names something the
   library does not have;
3. a planted wrong gradient (Exp.backward doubled) is reported by the comparison;
4. a planted public method without an entry is reported by the coverage check.
"""
import inspect
import sys
import warnings
import zlib

import numpy as np
import pytest

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as tgF
from tinygrad_lm import backend

from .op_table import (F_EXEMPT, FORWARD_ATOL, FORWARD_RTOL, GRAD_ATOL, GRAD_RTOL, OPS, TENSOR_EXEMPT, TG_EXEMPT,
                       Raw)

OPERATOR_DUNDERS = (
    "__add__ __radd__ __sub__ __rsub__ __mul__ __rmul__ __truediv__ __rtruediv__ __neg__ __pow__ __rpow__ "
    "__matmul__ __rmatmul__ __getitem__ __setitem__ __lt__ __le__ __gt__ __ge__ __eq__ __ne__ __invert__ "
    "__and__ __or__ __abs__").split()

_TORCH = []


def _torch():
    """torch, imported once (the table test is skipped without it)."""
    if not _TORCH:
        _TORCH.append(pytest.importorskip("torch"))
    return _TORCH[0]


# ------------------------------------------------------------------ building inputs
def _copy_keeping_layout(a):
    """A fresh copy of `a` that is as (non-)contiguous as `a` (in-place methods must not touch the
    table's arrays, and each library gets its own)."""
    if a.flags.c_contiguous:
        return a.copy()
    if a.flags.f_contiguous:
        return np.asfortranarray(a.copy())
    buf = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    buf[..., ::2] = a
    return buf[..., ::2]


def _inputs(sample, lib):
    torch = _torch() if lib == "torch" else None
    out = []
    for i, x in enumerate(sample.inputs):
        if isinstance(x, Raw):
            out.append(x.value.copy())
        elif isinstance(x, np.ndarray):
            grad = i in sample.grad
            if lib == "tg":
                out.append(tg.Tensor(_copy_keeping_layout(x), requires_grad=grad))
            else:
                out.append(torch.from_numpy(_copy_keeping_layout(x)).requires_grad_(grad))
        else:
            out.append(x)
    return out


def _call(op, lib, inputs, kwargs):
    if lib == "tg":
        fn, first = op.fn, {"Tensor": None, "F": tgF, "tg": tg}[op.kind]
    else:
        torch = _torch()
        fn, first = op.ref or op.fn, {"Tensor": None, "F": torch.nn.functional, "tg": torch}[op.kind]
    args = inputs if first is None else [first, *inputs]
    return fn(*args, **kwargs)


def _outputs(result):
    return list(result) if isinstance(result, (tuple, list)) else [result]


def _category(kind):
    return {"b": "bool", "i": "int", "u": "int", "f": "float"}.get(kind, kind)


def _seed(op, index):
    return zlib.crc32(f"{op.name}/{index}".encode())


def _close(what, ours, theirs, rtol, atol):
    """None when equal (NaN where NaN, same infinities), else a one-paragraph message."""
    try:
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, equal_nan=True)
    except AssertionError as e:
        lines = [line for line in str(e).splitlines() if line.strip()][:8]
        return f"{what} differs from torch:\n    " + "\n    ".join(lines)
    return None


# ------------------------------------------------------------------ the comparison routine
def compare(op, index):
    """Run sample `index` of `op` with tinygrad_lm and torch; return a list of mismatches."""
    torch = _torch()
    sample = op.samples[index]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        torch_inputs = _inputs(sample, "torch")
        try:
            theirs = _outputs(_call(op, "torch", torch_inputs, sample.kwargs))
        except Exception as e:
            return [f"torch rejects this sample: {type(e).__name__}: {e}"]
        ours_inputs = _inputs(sample, "tg")
        try:
            ours = _outputs(_call(op, "tg", ours_inputs, sample.kwargs))
        except Exception as e:
            return [f"tinygrad_lm raised {type(e).__name__}: {e}"]
        problems = []
        if len(ours) != len(theirs):
            return [f"{len(ours)} outputs, torch returns {len(theirs)}"]
        for k, (o, t) in enumerate(zip(ours, theirs)):
            where = f"output {k}" if len(ours) > 1 else "output"
            if not isinstance(o, tg.Tensor):
                problems.append(f"{where} is a {type(o).__name__} ({o!r:.60}), torch returns a Tensor")
                continue
            o_np, t_np = backend.to_numpy(o.data), t.detach().numpy()
            if o_np.shape != t_np.shape:
                problems.append(f"{where} shape {o_np.shape}, torch {t_np.shape}")
                continue
            if _category(o_np.dtype.kind) != _category(t_np.dtype.kind):
                problems.append(f"{where} dtype {o_np.dtype}, torch {t.dtype} (category "
                                f"{_category(o_np.dtype.kind)} vs {_category(t_np.dtype.kind)})")
                continue
            if op.values:
                if t_np.dtype.kind == "f":
                    msg = _close(f"{where} value", o_np.astype(np.float64), t_np.astype(np.float64),
                                 FORWARD_RTOL, FORWARD_ATOL)
                else:
                    msg = None if np.array_equal(o_np, t_np) else \
                        f"{where} value differs from torch: {o_np.tolist()} vs {t_np.tolist()}"
                if msg:
                    problems.append(msg)
            if bool(o.requires_grad) != bool(t.requires_grad):
                problems.append(f"{where} requires_grad={o.requires_grad}, torch {t.requires_grad}")
        if problems or not sample.grad:
            return problems

        # backward: a seeded random upstream gradient for every output torch can differentiate
        rng = np.random.default_rng(_seed(op, index))
        for k, (o, t) in enumerate(zip(ours, theirs)):
            if not t.requires_grad:
                continue
            g = rng.standard_normal(tuple(t.shape))
            t.backward(torch.from_numpy(g).to(t.dtype), retain_graph=True)
            try:
                o.backward(g)
            except Exception as e:
                return [f"tinygrad_lm backward of output {k} raised {type(e).__name__}: {e}"]
        for i in sample.grad:
            x, tx = ours_inputs[i], torch_inputs[i]
            theirs_g = tx.grad.numpy() if tx.grad is not None else np.zeros(tx.shape)
            ours_g = x.grad.data if isinstance(x.grad, tg.Tensor) else x.grad
            ours_g = backend.to_numpy(ours_g) if ours_g is not None else None
            if ours_g is None:
                if np.any(theirs_g != 0):
                    problems.append(f"gradient of input {i}: None (no gradient reached it), torch's is nonzero")
                continue
            if ours_g.shape != tuple(x.shape):
                problems.append(f"gradient of input {i} has shape {ours_g.shape}, the input {tuple(x.shape)}")
                continue
            msg = _close(f"gradient of input {i}", ours_g, theirs_g, GRAD_RTOL, GRAD_ATOL)
            if msg:
                problems.append(msg)
        return problems


CASES = [pytest.param(op, i, id=f"{op.name}-{i}-{s.note}") for op in OPS for i, s in enumerate(op.samples)]


@pytest.mark.parametrize("op,index", CASES)
def test_matches_torch(op, index):
    problems = compare(op, index)
    assert not problems, f"{op.name} sample {index} ({op.samples[index].note}):\n  " + "\n  ".join(problems)


# ------------------------------------------------------------------ coverage
def _defined_by_tensor(name):
    """True when `name` is defined by Tensor or a base class other than object."""
    return any(name in vars(k) for k in tg.Tensor.__mro__ if k is not object)


def public_tensor_members():
    names = set()
    for name in dir(tg.Tensor):
        if name.startswith("_") or not _defined_by_tensor(name):
            continue
        attr = inspect.getattr_static(tg.Tensor, name)
        if inspect.ismemberdescriptor(attr):       # __slots__ data fields (data, grad, device...)
            continue
        names.add(name)
    names.update(d for d in OPERATOR_DUNDERS if _defined_by_tensor(d))
    return names


def public_functional_functions():
    """Functions defined in nn/functional.py (helpers it imports, such as raw, are not its API)."""
    return {name for name, obj in vars(tgF).items()
            if not name.startswith("_") and not name.endswith("_composite") and inspect.isfunction(obj)
            and obj.__module__ == tgF.__name__}


def public_module_functions():
    """Functions tinygrad_lm exports in __all__ (constructors, cat, stack, where...)."""
    return {name for name in tg.__all__ if inspect.isfunction(getattr(tg, name, None))}


def coverage_problems():
    """(missing, stale): library names without an entry or exemption; entries naming nothing."""
    entries = {op.name for op in OPS}
    public = ({f"Tensor.{n}" for n in public_tensor_members() - set(TENSOR_EXEMPT)}
              | {f"F.{n}" for n in public_functional_functions() - set(F_EXEMPT)}
              | {f"tg.{n}" for n in public_module_functions() - set(TG_EXEMPT)})
    missing = sorted(public - entries)
    stale = []
    for op in OPS:
        if op.kind == "Tensor":
            exists = _defined_by_tensor(op.attr)
        elif op.kind == "F":
            exists = callable(getattr(tgF, op.attr, None))
        else:
            exists = callable(getattr(tg, op.attr, None))
        if not exists:
            stale.append(op.name)
    return missing, sorted(stale)


def test_every_public_op_has_an_entry_and_every_entry_exists():
    names = [op.name for op in OPS]
    assert len(names) == len(set(names)), "an op is listed twice"
    missing, stale = coverage_problems()
    assert not missing, f"public ops without an entry in tests/op_table.py (or an exemption): {missing}"
    assert not stale, f"entries naming ops the library does not have: {stale}"
    exempt_with_entry = ({f"Tensor.{n}" for n in TENSOR_EXEMPT} | {f"F.{n}" for n in F_EXEMPT}
                         | {f"tg.{n}" for n in TG_EXEMPT}) & set(names)
    assert not exempt_with_entry, f"both exempt and in the table: {sorted(exempt_with_entry)}"


# ------------------------------------------------------------------ the checks can fail
def test_a_planted_wrong_gradient_is_reported(monkeypatch):
    _torch()
    op = next(o for o in OPS if o.name == "Tensor.exp")
    assert compare(op, 0) == []
    import tinygrad_lm.ops.unary as unary
    monkeypatch.setattr(unary.Exp, "backward", lambda self, grad: 2 * grad * self.y)
    problems = compare(op, 0)
    assert problems and all("gradient of input 0" in p for p in problems), problems


def test_a_planted_public_method_without_an_entry_is_reported(monkeypatch):
    monkeypatch.setattr(tg.Tensor, "planted_op", lambda self: self, raising=False)
    def planted_fn(x):
        return x
    planted_fn.__module__ = tgF.__name__
    monkeypatch.setattr(tgF, "planted_fn", planted_fn, raising=False)
    missing, _ = coverage_problems()
    assert "Tensor.planted_op" in missing and "F.planted_fn" in missing
    monkeypatch.delattr(tg.Tensor, "planted_op")
    missing, _ = coverage_problems()
    assert "Tensor.planted_op" not in missing


def test_a_stale_entry_is_reported(monkeypatch):
    from .op_table import Op
    monkeypatch.setattr(sys.modules[__name__], "OPS", OPS + [Op("Tensor.no_such_op", lambda x: x, [])])
    _, stale = coverage_problems()
    assert "Tensor.no_such_op" in stale
