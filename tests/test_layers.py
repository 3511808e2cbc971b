"""Layers: gradcheck of every layer, fused == composite == finite differences, attention variants."""
import numpy as np
import pytest

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm import backend, nn
from tinygrad_lm.models.gpt import MLP, Block, GPTConfig
from tinygrad_lm.gradcheck import gradcheck


def leaf(rng, *shape, device="cpu"):
    return tg.Tensor(backend.to_device(rng.standard_normal(shape), device), requires_grad=True)


def check_module(module, *inputs, constants=(), **kw):
    """gradcheck a module with respect to its inputs and all its parameters (float64);
    `constants` are passed after the inputs, untouched (token ids, positions)."""
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().requires_grad_() for _, p in module.named_parameters()]

    def fn(*tensors):
        xs, ps = tensors[:len(inputs)], tensors[len(inputs):]
        return nn.functional_call(module, dict(zip(names, ps)), *xs, *constants)
    return gradcheck(fn, list(inputs) + params, **kw)


def double(module, device="cpu"):
    return module.to(device, dtype=np.float64)


CFG = GPTConfig(vocab_size=11, block_size=6, n_layer=2, n_head=2, n_embd=8)


@pytest.mark.parametrize("name, make, shape", [
    ("linear", lambda: nn.Linear(5, 3), (2, 4, 5)),
    ("linear_nobias", lambda: nn.Linear(5, 3, bias=False), (4, 5)),
    ("layernorm", lambda: nn.LayerNorm(6), (3, 6)),
    ("layernorm_nobias", lambda: nn.LayerNorm(6, bias=False), (2, 3, 6)),
    ("relu", lambda: nn.ReLU(), (3, 4)),
    ("gelu", lambda: nn.GELU(), (3, 4)),
    ("gelu_tanh", lambda: nn.GELU("tanh"), (3, 4)),
    ("head", lambda: nn.Head(8, 4, block_size=6), (2, 5, 8)),
    ("multihead", lambda: nn.MultiHeadAttention(8, 2, block_size=6, scale=8 ** -0.5), (2, 5, 8)),
    ("causal_self_attention", lambda: nn.CausalSelfAttention(8, 2, block_size=6), (2, 5, 8)),
    ("causal_self_attention_composite", lambda: nn.CausalSelfAttention(8, 2, block_size=6, fused=False), (2, 5, 8)),
    ("rotary_attention", lambda: nn.CausalSelfAttention(8, 2, 6, rotary=nn.RotaryEmbedding(4, 6, dtype=np.float64)), (2, 5, 8)),
    ("mlp", lambda: MLP(CFG), (2, 3, 8)),
    ("block", lambda: Block(CFG), (2, 4, 8)),
    ("sequential", lambda: nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)), (3, 4)),
])
def test_layer_gradcheck(name, make, shape, rng, device):
    tg.manual_seed(0)
    module = double(make(), device)
    check_module(module, leaf(rng, *shape, device=device))


def test_embedding_and_positions_gradcheck(rng, device):
    emb = double(nn.Embedding(7, 4), device)
    idx = np.array([[0, 3, 3], [6, 1, 0]])
    check_module(emb, constants=(backend.to_device(idx, device),))
    pos = double(nn.LearnedPositionalEmbedding(5, 4), device)
    check_module(pos, constants=(3,))


def test_dropout_module_gradcheck_and_eval_identity(rng):
    drop = nn.Dropout(0.4)

    def fn(x):
        tg.manual_seed(3)
        return drop(x)
    gradcheck(fn, [leaf(rng, 5, 6)])
    x = leaf(rng, 3, 3)
    assert drop.eval()(x) is x
    with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)                                  # at construction, not at the first step


# ------------------------------------------------------------ fused == composite == finite differences
_ANGLES = np.arange(5)[:, None] * 100.0 ** (-np.arange(0, 6, 2) / 6)
_ROPE = (np.cos(_ANGLES), np.sin(_ANGLES))          # the rotary tables: 5 positions, 3 pairs
FUSED_PAIRS = {
    "layer_norm": (lambda x, w, b: F.layer_norm(x, 6, w, b), lambda x, w, b: F.layer_norm_composite(x, 6, w, b),
                   [(2, 3, 6), (6,), (6,)]),
    "attention": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                  lambda q, k, v: F.scaled_dot_product_attention_composite(q, k, v, is_causal=True),
                  [(2, 2, 5, 3), (2, 2, 5, 3), (2, 2, 5, 3)]),
    "attention_not_causal_scaled": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=0.3),
                                    lambda q, k, v: F.scaled_dot_product_attention_composite(q, k, v, scale=0.3),
                                    [(3, 4, 2), (3, 6, 2), (3, 6, 5)]),
    "cross_entropy": (lambda z: F.cross_entropy(z, np.array([[1, 4, 0], [2, -100, 4]])),
                      lambda z: F.cross_entropy_composite(z, np.array([[1, 4, 0], [2, -100, 4]])), [(2, 5, 3)]),
    "gelu": (lambda x: F.gelu(x, "tanh"), F.gelu_composite, [(4, 5)]),
    "linear": (F.linear, F.linear_composite, [(2, 3, 4), (5, 4), (5,)]),
    "packed_attention": (lambda qkv: F.causal_self_attention(qkv, 2, scale=0.4),
                         lambda qkv: _packed_composite(qkv, 2, 0.4), [(2, 5, 12)]),
    "softmax": (lambda x: F.softmax(x, -1), lambda x: F.softmax_composite(x, -1), [(3, 5)]),
    "rms_norm": (lambda x, w: F.rms_norm(x, 6, w, 1e-5), lambda x, w: F.rms_norm_composite(x, 6, w, 1e-5),
                 [(2, 3, 6), (6,)]),
    "silu": (F.silu, F.silu_composite, [(4, 5)]),
    "swiglu": (F.swiglu, F.swiglu_composite, [(2, 3, 6), (2, 3, 6)]),
    "rotary_half": (lambda x: F.rotary_embedding(x, *_ROPE), lambda x: F.rotary_embedding_composite(x, *_ROPE),
                    [(2, 3, 5, 6)]),
    "rotary_interleaved": (lambda x: F.rotary_embedding(x, *_ROPE, layout="interleaved"),
                           lambda x: F.rotary_embedding_composite(x, *_ROPE, layout="interleaved"), [(2, 3, 5, 6)]),
    "grouped_query_attention": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True),
                                lambda q, k, v: F.scaled_dot_product_attention_composite(
                                    q, _groups(k, 3), _groups(v, 3), is_causal=True),
                                [(2, 6, 5, 3), (2, 2, 5, 3), (2, 2, 5, 3)]),
}


def _groups(kv, size):
    """Each key/value head repeated for its group of `size` query heads, by concatenation (an
    independent path from the fused op's expand)."""
    return tg.cat([kv[:, h:h + 1] for h in range(kv.shape[1]) for _ in range(size)], dim=1)


def _packed_composite(qkv, n_head, scale):
    B, T, C3 = qkv.shape
    q, k, v = qkv.reshape(B, T, 3, n_head, C3 // 3 // n_head).permute(2, 0, 3, 1, 4).split(1, dim=0)
    y = F.scaled_dot_product_attention_composite(q[0], k[0], v[0], is_causal=True, scale=scale)
    return y.permute(0, 2, 1, 3).reshape(B, T, C3 // 3)


@pytest.mark.parametrize("name", sorted(FUSED_PAIRS))
def test_fused_equals_composite_equals_finite_differences(name, rng, device):
    fused, composite, shapes = FUSED_PAIRS[name]
    inputs = [rng.standard_normal(s) for s in shapes]
    a = [tg.Tensor(backend.to_device(x, device), requires_grad=True) for x in inputs]
    b = [tg.Tensor(backend.to_device(x, device), requires_grad=True) for x in inputs]
    ya, yb = fused(*a), composite(*b)
    np.testing.assert_allclose(ya.numpy(), yb.numpy(), rtol=1e-12, atol=1e-12)
    g = backend.to_device(rng.standard_normal(ya.shape), device)
    ya.backward(g)
    yb.backward(g)
    for x, y in zip(a, b):
        np.testing.assert_allclose(backend.to_numpy(x.grad.data), backend.to_numpy(y.grad.data), rtol=1e-10, atol=1e-12)
    gradcheck(fused, [tg.Tensor(backend.to_device(x, device), requires_grad=True) for x in inputs])
    gradcheck(composite, [tg.Tensor(backend.to_device(x, device), requires_grad=True) for x in inputs])


def test_fused_attention_keeps_one_txt_array(rng):
    q, k, v = (leaf(rng, 1, 2, 8, 4) for _ in range(3))
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    kept = [a for a in vars(out._ctx).values() if isinstance(a, np.ndarray) and a.shape[-2:] == (8, 8)]
    assert len(kept) == 2 and kept[0] is kept[1]      # p, and p_drop which is p when dropout is off


# ------------------------------------------------------------ attention variants
def test_multihead_equals_causal_self_attention_with_copied_weights(rng, device):
    tg.manual_seed(1)
    mha = double(nn.MultiHeadAttention(8, 2, block_size=6, scale=8 ** -0.5))
    csa = double(nn.CausalSelfAttention.from_heads(mha))
    mha.to(device), csa.to(device)
    x = rng.standard_normal((3, 5, 8))
    xa = tg.Tensor(backend.to_device(x, device), requires_grad=True)
    xb = tg.Tensor(backend.to_device(x, device), requires_grad=True)
    ya, yb = mha(xa), csa(xb)
    np.testing.assert_allclose(ya.numpy(), yb.numpy(), rtol=1e-12, atol=1e-13)
    g = backend.to_device(rng.standard_normal(ya.shape), device)
    ya.backward(g)
    yb.backward(g)
    np.testing.assert_allclose(backend.to_numpy(xa.grad.data), backend.to_numpy(xb.grad.data), rtol=1e-10, atol=1e-12)
    g_qkv = backend.to_numpy(csa.c_attn.weight.grad.data).reshape(3, 2, 4, 8)     # (q|k|v, head, out, in)
    for h, head in enumerate(mha.heads):
        for j, part in enumerate((head.query, head.key, head.value)):
            np.testing.assert_allclose(backend.to_numpy(part.weight.grad.data), g_qkv[j, h], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(mha.c_proj.weight.grad.data), backend.to_numpy(csa.c_proj.weight.grad.data), rtol=1e-10)


def test_attention_weights_can_be_returned_and_are_causal(rng):
    csa = nn.CausalSelfAttention(8, 2, block_size=6)
    with nn.capture_attention(csa) as maps:
        csa(tg.Tensor(rng.standard_normal((1, 5, 8)).astype(np.float32)))
    assert list(maps) == [""]                  # the module itself is the attention
    w = maps[""]
    assert w.shape == (1, 2, 5, 5)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)
    assert np.all(np.triu(w[0, 0], 1) == 0)


def test_rotary_makes_scores_depend_on_relative_position(rng):
    rope = nn.RotaryEmbedding(4, 16, dtype=np.float64)
    q = rng.standard_normal((1, 4))
    k = rng.standard_normal((1, 4))
    scores = []
    for shift in (0, 5):
        qs = rope(tg.Tensor(np.repeat(q, 16, 0)))[3 + shift]
        ks = rope(tg.Tensor(np.repeat(k, 16, 0)))[1 + shift]
        scores.append((qs * ks).sum().item())
    assert scores[0] == pytest.approx(scores[1], rel=1e-12)


def test_the_two_rotary_layouts_are_one_rotation_with_the_coordinates_reordered(rng):
    half, interleaved = (nn.RotaryEmbedding(8, 6, dtype=np.float64, layout=layout) for layout in ("half", "interleaved"))
    x = rng.standard_normal((2, 3, 6, 8))
    order = np.r_[0:8:2, 1:8:2]                     # interleaved pairs (0,1),(2,3).. -> halves (0,4),(1,5)..
    a = interleaved(tg.Tensor(x), 0).numpy()[..., order]
    b = half(tg.Tensor(x[..., order]), 0).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    assert not np.allclose(half(tg.Tensor(x), 0).numpy(), interleaved(tg.Tensor(x), 0).numpy())
    np.testing.assert_allclose(np.linalg.norm(a, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-13)   # lengths kept


def test_rope_scaling_is_checked_and_linear_scaling_slows_every_rotation():
    from tinygrad_lm.nn.positional import rope_inv_freq
    plain = rope_inv_freq(8, 10000.0)
    np.testing.assert_allclose(rope_inv_freq(8, 10000.0, {"rope_type": "linear", "factor": 4.0}), plain / 4)
    np.testing.assert_array_equal(rope_inv_freq(8, 10000.0, {"rope_type": "default"}), plain)
    with pytest.raises(ValueError, match="rope_scaling type 'yarn' is not built here"):
        rope_inv_freq(8, 10000.0, {"rope_type": "yarn", "factor": 4.0})
    with pytest.raises(ValueError, match="llama3 scaling needs 'low_freq_factor'"):
        rope_inv_freq(8, 10000.0, {"rope_type": "llama3", "factor": 8.0})
    with pytest.raises(ValueError, match="rotary layout must be one of"):
        nn.RotaryEmbedding(8, 6, layout="pairs")
    with pytest.raises(ValueError, match="exceed the rotary tables' 6"):
        nn.RotaryEmbedding(8, 6)(tg.Tensor(np.zeros((1, 4, 8))), start=3)


def test_sinusoidal_table_values():
    from tinygrad_lm.nn.positional import sinusoidal_table
    t = sinusoidal_table(10, 6)
    assert t[0, 0] == 0 and t[0, 1] == 1
    assert t[3, 2] == pytest.approx(np.sin(3 / 10000 ** (2 / 6)))
    assert t[3, 5] == pytest.approx(np.cos(3 / 10000 ** (4 / 6)))


# ------------------------------------------------------------ Module machinery
def test_module_registration_state_dict_and_errors():
    tg.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2, bias=False))
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias", "2.weight"]
    assert net[0].weight.shape == (4, 3)                   # (out, in) as PyTorch
    state = net.state_dict()
    other = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2, bias=False))
    other.load_state_dict(state)
    np.testing.assert_array_equal(other[0].weight.numpy(), net[0].weight.numpy())
    with pytest.raises(KeyError, match=r"missing keys: 2.weight"):
        other.load_state_dict({k: v for k, v in state.items() if k != "2.weight"})
    with pytest.raises(KeyError, match=r"unexpected keys: extra"):
        other.load_state_dict({**state, "extra": np.zeros(1)})
    with pytest.raises(KeyError, match=r"0.weight: checkpoint \(4, 4\) vs model \(4, 3\)"):
        other.load_state_dict({**state, "0.weight": np.zeros((4, 4))})
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_pytorch_default_init_bounds():
    tg.manual_seed(0)
    lin = nn.Linear(64, 300)
    bound = 1 / 8
    assert np.abs(lin.weight.numpy()).max() <= bound and np.abs(lin.weight.numpy()).max() > 0.9 * bound
    assert lin.weight.numpy().std() == pytest.approx(bound / np.sqrt(3), rel=0.05)
    emb = nn.Embedding(1000, 50)
    assert emb.weight.numpy().std() == pytest.approx(1.0, rel=0.05)


def test_zero_grad_and_to_dtype():
    lin = nn.Linear(2, 2).double()
    assert lin.weight.dtype == np.float64
    lin(tg.Tensor(np.ones((1, 2)))).sum().backward()
    assert lin.weight.grad is not None
    lin.zero_grad()
    assert lin.weight.grad is None


def test_explicit_boolean_attention_mask(rng):
    q, k, v = (tg.Tensor(rng.standard_normal((2, 4, 3))) for _ in range(3))
    causal = np.tril(np.ones((4, 4), dtype=bool))
    np.testing.assert_allclose(F.scaled_dot_product_attention(q, k, v, attn_mask=causal).numpy(),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True).numpy(), rtol=1e-12)
    only_first = np.zeros((4, 4), dtype=bool)
    only_first[:, 0] = True
    out, weights = F.scaled_dot_product_attention(q, k, v, attn_mask=only_first, return_weights=True)
    np.testing.assert_allclose(weights.numpy()[..., 0], 1.0)
    np.testing.assert_allclose(out.numpy(), np.repeat(v.numpy()[:, :1], 4, axis=1), rtol=1e-12)


def test_no_init_weights_draws_nothing_and_leaves_the_generator_alone():
    tg.manual_seed(0)
    expected = nn.Linear(3, 4).weight.numpy()
    tg.manual_seed(0)
    with nn.init.no_init_weights():
        skipped = nn.Linear(3, 4)
    assert not skipped.weight.numpy().any() and not skipped.bias.numpy().any()
    np.testing.assert_array_equal(nn.Linear(3, 4).weight.numpy(), expected)     # no draw was spent
    assert nn.init._skip_random is False
