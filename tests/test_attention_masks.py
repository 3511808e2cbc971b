"""Every mask of scaled_dot_product_attention, alone and combined (issue #16, point 1).

For each kind -- none (bidirectional), causal, key padding (B, S) boolean or float, boolean or
float attn_mask, and their combinations -- on every device: the fused op equals its composite twin
(forward and gradients under a random upstream gradient), both pass gradcheck in float64, and both
agree with PyTorch's scaled_dot_product_attention given the same mask spelled as one attn_mask.
Then: padded keys never leak into any output, and get no gradient.
"""
import numpy as np
import pytest

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm import backend
from tinygrad_lm.gradcheck import gradcheck

B, H, T, S, D, DV = 2, 2, 4, 5, 3, 2
LENGTHS = (5, 3)                                    # batch 1's last two keys are padding


def padding(rng):
    """key_padding_mask (B, S): True at padding, as torch.nn.MultiheadAttention."""
    return np.arange(S)[None, :] >= np.array(LENGTHS)[:, None]


def keep_mask(rng):
    """A boolean attn_mask (T, S), True = may attend; key 0 kept so that no row is left empty."""
    keep = rng.random((T, S)) > 0.4
    keep[:, 0] = True
    return keep


# name -> (is_causal, attn_mask kind, key_padding_mask kind); kinds: None, "bool", "float"
CASES = {
    "bidirectional": (False, None, None),
    "causal": (True, None, None),
    "padding": (False, None, "bool"),
    "padding-float": (False, None, "float"),
    "bool-mask": (False, "bool", None),
    "float-mask": (False, "float", None),
    "causal+padding": (True, None, "bool"),
    "causal+padding-float": (True, None, "float"),
    "bool-mask+padding": (False, "bool", "bool"),
    "float-mask+padding": (False, "float", "bool"),      # additive and boolean together
    "bool-mask+padding-float": (False, "bool", "float"),
    "float-mask+padding-float": (False, "float", "float"),
}


def make_case(name, rng):
    """(leaves, build): float64 arrays that get gradients (q, k, v, then float masks) and
    build(*tensors_or_torch, lib) -> the keyword arguments, for ours or for torch."""
    is_causal, mask_kind, pad_kind = CASES[name]
    leaves = [rng.standard_normal((B, H, T, D)), rng.standard_normal((B, H, S, D)), rng.standard_normal((B, H, S, DV))]
    keep = keep_mask(rng) if mask_kind == "bool" else None
    pad = padding(rng)
    if mask_kind == "float":
        leaves.append(rng.standard_normal((T, S)))
    if pad_kind == "float":          # a soft penalty on some keys, -inf on the padding
        leaves.append(np.where(pad, -np.inf, rng.standard_normal((B, S))))
    return leaves, (is_causal, mask_kind, pad_kind, keep, pad)


def ours(spec, fn):
    is_causal, mask_kind, pad_kind, keep, pad = spec

    def run(q, k, v, *floats):
        floats = list(floats)
        attn_mask = floats.pop(0) if mask_kind == "float" else keep
        kpm = floats.pop(0) if pad_kind == "float" else (pad if pad_kind == "bool" else None)
        if isinstance(attn_mask, np.ndarray):
            attn_mask = tg.Tensor(backend.to_device(attn_mask, q.device))
        if isinstance(kpm, np.ndarray):
            kpm = tg.Tensor(backend.to_device(kpm, q.device))
        return fn(q, k, v, attn_mask=attn_mask, is_causal=is_causal, key_padding_mask=kpm)
    return run


def theirs(spec, torch):
    """The same attention in PyTorch: every mask folded into one attn_mask (PyTorch takes one)."""
    is_causal, mask_kind, pad_kind, keep, pad = spec

    def run(q, k, v, *floats):
        floats = list(floats)
        allowed = torch.ones((T, S), dtype=torch.bool)
        if is_causal:
            allowed = torch.tril(allowed)
        if mask_kind == "bool":
            allowed = allowed & torch.from_numpy(keep)
        if pad_kind == "bool":
            allowed = allowed & ~torch.from_numpy(pad)[:, None, None, :]
        additive = torch.zeros((), dtype=torch.float64)
        if mask_kind == "float":
            additive = additive + floats.pop(0)
        if pad_kind == "float":
            additive = additive + floats.pop(0)[:, None, None, :]
        mask = (additive + torch.zeros((T, S), dtype=torch.float64)).masked_fill(~allowed, -float("inf"))
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return run


def leaves_on(arrays, device):
    return [tg.Tensor(backend.to_device(a, device), requires_grad=True) for a in arrays]


@pytest.mark.parametrize("name", list(CASES))
def test_fused_equals_composite_and_passes_gradcheck(name, device, rng):
    arrays, spec = make_case(name, rng)
    fused, composite = ours(spec, F.scaled_dot_product_attention), ours(spec, F.scaled_dot_product_attention_composite)
    a, b = leaves_on(arrays, device), leaves_on(arrays, device)
    ya, yb = fused(*a), composite(*b)
    np.testing.assert_allclose(ya.numpy(), yb.numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(ya.shape)
    ya.backward(backend.to_device(g, device))
    yb.backward(backend.to_device(g, device))
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy(), rtol=1e-10, atol=1e-12)
    if device == "cpu":              # finite differences are the same arithmetic on every device
        finite = [np.where(np.isinf(x), -30.0, x) for x in arrays]   # -inf has no finite neighbour
        gradcheck(fused, [tg.Tensor(x, requires_grad=True) for x in finite])
        gradcheck(composite, [tg.Tensor(x, requires_grad=True) for x in finite])


@pytest.mark.parametrize("name", list(CASES))
def test_agrees_with_pytorch_scaled_dot_product_attention(name, device, rng):
    torch = pytest.importorskip("torch")
    arrays, spec = make_case(name, rng)
    a = leaves_on(arrays, device)
    b = [torch.tensor(x, requires_grad=True) for x in arrays]
    ya, yb = ours(spec, F.scaled_dot_product_attention)(*a), theirs(spec, torch)(*b)
    np.testing.assert_allclose(ya.numpy(), yb.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(ya.shape)
    ya.backward(backend.to_device(g, device))
    yb.backward(torch.from_numpy(g))
    for x, y in zip(a, b):
        expected = np.nan_to_num(y.grad.numpy(), nan=0.0)
        np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("fn", [F.scaled_dot_product_attention, F.scaled_dot_product_attention_composite])
def test_padded_keys_never_leak_and_learn_nothing(fn, is_causal, device, rng):
    """Changing k and v at padded positions leaves every output identical, and their gradient is 0."""
    q, k, v = rng.standard_normal((B, H, T, D)), rng.standard_normal((B, H, S, D)), rng.standard_normal((B, H, S, DV))
    pad = padding(rng)
    k2, v2 = k.copy(), v.copy()
    where = np.broadcast_to(pad[:, None, :, None], k.shape)
    k2[where] = 1e3 * rng.standard_normal(int(where.sum()))       # large values: any leak would show
    v2[np.broadcast_to(pad[:, None, :, None], v.shape)] = 1e3
    outs = []
    for keys, values in ((k, v), (k2, v2)):
        qt, kt, vt = leaves_on([q, keys, values], device)
        y = fn(qt, kt, vt, is_causal=is_causal, key_padding_mask=tg.Tensor(backend.to_device(pad, device)))
        y.backward(backend.to_device(rng.standard_normal(y.shape), device))
        grads = kt.grad.numpy(), vt.grad.numpy()
        for grad in grads:
            assert not grad[np.broadcast_to(pad[:, None, :, None], grad.shape)].any()
            assert grad[np.broadcast_to(~pad[:, None, :, None], grad.shape)].any()
        outs.append(y.numpy())
    np.testing.assert_array_equal(outs[0], outs[1])
    # and the mask does something: without it, the changed keys change the output
    qt, kt, vt = leaves_on([q, k2, v2], device)
    assert not np.allclose(fn(qt, kt, vt, is_causal=is_causal).numpy()[1], outs[1][1])


def test_key_padding_mask_shape_and_dtype_are_checked(rng):
    q = tg.Tensor(rng.standard_normal((B, T, D)))
    k = tg.Tensor(rng.standard_normal((B, S, D)))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(batch, keys\) = \(2, 5\)"):
        F.scaled_dot_product_attention(q, k, k, key_padding_mask=np.zeros((B, T), bool))
    with pytest.raises(TypeError, match="boolean or of the query's dtype"):
        F.scaled_dot_product_attention(q, k, k, key_padding_mask=np.zeros((B, S), np.float32))
    # (B, T, D) queries without heads: the mask broadcasts over queries only
    pad = padding(rng)
    y = F.scaled_dot_product_attention(q, k, k, key_padding_mask=pad)
    expected = F.scaled_dot_product_attention(q, k, k, attn_mask=~pad[:, None, :])
    np.testing.assert_array_equal(y.numpy(), expected.numpy())
