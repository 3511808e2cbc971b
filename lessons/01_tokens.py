# %% [markdown]
# # Lesson 1 — Sequential data and tokens
#
# A language model reads a sequence of integers. *Tokenization* is how text becomes those integers,
# and the choice matters: characters give a tiny vocabulary but long sequences; words give short
# sequences but a huge vocabulary (and unknown words); byte-pair encoding (BPE) sits in between.

# %%
import time

from tinygrad_lm.teaching.lesson_utils import figure_path, pyplot, quick, shakespeare_text
from tinygrad_lm.tokenizers import BPETokenizer, CharTokenizer, WordTokenizer, gpt2_tokenizer

text = shakespeare_text(limit=quick(None, 200_000))
print(f"{len(text):,} characters; the first 200:\n{text[:200]}")

# %% [markdown]
# ## Characters and words
# A character tokenizer maps each distinct character to an id. A word tokenizer maps each distinct
# word (and punctuation run, and whitespace run) to an id, and anything it never saw to `<unk>`.

# %%
chars = CharTokenizer.from_text(text)
words = WordTokenizer.from_text(text)
sample = "Before we proceed any further, hear me speak."
print("char ids:", chars.encode(sample)[:20], "...")
print("word pieces:", words.tokenize(sample))
assert chars.decode(chars.encode(sample)) == sample
print(f"vocabulary: {chars.vocab_size} characters vs {words.vocab_size:,} words")
assert words.vocab_size > 50 * chars.vocab_size          # the word vocabulary explodes
print("an unseen word becomes <unk>:", words.decode(words.encode("hear me zyzzyva")))

# %% [markdown]
# ## Byte-pair encoding
# Start from the 256 bytes; repeatedly merge the most frequent adjacent pair into a new token.
# Watch the first merges: they are the most common pieces of English.

# %%
t = time.perf_counter()
bpe = BPETokenizer.train(text, vocab_size=quick(512, 320))
print(f"trained {len(bpe.merges)} merges in {time.perf_counter() - t:.2f} s; the first ten:")
for line in bpe.merge_strings(10):
    print("  ", line)
assert bpe.decode(bpe.encode(text[:5000])) == text[:5000]
print(bpe.tokenize(sample))

# %% [markdown]
# ## Vocabulary size against sequence length
# More merges mean a bigger vocabulary and shorter sequences: the model sees more text per
# context window, but its embedding table and output layer grow.

# %%
plt = pyplot()
sizes = quick([256, 300, 400, 512, 768, 1024], [256, 280, 320])
piece = text[:quick(100_000, 20_000)]
lengths = []
for size in sizes:
    tok = bpe if size == len(bpe.vocab) else BPETokenizer.train(piece, size)
    lengths.append(len(tok.encode(piece)))
char_len, word_len = len(chars.encode(piece)), len(words.encode(piece))
assert all(a >= b for a, b in zip(lengths, lengths[1:]))        # more merges, shorter sequences
assert lengths[0] == len(piece.encode())                  # no merges: one token per byte
assert word_len < lengths[0] / 2                          # words: far fewer tokens than bytes
if sizes[-1] >= 1024:                                     # but this word tokenizer spends a token on every
    assert lengths[-1] < word_len                         # space: a 1,024-token BPE is already shorter
fig, ax = plt.subplots(figsize=(7, 4.5))
ax.plot(sizes, lengths, "o-", label="byte-level BPE (256 bytes + merges)")
ax.scatter([chars.vocab_size], [char_len], s=60, marker="s", color="C1", label="characters", zorder=3)
ax.scatter([words.vocab_size], [word_len], s=80, marker="*", color="C2", label="words", zorder=3)
for name, v, n, offset, align in (("characters", chars.vocab_size, char_len, (10, -28), "left"),
                                  ("words", words.vocab_size, word_len, (-10, -28), "right")):
    ax.annotate(f"{name}: {v:,} in the vocabulary,\n{n:,} tokens for the text", (v, n), ha=align,
                textcoords="offset points", xytext=offset, fontsize=8)
ax.set_xscale("log")                     # 65 characters ... thousands of words: only a log axis shows all three
ax.set(xlabel="vocabulary size (log scale)", ylabel=f"tokens for the same {len(piece):,} characters",
       title="three tokenizations: vocabulary size vs sequence length")
ax.grid(alpha=0.3, which="both")
ax.set_ylim(0, 1.1 * max(lengths + [char_len, word_len]))
ax.legend(loc="upper right")
fig.savefig(figure_path("01_vocab_vs_length.png"), dpi=90, bbox_inches="tight")
print(dict(zip(sizes, lengths)), "chars:", char_len, "words:", word_len)

# %% [markdown]
# ## GPT-2's tokenizer
# GPT-2 uses a byte-level BPE with 50,000 merges and one special token, `<|endoftext|>` (50256).
# The tutorial's example sentence:

# %%
gpt2 = gpt2_tokenizer()                  # its two files ship inside the package (tinygrad_lm/corpora/gpt2/)
sentence = "Counselor, please adjust your Zoom filter to appear as a human, rather than as a cat"
ids = gpt2.encode(sentence)
print(ids)
print(gpt2.tokenize(sentence))
assert gpt2.decode(ids) == sentence and len(ids) < len(sentence.split()) * 2
assert gpt2.encode("Hello world, this is a test.") == [15496, 995, 11, 428, 318, 257, 1332, 13]

# %% [markdown]
# ## Exercises
# 1. Train BPE with `pattern=None` (no pre-splitting). Which merges appear that GPT-2's split forbids?
# 2. Encode a sentence in another language with GPT-2's tokenizer. How many tokens per word now?
# 3. Where does the BPE curve cross the words point? Look at `words.tokenize(sample)`: what does the
#    word tokenizer spend tokens on that BPE merges away (hint: " we" is one BPE token)?
