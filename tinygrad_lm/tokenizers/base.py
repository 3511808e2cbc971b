"""The small interface every tokenizer shares."""
import json
import operator
import pathlib
from ..errors import DecodeError, EncodeError, TokenizerError, TokenizerFileError  # noqa: F401  (defined with the others)


def check_ids(ids, vocab_size, who):
    """The ids to decode as a list of Python ints, each in 0..vocab_size-1, or DecodeError naming
    the first bad one. NumPy integers and integer arrays are accepted; floats, bools, None and
    negative ids (which would index from the end of the vocabulary) are not."""
    if hasattr(ids, "tolist"):                        # a NumPy array: its elements become Python scalars
        ids = ids.tolist()
    if not isinstance(ids, list):
        try:
            ids = list(ids)
        except TypeError:
            raise DecodeError(f"{who}.decode: expected a sequence of token ids, got {type(ids).__name__}") from None
    if set(map(type, ids)) - {int}:                   # the common case: one pass in C
        ids = [_as_id(i, who) for i in ids]
    if ids and (min(ids) < 0 or max(ids) >= vocab_size):
        bad = next(i for i in ids if not 0 <= i < vocab_size)
        raise DecodeError(f"{who}.decode: id {bad} is outside the vocabulary (0..{vocab_size - 1})")
    return ids


def _as_id(i, who):
    if not isinstance(i, bool):
        try:
            return operator.index(i)                  # int and NumPy integers; not floats or None
        except TypeError:
            pass
    raise DecodeError(f"{who}.decode: token ids must be integers, got {i!r} ({type(i).__name__})")


class Tokenizer:
    """encode: str -> list of ids;  decode: ids -> str;  tokenize: str -> token strings (display);
    vocab_size; save(path) / Tokenizer.load(path) in a readable JSON file."""

    kind = "base"
    source = None             # the file it was loaded from, for error messages
    TYPES = {}                # kind -> class, filled as each subclass is defined (for load / from_dict)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Tokenizer.TYPES[cls.kind] = cls

    def encode(self, text):
        raise NotImplementedError

    def decode(self, ids):
        raise NotImplementedError

    def tokenize(self, text):
        return [self.decode([i]) for i in self.encode(text)]

    @property
    def vocab_size(self):
        raise NotImplementedError

    def to_dict(self):
        raise NotImplementedError

    @classmethod
    def from_dict(cls, d):
        raise NotImplementedError

    def save(self, path):
        d = {"type": self.kind, "version": 1, **self.to_dict()}
        path = pathlib.Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(d, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(path)
        return path

    @staticmethod
    def load(path):
        """Load any tokenizer saved with save(); the file says which kind it is."""
        path = pathlib.Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TokenizerFileError(f"tokenizer file {path} does not exist") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise TokenizerFileError(f"tokenizer file {path} is corrupt or truncated: {e}") from None
        except (OSError, ValueError, RecursionError) as e:   # a directory, no permission, absurd JSON
            reason = "nested too deeply" if isinstance(e, RecursionError) else e.strerror if isinstance(e, OSError) else e
            raise TokenizerFileError(f"tokenizer file {path} cannot be read: {reason or e}") from None
        return tokenizer_from_dict(d, source=str(path))


def tokenizer_from_dict(d, source="tokenizer data"):
    types = Tokenizer.TYPES
    if not isinstance(d, dict) or not isinstance(d.get("type"), str) or d["type"] not in types:   # a list: unhashable
        kind = d.get("type") if isinstance(d, dict) else type(d).__name__
        raise TokenizerFileError(f"{source}: unknown tokenizer type {kind!r}; expected one of {sorted(types)}")
    try:
        tok = types[d["type"]].from_dict(d)
    except TokenizerFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise TokenizerFileError(f"{source}: not a valid {d['type']} tokenizer ({type(e).__name__}: {e})") from None
    tok.source = source                               # named by errors about what the file holds
    return tok
