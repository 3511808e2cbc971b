"""Character-level tokenizer: one id per distinct character (the tutorial's first tokenizer)."""
from .base import EncodeError, Tokenizer, check_ids


class CharTokenizer(Tokenizer):
    """Ids are the sorted distinct characters of a text. An unknown character raises an error naming
    it and its position, or maps to `unk_token` (added to the vocabulary) when one is given."""

    kind = "char"

    def __init__(self, chars, unk_token=None):
        self.chars = sorted(set(chars))
        self.unk_token = unk_token
        self.itos = list(self.chars) + ([unk_token] if unk_token is not None else [])
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.unk_id = len(self.chars) if unk_token is not None else None

    @classmethod
    def from_text(cls, text, unk_token=None):
        return cls(set(text), unk_token)

    @property
    def vocab_size(self):
        return len(self.itos)

    def encode(self, text):
        stoi, unk = self.stoi, self.unk_id
        try:
            return [stoi[c] for c in text]
        except KeyError:
            pass
        ids = []
        for pos, c in enumerate(text):
            i = stoi.get(c, unk)
            if i is None:
                raise EncodeError(f"CharTokenizer: character {c!r} (U+{ord(c):04X}) at position {pos} is not "
                                  f"in the vocabulary of {len(self.chars)} characters; build the tokenizer from "
                                  "a text that contains it, or pass unk_token='<unk>'")
            ids.append(i)
        return ids

    def decode(self, ids):
        itos = self.itos
        return "".join([itos[i] for i in check_ids(ids, len(itos), "CharTokenizer")])

    def to_dict(self):
        return {"chars": self.chars, "unk_token": self.unk_token}

    @classmethod
    def from_dict(cls, d):
        chars = d["chars"]
        if not isinstance(chars, list) or not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise ValueError("'chars' must be a list of single characters")
        if not isinstance(d.get("unk_token"), (str, type(None))):
            raise ValueError("'unk_token' must be a text or null")
        return cls(chars, d.get("unk_token"))
