# %% [markdown]
# # Lesson 14 — Encoder-only transformers (BERT)
#
# Every model so far was a *decoder*: a causal mask lets token t see only tokens 0..t, so the model
# can be trained to predict the next token and can then generate. BERT keeps the same blocks
# (attention, MLP, residuals, LayerNorm) but drops the causal mask: every token sees the whole text,
# left *and* right. It cannot generate left to right any more; instead it is trained to fill in
# blanks (*masked language modelling*), and its output vectors -- one per token, each shaped by the
# whole sentence -- are what later tasks build on.
#
# This lesson: the three attention masks side by side; BERT's WordPiece tokenizer with [CLS],
# [SEP] and segments on a small vocabulary; a tiny BERT trained as a masked LM on tiny Shakespeare
# with the masking step written out; next-sentence prediction as a classifier on [CLS]; and the
# same word in different sentences as different *contextual* embeddings.

# %%
import collections
import os
import re

import numpy as np

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm.viz.attention_view import BIDIRECTIONAL, attention_view
from tinygrad_lm.decoding.fill_mask import contextual_embeddings, fill_mask
from tinygrad_lm.teaching.lesson_utils import QUICK, figure_path, pyplot, quick, shakespeare_text
from tinygrad_lm.models.bert import BertConfig, BertForMaskedLM, BertForSequenceClassification
from tinygrad_lm.optim import AdamW
from tinygrad_lm.tokenizers.wordpiece import WordPieceTokenizer

rng = np.random.default_rng(0)

# %% [markdown]
# ## Three masks
# One attention op takes every mask (`F.scaled_dot_product_attention`; ops/fused.py documents
# what each does to each step). With all scores equal (queries of zeros), the weights show only
# what a mask allows: each query spreads its attention evenly over the keys it may see.
#
# - **bidirectional** (BERT): no mask, every query sees every key;
# - **causal** (GPT): query i sees keys 0..i;
# - **padding**: a batch holds texts of different lengths, filled up with [PAD]; a key-padding
#   mask (B, S) hides the padded keys from every query (`key_padding_mask`, or BERT's
#   `attention_mask` of 1s and 0s). The padded *queries* still compute something, which is
#   simply never used.

# %%
T = 6
zeros = tg.Tensor(np.zeros((1, T, 8)))
values = tg.Tensor(rng.standard_normal((1, T, 8)))
pad = np.array([[False, False, False, False, True, True]])           # the last two tokens are [PAD]
masks = {
    "bidirectional (BERT)": F.scaled_dot_product_attention(zeros, zeros, values, return_weights=True)[1],
    "causal (GPT)": F.scaled_dot_product_attention(zeros, zeros, values, is_causal=True, return_weights=True)[1],
    "padding: 4 tokens + 2 [PAD]": F.scaled_dot_product_attention(zeros, zeros, values, key_padding_mask=pad,
                                                                  return_weights=True)[1],
}
weights = {name: w.numpy()[0] for name, w in masks.items()}
bi, causal, padded = weights.values()
assert np.allclose(bi, 1 / T)                                                  # everyone sees everyone
assert np.allclose(causal, np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None])    # 0..i, evenly
assert np.all(padded[:, 4:] == 0) and np.allclose(padded[:, :4], 1 / 4)        # [PAD] is never looked at
plt = pyplot()
fig, axes = plt.subplots(1, 3, figsize=(12, 4))
for ax, (name, w) in zip(axes, weights.items()):
    ax.imshow(w, cmap="Blues", vmin=0, vmax=1)
    ax.set(title=name, xlabel="key position", ylabel="query position", xticks=range(T), yticks=range(T))
    for i in range(T):
        for j in range(T):
            ax.text(j, i, f"{w[i, j]:.2f}".lstrip("0") if w[i, j] else "0", ha="center", va="center", fontsize=7)
fig.suptitle("attention weights with equal scores: what each mask lets a query see")
fig.tight_layout()
fig.savefig(figure_path("14_masks.png"), dpi=90, bbox_inches="tight")

# %% [markdown]
# Padding must never leak: whatever stands at a padded position, the outputs are the same. The
# masked scores are -inf, so their weights are exactly 0, and so is the gradient reaching the
# padded keys and values.

# %%
q, k, v = (tg.Tensor(rng.standard_normal((1, T, 8)), requires_grad=True) for _ in range(3))
before = F.scaled_dot_product_attention(q, k, v, key_padding_mask=pad)
before.backward(rng.standard_normal(before.shape))
k2, v2 = k.numpy().copy(), v.numpy().copy()
k2[0, 4:], v2[0, 4:] = 1e3, -1e3                                       # garbage at the padding
after = F.scaled_dot_product_attention(q, tg.Tensor(k2), tg.Tensor(v2), key_padding_mask=pad)
assert np.array_equal(before.numpy(), after.numpy())
assert not k.grad.numpy()[0, 4:].any() and not v.grad.numpy()[0, 4:].any()
print("changing the padded keys and values changes nothing; their gradient is exactly 0")

# %% [markdown]
# ## WordPiece on a small vocabulary
# BERT's tokenizer lower-cases, splits off punctuation, then cuts each word into the longest
# pieces of its vocabulary, greedily from the left; a piece that continues a word is written with
# `##`. Real BERT has 30,522 pieces. Ours is small enough to read: the special tokens, the most
# common words of the corpus, every character, and every letter or digit as a `##` continuation --
# so any word can be spelt, common ones in one piece and the rest letter by letter.

# %%
text = shakespeare_text(limit=quick(400_000, 60_000))
counts = collections.Counter(re.findall(r"[a-z]+", text.lower()))
chars = sorted({c for c in text.lower() if not c.isspace()})
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
common = [w for w, _ in counts.most_common(150) if len(w) > 1]
vocab = SPECIALS + common + chars + ["##" + c for c in chars if c.isalnum()]
tok = WordPieceTokenizer(vocab)
print(f"{len(vocab)} pieces: {len(common)} words, {len(chars)} characters and their ## forms")
print(tok.tokenize("Wherefore art thou Romeo?"))
assert tok.decode(tok.encode("Wherefore art thou Romeo?", add_special_tokens=False)) == "wherefore art thou romeo?"

# %% [markdown]
# ## [CLS], [SEP] and segments
# A BERT input is `[CLS] sentence A [SEP] sentence B [SEP]`. `[CLS]` is a position whose output
# summarises the pair (a classifier reads it); `[SEP]` ends each sentence; `token_type_ids` (the
# *segment*) says which sentence a token belongs to, and has its own embedding table added to the
# word and position embeddings.

# %%
pair = tok("To be, or not to be:", "that is the question.")
for piece, segment in zip(tok.convert_ids_to_tokens(pair["input_ids"]), pair["token_type_ids"]):
    print(f"{piece:>10}  segment {segment}")
ids, segments = pair["input_ids"], pair["token_type_ids"]
first_sep = ids.index(tok.sep_token_id)
assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id and ids.count(tok.sep_token_id) == 2
assert segments == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)

# %% [markdown]
# ## The masking step
# Masked language modelling hides some tokens and asks the model for them. BERT picks 15% of the
# (non-special) positions; of those, 80% become `[MASK]`, 10% a random token and 10% stay as they
# were -- so the model cannot learn that only `[MASK]` positions matter (there is no `[MASK]` when
# it is used later). The labels hold the original token where picked and -100 elsewhere, the index
# that cross-entropy ignores: only the picked positions count in the loss.

# %%
FIRST_WORD = len(SPECIALS)                       # ids below it are special tokens


def mask_tokens(ids, rng, rate=0.15):
    """BERT's masking of a batch (B, T) -> (inputs, labels)."""
    inputs = ids.copy()
    picked = (rng.random(ids.shape) < rate) & (ids >= FIRST_WORD)
    labels = np.where(picked, ids, -100)
    how = rng.random(ids.shape)
    inputs[picked & (how < 0.8)] = tok.mask_token_id
    randomized = picked & (how >= 0.8) & (how < 0.9)
    inputs[randomized] = rng.integers(FIRST_WORD, len(vocab), randomized.sum())
    return inputs, labels


stream = np.array(tok.encode(text, add_special_tokens=False))
sample = stream[:min(len(stream), 100_000) // 100 * 100].reshape(-1, 100)      # rows of 100 tokens
inputs, labels = mask_tokens(sample, rng)
picked = labels != -100
print(f"picked {picked.mean():.3f} of the positions; of those {(inputs[picked] == tok.mask_token_id).mean():.3f} "
      f"[MASK], {(inputs[picked] == sample[picked]).mean():.3f} unchanged")
assert abs(picked.mean() - 0.15) < 0.01 and abs((inputs[picked] == tok.mask_token_id).mean() - 0.8) < 0.02
assert np.array_equal(inputs[~picked], sample[~picked])                  # the rest is left alone

# %% [markdown]
# ## Training a tiny BERT as a masked LM
# `BertForMaskedLM` (models/bert.py, Hugging Face's names and layout): the encoder, then a head
# that maps every output vector to a distribution over the vocabulary (its output matrix is the
# word embedding, tied). A batch is random windows of the token stream, each as
# `[CLS] window [SEP]`, masked as above. Two baselines to beat, on held-out text: always guessing
# the most common token, and the same model asked with *every* other token masked too, so that it
# can only use how common a token is -- the gap is what the context is worth.

# %%
BLOCK = 32
split = int(0.9 * len(stream))
train_ids, val_ids = stream[:split], stream[split:]


def windows(data, rng, batch_size=32):
    starts = rng.integers(0, len(data) - BLOCK + 2, batch_size)
    body = np.stack([data[s:s + BLOCK - 2] for s in starts])
    column = np.ones((batch_size, 1), np.int64)
    return np.concatenate([tok.cls_token_id * column, body, tok.sep_token_id * column], axis=1)


config = BertConfig(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=256, max_position_embeddings=BLOCK, hidden_act="gelu_new",
                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
tg.manual_seed(0)
model = BertForMaskedLM(config)
optimizer = AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
losses = []
for step in range(quick(1500, 120)):
    inputs, labels = mask_tokens(windows(train_ids, rng), rng)
    loss = model(inputs, labels=labels).loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
model.eval()


def masked_accuracy(data, rng, everything_masked=False, batches=quick(20, 5)):
    right = total = 0
    for _ in range(batches):
        inputs, labels = mask_tokens(windows(data, rng), rng)
        picked = labels != -100
        if everything_masked:                  # no context left: every text token is [MASK]
            inputs = np.where(inputs >= FIRST_WORD, tok.mask_token_id, inputs)
        predicted = model(inputs).logits.numpy().argmax(-1)
        right += (predicted[picked] == labels[picked]).sum()
        total += picked.sum()
    return right / total


accuracy = masked_accuracy(val_ids, np.random.default_rng(1))
no_context = masked_accuracy(val_ids, np.random.default_rng(1), everything_masked=True)
most_common = np.bincount(train_ids).max() / len(train_ids)
print(f"masked-LM loss {np.mean(losses[:10]):.2f} -> {np.mean(losses[-10:]):.2f} (uniform guess {np.log(len(vocab)):.2f})")
print(f"held-out accuracy at masked positions: {accuracy:.1%}; without context {no_context:.1%}; "
      f"always the most common token {most_common:.1%}")
assert np.mean(losses[-10:]) < np.log(len(vocab)) - quick(1.0, 0.7)
if not QUICK:                                   # the context is worth something
    assert accuracy > no_context + 0.04 and accuracy > 1.5 * most_common, (accuracy, no_context, most_common)
plt = pyplot()
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(losses, lw=0.8, label="masked-LM loss (training batches)")
ax.axhline(np.log(len(vocab)), color="gray", ls="--", label="uniform guess")
ax.set(xlabel="step", ylabel="cross-entropy at masked positions", title="a tiny BERT learning to fill in blanks")
ax.legend()
fig.savefig(figure_path("14_mlm_loss.png"), dpi=90, bbox_inches="tight")

# %% [markdown]
# ## Fill in the blank
# `fill_mask` does what Hugging Face's `pipeline("fill-mask")` does: the softmax of the logits at
# the `[MASK]`, its top-k tokens, and the text with each filled in. (From the command line, on a
# Hugging Face BERT folder: `python -m tinygrad_lm fill-mask --model DIR "The capital of France is [MASK]."`.)
# Be ready for a modest answer: a model this small, trained for a minute or two, has barely begun
# to use the sentence around a blank. Its guesses below are mostly the most common pieces, nearly
# the same for every sentence -- even for "Rome[MASK]" (`rome ##o` with the `##o` hidden, just as in
# training). The held-out accuracy above is the fairer measure: in the full run the context nearly doubles
# the hits on average. Real BERT, trained for days on billions of words, is the optional cell at the end.

# %%
for sentence in ["To be, or not to [MASK].", "[MASK] you not hear me?", "Wherefore art thou Rome[MASK]?"]:
    answers = fill_mask(model, tok, sentence, top_k=5)
    print(f"{sentence:32}", "  ".join(f"{a['token_str']} {a['score']:.2f}" for a in answers))
    scores = [a["score"] for a in answers]
    assert scores == sorted(scores, reverse=True) and sum(scores) <= 1 + 1e-6

# %% [markdown]
# And its attention, every layer and head, in the interactive view of lesson 13: the view knows a
# BERT's attention is bidirectional, and the maps have weight above the diagonal (a query looking
# at later tokens), which a GPT's never have.

# %%
view = attention_view(model, tok, "To be, or not to be: that is the question.")
assert view.sections[0]["kind"] == BIDIRECTIONAL and np.triu(view.weights, 1).sum() > 0
view

# %% [markdown]
# ## Next-sentence prediction: a classifier on [CLS]
# BERT's second pretraining task: given `[CLS] A [SEP] B [SEP]`, is B the sentence that follows
# A in the text, or a random one? The answer is read from one vector: the encoder's output at
# `[CLS]`, passed through the *pooler* (a dense layer and tanh), then a linear classifier --
# `BertForSequenceClassification` with two labels. Batches now hold pairs of different lengths,
# so they are padded, and `attention_mask` (1 = token, 0 = [PAD]) becomes the padding mask of the
# first section. We start the encoder from the masked-LM model and train on consecutive lines of
# the play (label 0: B follows A, as Hugging Face's NSP labels; 1: B is a random line).

# %%
lines = [line for line in text.split("\n") if len(line.split()) >= 3]


def sentence_pairs(rng, count):
    firsts = rng.integers(0, len(lines) - 1, count)
    random_b = rng.random(count) < 0.5
    seconds = np.where(random_b, rng.integers(0, len(lines), count), firsts + 1)
    batch = tok([lines[i] for i in firsts], [lines[j] for j in seconds], padding=True, truncation=True,
                max_length=BLOCK, return_tensors="np")
    return batch, random_b.astype(np.int64)


nsp = BertForSequenceClassification(BertConfig(**{**config.to_dict(), "num_labels": 2}))
encoder = dict(model.bert.named_parameters())
for name, p in nsp.bert.named_parameters():
    if name in encoder:                          # everything but the pooler, which MLM does not train
        p.data[...] = encoder[name].data
nsp.eval()
batch, targets = sentence_pairs(rng, 8)
out = nsp(batch["input_ids"], attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"])
hidden = nsp.bert(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).last_hidden_state
by_hand = nsp.classifier(nsp.bert.pooler.dense(hidden[:, 0]).tanh())         # [CLS] -> pooler -> classifier
assert np.allclose(out.logits.numpy(), by_hand.numpy(), atol=1e-6)
print("padding in this batch:", int((batch["attention_mask"] == 0).sum()), "of", batch["attention_mask"].size,
      "positions; logits == classifier(tanh(dense(output at [CLS])))")

# %% [markdown]
# Learning NSP well takes far more pairs than a lesson can afford; what a short run does show is
# the gradient reaching the encoder through [CLS]: a fixed set of 64 pairs is learnt, and the loss
# on it falls. (RoBERTa later found NSP unnecessary; masked LM alone trains as good an encoder.)

# %%
nsp.train()
fixed, fixed_targets = sentence_pairs(np.random.default_rng(2), 64)
optimizer = AdamW(nsp.parameters(), lr=1e-3, weight_decay=0.0)
nsp_losses = []
for step in range(quick(150, 30)):
    loss = nsp(fixed["input_ids"], attention_mask=fixed["attention_mask"], token_type_ids=fixed["token_type_ids"],
               labels=fixed_targets).loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    nsp_losses.append(loss.item())
print(f"NSP loss on 64 fixed pairs: {nsp_losses[0]:.3f} -> {nsp_losses[-1]:.3f} (chance: {np.log(2):.3f})")
assert nsp_losses[-1] < nsp_losses[0] - 0.1

# %% [markdown]
# ## One word, many vectors: contextual embeddings
# A word embedding table gives "lord" one vector wherever it stands. BERT's output at "lord"
# depends on the whole sentence around it, so the same word in different lines gets different
# vectors -- *contextual* embeddings (`contextual_embeddings` in tinygrad_lm/decoding/fill_mask.py; the
# `embed` command prints them for a Hugging Face BERT). Below: a few common words, each in many
# lines of the held-out text, projected onto two principal components. Each word forms a cloud,
# not a point: its spread is the context.

# %%
candidates = [w for w in ("lord", "king", "love", "good", "sir", "man", "heart", "come") if w in tok.token_to_id]
chosen = candidates[:4]
held_out = text[int(0.9 * len(text)):].split("\n")
vectors, owners = [], []
for word in chosen:
    found = 0
    for line in held_out:
        pieces = tok.tokenize(line)
        if word in pieces and len(pieces) + 2 <= BLOCK and found < quick(40, 15):
            tokens, vecs = contextual_embeddings(model, tok, line)
            vectors.append(vecs[tokens.index(word)])
            owners.append(word)
            found += 1
vectors, owners = np.array(vectors, dtype=np.float64), np.array(owners)
centered = vectors - vectors.mean(0)
_, S, Vt = np.linalg.svd(centered, full_matrices=False)
coords = centered @ Vt[:2].T
distances = np.linalg.norm(vectors[:, None] - vectors[None], axis=-1)
same = owners[:, None] == owners[None]
off_diagonal = ~np.eye(len(owners), dtype=bool)
within, between = distances[same & off_diagonal].mean(), distances[~same].mean()
print(f"{len(owners)} occurrences of {', '.join(chosen)}: mean distance between two occurrences of the same "
      f"word {within:.2f}, of different words {between:.2f}")
assert within > 0.05 * between                    # one word, many vectors: context moves it
assert within < between                            # ... but it stays nearer itself than other words
plt = pyplot()
fig, ax = plt.subplots(figsize=(7, 6))
for i, word in enumerate(chosen):
    here = owners == word
    ax.scatter(coords[here, 0], coords[here, 1], s=18, alpha=0.6, color=f"C{i}", label=f'"{word}"')
ax.set(title="contextual embeddings: each word in many held-out lines (PCA)", xlabel="PC1", ylabel="PC2")
ax.legend()
fig.savefig(figure_path("14_contextual_pca.png"), dpi=90, bbox_inches="tight")

# %% [markdown]
# ## With real BERT weights
# Everything above works on a Hugging Face BERT folder (config.json, model.safetensors, vocab.txt):
# set `TINYGRAD_LM_BERT_MODEL` to one (or, online, to `bert-base-uncased`) and this cell fills in
# the tutorial's blank and separates the two meanings of "bank".

# %%
from tinygrad_lm.training.pretrained import load_fill_mask
from tinygrad_lm.io.hf import resolve_bert_dir

bert_choice = os.environ.get("TINYGRAD_LM_BERT_MODEL")
if not bert_choice:
    print("skipped: set TINYGRAD_LM_BERT_MODEL to a Hugging Face BERT folder (or, online, bert-base-uncased)")
else:
    bert, bert_tok = load_fill_mask(resolve_bert_dir(bert_choice))
    answers = fill_mask(bert, bert_tok, "The capital of France is [MASK].")
    for a in answers:
        print(f"{a['token_str']:>10} {a['score']:.3f}  {a['sequence']}")
    assert answers[0]["token_str"].lower() == "paris"
    sentences = {"river": ["he sat on the bank of the river.", "the river overflowed its bank."],
                 "money": ["she put the money in the bank.", "the bank raised its interest rates."]}
    bank = {}
    for sense, texts in sentences.items():
        for s in texts:
            tokens, vecs = contextual_embeddings(bert, bert_tok, s)
            bank[s] = (sense, vecs[[t.lower() for t in tokens].index("bank")])

    def cosine(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    pairs = [(cosine(a[1], b[1]), a[0] == b[0]) for i, a in enumerate(bank.values()) for b in list(bank.values())[i + 1:]]
    same_sense = np.mean([c for c, same in pairs if same])
    other_sense = np.mean([c for c, same in pairs if not same])
    print(f'"bank": cosine similarity within a meaning {same_sense:.3f}, across meanings {other_sense:.3f}')
    assert same_sense > other_sense

# %% [markdown]
# ## Exercises
# 1. Mask 40% of the tokens instead of 15%. How do the loss and the held-out accuracy change, and why
#    does a higher rate make each step's task harder but give more labels per batch?
# 2. Drop the 10% random and 10% unchanged cases (always `[MASK]`). Then measure how well the model
#    predicts tokens that are *not* masked: what did the two cases teach it?
# 3. Train the same model with `is_causal=True` attention (a GPT) on the same masked task. Which
#    masked positions get worse, and why are the first tokens of a window the hardest?
# 4. Give the next-sentence classifier 20,000 fresh pairs instead of 64 fixed ones. Does it learn
#    order, or only topic (random lines are often from another scene)?
# 5. Train ten times longer (or a wider model). At which step do the fill-mask guesses above start
#    to differ from sentence to sentence, and how does the held-out accuracy move at that point?
# 6. With real weights: `python -m tinygrad_lm fill-mask --model DIR --top-k 10 "The capital of France is [MASK]."`,
#    and `python -m tinygrad_lm attention --model DIR --prompt "the bank of the river" --html view.html`.
