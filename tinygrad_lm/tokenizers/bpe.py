"""Byte-level BPE: train your own, or load GPT-2's.

Text is first split into chunks by a regex (GPT-2's pattern keeps words, numbers, punctuation
and whitespace apart, so no token spans "dog." or " the cat"). Each chunk is UTF-8 bytes; every byte
is a token to begin with, and training repeatedly merges the most frequent adjacent pair of
tokens into a new token.

Token ids: the 256 single bytes have ids 0..255 (in byte order for a trained tokenizer; in
GPT-2's own order for GPT-2), merge k makes id 256 + k, special tokens come after the merges.
A token's id is also its priority when encoding: lower ids were learnt earlier.

Training tie-break (documented, deterministic): among pairs with the same highest count, the pair
(a, b) with the smallest a, then the smallest b, is merged first.
"""
import collections
import heapq
import os
import re

import regex

from .base import EncodeError, Tokenizer
from .gpt2 import gpt2_files, read_gpt2_files

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT4_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
                r"""|\s*[\r\n]|\s+(?!\S)|\s+""")
PATTERNS = {"gpt2": GPT2_PATTERN, "gpt4": GPT4_PATTERN, None: None}
# The GPT-2 pattern restricted to ASCII, for the standard library's `re` (about twice as fast as
# `regex` here). On ASCII text without the separators \x1c-\x1f (which only `re` counts as
# whitespace) both patterns split identically: the tests check it.
GPT2_PATTERN_ASCII = r"""'(?:[sdmt]|ll|ve|re)| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+"""
_ASCII_SEPARATORS = re.compile("[\x1c-\x1f]")


def _split_pattern(pattern):
    if pattern in PATTERNS:
        return PATTERNS[pattern]
    return pattern                      # a custom regex


def chunk_counts(text, pattern):
    """How often each chunk (as bytes) occurs after the regex split."""
    chunks = regex.findall(pattern, text) if pattern else [text]
    return collections.Counter(c.encode("utf-8") for c in chunks)


def _count_pairs(words, freqs):
    counts = collections.Counter()
    for w, f in zip(words, freqs):
        for pair in zip(w, w[1:]):
            counts[pair] += f
    return counts


def _merge_word(word, pair, new_id):
    """Replace every non-overlapping occurrence of `pair` in `word`, left to right."""
    out, i, a, b = [], 0, pair[0], pair[1]
    n = len(word)
    while i < n:
        if i < n - 1 and word[i] == a and word[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def reference_train_merges(text, n_merges, pattern="gpt2"):
    """The textbook loop: after every merge, recount every pair of every chunk. Slow and plain:
    the fast trainer in BPETokenizer.train must produce exactly these merges."""
    counts = chunk_counts(text, _split_pattern(pattern))
    words = [list(c) for c in counts]
    freqs = list(counts.values())
    merges = []
    for k in range(n_merges):
        pairs = _count_pairs(words, freqs)
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))      # highest count; ties: smallest pair
        merges.append(best)
        words = [_merge_word(w, best, 256 + k) for w in words]
    return merges


def _fast_train_merges(counts, n_merges, verbose=False, vocab=None):
    """Incremental BPE: pair counts are updated only for the chunks a merge touches, and a heap with
    lazy deletion finds the best pair. Same merges as reference_train_merges."""
    words = [list(c) for c in counts]
    freqs = list(counts.values())
    pair_counts = _count_pairs(words, freqs)
    where = collections.defaultdict(set)            # pair -> indices of words that (may) hold it
    for i, w in enumerate(words):
        for pair in zip(w, w[1:]):
            where[pair].add(i)
    heap = [(-c, p) for p, c in pair_counts.items()]
    heapq.heapify(heap)
    merges = []
    while len(merges) < n_merges and heap:
        neg, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -neg or neg == 0:
            continue                                   # a stale heap entry
        new_id = 256 + len(merges)
        merges.append(pair)
        if verbose and vocab is not None:
            print(f"merge {len(merges)}: {vocab[pair[0]]!r} + {vocab[pair[1]]!r} -> {new_id} (count {-neg})")
        changed = set()
        for i in where.pop(pair, ()):
            w = words[i]
            if len(w) < 2:
                continue
            new = _merge_word(w, pair, new_id)
            if len(new) == len(w):
                continue                               # the pair is no longer in this word
            f = freqs[i]
            for p in zip(w, w[1:]):
                pair_counts[p] -= f
                changed.add(p)
            for p in zip(new, new[1:]):
                pair_counts[p] += f
                changed.add(p)
                where[p].add(i)
            words[i] = new
        pair_counts.pop(pair, None)
        changed.discard(pair)
        for p in changed:
            c = pair_counts.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p))
            else:
                pair_counts.pop(p, None)
    return merges


class BPETokenizer(Tokenizer):
    """Byte-level BPE with train / encode / decode / tokenize / save / load.

    byte_ids: the id of each of the 256 bytes (identity for a trained tokenizer).
    merges:   list of (id_a, id_b); merge k creates id 256 + k.
    special_tokens: {text: id}, ids after the merges (GPT-2: {"<|endoftext|>": 50256}).
    """

    kind = "bpe"

    def __init__(self, merges=(), pattern="gpt2", special_tokens=None, byte_ids=None):
        self.pattern_name = pattern if pattern in PATTERNS else "custom"
        self.pattern = _split_pattern(pattern)
        self.byte_ids = list(range(256)) if byte_ids is None else list(byte_ids)
        if sorted(self.byte_ids) != list(range(256)):
            raise ValueError("byte_ids must be a permutation of 0..255")
        self.merges = [tuple(m) for m in merges]
        self.vocab = [b""] * 256                       # id -> bytes
        for byte, i in enumerate(self.byte_ids):
            self.vocab[i] = bytes([byte])
        for k, (a, b) in enumerate(self.merges):
            if not (0 <= a < 256 + k and 0 <= b < 256 + k):
                raise ValueError(f"merge {k} ({a}, {b}) uses an id that does not exist yet")
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self.ranks = {}                                 # bytes -> id; id is also the merge priority
        for i, tok in enumerate(self.vocab):
            self.ranks.setdefault(tok, i)
        self.special_tokens = dict(special_tokens or {})
        for text, i in self.special_tokens.items():
            if i < len(self.vocab):
                raise ValueError(f"special token {text!r} has id {i}, which a merge already uses")
        self.inverse_special = {i: t.encode("utf-8") for t, i in self.special_tokens.items()}
        self._split = regex.compile(self.pattern) if self.pattern else None
        self._split_ascii = re.compile(GPT2_PATTERN_ASCII) if self.pattern == GPT2_PATTERN else None
        self._special_split = (regex.compile("(" + "|".join(regex.escape(t) for t in
                                                             sorted(self.special_tokens, key=len, reverse=True)) + ")")
                               if self.special_tokens else None)
        self._byte_token = [self.vocab[i] for i in self.byte_ids]
        self._cache = {}

    # ------------------------------------------------------------------ training
    @classmethod
    def train(cls, text, vocab_size, pattern="gpt2", special_tokens=(), verbose=False):
        """Learn vocab_size - 256 merges from `text` (special tokens get ids after them)."""
        if vocab_size < 256:
            raise ValueError(f"BPETokenizer.train: vocab_size={vocab_size} is below 256; a byte-level "
                             "BPE starts from the 256 single bytes, so vocab_size must be at least 256")
        counts = chunk_counts(text, _split_pattern(pattern))
        merges = _fast_train_merges(counts, vocab_size - 256, verbose,
                                    vocab=[bytes([b]) for b in range(256)] if verbose else None)
        n = 256 + len(merges)
        specials = {t: n + j for j, t in enumerate(special_tokens)}
        return cls(merges, pattern, specials)

    # ------------------------------------------------------------------ GPT-2
    @classmethod
    def from_gpt2_files(cls, encoder_json, vocab_bpe):
        """GPT-2's tokenizer from its two files (see tokenizers/gpt2.py for finding them)."""
        byte_ids, merges, specials = read_gpt2_files(encoder_json, vocab_bpe)
        return cls(merges, "gpt2", specials, byte_ids)

    # ------------------------------------------------------------------ encoding
    @property
    def vocab_size(self):
        return len(self.vocab) + len(self.special_tokens)

    def _encode_chunk(self, piece):
        """tiktoken's rule: repeatedly merge the adjacent pair whose concatenation has the lowest
        rank (leftmost on ties), until no adjacent pair is a token."""
        ranks = self.ranks
        whole = ranks.get(piece)
        if whole is not None:               # the whole chunk is one token (most words)
            return [whole]
        parts = [self._byte_token[b] for b in piece]
        while len(parts) > 1:
            best_rank, best_i = None, -1
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and (best_rank is None or r < best_rank):
                    best_rank, best_i = r, i
            if best_rank is None:
                break
            parts[best_i:best_i + 2] = [parts[best_i] + parts[best_i + 1]]
        return [ranks[p] for p in parts]

    def encode_ordinary(self, text):
        """Encode with no special-token handling (special-token text is ordinary text)."""
        cache, ids = self._cache, []
        if self._split is None:
            chunks = [text]
        elif self._split_ascii is not None and text.isascii() and not _ASCII_SEPARATORS.search(text):
            chunks = self._split_ascii.findall(text)
        else:
            chunks = self._split.findall(text)
        for chunk in chunks:
            got = cache.get(chunk)
            if got is None:
                got = self._encode_chunk(chunk.encode("utf-8"))
                if len(cache) < 200_000:
                    cache[chunk] = got
            ids.extend(got)
        return ids

    def encode(self, text, allowed_special=(), disallowed_special="all"):
        """As tiktoken: special tokens in `allowed_special` ("all" or a set) become their ids;
        any in `disallowed_special` (default: all the others) raise ValueError; pass
        disallowed_special=() to encode them as ordinary text."""
        if not self.special_tokens:
            return self.encode_ordinary(text)
        allowed = set(self.special_tokens) if allowed_special == "all" else set(allowed_special)
        disallowed = (set(self.special_tokens) - allowed) if disallowed_special == "all" else set(disallowed_special)
        for token in disallowed:
            if token in text:
                raise EncodeError(f"BPETokenizer.encode: the text contains the special token {token!r}. "
                                  f"Pass allowed_special={{{token!r}}} (or 'all') to encode it as its id, or "
                                  "disallowed_special=() to encode it as ordinary text")
        if not allowed:
            return self.encode_ordinary(text)
        ids = []
        for part in self._special_split.split(text):
            if part in allowed:
                ids.append(self.special_tokens[part])
            elif part:
                ids.extend(self.encode_ordinary(part))
        return ids

    def decode_bytes(self, ids):
        vocab, special = self.vocab, self.inverse_special
        n = len(vocab)
        try:
            return b"".join(vocab[i] if i < n else special[i] for i in ids)
        except (KeyError, IndexError, TypeError):
            bad = next(i for i in ids if not (0 <= i < n or i in special))
            raise ValueError(f"BPETokenizer.decode: id {bad} is outside the vocabulary "
                             f"(0..{self.vocab_size - 1})") from None

    def decode(self, ids):
        """Bytes that are not valid UTF-8 (a token sequence cut mid-character) become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def tokenize(self, text, **kwargs):
        return [self.decode_bytes([i]).decode("utf-8", errors="backslashreplace")
                for i in self.encode(text, **kwargs)]

    def merge_strings(self, n=None):
        """The first n merges as readable strings ('t' + 'h' -> 'th'), for watching training."""
        out = []
        for k, (a, b) in enumerate(self.merges[:n]):
            show = [self.vocab[x].decode("utf-8", errors="backslashreplace") for x in (a, b, 256 + k)]
            out.append(f"{show[0]!r} + {show[1]!r} -> {show[2]!r}")
        return out

    # ------------------------------------------------------------------ files
    def to_dict(self):
        d = {"pattern": self.pattern_name if self.pattern_name != "custom" else self.pattern,
             "special_tokens": self.special_tokens, "merges": [list(m) for m in self.merges]}
        if self.byte_ids != list(range(256)):
            d["byte_ids"] = self.byte_ids
        return d

    @classmethod
    def from_dict(cls, d):
        merges = d["merges"]
        if not isinstance(merges, list) or not all(isinstance(m, list) and len(m) == 2 and
                                                   all(isinstance(x, int) for x in m) for m in merges):
            raise ValueError("'merges' must be a list of [id, id] pairs")
        specials = d.get("special_tokens", {})
        if not isinstance(specials, dict):
            raise ValueError("'special_tokens' must be an object")
        return cls(merges, d["pattern"], specials, d.get("byte_ids"))


def gpt2_tokenizer(directory=None, download=True):
    """GPT-2's tokenizer as a BPETokenizer (ids identical to tiktoken's "gpt2" encoding)."""
    return BPETokenizer.from_gpt2_files(*gpt2_files(directory or os.environ.get("TINYGRAD_LM_GPT2_DIR"), download))
