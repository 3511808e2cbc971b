"""The encoder-decoder Transformer (nn/transformer.py) and the Seq2Seq model (models/seq2seq.py).

1. cross-attention (T queries, S != T keys, a padding mask, no causal mask) through the fused op:
   fused == composite == finite differences;
2. nn.MultiheadAttention == torch.nn.MultiheadAttention with copied weights, float64: outputs,
   returned weights (averaged and per head) and every gradient, for self- and cross-attention,
   boolean and float masks;
3. nn.Transformer == torch.nn.Transformer with copied weights, float64, for both LayerNorm
   placements, with padding masks and a causal target mask: outputs and every gradient <= 1e-9
   relative, under a random upstream gradient; parameter names == torch's state_dict;
4. finite-difference gradchecks of the layers; Seq2Seq: padding changes nothing, and is left out
   of the loss.
The bodies run on every device (cpu, strict, cuda).
"""
import numpy as np
import pytest

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm import backend, nn
from tinygrad_lm.errors import ConfigError
from tinygrad_lm.gradcheck import gradcheck
from tinygrad_lm.models import Seq2Seq, Seq2SeqConfig

RTOL, ATOL = 1e-9, 1e-12
pytestmark = pytest.mark.filterwarnings("ignore:.*(enable_nested_tensor|mismatched key_padding_mask):UserWarning")


def leaf(x, device):
    return tg.Tensor(backend.to_device(np.array(x), device), requires_grad=True)


def on(device, x):
    return tg.Tensor(backend.to_device(np.asarray(x), device))


def grad_of(t):
    return backend.to_numpy(t.grad.data)


def copy_from_torch(ours, theirs, device):
    ours.to(dtype=np.float64)               # first: loading into float32 arrays would round the values
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours.to(device)


def assert_param_grads_equal(ours, theirs):
    mine = dict(ours.named_parameters())
    assert set(mine) == {n for n, _ in theirs.named_parameters()}
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(grad_of(mine[name]), p.grad.numpy(), rtol=RTOL, atol=ATOL, err_msg=name)


def padding(N, S, lengths):
    """(N, S) boolean, True at the padding after each sequence's length (PyTorch's convention)."""
    return np.arange(S)[None, :] >= np.asarray(lengths)[:, None]


# ------------------------------------------------------------------ 1. cross-attention, fused op
def test_cross_attention_fused_equals_composite_equals_finite_differences(rng, device):
    """T = 3 decoder queries attend to S = 5 encoder keys; sequence 0 has 3 real source tokens,
    sequence 1 all 5: the (N, 1, 1, S) keep mask broadcasts over heads and queries."""
    N, H, T, S, D, Dv = 2, 2, 3, 5, 4, 3
    keep = on(device, ~padding(N, S, [3, 5]).reshape(N, 1, 1, S))
    shapes = [(N, H, T, D), (N, H, S, D), (N, H, S, Dv)]
    arrays = [rng.standard_normal(s) for s in shapes]
    fused = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=keep)                  # noqa: E731
    composite = lambda q, k, v: F.scaled_dot_product_attention_composite(q, k, v, attn_mask=keep)    # noqa: E731
    a = [leaf(x, device) for x in arrays]
    b = [leaf(x, device) for x in arrays]
    ya, yb = fused(*a), composite(*b)
    assert ya.shape == (N, H, T, Dv)
    np.testing.assert_allclose(ya.numpy(), yb.numpy(), rtol=1e-12, atol=1e-12)
    g = backend.to_device(rng.standard_normal(ya.shape), device)
    ya.backward(g)
    yb.backward(g)
    for x, y in zip(a, b):
        np.testing.assert_allclose(grad_of(x), grad_of(y), rtol=1e-10, atol=1e-12)
    assert not np.any(grad_of(a[1])[0, :, 3:]) and not np.any(grad_of(a[2])[0, :, 3:])   # padding: no gradient
    gradcheck(fused, [leaf(x, device) for x in arrays])
    gradcheck(composite, [leaf(x, device) for x in arrays])


def test_cross_attention_matches_torch_sdpa(rng):
    torch = pytest.importorskip("torch")
    N, H, T, S, D = 2, 2, 3, 5, 4
    keep = ~padding(N, S, [2, 4]).reshape(N, 1, 1, S)
    arrays = [rng.standard_normal(s) for s in [(N, H, T, D), (N, H, S, D), (N, H, S, D)]]
    ours = [leaf(x, "cpu") for x in arrays]
    theirs = [torch.tensor(x, requires_grad=True) for x in arrays]
    y = F.scaled_dot_product_attention(*ours, attn_mask=keep)
    yt = torch.nn.functional.scaled_dot_product_attention(*theirs, attn_mask=torch.tensor(keep))
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    yt.backward(torch.tensor(g))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(grad_of(a), b.grad.numpy(), rtol=RTOL, atol=ATOL)


# ------------------------------------------------------------------ 2. MultiheadAttention == torch's
MHA_CASES = {
    "self-batch-first-padding": dict(batch_first=True, cross=False, kpm="bool", mask=None),
    "self-causal-bool-and-padding": dict(batch_first=False, cross=False, kpm="bool", mask="bool-causal"),
    "cross-padding": dict(batch_first=True, cross=True, kpm="bool", mask=None),
    "cross-float-masks": dict(batch_first=False, cross=True, kpm="float", mask="float"),
    "cross-per-head-mask-no-bias": dict(batch_first=True, cross=True, kpm=None, mask="bool-per-head", bias=False),
    "self-unbatched-causal-float": dict(batch_first=False, cross=False, kpm=None, mask="float-causal", unbatched=True),
}


@pytest.mark.parametrize("case", sorted(MHA_CASES))
@pytest.mark.parametrize("average", [True, False])
def test_multihead_attention_matches_torch(case, average, rng, device):
    torch = pytest.importorskip("torch")
    c = MHA_CASES[case]
    E, H, N, L, S = 8, 2, 3, 4, (5 if c["cross"] else 4)
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(E, H, bias=c.get("bias", True), batch_first=c["batch_first"]).double()
    with torch.no_grad():                       # PyTorch starts the biases at 0: make them count
        for p in theirs.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ours = copy_from_torch(nn.MultiheadAttention(E, H, bias=c.get("bias", True), batch_first=c["batch_first"]),
                           theirs, device)
    unbatched = c.get("unbatched", False)

    def shaped(length):
        if unbatched:
            return (length, E)
        return (N, length, E) if c["batch_first"] else (length, N, E)
    q = rng.standard_normal(shaped(L))
    kv = [rng.standard_normal(shaped(S)) for _ in range(2)] if c["cross"] else None
    kw_t, kw_o = {}, {}
    if c["kpm"] is not None:
        kpm = padding(N, S, [S, 2, 3])
        kpm = kpm if c["kpm"] == "bool" else np.where(kpm, -np.inf, rng.standard_normal((N, S)))
        kw_t["key_padding_mask"], kw_o["key_padding_mask"] = torch.tensor(kpm), on(device, kpm)
    mask = c["mask"]
    if mask is not None:
        future = np.triu(np.ones((L, S), dtype=bool), 1)
        m = {"bool-causal": future, "float-causal": np.where(future, -np.inf, 0.0),
             "float": rng.standard_normal((L, S)),
             "bool-per-head": rng.random((N * H, L, S)) < 0.3}[mask]
        if mask == "bool-per-head":
            m[..., 0] = False                   # every query keeps a key (PyTorch gives NaN otherwise)
        kw_t["attn_mask"], kw_o["attn_mask"] = torch.tensor(m), on(device, m)
    tq = torch.tensor(q, requires_grad=True)
    oq = leaf(q, device)
    if c["cross"]:
        tk, tv = (torch.tensor(x, requires_grad=True) for x in kv)
        ok, ov = (leaf(x, device) for x in kv)
    else:
        tk = tv = tq
        ok = ov = oq
    yt, wt = theirs(tq, tk, tv, average_attn_weights=average, **kw_t)
    y, w = ours(oq, ok, ov, average_attn_weights=average, **kw_o)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert w.shape == tuple(wt.shape)
    np.testing.assert_allclose(w.numpy(), wt.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(g))
    y.backward(backend.to_device(g, device))
    for a, b in [(oq, tq)] + ([(ok, tk), (ov, tv)] if c["cross"] else []):
        np.testing.assert_allclose(grad_of(a), b.grad.numpy(), rtol=RTOL, atol=ATOL)
    assert_param_grads_equal(ours, theirs)


def test_multihead_attention_need_weights_false_and_bad_arguments(rng):
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = tg.Tensor(rng.standard_normal((2, 3, 8)).astype(np.float32))
    y, w = mha(x, x, x, need_weights=False)
    assert w is None and y.shape == (2, 3, 8)
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(8, 3)
    with pytest.raises(NotImplementedError, match="add_bias_kv"):
        nn.MultiheadAttention(8, 2, add_bias_kv=True)


def test_boolean_and_float_masks_mean_the_same(rng, device):
    """True (not allowed) == -inf added; False == 0 added."""
    tg.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True).to(device, dtype=np.float64)
    q, kv = on(device, rng.standard_normal((2, 3, 8))), on(device, rng.standard_normal((2, 5, 8)))
    kpm, am = padding(2, 5, [5, 2]), np.triu(np.ones((3, 5), dtype=bool), 2)
    y_bool, w_bool = mha(q, kv, kv, key_padding_mask=kpm, attn_mask=am)
    y_float, w_float = mha(q, kv, kv, key_padding_mask=on(device, np.where(kpm, -np.inf, 0.0)),
                           attn_mask=on(device, np.where(am, -np.inf, 0.0)))
    np.testing.assert_allclose(y_bool.numpy(), y_float.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w_bool.numpy(), w_float.numpy(), rtol=1e-12, atol=1e-12)
    assert not np.any(w_bool.numpy()[1][:, 2:])              # padded keys get no weight
    assert not np.any(w_bool.numpy()[0][0, 3:])              # nor keys the attn_mask forbids


# ------------------------------------------------------------------ 3. Transformer == torch's
def _pair(torch, device, norm_first, activation="relu", batch_first=True, bias=True):
    torch.manual_seed(1)
    kw = dict(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=12, dropout=0.0,
              activation=activation, batch_first=batch_first, norm_first=norm_first, bias=bias)
    theirs = torch.nn.Transformer(**kw).double()
    if bias:
        with torch.no_grad():                   # PyTorch starts biases at 0 and LayerNorms at 1: perturb
            for p in theirs.parameters():
                if p.ndim == 1:
                    p.add_(0.1 * torch.randn_like(p))
    return copy_from_torch(nn.Transformer(**kw), theirs, device), theirs


def test_transformer_parameter_names_are_torch_state_dict_names():
    torch = pytest.importorskip("torch")
    ours = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=2, dim_feedforward=4)
    theirs = torch.nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=2, dim_feedforward=4)
    shapes = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert {k: tuple(p.shape) for k, p in ours.named_parameters()} == shapes
    assert "decoder.layers.1.multihead_attn.in_proj_weight" in shapes and "encoder.norm.weight" in shapes


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-LN", "pre-LN"])
@pytest.mark.parametrize("variant", ["batch-first-relu", "seq-first-gelu", "no-bias"])
def test_transformer_matches_torch(norm_first, variant, rng, device):
    """Outputs, the inputs' gradients and every parameter's gradient == torch.nn.Transformer's,
    float64, random upstream gradient; source and target padding masks, causal target mask."""
    torch = pytest.importorskip("torch")
    batch_first = variant != "seq-first-gelu"
    ours, theirs = _pair(torch, device, norm_first, "gelu" if variant == "seq-first-gelu" else "relu",
                         batch_first, bias=variant != "no-bias")
    N, S, T, E = 3, 6, 4, 8
    src, tgt = rng.standard_normal((N, S, E)), rng.standard_normal((N, T, E))
    if not batch_first:
        src, tgt = src.transpose(1, 0, 2).copy(), tgt.transpose(1, 0, 2).copy()
    src_pad, tgt_pad = padding(N, S, [6, 3, 5]), padding(N, T, [4, 4, 2])
    causal_t = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=torch.float64)
    causal = nn.Transformer.generate_square_subsequent_mask(T, device=device, dtype=np.float64)
    np.testing.assert_array_equal(causal.numpy(), causal_t.numpy())
    ts, tt = torch.tensor(src, requires_grad=True), torch.tensor(tgt, requires_grad=True)
    os_, ot = leaf(src, device), leaf(tgt, device)
    yt = theirs(ts, tt, tgt_mask=causal_t, src_key_padding_mask=torch.tensor(src_pad),
                tgt_key_padding_mask=torch.tensor(tgt_pad), memory_key_padding_mask=torch.tensor(src_pad))
    y = ours(os_, ot, tgt_mask=causal, src_key_padding_mask=src_pad, tgt_key_padding_mask=tgt_pad,
             memory_key_padding_mask=src_pad)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(g))
    y.backward(backend.to_device(g, device))
    np.testing.assert_allclose(grad_of(os_), ts.grad.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(grad_of(ot), tt.grad.numpy(), rtol=RTOL, atol=ATOL)
    assert_param_grads_equal(ours, theirs)


def test_is_causal_without_a_mask_means_the_causal_mask(rng, device):
    """tgt_is_causal=True alone (PyTorch wants the mask too) builds the causal mask: the same
    output as the explicit mask, and not the output without one."""
    tg.manual_seed(0)
    model = nn.Transformer(8, 2, 1, 2, 12, dropout=0.0, batch_first=True).to(device, dtype=np.float64)
    src, tgt = on(device, rng.standard_normal((2, 5, 8))), on(device, rng.standard_normal((2, 4, 8)))
    hint = model(src, tgt, tgt_is_causal=True).numpy()
    explicit = model(src, tgt, tgt_mask=nn.Transformer.generate_square_subsequent_mask(4, device, np.float64)).numpy()
    np.testing.assert_allclose(hint, explicit, rtol=1e-12, atol=1e-12)
    assert not np.allclose(hint, model(src, tgt).numpy())


def test_transformer_layers_alone_match_torch(rng, device):
    """An encoder layer with a boolean source mask and a decoder layer with a memory_mask, each alone."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(2)
    enc_t = torch.nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, batch_first=True).double()
    dec_t = torch.nn.TransformerDecoderLayer(8, 2, 12, dropout=0.0, batch_first=True, norm_first=True).double()
    enc = copy_from_torch(nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, batch_first=True), enc_t, device)
    dec = copy_from_torch(nn.TransformerDecoderLayer(8, 2, 12, dropout=0.0, batch_first=True, norm_first=True),
                          dec_t, device)
    x, mem = rng.standard_normal((2, 5, 8)), rng.standard_normal((2, 6, 8))
    src_mask = rng.random((5, 5)) < 0.3
    np.fill_diagonal(src_mask, False)
    memory_mask = rng.standard_normal((5, 6))
    np.testing.assert_allclose(enc(on(device, x), src_mask=src_mask).numpy(),
                               enc_t(torch.tensor(x), src_mask=torch.tensor(src_mask)).detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dec(on(device, x), on(device, mem), memory_mask=on(device, memory_mask)).numpy(),
                               dec_t(torch.tensor(x), torch.tensor(mem),
                                     memory_mask=torch.tensor(memory_mask)).detach().numpy(), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ 4. gradchecks, Seq2Seq
def check_module(module, *inputs, gradcheck_kw=None, **kwargs):
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().requires_grad_() for _, p in module.named_parameters()]

    def fn(*tensors):
        xs, ps = tensors[:len(inputs)], tensors[len(inputs):]
        out = nn.functional_call(module, dict(zip(names, ps)), *xs, **kwargs)
        return out[0] if isinstance(out, tuple) else out
    return gradcheck(fn, list(inputs) + params, **(gradcheck_kw or {}))


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-LN", "pre-LN"])
def test_layers_gradcheck(norm_first, rng, device):
    tg.manual_seed(0)
    enc = nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, batch_first=True, norm_first=norm_first,
                                     activation="gelu").to(device, dtype=np.float64)
    check_module(enc, leaf(rng.standard_normal((2, 3, 4)), device), src_key_padding_mask=padding(2, 3, [3, 2]),
                 gradcheck_kw=dict(max_elements=0, n_directions=6))
    dec = nn.TransformerDecoderLayer(4, 2, 6, dropout=0.0, batch_first=True,
                                     norm_first=norm_first).to(device, dtype=np.float64)
    check_module(dec, leaf(rng.standard_normal((2, 3, 4)), device), leaf(rng.standard_normal((2, 4, 4)), device),
                 tgt_is_causal=True, memory_key_padding_mask=padding(2, 4, [2, 4]),
                 gradcheck_kw=dict(max_elements=0, n_directions=6))


def test_cross_attention_module_gradcheck(rng, device):
    tg.manual_seed(0)
    mha = nn.MultiheadAttention(4, 2, batch_first=True).to(device, dtype=np.float64)
    q, kv = leaf(rng.standard_normal((2, 3, 4)), device), leaf(rng.standard_normal((2, 5, 4)), device)
    check_module(mha, q, kv, kv, key_padding_mask=padding(2, 5, [5, 3]))


def small_seq2seq(device="cpu", **kw):
    tg.manual_seed(0)
    cfg = Seq2SeqConfig(**{**dict(src_vocab_size=11, tgt_vocab_size=9, block_size=7, d_model=8, nhead=2,
                                  num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=16, dropout=0.0), **kw})
    return Seq2Seq(cfg).to(device, dtype=np.float64)


@pytest.mark.parametrize("kw", [{}, dict(norm_first=False, pos_encoding="learned", tie_weights=False)],
                         ids=["pre-LN-sinusoidal-tied", "post-LN-learned"])
def test_seq2seq_padding_changes_nothing_and_is_left_out_of_the_loss(kw, device):
    """A pair decoded alone and the same pair padded in a batch give the same logits at its real
    positions, and the batch loss is the mean over real target tokens only."""
    model = small_seq2seq(device, **kw)
    src = np.array([[5, 6, 7, 8, 2], [9, 4, 2, 0, 0]])           # 0 = pad
    tgt_in = np.array([[1, 3, 4, 5], [1, 6, 0, 0]])
    tgt_out = np.array([[3, 4, 5, 2], [6, 2, 0, 0]])
    logits, loss = model(src, tgt_in, tgt_out)
    assert logits.shape == (2, 4, 9)
    alone, _ = model(src[1:, :3], tgt_in[1:, :2], tgt_out[1:, :2])
    np.testing.assert_allclose(logits.numpy()[1, :2], alone.numpy()[0], rtol=1e-10, atol=1e-12)
    lg = logits.numpy()
    lp = lg - lg.max(-1, keepdims=True)
    lp -= np.log(np.exp(lp).sum(-1, keepdims=True))
    real = tgt_out != 0
    expected = -lp[np.nonzero(real) + (tgt_out[real],)].mean()
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-12)
    _, loss_ignored = model(src, tgt_in, np.where(real, tgt_out, -100))        # -100 means the same
    np.testing.assert_allclose(loss_ignored.item(), loss.item(), rtol=1e-12)


def test_seq2seq_gradcheck_of_every_parameter(device):
    model = small_seq2seq(device, d_model=4, dim_feedforward=6, num_encoder_layers=1, num_decoder_layers=1,
                          pos_encoding="learned", share_embeddings=True, src_vocab_size=9)
    src, tgt_in, tgt_out = np.array([[5, 6, 2], [7, 2, 0]]), np.array([[1, 3, 4], [1, 8, 0]]), \
        np.array([[3, 4, 2], [8, 2, 0]])
    names = [n for n, _ in model.named_parameters()]
    assert "src_embed.weight" in names and "tgt_embed.weight" not in names        # shared: one table
    params = [p.detach().requires_grad_() for _, p in model.named_parameters()]
    # ~500 numbers: along random directions over all of them at once (Chainer's mode), not one by one
    gradcheck(lambda *ps: nn.functional_call(model, dict(zip(names, ps)), src, tgt_in, tgt_out)[1], params,
              max_elements=0, n_directions=6)


@pytest.mark.parametrize("bad, match", [
    (dict(d_model=10, nhead=4), "divisible"), (dict(activation="tanh"), "activation"),
    (dict(share_embeddings=True, src_vocab_size=5, tgt_vocab_size=6), "share_embeddings"),
    (dict(eos_id=70), "eos_id"), (dict(pos_encoding="rotary"), "pos_encoding")])
def test_seq2seq_config_refuses_bad_settings(bad, match):
    with pytest.raises(ConfigError, match=match):
        Seq2SeqConfig(**bad)


def test_seq2seq_refuses_bad_ids():
    model = small_seq2seq()
    with pytest.raises(ValueError, match="block_size"):
        model(np.ones((1, 9), dtype=np.int64), np.ones((1, 2), dtype=np.int64))
    with pytest.raises(Exception, match="tgt_in"):
        model(np.ones((1, 3), dtype=np.int64), np.array([[1, 9]]))
