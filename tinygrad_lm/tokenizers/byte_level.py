"""Byte-level BPE as today's open models ship it (Hugging Face's ``tokenizer.json``, a GGUF file's
``tokenizer.ggml.*`` metadata): a vocabulary {token text: id} and a ranked list of merges, the
tokens' text written in GPT-2's byte-to-character alphabet (tokenizers/gpt2.py bytes_to_unicode:
every byte a printable character, so "Ġ" is a space).

Encoding a text, as Hugging Face's tokenizers library does:
1. special tokens (the control tokens: <|im_start|>, <|im_end|>, ...) are split out first and map
   to their ids whole;
2. each remaining span is pre-tokenized by the model's rule (PRE_TOKENIZERS: GPT-2's regex; SmolLM
   first isolates every digit; Llama 3 and Qwen2 use their own regexes);
3. each piece is turned into its bytes' characters, and the adjacent pair with the lowest merge
   rank is merged again and again until no pair is a merge; each resulting string is one id.
Decoding maps ids back to strings, then the characters back to bytes.
"""
import json
import pathlib

import regex

from .base import Tokenizer, check_ids
from .bpe import GPT2_PATTERN
from .gpt2 import bytes_to_unicode
from ..errors import TokenizerFileError

LLAMA3_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
                  r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
QWEN2_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
                 r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
# a model's pre-tokenizer: (regex isolating pieces first or None, the splitting regex)
PRE_TOKENIZERS = {"gpt2": (None, GPT2_PATTERN), "smollm": (r"\p{N}", GPT2_PATTERN),
                  "llama-bpe": (None, LLAMA3_PATTERN), "qwen2": (None, QWEN2_PATTERN)}
CONTROL, USER_DEFINED = 3, 4          # GGUF token types whose text is split out before BPE


class ByteLevelBPETokenizer(Tokenizer):
    kind = "byte-level-bpe"

    def __init__(self, vocab, merges, pre_tokenizer="gpt2", special_tokens=(), ignore_merges=False):
        """vocab: token texts in id order; merges: "a b" strings (or [a, b] pairs) by rank;
        special_tokens: texts of vocab entries matched whole before BPE; ignore_merges (Llama 3's
        tokenizer.json): a piece that is itself a vocabulary entry is that one id, unmerged."""
        self.ignore_merges = ignore_merges
        if pre_tokenizer not in PRE_TOKENIZERS:
            raise TokenizerFileError(f"pre-tokenizer {pre_tokenizer!r} is not known (known: "
                                     f"{', '.join(PRE_TOKENIZERS)})")
        self.tokens = list(vocab)
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.pre_tokenizer = pre_tokenizer
        self.merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in merges]
        if any(len(m) != 2 for m in self.merges):
            raise TokenizerFileError("a merge is not two tokens ('a b' or [a, b])")
        self.ranks = {m: r for r, m in enumerate(self.merges)}
        self.special_tokens = {t: self.ids[t] for t in special_tokens}
        isolate, split = PRE_TOKENIZERS[pre_tokenizer]
        self._isolate = regex.compile(f"({isolate})") if isolate else None
        self._split = regex.compile(split)
        self._special = (regex.compile("(" + "|".join(regex.escape(t) for t in sorted(self.special_tokens, key=len,
                                                                                      reverse=True)) + ")")
                         if self.special_tokens else None)
        self._byte_char = bytes_to_unicode()
        self._char_byte = {c: b for b, c in self._byte_char.items()}
        self._cache = {}

    @classmethod
    def from_gguf(cls, metadata):
        """The tokenizer a GGUF file's metadata holds (tokenizer.ggml.model 'gpt2')."""
        model = metadata.get("tokenizer.ggml.model")
        if model != "gpt2":
            raise TokenizerFileError(f"tokenizer.ggml.model {model!r}: this reader knows byte-level BPE ('gpt2')")
        tokens, merges = metadata.get("tokenizer.ggml.tokens"), metadata.get("tokenizer.ggml.merges")
        if not isinstance(tokens, list) or not isinstance(merges, list):
            raise TokenizerFileError("the GGUF metadata holds no tokenizer.ggml.tokens / merges lists")
        types = metadata.get("tokenizer.ggml.token_type")
        special = [] if types is None else [t for t, k in zip(tokens, types) if k in (CONTROL, USER_DEFINED)]
        return cls(tokens, merges, metadata.get("tokenizer.ggml.pre", "gpt2"), special)

    @classmethod
    def from_tokenizer_json(cls, path):
        """The tokenizer a Hugging Face ``tokenizer.json`` describes (a file, or a folder holding
        one): model BPE (vocab {text: id}; merges spelled "a b" or ["a", "b"]), its added_tokens
        split out first, the pre-tokenizer recognised by its pieces (TOKENIZER_JSON_PRE)."""
        path = pathlib.Path(path)
        path = path / "tokenizer.json" if path.is_dir() else path
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as e:
            raise TokenizerFileError(f"{path}: not a readable tokenizer.json ({e})") from None
        model = d.get("model") if isinstance(d, dict) else None
        if not isinstance(model, dict) or model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict) \
                or not isinstance(model.get("merges"), list):
            raise TokenizerFileError(f"{path}: model is not BPE with a vocab and merges (this reader knows byte-level BPE)")
        if model.get("byte_fallback"):
            raise TokenizerFileError(f"{path}: byte_fallback BPE (SentencePiece-style, Llama 2) is not read here")
        added = d.get("added_tokens") or []
        _check_tokenizer_json(model, added, path)
        by_id = {i: t for t, i in model["vocab"].items()}
        added = [a for a in added if "id" in a and "content" in a]
        by_id.update({a["id"]: a["content"] for a in added})
        if sorted(by_id) != list(range(len(by_id))):
            raise TokenizerFileError(f"{path}: the token ids are not 0..{len(by_id) - 1} without gaps")
        tokens = [by_id[i] for i in range(len(by_id))]
        return cls(tokens, model["merges"], pre_tokenizer_of(d.get("pre_tokenizer"), path),
                   [a["content"] for a in added], ignore_merges=bool(model.get("ignore_merges")))

    # ------------------------------------------------------------------ encoding
    @property
    def vocab_size(self):
        return len(self.tokens)

    def _bpe(self, piece):
        got = self._cache.get(piece)
        if got is not None:
            return got
        parts = [self._byte_char[b] for b in piece.encode("utf-8")]
        if self.ignore_merges and "".join(parts) in self.ids:
            parts = ["".join(parts)]
        ranks = self.ranks
        while len(parts) > 1:
            best, at = None, -1
            for i in range(len(parts) - 1):
                r = ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best):
                    best, at = r, i
            if best is None:
                break
            parts[at:at + 2] = [parts[at] + parts[at + 1]]
        try:
            ids = [self.ids[p] for p in parts]
        except KeyError as e:
            raise TokenizerFileError(f"the merges make {e.args[0]!r}, which the vocabulary lacks") from None
        if len(self._cache) < 200_000:
            self._cache[piece] = ids
        return ids

    def _pieces(self, text):
        spans = self._isolate.split(text) if self._isolate else [text]
        for span in spans:
            if span:
                yield from self._split.findall(span)

    def encode(self, text):
        ids = []
        for part in (self._special.split(text) if self._special else [text]):
            if part in self.special_tokens:
                ids.append(self.special_tokens[part])
            elif part:
                for piece in self._pieces(part):
                    ids.extend(self._bpe(piece))
        return ids

    def decode(self, ids):
        ids = check_ids(ids, self.vocab_size, "ByteLevelBPETokenizer")
        out, chars = [], []
        for i in ids:
            token = self.tokens[i]
            if token in self.special_tokens:
                out.append(bytes(self._char_byte[c] for c in "".join(chars)))
                out.append(token.encode("utf-8"))
                chars = []
            else:
                chars.append(token)
        out.append(bytes(self._char_byte.get(c, 63) for c in "".join(chars)))
        return b"".join(out).decode("utf-8", errors="replace")

    def token_id(self, text):
        return self.ids[text]

    def to_dict(self):
        return {"tokens": self.tokens, "merges": [" ".join(m) for m in self.merges],
                "pre_tokenizer": self.pre_tokenizer, "special_tokens": list(self.special_tokens),
                "ignore_merges": self.ignore_merges}

    @classmethod
    def from_dict(cls, d):
        return cls(d["tokens"], d["merges"], d.get("pre_tokenizer", "gpt2"), d.get("special_tokens", ()),
                   d.get("ignore_merges", False))


def _describe(step):
    """A tokenizer.json pre-tokenizer step as a comparable tuple."""
    kind = step.get("type") if isinstance(step, dict) else None
    if kind == "ByteLevel":
        return ("ByteLevel", bool(step.get("use_regex", True)))
    if kind == "Digits":
        return ("Digits", bool(step.get("individual_digits")))
    if kind == "Split":
        pattern = step.get("pattern") or {}
        return ("Split", pattern.get("Regex", pattern.get("String")))
    return (kind,)


# tokenizer.json's pre_tokenizer, step by step -> the name in PRE_TOKENIZERS
TOKENIZER_JSON_PRE = {
    (("ByteLevel", True),): "gpt2",
    (("Digits", True), ("ByteLevel", True)): "smollm",
    (("Split", LLAMA3_PATTERN), ("ByteLevel", False)): "llama-bpe",
    (("Split", QWEN2_PATTERN), ("ByteLevel", False)): "qwen2",
}


def _is_id(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_tokenizer_json(model, added, path):
    """What from_tokenizer_json reads, each of its kind: vocab {text: id >= 0}, merges "a b" or
    [a, b] of texts, added_tokens a list of {"id": id, "content": text}."""
    bad = next((f"the vocab entry {t!r}: {i!r}" for t, i in model["vocab"].items() if not _is_id(i)), None)
    bad = bad or next((f"the merge {m!r}" for m in model["merges"] if not (
        isinstance(m, str) and " " in m or isinstance(m, list) and len(m) == 2 and all(isinstance(x, str) for x in m))),
        None)
    if not isinstance(added, list):
        bad = bad or f"added_tokens {str(added)[:40]} (not a list)"
    else:
        bad = bad or next((f"the added token {str(a)[:60]}" for a in added if not (
            isinstance(a, dict) and _is_id(a.get("id")) and isinstance(a.get("content"), str) and a["content"])),
            None)
    if bad:
        raise TokenizerFileError(f"{path}: {bad} is not what a tokenizer.json holds there")


def pre_tokenizer_of(spec, where="tokenizer.json"):
    """The PRE_TOKENIZERS name of a tokenizer.json pre_tokenizer (a step or a Sequence of steps);
    one not known is refused, its steps named."""
    steps = spec.get("pretokenizers") if isinstance(spec, dict) and spec.get("type") == "Sequence" else [spec]
    described = tuple(_describe(step) for step in steps or [])
    name = TOKENIZER_JSON_PRE.get(described)
    if name is None:
        raise TokenizerFileError(f"{where}: pre_tokenizer {described} is not one of the known rules "
                                 f"({', '.join(PRE_TOKENIZERS)})")
    return name
