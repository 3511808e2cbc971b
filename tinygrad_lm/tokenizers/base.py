"""The small interface every tokenizer shares."""
import json
import pathlib
from ..errors import EncodeError, TokenizerFileError  # noqa: F401  (raised here, defined with the others)


class Tokenizer:
    """encode: str -> list of ids;  decode: ids -> str;  tokenize: str -> token strings (display);
    vocab_size; save(path) / Tokenizer.load(path) in a readable JSON file."""

    kind = "base"
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
        return tokenizer_from_dict(d, source=str(path))


def tokenizer_from_dict(d, source="tokenizer data"):
    types = Tokenizer.TYPES
    if not isinstance(d, dict) or d.get("type") not in types:
        kind = d.get("type") if isinstance(d, dict) else type(d).__name__
        raise TokenizerFileError(f"{source}: unknown tokenizer type {kind!r}; expected one of {sorted(types)}")
    try:
        return types[d["type"]].from_dict(d)
    except TokenizerFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise TokenizerFileError(f"{source}: not a valid {d['type']} tokenizer ({type(e).__name__}: {e})") from None
