"""WordPiece, BERT's tokenizer: words first, then each word as the longest vocabulary pieces.

    text -> basic tokenization: drop control characters, whitespace -> " ", a space around each
            CJK ideograph (Chinese has no spaces: each character is a word), lower-case and strip
            accents (NFD, drop the combining marks) when the vocabulary is uncased, split on
            whitespace, each punctuation character a word of its own
         -> WordPiece: greedy longest-match-first; a piece that continues a word is looked up
            with "##" in front ("tokenization" -> token ##ization); a word no pieces cover, or
            longer than 100 characters, becomes [UNK]
         -> ids, with [CLS] A [SEP] (B [SEP]) around them, token_type_ids 0 for A and 1 for B

The ids are those of transformers' BertTokenizer (tests/test_wordpiece.py checks on varied text).
A vocabulary is ``vocab.txt``: one token a line, the line number its id.
"""
import json
import pathlib
import unicodedata

import numpy as np
import regex

from ..io import hf
from .base import EncodeError, Tokenizer, TokenizerFileError, check_ids

SPECIAL_TOKENS = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
PADDING = (False, True, "longest", "max_length", "do_not_pad")
NO_SPACE_BEFORE = (".", "?", "!", ",")      # decode's clean-up, as transformers' (token by token)


def is_punctuation(ch):
    """BERT's punctuation: every non-alphanumeric printable ASCII character (also $, +, ^, `...)
    and Unicode's punctuation categories P*."""
    cp = ord(ch)
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or \
        unicodedata.category(ch).startswith("P")


def is_control(ch):
    """Unicode's "other" categories (C*), except tab, newline and return (they are whitespace)."""
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def is_cjk(ch):
    """A CJK ideograph (not Hangul, Hiragana or Katakana, which are written with spaces)."""
    cp = ord(ch)
    return 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or \
        0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or \
        0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F


def strip_accents(text):
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")


class WordPieceTokenizer(Tokenizer):
    """BERT's tokenizer, with transformers' BertTokenizer's names (encode, __call__, decode,
    convert_tokens_to_ids, from_pretrained, save_pretrained...)."""

    kind = "wordpiece"

    def __init__(self, vocab, do_lower_case=True, strip_accents=None, tokenize_chinese_chars=True,
                 unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
                 max_input_chars_per_word=100):
        if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
            raise ValueError("vocab must be a list of token texts (id = position)")
        self.vocab = vocab
        self.token_to_id = {t: i for i, t in enumerate(vocab)}     # a repeated line: the last wins, as transformers
        self.do_lower_case, self.strip_accents = do_lower_case, strip_accents
        self.tokenize_chinese_chars, self.max_input_chars_per_word = tokenize_chinese_chars, max_input_chars_per_word
        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        if unk_token not in self.token_to_id:
            raise ValueError(f"the unknown token {unk_token!r} is not in the vocabulary")
        self.special_tokens = [t for t in (unk_token, sep_token, pad_token, cls_token, mask_token)
                               if t in self.token_to_id]
        # special tokens written in the text ("the [MASK] sat") stay whole, as in transformers
        self._specials = regex.compile("|".join(map(regex.escape, sorted(self.special_tokens, key=len, reverse=True))))

    # ------------------------------------------------------------------ files
    @classmethod
    def from_pretrained(cls, name_or_path, **kwargs):
        """From a folder holding vocab.txt (and, optionally, tokenizer_config.json for do_lower_case
        and the special tokens), a vocab.txt itself, or a hub name ("bert-base-uncased", downloaded
        once when online). kwargs override what the files say."""
        path = pathlib.Path(name_or_path)
        vocab_path = path if path.is_file() else hf.resolve_bert_dir(name_or_path, ("vocab.txt",)) / "vocab.txt"
        try:
            text = vocab_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TokenizerFileError(f"{vocab_path} not found: a BERT tokenizer needs vocab.txt, "
                                     "one token a line") from None
        except (OSError, UnicodeDecodeError) as e:
            raise TokenizerFileError(f"{vocab_path} cannot be read as UTF-8 text: {e}") from None
        vocab = text.split("\n")
        if vocab[-1] == "":
            vocab.pop()                                  # the newline that ends the last line
        options = {}
        config_path = vocab_path.parent / "tokenizer_config.json"
        if config_path.exists():
            try:
                config = json.loads(config_path.read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError) as e:
                raise TokenizerFileError(f"{config_path} is not a tokenizer config: {type(e).__name__}") from None
            if not isinstance(config, dict):
                raise TokenizerFileError(f"{config_path} must hold a JSON object")
            for key in ("do_lower_case", "strip_accents", "tokenize_chinese_chars", *SPECIAL_TOKENS):
                value = config.get(key)
                if isinstance(value, dict) and key in SPECIAL_TOKENS:     # saved as {"content": "[UNK]", ...}
                    value = value.get("content")
                if key in config and not _is_option(key, value):
                    raise TokenizerFileError(f"{config_path}: {key!r} is {value!r}, not a usable value")
                if key in config:
                    options[key] = value
        try:
            tok = cls(vocab, **{**options, **kwargs})
        except ValueError as e:
            raise TokenizerFileError(f"{vocab_path}: {e}") from None
        tok.source = str(vocab_path)
        return tok

    def save_pretrained(self, out_dir):
        """vocab.txt and tokenizer_config.json, which transformers' BertTokenizer also reads."""
        out = pathlib.Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "vocab.txt").write_text("".join(t + "\n" for t in self.vocab), encoding="utf-8")
        config = {"tokenizer_class": "BertTokenizer", **self._options()}
        (out / "tokenizer_config.json").write_text(json.dumps(config, indent=1, ensure_ascii=False), encoding="utf-8")
        return out

    def _options(self):
        return {"do_lower_case": self.do_lower_case, "strip_accents": self.strip_accents,
                "tokenize_chinese_chars": self.tokenize_chinese_chars,
                **{k: getattr(self, k) for k in SPECIAL_TOKENS},
                "max_input_chars_per_word": self.max_input_chars_per_word}

    def to_dict(self):
        return {"vocab": self.vocab, **self._options()}

    @classmethod
    def from_dict(cls, d):
        options = {k: v for k, v in d.items() if k not in ("type", "version", "vocab")}
        bad = [k for k, v in options.items() if not _is_option(k, v)]
        if bad:
            raise ValueError(f"unknown or mistyped options {bad}")
        return cls(d["vocab"], **options)

    @property
    def vocab_size(self):
        return len(self.vocab)

    # ------------------------------------------------------------------ text -> tokens
    def basic_tokenize(self, text):
        """Words and punctuation, cleaned and (uncased) lower-cased without accents."""
        chars = []
        for ch in text:
            if ch == "\0" or ch == "\ufffd" or is_control(ch):
                continue
            if self.tokenize_chinese_chars and is_cjk(ch):
                chars.append(f" {ch} ")
            else:
                chars.append(ch)
        words = []
        for word in "".join(chars).split():
            if self.do_lower_case:
                # one character at a time, as BERT's other implementations: no final-sigma rule
                word = word.replace("Σ", "σ").lower()
            if self.strip_accents or (self.strip_accents is None and self.do_lower_case):
                word = strip_accents(word)
            words.extend(self._split_punctuation(word))
        return words

    @staticmethod
    def _split_punctuation(word):
        pieces, current = [], ""
        for ch in word:
            if is_punctuation(ch):
                if current:
                    pieces.append(current)
                pieces.append(ch)
                current = ""
            else:
                current += ch
        return pieces + [current] if current else pieces

    def wordpiece(self, word):
        """Greedy longest-match-first pieces of one word, or [UNK] for the whole word."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.token_to_id:
                    break
            else:
                return [self.unk_token]                 # no piece of the vocabulary starts here
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text):
        """The token texts of `text` (no [CLS] / [SEP] added)."""
        tokens, start = [], 0
        for special in self._specials.finditer(text):
            tokens += self._tokenize_plain(text[start:special.start()]) + [special.group()]
            start = special.end()
        return tokens + self._tokenize_plain(text[start:])

    def _tokenize_plain(self, text):
        return [piece for word in self.basic_tokenize(text) for piece in self.wordpiece(word)]

    def convert_tokens_to_ids(self, tokens):
        unk = self.token_to_id[self.unk_token]
        if isinstance(tokens, str):
            return self.token_to_id.get(tokens, unk)
        return [self.token_to_id.get(t, unk) for t in tokens]

    def convert_ids_to_tokens(self, ids):
        if isinstance(ids, (int, np.integer)):
            return self.vocab[check_ids([ids], len(self.vocab), "WordPieceTokenizer")[0]]
        return [self.vocab[i] for i in check_ids(ids, len(self.vocab), "WordPieceTokenizer")]

    def _special_id(self, name):
        token = getattr(self, name)
        if token not in self.token_to_id:
            raise EncodeError(f"WordPieceTokenizer: the vocabulary has no {name} {token!r}")
        return self.token_to_id[token]

    @property
    def cls_token_id(self):
        return self._special_id("cls_token")

    @property
    def sep_token_id(self):
        return self._special_id("sep_token")

    @property
    def pad_token_id(self):
        return self._special_id("pad_token")

    @property
    def mask_token_id(self):
        return self._special_id("mask_token")

    @property
    def unk_token_id(self):
        return self._special_id("unk_token")

    # ------------------------------------------------------------------ ids, pairs, batches
    def encode(self, text, text_pair=None, add_special_tokens=True, truncation=False, max_length=None):
        """Ids of `text` (and `text_pair`): [CLS] A [SEP] (B [SEP]) with add_special_tokens."""
        return self._encode_one(text, text_pair, add_special_tokens, truncation, max_length)["input_ids"]

    def __call__(self, text, text_pair=None, add_special_tokens=True, padding=False, truncation=False,
                 max_length=None, return_tensors=None):
        """transformers' tokenizer call: {"input_ids", "token_type_ids", "attention_mask"} for a text
        (lists) or a list of texts (lists of lists; return_tensors="np": int64 arrays (B, T)).

        truncation=True cuts to max_length tokens (special tokens included), a pair from its longer
        sequence first; padding=True (or "longest") pads to the batch's longest, "max_length" to
        max_length, with [PAD], token type 0 and attention_mask 0."""
        if padding not in PADDING:
            raise ValueError(f"padding must be one of {PADDING}, got {padding!r}")
        batched = isinstance(text, (list, tuple))
        texts = list(text) if batched else [text]
        pairs = [None] * len(texts) if text_pair is None else list(text_pair) if batched else [text_pair]
        if len(pairs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(pairs)} text pairs")
        rows = [self._encode_one(a, b, add_special_tokens, truncation, max_length) for a, b in zip(texts, pairs)]
        if padding == "max_length" and max_length is None:
            raise ValueError("padding='max_length' needs max_length")
        width = max_length if padding == "max_length" else max(len(r["input_ids"]) for r in rows) \
            if padding in (True, "longest") else None
        if width is not None:
            for r in rows:
                n = width - len(r["input_ids"])
                if n > 0:
                    r["input_ids"] += [self.pad_token_id] * n
                    r["token_type_ids"] += [0] * n
                    r["attention_mask"] += [0] * n
        out = {key: [r[key] for r in rows] if batched else rows[0][key] for key in rows[0]}
        if return_tensors == "np":
            lengths = {len(r["input_ids"]) for r in rows}
            if len(lengths) > 1:
                raise ValueError("return_tensors='np' needs rows of one length: pass padding=True")
            return {key: np.array(value, dtype=np.int64) for key, value in out.items()}
        if return_tensors is not None:
            raise ValueError(f"return_tensors must be None or 'np', got {return_tensors!r}")
        return out

    def _encode_one(self, text, text_pair, add_special_tokens, truncation, max_length):
        for t in (text, text_pair):
            if t is not None and not isinstance(t, str):
                raise EncodeError(f"WordPieceTokenizer: expected text, got {type(t).__name__}")
        a = self.convert_tokens_to_ids(self.tokenize(text))
        b = None if text_pair is None else self.convert_tokens_to_ids(self.tokenize(text_pair))
        if truncation and max_length is not None:
            extra = (3 if b is not None else 2) if add_special_tokens else 0
            a, b = _truncate(a, b, max_length - extra)
        if add_special_tokens:
            cls, sep = [self.cls_token_id], [self.sep_token_id]
            ids, types = cls + a + sep, [0] * (len(a) + 2)
            if b is not None:
                ids, types = ids + b + sep, types + [1] * (len(b) + 1)
        else:
            ids, types = a + (b or []), [0] * len(a) + [1] * len(b or [])
        return {"input_ids": ids, "token_type_ids": types, "attention_mask": [1] * len(ids)}

    def decode(self, ids, skip_special_tokens=False, clean_up_tokenization_spaces=True):
        """Tokens joined by spaces, a "##" piece glued to the one before it; by default, as
        transformers' BertTokenizer, no space before . ? ! or , ("hello, world")."""
        tokens = self.convert_ids_to_tokens(ids)
        if skip_special_tokens:
            tokens = [t for t in tokens if t not in self.special_tokens]
        no_space = NO_SPACE_BEFORE if clean_up_tokenization_spaces else ()
        return "".join(t if i == 0 or t in no_space else t[2:] if t.startswith("##") else " " + t
                       for i, t in enumerate(tokens))


def _truncate(a, b, budget):
    """Cut to `budget` ids in all, as transformers' "longest_first": a single sequence loses its
    end; of a pair, the longer one is cut down first (to no less than the shorter), and if that is
    not enough both get half the budget, the odd one going to the longer (to the second on a tie)."""
    if budget < 0:
        raise EncodeError(f"max_length leaves no room for the special tokens ({-budget} too few)")
    if b is None:
        return a[:budget], None
    short, long = sorted((len(a), len(b)))
    long = max(short, budget - short) if short <= budget else short
    if short + long > budget:
        short, long = budget // 2, budget // 2 + budget % 2
    n_a, n_b = (long, short) if len(a) > len(b) else (short, long)
    return a[:n_a], b[:n_b]


def _is_option(key, value):
    if key in ("do_lower_case", "tokenize_chinese_chars"):
        return isinstance(value, bool)
    if key == "strip_accents":
        return value is None or isinstance(value, bool)
    if key == "max_input_chars_per_word":
        return isinstance(value, int) and not isinstance(value, bool) and value > 0
    return key in SPECIAL_TOKENS and isinstance(value, str)
