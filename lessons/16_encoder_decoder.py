# %% [markdown]
# # Lesson 16 — Encoder-decoder transformers
#
# The original Transformer ("Attention is all you need") was built to translate: read a whole
# sentence in one language, write it in another. It has two stacks:
#
# - an **encoder** (as BERT, lesson 14): self-attention with no mask, every source token sees
#   every other; its output, one vector per source token, is the *memory*;
# - a **decoder** (as GPT, lessons 5-10): masked (causal) self-attention over what it has written
#   so far, plus, in every layer, an **encoder-decoder attention** (cross-attention) whose queries
#   come from the decoder and whose keys and values come from the encoder's output.
#
# The tutorial's description, which this lesson turns into code and checks: *the output of the top
# encoder is transformed into a set of attention vectors K and V, used by each decoder in its
# encoder-decoder attention layer; the decoder's self-attention may only attend to earlier
# positions (future positions are masked); the steps repeat until a special symbol says the output
# is complete, and the output of each step is fed to the bottom decoder at the next step.*
#
# The task: dates as people write them -> ISO 8601 (`3rd of March 2021` -> `2021-03-03`), small
# enough to train here, and with a visible answer to "where does the decoder look?": when it writes
# the month's digits it should look at the month's name.

# %%
import time

import numpy as np

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm import nn
from tinygrad_lm.data.dates import (MONTHS, date_pairs, date_tokenizer, encode_pairs, pairs_of_dates,
    split_dates)
from tinygrad_lm.teaching.lesson_utils import QUICK, figure_path, pyplot, quick
from tinygrad_lm.models import Seq2Seq, Seq2SeqConfig
from tinygrad_lm.optim import AdamW, WarmupCosineLR
from tinygrad_lm.viz.alignment import alignment_view, text_alignment
from tinygrad_lm.data.pairs import PairBatches
from tinygrad_lm.decoding.beam_search import DecoderSteps, beam_search, greedy_decode
from tinygrad_lm.tensor import no_grad
from tinygrad_lm.decoding.translate import exact_match, translate
from tinygrad_lm.viz.plots import plot_alignment

rng = np.random.default_rng(0)
tok = date_tokenizer()
PAD, BOS, EOS = 0, 1, 2
MAX_OUT = 12                  # an ISO date is 10 characters, then EOS: a cap on the steps of an untrained model
print(f"quick mode: {QUICK}; vocabulary: {tok.vocab_size} characters, PAD/BOS/EOS = ids 0/1/2")

# %% [markdown]
# ## The description, as code
# A small random Seq2Seq (models/seq2seq.py wraps `nn.Transformer`, which is
# `torch.nn.Transformer`: same arguments, same parameter names). Each claim of the description is
# one assert.

# %%
tg.manual_seed(0)
small = Seq2Seq(Seq2SeqConfig(src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size, block_size=16, d_model=16,
                              nhead=2, num_encoder_layers=2, num_decoder_layers=3, dim_feedforward=32, dropout=0.0)).eval()
src = np.array([tok.encode("3 March 2021")])
tgt_in = np.array([[BOS] + tok.encode("2021-03")])
with no_grad():
    memory, src_pad = small.encode(src)                          # the top encoder's output: (1, S, d)
    print("memory", memory.shape)
    # 1. the memory becomes K and V of EVERY decoder layer's encoder-decoder attention
    caches = small.new_decoder_caches(memory)                    # one (self-attn cache, cross K/V) per layer
    for layer, (_, cross_kv) in zip(small.transformer.decoder.layers, caches):
        E = layer.multihead_attn.embed_dim
        W, b = layer.multihead_attn.in_proj_weight.numpy(), layer.multihead_attn.in_proj_bias.numpy()
        K = memory.numpy() @ W[E:2 * E].T + b[E:2 * E]          # (1, S, E), then split into heads
        assert np.allclose(cross_kv.k.numpy(), K.reshape(1, -1, 2, E // 2).transpose(0, 2, 1, 3), atol=1e-5)
    print(f"{len(caches)} decoder layers, each with K, V of shape {tuple(cross_kv.k.shape)} from the same memory")
    # 2. the decoder's self-attention is masked: changing a later target token leaves earlier outputs alone
    logits = small.decode(tgt_in, memory, src_pad).numpy()
    changed = tgt_in.copy()
    changed[0, -1] = tok.encode("9")[0]
    logits2 = small.decode(changed, memory, src_pad).numpy()
    assert np.allclose(logits[0, :-1], logits2[0, :-1], atol=1e-5) and not np.allclose(logits[0, -1], logits2[0, -1])
    # ... while the source reaches every target position (no mask on the cross-attention)
    other = small.encode(np.array([tok.encode("3 April 2021")]))
    logits3 = small.decode(tgt_in, *other).numpy()
    assert not np.allclose(logits[0, 0], logits3[0, 0])
print("K/V from the memory in every layer; causal decoder self-attention; the source seen from position 0: checked")

# %% [markdown]
# ## Cross-attention by hand
# Two decoder positions (queries) look at three encoder positions (keys and values), width 4, two
# heads of width 2. In NumPy, with the weights of the engine's `nn.MultiheadAttention` (packed
# `in_proj_weight` rows q | k | v, as PyTorch's), then checked against the module. The third source
# position is padding: its weight must be exactly 0.

# %%
tg.manual_seed(1)
mha = nn.MultiheadAttention(4, 2, batch_first=True).to(dtype=np.float64)
dec = np.round(rng.standard_normal((1, 2, 4)), 1)     # decoder states (queries)
enc = np.round(rng.standard_normal((1, 3, 4)), 1)     # encoder output (keys and values)
pad = np.array([[False, False, True]])
Wq, Wk, Wv = np.split(mha.in_proj_weight.numpy(), 3)
bq, bk, bv = np.split(mha.in_proj_bias.numpy(), 3)
q, k, v = dec[0] @ Wq.T + bq, enc[0] @ Wk.T + bk, enc[0] @ Wv.T + bv      # (2, 4), (3, 4), (3, 4)
heads_out, heads_w = [], []
for h in range(2):
    part = slice(2 * h, 2 * h + 2)
    scores = q[:, part] @ k[:, part].T / np.sqrt(2)                       # (2 queries, 3 keys)
    scores[:, pad[0]] = -np.inf                                           # padding: never attended
    w = np.exp(scores - scores.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    heads_w.append(w)
    heads_out.append(w @ v[:, part])
by_hand = np.concatenate(heads_out, 1) @ mha.out_proj.weight.numpy().T + mha.out_proj.bias.numpy()
out, weights = mha(tg.Tensor(dec), tg.Tensor(enc), tg.Tensor(enc), key_padding_mask=pad, average_attn_weights=False)
print("weights by hand, head 0:\n", np.round(heads_w[0], 3))
assert np.allclose(out.numpy()[0], by_hand) and np.allclose(weights.numpy()[0], np.stack(heads_w))
assert np.all(weights.numpy()[..., 2] == 0)
print("NumPy == nn.MultiheadAttention (outputs and per-head weights); the padded key gets weight 0")

# %% [markdown]
# ## The task: dates
# Every date of 1900-2099 in seven written forms and three cases (dates.py). The dates, not the
# pairs, are split: a held-out date is never seen in training in any form, so a model that gets
# them right reads dates instead of remembering them.

# %%
train_dates, val_dates = split_dates(seed=0)
for s, t in date_pairs(6, seed=3, dates=train_dates):
    print(f"{s:>32}  ->  {t}")
val_pairs = pairs_of_dates([val_dates[i] for i in rng.choice(len(val_dates), quick(300, 20), replace=False)], seed=2)
print(f"{len(train_dates):,} training dates, {len(val_dates):,} held-out dates")

# %% [markdown]
# ## Training
# Teacher forcing: the decoder reads `BOS 2 0 2 1 - 0 3 - 0` and must predict
# `2 0 2 1 - 0 3 - 0 3 EOS`, every position at once (PairBatches builds src, tgt_in, tgt_out).
# Quick mode trains for a few seconds: enough to see the loss fall, not to read dates. Full mode
# trains the seq2seq-dates preset's model for long enough to get the held-out dates right.

# %%
steps, batch_size, width = quick(400, 30), quick(64, 32), quick(64, 32)
tg.manual_seed(0)
cfg = Seq2SeqConfig(src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size, block_size=40, d_model=width,
                    nhead=4, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=4 * width, dropout=0.0,
                    share_embeddings=True)
model = Seq2Seq(cfg)
batches = PairBatches(encode_pairs(date_pairs(steps * batch_size, seed=1, dates=train_dates), tok),
                      cfg.block_size, batch_size, seed=0)
opt = AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.98), weight_decay=0.01)
schedule = WarmupCosineLR(3e-3, 3e-4, warmup_iters=min(50, steps // 5), decay_iters=steps)
losses, t0 = [], time.perf_counter()
for step in range(steps):
    for g in opt.param_groups:
        g["lr"] = schedule(step)
    src_b, tgt_in_b, tgt_out_b = batches.next()
    _, loss = model(src_b, tgt_in_b, tgt_out_b)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if step % max(steps // 6, 1) == 0 or step == steps - 1:
        print(f"step {step:5d}  loss {losses[-1]:.3f}  ({time.perf_counter() - t0:.0f} s)")
model.eval()
start, end = np.mean(losses[:3]), np.mean(losses[-5:])
print(f"loss {start:.2f} -> {end:.2f}; uniform guessing would be ln({tok.vocab_size}) = {np.log(tok.vocab_size):.2f}")
assert end < 0.6 * start                      # even a few seconds learn which characters an ISO date uses
if not QUICK:
    assert end < 0.2

# %%
plt = pyplot()
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(losses, lw=0.8)
ax.set(xlabel="step", ylabel="cross-entropy (per target character)", yscale="log",
       title=f"Seq2Seq on dates, {steps} steps of {batch_size} pairs")
ax.grid(alpha=0.3)
fig.tight_layout()
fig.savefig(figure_path("16_loss.png"), dpi=90, bbox_inches="tight")

# %% [markdown]
# ## Decoding, one step at a time
# At inference there is no target to read. The source is encoded once; the decoder starts from
# `BOS`, and each step's most likely character is appended and fed back to the bottom decoder
# layer at the next step, until it writes `EOS`. (With caches, as here, a step runs only the newest
# position: the earlier positions' keys and values are kept, and the memory's K and V were
# projected once.)

# %%
text = "Wednesday, March 3, 2021"
src = np.array([tok.encode(text)])
show = lambda ids: "".join({BOS: "<bos>", EOS: "<eos>"}.get(i, tok.decode([i])) for i in ids)    # noqa: E731
with no_grad():
    steps_ = DecoderSteps(model, *model.encode(src))
    fed, rows = [BOS], []
    for t in range(MAX_OUT):
        logp = steps_.step(np.array([fed]))[0]
        top = np.argsort(-logp)[:3]
        rows.append((t, show(fed), ", ".join(f"{show([int(i)])!r} {np.exp(logp[i]):.2f}" for i in top)))
        fed.append(int(top[0]))
        if top[0] == EOS:
            break
print(f"source: {text!r}\n{'step':>4}  {'fed to the decoder so far':<20} top-3 next characters")
for t, so_far, best in rows:
    print(f"{t:>4}  {so_far:<20} {best}")
assert fed[1:] == [int(i) for i in greedy_decode(model, src, MAX_OUT)[0] if i != PAD]     # the loop IS greedy decoding

# %% [markdown]
# ## Greedy decoding against beam search
# Greedy commits to the best character at each step; beam search keeps the `beam_width` best
# prefixes and picks the best finished sequence (summed log-probability, here divided by the
# length). On held-out dates:

# %%
sources, targets = [s for s, _ in val_pairs], [t for _, t in val_pairs]
t0 = time.perf_counter()
greedy_out = translate(model, tok, sources, max_new_tokens=MAX_OUT)
t_greedy = time.perf_counter() - t0
t0 = time.perf_counter()
beam_out = translate(model, tok, sources, beam=4, max_new_tokens=MAX_OUT)
t_beam = time.perf_counter() - t0
acc_greedy = np.mean([o == t for o, t in zip(greedy_out, targets)])
acc_beam = np.mean([o == t for o, t in zip(beam_out, targets)])
print(f"exact match on {len(targets)} held-out dates: greedy {acc_greedy:.3f} ({t_greedy:.1f} s), "
      f"beam search (4 beams) {acc_beam:.3f} ({t_beam:.1f} s)")
for s, g, b, t in list(zip(sources, greedy_out, beam_out, targets))[:5]:
    print(f"{s:>32} -> greedy {g!r:14} beam {b!r:14} (right: {t})")
ids, scores = beam_search(model, src, beam_width=4, max_new_tokens=MAX_OUT, num_return_sequences=4)
print(f"{text!r}: greedy {show(fed[1:])!r}; beam search's 4 finished hypotheses (log-probability / length):")
for row, score in zip(ids, scores):
    print(f"    {show([int(i) for i in row if i != PAD])!r:22} {score:.4f}")
assert np.all(np.diff(scores) <= 0)           # the hypotheses come best first
if not QUICK:
    assert acc_greedy > 0.9 and acc_beam > 0.9   # a date has one right answer: a good model is sure of it

# %% [markdown]
# Beam search finds sequences the *model* finds likelier, not more correct ones: when a trained
# model is sure (most dates) both agree; when it hesitates (a day written as one digit, "3"), its
# doubt is between a few similar outputs, and the hypotheses above show how close they score. An
# output such as day "32" would show the model knows character patterns, not the calendar.

# %% [markdown]
# ## The alignment picture
# The decoder's cross-attention weights over the source, per layer and head and averaged: rows
# are the output characters (each the one produced at that step, from one teacher-forced pass over
# the greedy output, which gives the decode's own weights), columns the source characters. The same
# command line: `python -m tinygrad_lm attention --model out/dates/best.npz --prompt "3 March 2021" --html view.html`.

# %%
a, source_tokens, output_tokens = text_alignment(model, tok, "3 March 2021", MAX_OUT)
fig = plot_alignment(a.cross, source_tokens, output_tokens, figure_path("16_alignment.png"),
                     title=f"cross-attention: '3 March 2021' -> '{''.join(t for t in output_tokens if t != '<eos>')}'")

# %% [markdown]
# Where the decoder looks when it writes the month's digits (output positions 5 and 6 of
# `YYYY-MM-DD`): the share of its attention (averaged over layers and heads) that falls on the
# month's name, for held-out dates whose source spells the month.

# %%
def month_span(source):
    low = source.lower()
    found = [(low.find(n.lower()), len(n)) for n in MONTHS if n.lower() in low]
    found = found or [(low.find(n[:3].lower()), 3) for n in MONTHS if n[:3].lower() in low]
    return (found[0][0], found[0][0] + found[0][1]) if found else None


month_share, year_share = [], []             # attention on the month's name when writing the month / the year
for s, t in val_pairs[:quick(60, 10)]:
    span = month_span(s)
    if span is None:
        continue
    al, _, _ = text_alignment(model, tok, s, MAX_OUT)
    assert np.allclose(al.cross.sum(-1), 1)
    if len(al.output) > 6:
        on_name = al.cross_mean[:, span[0]:span[1]].sum(1)          # per output position
        month_share.append(on_name[5:7].mean())
        year_share.append(on_name[0:4].mean())
print(f"share of the attention on the month's name ({len(month_share)} held-out dates): "
      f"{np.mean(month_share):.2f} while writing the month's digits, {np.mean(year_share):.2f} while writing the year's")
if QUICK:
    print("(quick mode: a few seconds of training teach no alignment yet; these numbers show nothing)")
else:
    assert np.mean(month_share) > 0.5 and np.mean(month_share) > 2 * np.mean(year_share)   # the month lights up
alignment_view(a, source_tokens, output_tokens)       # interactive: cross-attention, encoder and decoder sections

# %% [markdown]
# ## Three families
# One block (attention, MLP, residuals, LayerNorm), three ways to wire it:
#
# | family | attention masks | objective | used for |
# | --- | --- | --- | --- |
# | encoder-only (BERT, lesson 14) | bidirectional self-attention | fill in masked tokens | understanding: classification, tagging, embeddings, retrieval |
# | decoder-only (GPT, lessons 5-13) | causal self-attention | next token | generation, and (at scale) almost everything by prompting |
# | encoder-decoder (this lesson, T5, BART, Whisper) | bidirectional encoder, causal decoder, full cross-attention | next target token given the whole source | a given input mapped to a new output: translation, summarisation, speech -> text |
#
# The masks, drawn: which key each query may see (a source of 5 tokens, a target of 4).

# %%
S, T = 5, 4
masks = {"encoder-only / the encoder:\nbidirectional (S x S)": np.ones((S, S)),
         "decoder-only / the decoder:\ncausal self-attention (T x T)": np.tril(np.ones((T, T))),
         "encoder-decoder:\ncross-attention (T x S)": np.ones((T, S))}
with no_grad():        # the engine's own: the weights of zero-score attention show what each mask allows
    z = lambda n: tg.Tensor(np.zeros((1, 1, n, 2)))          # noqa: E731
    seen = {"bi": F.scaled_dot_product_attention(z(S), z(S), z(S), return_weights=True)[1].numpy()[0, 0] > 0,
            "causal": F.scaled_dot_product_attention(z(T), z(T), z(T), is_causal=True, return_weights=True)[1].numpy()[0, 0] > 0,
            "cross": F.scaled_dot_product_attention(z(T), z(S), z(S), return_weights=True)[1].numpy()[0, 0] > 0}
assert [np.array_equal(m > 0, s) for m, s in zip(masks.values(), seen.values())] == [True, True, True]
plt = pyplot()
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
for ax, (name, m) in zip(axes, masks.items()):
    ax.imshow(m, cmap="Blues", vmin=0, vmax=1.3)
    ax.set(title=name, xlabel="key", ylabel="query", xticks=range(m.shape[1]), yticks=range(m.shape[0]))
fig.suptitle("what each query may attend to")
fig.tight_layout()
fig.savefig(figure_path("16_families.png"), dpi=90, bbox_inches="tight")

# %% [markdown]
# ## Exercises
# 1. Train without the cross-attention (replace the memory by zeros after the encoder). What does
#    the decoder learn to write, and what loss does it reach? Why can't it do better?
# 2. Remove the causal mask from the decoder during training (`tgt_is_causal=False`). The training
#    loss collapses towards 0; what does greedy decoding produce, and why?
# 3. Which output positions attend to the year's digits, and which to the weekday's name (form
#    "weekday, month day, year")? Does any head ignore the weekday entirely -- should it?
# 4. Compare greedy and beam search on a half-trained model (300 steps): where do they differ, and
#    does `length_penalty` change which one wins?
# 5. The dd.mm.yyyy form has no month name: draw its alignment. Where do the month digits look now?
# 6. With the command line: `python -m tinygrad_lm prepare --corpus dates`, `python -m tinygrad_lm train --preset seq2seq-dates --out-dir out/dates`,
#    then `python -m tinygrad_lm attention --model out/dates/best.npz --prompt "3 March 2021" --html view.html`.
