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
TRUNCATION = ("only_first", "only_second", "longest_first", "do_not_truncate")
# decode's clean-up of each token (tokenizers' WordPiece decoder, always on), then of the whole text
# (transformers' clean_up_tokenization, when clean_up_tokenization_spaces is True)
TOKEN_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                 (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))
TEXT_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


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
                 max_input_chars_per_word=100, never_split=None, clean_up_tokenization_spaces=False):
        if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
            raise ValueError("vocab must be a list of token texts (id = position)")
        self.vocab = vocab
        self.token_to_id = {t: i for i, t in enumerate(vocab)}     # a repeated line: the last wins, as transformers
        self.do_lower_case, self.strip_accents = do_lower_case, strip_accents
        self.tokenize_chinese_chars, self.max_input_chars_per_word = tokenize_chinese_chars, max_input_chars_per_word
        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        # words (as whitespace splits them) kept whole: not lower-cased, split or cut into pieces
        self.never_split = list(never_split or [])
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
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
        options = {}
        if vocab_path.name == "tokenizer.json" or (not vocab_path.exists()
                                                   and (vocab_path.parent / "tokenizer.json").exists()):
            vocab_path = vocab_path.parent / "tokenizer.json"          # a folder saved by transformers 5
            vocab, options = _read_tokenizer_json(vocab_path)
        else:
            vocab = _read_vocab_txt(vocab_path)
        config_path = vocab_path.parent / "tokenizer_config.json"
        if config_path.exists():
            try:
                config = json.loads(config_path.read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError) as e:
                raise TokenizerFileError(f"{config_path} is not a tokenizer config: {type(e).__name__}") from None
            if not isinstance(config, dict):
                raise TokenizerFileError(f"{config_path} must hold a JSON object")
            for key in ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "never_split",
                        "clean_up_tokenization_spaces", *SPECIAL_TOKENS):
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
                "max_input_chars_per_word": self.max_input_chars_per_word, "never_split": self.never_split,
                "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces}

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
    def _words(self, text):
        """[(word, positions, whole)]: the words of `text` after basic tokenization, each with the
        position in `text` of every one of its characters (cleaning drops characters, lower-casing
        and accent stripping may drop or expand them: "e" + U+0301 -> "e", İ -> "i"), and whole=True
        for a word of never_split (kept as written)."""
        raw_words, current = [], []
        for at, ch in enumerate(text):
            if ch == "\0" or ch == "\ufffd" or is_control(ch):
                continue
            if ch.isspace() or (self.tokenize_chinese_chars and is_cjk(ch)):
                if current:
                    raw_words.append(current)
                current = []
                if not ch.isspace():
                    raw_words.append([(ch, at)])        # a CJK ideograph is a word of its own
            else:
                current.append((ch, at))
        if current:
            raw_words.append(current)
        strip = self.strip_accents or (self.strip_accents is None and self.do_lower_case)
        words = []
        for raw in raw_words:
            written = "".join(ch for ch, _ in raw)
            if written in self.never_split:
                words.append((written, [at for _, at in raw], True))
                continue
            chars = []
            for ch, at in raw:
                if self.do_lower_case:       # one character at a time, as BERT's other implementations:
                    ch = ("σ" if ch == "Σ" else ch).lower()          # no final-sigma rule
                if strip:
                    ch = strip_accents(ch)
                chars += [(c, at) for c in ch]
            piece = []
            for c, at in chars:             # each punctuation character is a word of its own
                if is_punctuation(c):
                    if piece:
                        words.append(("".join(x for x, _ in piece), [a for _, a in piece], False))
                    words.append((c, [at], False))
                    piece = []
                else:
                    piece.append((c, at))
            if piece:
                words.append(("".join(x for x, _ in piece), [a for _, a in piece], False))
        return words

    def basic_tokenize(self, text):
        """Words and punctuation, cleaned and (uncased) lower-cased without accents."""
        return [word for word, _, _ in self._words(text)]

    def _wordpiece_spans(self, word):
        """[(piece, start, end)]: greedy longest-match-first pieces of one word with the characters
        of the word each covers, or [(UNK, 0, len(word))]."""
        if len(word) > self.max_input_chars_per_word:
            return [(self.unk_token, 0, len(word))]
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.token_to_id:
                    break
            else:
                return [(self.unk_token, 0, len(word))]       # no piece of the vocabulary starts here
            pieces.append((piece, start, end))
            start = end
        return pieces

    def wordpiece(self, word):
        """Greedy longest-match-first pieces of one word, or [UNK] for the whole word."""
        return [piece for piece, _, _ in self._wordpiece_spans(word)]

    def _tokens(self, text):
        """[(token, start, end)]: the tokens of `text` with the span of `text` each came from
        (transformers' offset_mapping); a special token written in the text stays whole."""
        tokens, start = [], 0
        for special in self._specials.finditer(text):
            tokens += self._plain_tokens(text[start:special.start()], start)
            tokens.append((special.group(), special.start(), special.end()))
            start = special.end()
        return tokens + self._plain_tokens(text[start:], start)

    def _plain_tokens(self, text, base):
        tokens = []
        for word, positions, whole in self._words(text):
            if whole:
                tokens.append((word, base + positions[0], base + positions[-1] + 1))
                continue
            for piece, a, b in self._wordpiece_spans(word):
                tokens.append((piece, base + positions[a], base + positions[b - 1] + 1))
        return tokens

    def tokenize(self, text):
        """The token texts of `text` (no [CLS] / [SEP] added)."""
        return [token for token, _, _ in self._tokens(text)]

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
                 max_length=None, return_tensors=None, return_offsets_mapping=False, pad_to_multiple_of=None,
                 is_split_into_words=False):
        """transformers' tokenizer call: {"input_ids", "token_type_ids", "attention_mask"} for a text
        (lists) or a list of texts (lists of lists; return_tensors="np": int64 arrays (B, T)).

        truncation (with max_length, special tokens included): True or "longest_first" cuts a pair
        from its longer sequence first; "only_first" / "only_second" cut that sequence alone and
        refuse when it is too short to make room; False / "do_not_truncate" never cut. padding=True
        (or "longest") pads to the batch's longest, "max_length" to max_length, with [PAD], token
        type 0 and attention_mask 0; pad_to_multiple_of rounds that length up. return_offsets_mapping
        adds each token's (start, end) in its text ((0, 0) for special and padding tokens).
        is_split_into_words: a text is a list of words (a batch, a list of such lists), each
        tokenized alone; offsets are then within each word."""
        if padding not in PADDING:
            raise ValueError(f"padding must be one of {PADDING}, got {padding!r}")
        batched = isinstance(text, (list, tuple)) and (not is_split_into_words or
                                                        (len(text) > 0 and isinstance(text[0], (list, tuple))))
        texts = list(text) if batched else [text]
        pairs = [None] * len(texts) if text_pair is None else list(text_pair) if batched else [text_pair]
        if len(pairs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(pairs)} text pairs")
        rows = [self._encode_one(a, b, add_special_tokens, truncation, max_length, is_split_into_words)
                for a, b in zip(texts, pairs)]
        if padding == "max_length" and max_length is None:
            raise ValueError("padding='max_length' needs max_length")
        width = max_length if padding == "max_length" else max(len(r["input_ids"]) for r in rows) \
            if padding in (True, "longest") else None
        if width is not None and pad_to_multiple_of:
            width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
        for r in rows:
            n = 0 if width is None else width - len(r["input_ids"])
            if n > 0:
                r["input_ids"] += [self.pad_token_id] * n
                r["token_type_ids"] += [0] * n
                r["attention_mask"] += [0] * n
                r["offset_mapping"] += [(0, 0)] * n
            if not return_offsets_mapping:
                del r["offset_mapping"]
        out = {key: [r[key] for r in rows] if batched else rows[0][key] for key in rows[0]}
        if return_tensors == "np":
            lengths = {len(r["input_ids"]) for r in rows}
            if len(lengths) > 1:
                raise ValueError("return_tensors='np' needs rows of one length: pass padding=True")
            return {key: np.array(value, dtype=np.int64) for key, value in out.items()}
        if return_tensors is not None:
            raise ValueError(f"return_tensors must be None or 'np', got {return_tensors!r}")
        return out

    def _encode_one(self, text, text_pair, add_special_tokens, truncation, max_length, split_into_words=False):
        strategy = _truncation_strategy(truncation)
        a = self._encoded_tokens(text, split_into_words)
        b = None if text_pair is None else self._encoded_tokens(text_pair, split_into_words)
        if strategy != "do_not_truncate" and max_length is not None:
            extra = (3 if b is not None else 2) if add_special_tokens else 0
            n_a, n_b = _truncate(len(a), None if b is None else len(b), max_length - extra, strategy)
            a, b = a[:n_a], None if b is None else b[:n_b]
        ids_a = self.convert_tokens_to_ids([t for t, _ in a])
        ids_b = [] if b is None else self.convert_tokens_to_ids([t for t, _ in b])
        spans_a, spans_b = [o for _, o in a], [o for _, o in b or []]
        if add_special_tokens:
            cls, sep = [self.cls_token_id], [self.sep_token_id]
            ids, types, spans = cls + ids_a + sep, [0] * (len(ids_a) + 2), [(0, 0)] + spans_a + [(0, 0)]
            if b is not None:
                ids, types, spans = ids + ids_b + sep, types + [1] * (len(ids_b) + 1), spans + spans_b + [(0, 0)]
        else:
            ids, types, spans = ids_a + ids_b, [0] * len(ids_a) + [1] * len(ids_b), spans_a + spans_b
        return {"input_ids": ids, "token_type_ids": types, "attention_mask": [1] * len(ids), "offset_mapping": spans}

    def _encoded_tokens(self, text, split_into_words):
        """[(token, (start, end))] of a text, or of a list of words each tokenized alone."""
        if split_into_words:
            if not isinstance(text, (list, tuple)) or not all(isinstance(w, str) for w in text):
                raise EncodeError("WordPieceTokenizer: is_split_into_words=True expects a list of words (str)")
            return [(t, (a, b)) for word in text for t, a, b in self._tokens(word)]
        if not isinstance(text, str):
            raise EncodeError(f"WordPieceTokenizer: expected text, got {type(text).__name__}")
        return [(t, (a, b)) for t, a, b in self._tokens(text)]

    def decode(self, ids, skip_special_tokens=False, clean_up_tokenization_spaces=None):
        """Tokens joined as tokenizers' WordPiece decoder joins them: a "##" piece glued to the one
        before it, every other token after a space, and each token cleaned ("hello , world" ->
        "hello, world"); with clean_up_tokenization_spaces (None: the tokenizer's own setting,
        False unless its config says otherwise) the text is also cleaned as transformers'
        clean_up_tokenization does ("don ' t" -> "don't")."""
        tokens = self.convert_ids_to_tokens(ids)
        if skip_special_tokens:
            tokens = [t for t in tokens if t not in self.special_tokens]
        pieces = []
        for i, t in enumerate(tokens):
            if i:
                t = t[2:] if t.startswith("##") else " " + t
            for dirty, clean in TOKEN_CLEANUP:
                t = t.replace(dirty, clean)
            pieces.append(t)
        text = "".join(pieces)
        if self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces:
            for dirty, clean in TEXT_CLEANUP:
                text = text.replace(dirty, clean)
        return text


def _truncation_strategy(truncation):
    """transformers' TruncationStrategy: True is longest_first, False do_not_truncate."""
    if truncation is True:
        return "longest_first"
    if truncation is False or truncation is None:
        return "do_not_truncate"
    if truncation not in TRUNCATION:
        raise ValueError(f"{truncation} is not a valid TruncationStrategy, please select one of {list(TRUNCATION)}")
    return truncation


def _truncate(n_a, n_b, budget, strategy="longest_first"):
    """How many tokens of each sequence (n_b None: a single one) fit in `budget`.

    longest_first, as transformers: a single sequence loses its end; of a pair, the longer one is
    cut down first (to no less than the shorter), and if that is not enough both get half the
    budget, the odd one going to the longer (to the second on a tie). only_first / only_second cut
    that sequence alone; when it would have to lose all its tokens (or, only_second, when there is
    no second sequence), the request cannot be met and is refused, as the tokenizers library does;
    a budget of 0 (max_length = the special tokens) empties both, whatever the strategy."""
    if budget < 0:
        raise EncodeError(f"max_length leaves no room for the special tokens ({-budget} too few)")
    total = n_a + (n_b or 0)
    if total <= budget:
        return n_a, n_b
    if budget == 0:                          # room for the special tokens alone: every strategy empties both
        return 0, None if n_b is None else 0
    if strategy in ("only_first", "only_second"):
        if strategy == "only_second" and n_b is None:
            raise EncodeError("Truncation error: Second sequence not provided (truncation='only_second' truncates "
                              "the second of a pair)")
        remove, own = total - budget, n_a if strategy == "only_first" else n_b
        if remove >= own:
            raise EncodeError("Truncation error: Sequence to truncate too short to respect the provided max_length "
                              f"({strategy}: {own} tokens, {remove} to remove)")
        return (n_a - remove, n_b) if strategy == "only_first" else (n_a, n_b - remove)
    if n_b is None:
        return budget, None
    short, long = sorted((n_a, n_b))
    long = max(short, budget - short) if short <= budget else short
    if short + long > budget:
        short, long = budget // 2, budget // 2 + budget % 2
    return (long, short) if n_a > n_b else (short, long)


def _read_vocab_txt(path):
    """vocab.txt: one token a line, the line number its id."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TokenizerFileError(f"{path} not found: a BERT tokenizer needs vocab.txt (one token a line) or "
                                 "tokenizer.json") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TokenizerFileError(f"{path} cannot be read as UTF-8 text: {e}") from None
    vocab = text.split("\n")
    if vocab[-1] == "":
        vocab.pop()                                  # the newline that ends the last line
    return vocab


def _read_tokenizer_json(path):
    """(vocab, options) from a tokenizers-library tokenizer.json with a WordPiece model (what
    transformers 5 saves for BERT): the vocabulary by id, and the BertNormalizer's options."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        raise TokenizerFileError(f"{path} cannot be read as a tokenizer.json: {type(e).__name__}: {e}") from None
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("type") != "WordPiece":
        kind = model.get("type") if isinstance(model, dict) else None
        raise TokenizerFileError(f"{path}: not a WordPiece tokenizer (model type {kind!r}); BERT's tokenizer.json "
                                 "has model.type 'WordPiece'")
    if model.get("continuing_subword_prefix", "##") != "##":
        raise TokenizerFileError(f"{path}: continuing_subword_prefix {model['continuing_subword_prefix']!r} "
                                 "(only '##' is supported)")
    table = model.get("vocab")
    ids = list(table.values()) if isinstance(table, dict) else []
    if not ids or not all(type(i) is int and i >= 0 for i in ids) or len(set(ids)) != len(ids) or \
            max(ids) >= 2 * len(ids) + 1000:
        raise TokenizerFileError(f"{path}: model.vocab must map each token to its own id (0 .. n-1)")
    # an id no token has (a vocab.txt with a repeated line: the JSON keeps the last) gets a name
    # no text can produce (it holds \0, which cleaning drops), so it decodes visibly and never matches
    vocab = [f"\0[no token {i}]" for i in range(max(ids) + 1)]
    for token, i in table.items():
        vocab[i] = token
    options = {"unk_token": model.get("unk_token", "[UNK]")}
    if isinstance(model.get("max_input_chars_per_word"), int):
        options["max_input_chars_per_word"] = model["max_input_chars_per_word"]
    normalizer = data.get("normalizer")
    if isinstance(normalizer, dict) and normalizer.get("type") == "BertNormalizer":
        for theirs, ours in (("lowercase", "do_lower_case"), ("strip_accents", "strip_accents"),
                             ("handle_chinese_chars", "tokenize_chinese_chars")):
            if theirs in normalizer:
                options[ours] = normalizer[theirs]
    bad = [k for k, v in options.items() if not _is_option(k, v)]
    if bad:
        raise TokenizerFileError(f"{path}: unusable values for {bad}")
    return vocab, options


def _is_option(key, value):
    if key in ("do_lower_case", "tokenize_chinese_chars"):
        return isinstance(value, bool)
    if key == "strip_accents":
        return value is None or isinstance(value, bool)
    if key == "max_input_chars_per_word":
        return isinstance(value, int) and not isinstance(value, bool) and value > 0
    if key == "never_split":
        return value is None or (isinstance(value, list) and all(isinstance(w, str) for w in value))
    if key == "clean_up_tokenization_spaces":
        return isinstance(value, bool)
    return key in SPECIAL_TOKENS and isinstance(value, str)
