"""The attention weights of a Seq2Seq (viz/alignment.py) and its alignment picture.

1. attention_weights returns the model's own numbers: the same as asking each MultiheadAttention
   for its weights on the inputs the layers hand it, recomputed here layer by layer (pre- and
   post-LayerNorm), with padding and the causal mask respected;
2. an alignment is the greedy decode, and its cross-attention rows are the weights of the decode
   itself: the same as recorded at each cached decoding step;
3. the interactive view and the figure take it as it is; the model is left as it was;
4. `attention` on a seq2seq checkpoint writes the alignment's PNG, .npy and page;
5. (slow, about a minute) a model trained for 250 steps looks at the month's name while it writes
   the month's digits, not while it writes the year (150 steps are not enough: the test fails).
Bodies 1-3 run on every device (cpu, strict, cuda).
"""
import numpy as np
import pytest

import tinygrad_lm as tg
from tinygrad_lm import backend
from tinygrad_lm.viz.attention_view import BIDIRECTIONAL, CAUSAL, CROSS
from tinygrad_lm.models import Seq2Seq, Seq2SeqConfig
from tinygrad_lm.nn.transformer import MultiheadAttention
from tinygrad_lm.viz.alignment import alignment, alignment_view, attention_weights, record_attention
from tinygrad_lm.decoding.beam_search import DecoderSteps, greedy_decode
from tinygrad_lm.tensor import Tensor, no_grad

PAD, BOS, EOS = 0, 1, 2
SRC = np.array([[3, 4, 5, 6, EOS], [7, 8, EOS, PAD, PAD]])
TGT_IN = np.array([[BOS, 5, 3, 7], [BOS, 4, PAD, PAD]])


def model_for(device, norm_first=True, seed=0):
    tg.manual_seed(seed)
    cfg = Seq2SeqConfig(src_vocab_size=10, tgt_vocab_size=8, block_size=8, d_model=8, nhead=2, num_encoder_layers=2,
                        num_decoder_layers=2, dim_feedforward=16, dropout=0.1, norm_first=norm_first, tie_weights=False)
    model = Seq2Seq(cfg).to(dtype=np.float64)
    model.lm_head.weight.data *= 3.0             # peaky outputs: decodes of various lengths
    return model.to(device)


def heads(attention, query, key, **kw):
    _, w = attention(query, key, key, need_weights=True, average_attn_weights=False, **kw)
    return backend.to_numpy(w.data)


@no_grad()
def by_hand(model, src, tgt_in):
    """Each layer run as its docstring says, each attention asked for its weights on its input."""
    c, t = model.config, model.transformer
    src_pad, tgt_pad = Tensor(src == PAD, device=model.device), Tensor(tgt_in == PAD, device=model.device)
    src_ids, tgt_ids = (backend.to_device(a, model.device) for a in (src, tgt_in))
    pre = c.norm_first
    x = model._embed(model.src_embed, model.src_pos, src_ids)
    enc = []
    for layer in t.encoder.layers:
        enc.append(heads(layer.self_attn, layer.norm1(x) if pre else x, layer.norm1(x) if pre else x,
                         key_padding_mask=src_pad))
        x = layer(x, src_key_padding_mask=src_pad)
    memory = t.encoder.norm(x)
    y = model._embed(model.tgt_embed, model.tgt_pos, tgt_ids)
    dec, cross = [], []
    for layer in t.decoder.layers:
        h = layer.norm1(y) if pre else y
        dec.append(heads(layer.self_attn, h, h, key_padding_mask=tgt_pad, is_causal=True))
        sa, _ = layer.self_attn(h, h, h, key_padding_mask=tgt_pad, is_causal=True, need_weights=False)
        h = y + sa if pre else layer.norm1(y + sa)          # the input of the cross-attention block
        cross.append(heads(layer.multihead_attn, layer.norm2(h) if pre else h, memory, key_padding_mask=src_pad))
        y = layer(y, memory, tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad, tgt_is_causal=True)
    return {"encoder": np.stack(enc), "decoder": np.stack(dec), "cross": np.stack(cross)}


# ------------------------------------------------------------------ 1. the model's own weights
@pytest.mark.parametrize("norm_first", [True, False])
def test_attention_weights_are_the_models_own(device, norm_first):
    model = model_for(device, norm_first).eval()
    got = attention_weights(model, SRC, TGT_IN)
    want = by_hand(model, SRC, TGT_IN)
    L, B, H, S, T = 2, 2, 2, SRC.shape[1], TGT_IN.shape[1]
    assert {k: v.shape for k, v in got.items()} == {"encoder": (L, B, H, S, S), "decoder": (L, B, H, T, T),
                                                   "cross": (L, B, H, T, S)}
    for kind in want:
        np.testing.assert_allclose(got[kind], want[kind], rtol=1e-10, atol=1e-12, err_msg=kind)
        np.testing.assert_allclose(got[kind].sum(-1), 1.0, rtol=1e-10, err_msg=kind)
    assert np.all(got["cross"][:, 1, :, :, 3:] == 0) and np.all(got["encoder"][:, 1, :, :, 3:] == 0)  # padding
    assert np.all(np.triu(np.ones((T, T), bool), 1) <= (got["decoder"] == 0))                      # the future
    assert got["cross"].std() > 1e-3              # not uniform: a random model attends unevenly


def test_attention_weights_leave_the_model_as_it_was(device):
    model = model_for(device).train()
    with pytest.raises(ValueError):                              # a failing pass still restores the modules
        attention_weights(model, SRC, np.full((2, 20), BOS))
    attention_weights(model, SRC, TGT_IN)
    assert model.training
    for layer in model.transformer.decoder.layers:
        assert type(layer.self_attn) is MultiheadAttention and type(layer.multihead_attn) is MultiheadAttention
    assert all(type(layer.self_attn) is MultiheadAttention for layer in model.transformer.encoder.layers)


# ------------------------------------------------------------------ 2. the decode's weights
@pytest.mark.parametrize("row", [0, 1])
def test_alignment_is_the_greedy_decode_and_its_weights(device, row):
    model = model_for(device, seed=3).eval()
    a = alignment(model, SRC[row])
    decoded = greedy_decode(model, SRC[row:row + 1])[0]
    np.testing.assert_array_equal(a.output, decoded[decoded != PAD])
    n, S = len(a.output), SRC.shape[1]
    assert a.cross.shape == (2, 2, n, S) and a.encoder.shape == (2, 2, S, S) and a.decoder.shape == (2, 2, n, n)
    np.testing.assert_allclose(a.cross_mean, a.cross.mean(axis=(0, 1)))
    # the weights recorded at each cached decoding step: step t's one query is row t of the alignment
    with record_attention(model) as rec, no_grad():
        memory, pad = model.encode(SRC[row:row + 1])
        steps = DecoderSteps(model, memory, pad)
        tokens = np.array([[BOS]])
        for t in range(n):
            steps.step(tokens)
            for layer, r in enumerate(rec["cross"]):
                assert r.weights.shape == (1, 2, 1, S)
                np.testing.assert_allclose(r.weights[0, :, 0], a.cross[layer, :, t], rtol=1e-9, atol=1e-12)
            for layer, r in enumerate(rec["decoder"]):
                np.testing.assert_allclose(r.weights[0, :, 0], a.decoder[layer, :, t, :t + 1], rtol=1e-9, atol=1e-12)
            tokens = np.concatenate([tokens, a.output[None, t:t + 1]], axis=1)


# ------------------------------------------------------------------ 3. view and figure
def test_alignment_view_and_figure(device, tmp_path):
    model = model_for(device, seed=3).eval()
    a = alignment(model, SRC[0])
    src_tokens = [str(i) for i in SRC[0]]
    out_tokens = [str(i) for i in a.output]
    view = alignment_view(a, src_tokens, out_tokens)
    assert [s["kind"] for s in view.sections] == [CROSS, BIDIRECTIONAL, CAUSAL]
    np.testing.assert_array_equal(view.weights, a.cross)
    assert view.sections[0]["query_tokens"] == out_tokens and view.sections[0]["key_tokens"] == src_tokens
    assert view.sections[2]["key_tokens"] == ["<bos>"] + out_tokens[:-1]
    assert "cross-attention" in view.to_html()
    pytest.importorskip("matplotlib")
    from tinygrad_lm.viz.plots import plot_alignment
    fig = plot_alignment(a.cross, src_tokens, out_tokens, tmp_path / "alignment.png")
    assert (tmp_path / "alignment.png").stat().st_size > 1000
    assert len(fig.axes) == 2 * 2 + 1
    np.testing.assert_allclose(fig.axes[-1].images[0].get_array(), a.cross_mean)


# ------------------------------------------------------------------ 4. the attention command
def test_attention_command_draws_a_seq2seq_checkpoints_alignment(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from tinygrad_lm.training import checkpoint
    from tinygrad_lm.cli import main
    from tinygrad_lm.data.dates import date_tokenizer
    from tinygrad_lm.viz.alignment import text_alignment
    tok = date_tokenizer()
    tg.manual_seed(1)
    cfg = Seq2SeqConfig(src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size, block_size=12, d_model=8,
                        nhead=2, num_encoder_layers=1, num_decoder_layers=2, dim_feedforward=16, dropout=0.0)
    model = Seq2Seq(cfg)
    ckpt = checkpoint.save(tmp_path / "s2s.npz", model, meta={"model_config": cfg.to_dict(),
                                                               "model_family": "seq2seq",
                                                               "tokenizer": {"type": tok.kind, **tok.to_dict()}})
    out, page = tmp_path / "al.png", tmp_path / "al.html"
    main(["attention", "--model", str(ckpt), "--prompt", "3 March 2021", "--out", str(out), "--html", str(page)])
    a, source_tokens, output_tokens = text_alignment(model, tok, "3 March 2021")
    assert source_tokens == list("3 March 2021")
    np.testing.assert_allclose(np.load(tmp_path / "al.npy"), a.cross, rtol=1e-6)
    assert out.stat().st_size > 1000
    text = page.read_text(encoding="utf-8")
    assert all(kind in text for kind in (CROSS, BIDIRECTIONAL, CAUSAL))
    assert "(2, 2, " in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no character of this model's vocabulary"):
        main(["attention", "--model", str(ckpt), "--prompt", "\u20ac\u20ac", "--out", str(out)])


# ------------------------------------------------------------------ 5. the month lights up
def month_span(source):
    """Where the month's name (or its 3-letter abbreviation) stands in a date as written, or None."""
    from tinygrad_lm.data.dates import MONTHS
    low = source.lower()
    for names in ([m.lower() for m in MONTHS], [m[:3].lower() for m in MONTHS]):
        found = [(low.find(n), len(n)) for n in names if n in low]
        if found:
            return found[0][0], found[0][0] + found[0][1]
    return None


@pytest.mark.slow
def test_a_briefly_trained_model_looks_at_the_month_name_to_write_the_month():
    """A small Seq2Seq trained for a few hundred steps on the dates task: while writing the month's
    digits (positions 5 and 6 of YYYY-MM-DD) most of its cross-attention (averaged over layers
    and heads) falls on the month's name, and far less while writing the year."""
    from tinygrad_lm.data.dates import date_pairs, date_tokenizer, encode_pairs, pairs_of_dates, split_dates
    from tinygrad_lm.optim import AdamW
    from tinygrad_lm.viz.alignment import text_alignment
    from tinygrad_lm.data.pairs import PairBatches
    tok = date_tokenizer()
    train_dates, val_dates = split_dates(seed=0)
    steps, batch = 250, 32
    tg.manual_seed(0)
    cfg = Seq2SeqConfig(src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size, block_size=40, d_model=32,
                        nhead=4, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=128, dropout=0.0,
                        share_embeddings=True)
    model = Seq2Seq(cfg)
    batches = PairBatches(encode_pairs(date_pairs(steps * batch, seed=1, dates=train_dates), tok), 40, batch)
    opt = AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.98), weight_decay=0.0)
    for _ in range(steps):
        _, loss = model(*batches.next())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    month, year = [], []
    for source, _ in pairs_of_dates(val_dates[::150], seed=2):
        span = month_span(source)
        if span is None:
            continue
        a, source_tokens, _ = text_alignment(model, tok, source, 12)
        assert source_tokens == list(source) and a.cross.shape[2:] == (len(a.output), len(source))
        if len(a.output) > 6:
            on_name = a.cross_mean[:, span[0]:span[1]].sum(1)
            month.append(on_name[5:7].mean())
            year.append(on_name[0:4].mean())
    assert len(month) >= 10
    assert np.mean(month) > 0.5 and np.mean(month) > 3 * np.mean(year), (np.mean(month), np.mean(year))
