"""Byte-level BPE: train your own, or load GPT-2's.

Text is first split into chunks by a regex (GPT-2's pattern keeps words, numbers, punctuation
and whitespace apart, so no token spans "dog." or " the cat"). Each chunk is UTF-8 bytes; every byte
is a token to begin with, and training repeatedly merges the most frequent adjacent pair of
tokens into a new token.

Token ids: the 256 single bytes have ids 0..255 (in byte order for a trained tokenizer; in
GPT-2's own order for GPT-2), merge k makes id 256 + k, special tokens come after the merges.
A token's id is also its priority when encoding: lower ids were learnt earlier.

Training tie-break (documented, deterministic): among pairs with the same highest count, the pair
(a, b) with the smallest a, then the smallest b, is merged first. A pair whose token would be
longer than MAX_TOKEN_BYTES (1024; GPT-2's longest is 128) is never merged, so every trained
tokenizer loads back (a file's merges are held to the same bound).
"""
import collections
import heapq
import os
import re

import regex

from .base import DecodeError, EncodeError, Tokenizer, TokenizerError, TokenizerFileError, check_ids
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
MAX_TOKEN_BYTES = 1024          # the longest token a tokenizer may hold (see BPETokenizer)
MAX_VOCAB_SIZE = 2 ** 24        # the most ids (bytes, merges, special tokens)


def _split_pattern(pattern):
    """The regex a pattern name stands for, or a custom regex, checked: it must compile and have no
    capturing group (findall would return the groups, not the chunks)."""
    if isinstance(pattern, str) and pattern in PATTERNS or pattern is None:
        return PATTERNS[pattern]
    if not isinstance(pattern, str):
        raise TokenizerError(f"the split pattern must be 'gpt2', 'gpt4', None or a regex string, got {pattern!r}")
    try:
        groups = regex.compile(pattern).groups
    except (regex.error, ValueError, TypeError, OverflowError, RecursionError) as e:
        raise TokenizerError(f"the split pattern {pattern!r} is not a valid regex: {e}") from None
    if groups:
        raise TokenizerError(f"the split pattern {pattern!r} has a capturing group; write (?:...) instead of (...)")
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
    merges, lengths = [], [1] * 256
    for k in range(n_merges):
        pairs = _count_pairs(words, freqs)
        fits = [p for p in pairs if lengths[p[0]] + lengths[p[1]] <= MAX_TOKEN_BYTES]
        if not fits:
            break
        best = min(fits, key=lambda p: (-pairs[p], p))       # highest count; ties: smallest pair
        merges.append(best)
        lengths.append(lengths[best[0]] + lengths[best[1]])
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
    merges, lengths = [], [1] * 256
    while len(merges) < n_merges and heap:
        neg, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -neg or neg == 0:
            continue                                   # a stale heap entry
        if lengths[pair[0]] + lengths[pair[1]] > MAX_TOKEN_BYTES:
            continue                                   # never a token longer than MAX_TOKEN_BYTES
        new_id = 256 + len(merges)
        merges.append(pair)
        lengths.append(lengths[pair[0]] + lengths[pair[1]])
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
    # Bounds (the module's MAX_TOKEN_BYTES, MAX_VOCAB_SIZE, which training obeys too) on what a merges
    # list (from a file, a checkpoint) may build, checked by arithmetic before
    # any token is: each merge can double a token, so 64 merges could declare a token of 2**64 bytes.
    # GPT-2's longest token is 128 bytes (cl100k's about the same); MAX_TOKEN_BYTES is 8 times that,
    # and training never makes a longer token. MAX_VOCAB_SIZE bounds the ids (merges and special
    # tokens): 2**24, 64 times the largest vocabularies in use (~256k), so ids also fit uint32 files.
    # A custom split pattern read from a file (a tokenizer file, a checkpoint) may backtrack
    # catastrophically on some text: it gets this many seconds, plus this many per character,
    # for each split. The built-in patterns are trusted and run without a timeout.
    FILE_PATTERN_TIMEOUT = (2.0, 1e-5)

    def __init__(self, merges=(), pattern="gpt2", special_tokens=None, byte_ids=None):
        self.pattern = _split_pattern(pattern)
        self.pattern_name = pattern if pattern in PATTERNS else "custom"
        self.byte_ids = list(range(256)) if byte_ids is None else list(byte_ids)
        if sorted(self.byte_ids) != list(range(256)):
            raise ValueError("byte_ids must be a permutation of 0..255")
        self.merges = [tuple(m) for m in merges]
        if 256 + len(self.merges) > MAX_VOCAB_SIZE:
            raise ValueError(f"{len(self.merges):,} merges make more than MAX_VOCAB_SIZE={MAX_VOCAB_SIZE:,} ids")
        lengths = [1] * 256                            # each token's length in bytes, before any token is built
        for k, (a, b) in enumerate(self.merges):
            if not (0 <= a < 256 + k and 0 <= b < 256 + k):
                raise ValueError(f"merge {k} ({a}, {b}) uses an id that does not exist yet")
            lengths.append(lengths[a] + lengths[b])
            if lengths[-1] > MAX_TOKEN_BYTES:
                raise ValueError(f"merge {k} ({a}, {b}) makes a token of {lengths[-1]} bytes, longer than "
                                 f"MAX_TOKEN_BYTES={MAX_TOKEN_BYTES} (GPT-2's longest token has 128)")
        self.vocab = [b""] * 256                       # id -> bytes
        for byte, i in enumerate(self.byte_ids):
            self.vocab[i] = bytes([byte])
        for a, b in self.merges:
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self.ranks = {}                                 # bytes -> id; id is also the merge priority
        for i, tok in enumerate(self.vocab):
            self.ranks.setdefault(tok, i)
        self.special_tokens = dict(special_tokens or {})
        for text, i in self.special_tokens.items():
            if not isinstance(text, str) or not text or not isinstance(i, int) or isinstance(i, bool):
                raise ValueError(f"special token {text!r}: {i!r} must be a non-empty text with an integer id")
            if i < len(self.vocab):
                raise ValueError(f"special token {text!r} has id {i}, which a merge already uses")
            if i >= MAX_VOCAB_SIZE:
                raise ValueError(f"special token {text!r} has id {i}, past MAX_VOCAB_SIZE={MAX_VOCAB_SIZE:,}")
        if len(set(self.special_tokens.values())) != len(self.special_tokens):
            raise ValueError(f"two special tokens share an id: {self.special_tokens}")
        self._id_limit = max([len(self.vocab) - 1, *self.special_tokens.values()]) + 1
        self.pattern_timeout = None     # (seconds, seconds per character): see FILE_PATTERN_TIMEOUT
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
        try:
            return cls(merges, "gpt2", specials, byte_ids)
        except ValueError as e:                        # e.g. two bytes with one id
            raise TokenizerFileError(f"GPT-2 tokenizer files {encoder_json}, {vocab_bpe}: {e}") from None

    # ------------------------------------------------------------------ encoding
    @property
    def vocab_size(self):
        """The size of the id space: one more than the largest id (as tiktoken's n_vocab), so an
        embedding of vocab_size rows holds every id, also when special ids leave a gap after the merges."""
        return self._id_limit

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
        elif self.pattern_timeout is not None:
            chunks = self._split_with_timeout(text)
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

    def _split_with_timeout(self, text):
        seconds, per_char = self.pattern_timeout
        limit = seconds + per_char * len(text)
        try:
            return self._split.findall(text, timeout=limit)
        except TimeoutError:
            where = f" (from {self.source})" if self.source else ""
            raise EncodeError(f"BPETokenizer.encode: the split pattern {self.pattern!r}{where} took more than "
                              f"{limit:.1f} s on a text of {len(text):,} characters: it backtracks "
                              "catastrophically; fix the pattern in the tokenizer file") from None

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
        ids = check_ids(ids, self._id_limit, "BPETokenizer")
        try:
            return b"".join([vocab[i] if i < n else special[i] for i in ids])
        except KeyError as e:                          # between the merges and a special token's id
            raise DecodeError(f"BPETokenizer.decode: id {e.args[0]} is neither a token (0..{n - 1}) nor a "
                              f"special token ({sorted(special)})") from None

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
        tok = cls(merges, d["pattern"], specials, d.get("byte_ids"))
        if tok.pattern_name == "custom":
            tok.pattern_timeout = cls.FILE_PATTERN_TIMEOUT       # a pattern from a file: bounded
        return tok


def gpt2_tokenizer(directory=None, download=False, data_dir=None):
    """GPT-2's tokenizer as a BPETokenizer (ids identical to tiktoken's "gpt2" encoding): its files
    from `directory` (or $TINYGRAD_LM_GPT2_DIR), else as gpt2_files finds them (the package's copy)."""
    return BPETokenizer.from_gpt2_files(*gpt2_files(directory or os.environ.get("TINYGRAD_LM_GPT2_DIR"), download,
                                                    data_dir))
