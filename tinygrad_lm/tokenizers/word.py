"""Word-level tokenizer: one id per distinct word, to show why word vocabularies explode (every
new word form needs an id, and anything unseen becomes <unk>)."""
import collections

import regex

from .base import Tokenizer, check_ids

# words, runs of punctuation, runs of whitespace: the pieces cover the whole text, so an all-known
# text decodes back exactly
WORD_PATTERN = r"\w+|[^\w\s]+|\s+"


class WordTokenizer(Tokenizer):
    kind = "word"

    def __init__(self, words, unk_token="<unk>"):
        self.unk_token = unk_token
        self.itos = [unk_token] + [w for w in words if w != unk_token]
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self._split = regex.compile(WORD_PATTERN)

    @classmethod
    def from_text(cls, text, max_vocab=None, min_count=1, unk_token="<unk>"):
        """Most frequent pieces first (ties: first seen), keeping at most max_vocab (with <unk>)."""
        counts = collections.Counter(regex.findall(WORD_PATTERN, text))
        words = [w for w, n in counts.most_common() if n >= min_count]
        if max_vocab is not None:
            words = words[: max_vocab - 1]
        return cls(words, unk_token)

    @property
    def vocab_size(self):
        return len(self.itos)

    def tokenize(self, text):
        return self._split.findall(text)

    def encode(self, text):
        return [self.stoi.get(w, 0) for w in self._split.findall(text)]

    def decode(self, ids):
        itos = self.itos
        return "".join([itos[i] for i in check_ids(ids, len(itos), "WordTokenizer")])

    def to_dict(self):
        return {"words": self.itos[1:], "unk_token": self.unk_token}

    @classmethod
    def from_dict(cls, d):
        if not isinstance(d["words"], list) or not all(isinstance(w, str) for w in d["words"]):
            raise ValueError("'words' must be a list of texts")
        if not isinstance(d.get("unk_token", "<unk>"), str):
            raise ValueError("'unk_token' must be a text")
        return cls(d["words"], d.get("unk_token", "<unk>"))
