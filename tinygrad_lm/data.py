"""Data: get tiny Shakespeare, turn any UTF-8 text into token files, and draw training batches.

    prepare("input.txt", "data/shakespeare_char", tokenizer="char")
      -> data/shakespeare_char/train.bin, val.bin   (token ids, first 90% / last 10%)
         data/shakespeare_char/meta.json            (the tokenizer, dtype, counts)
    batches = CausalLMBatches(load_split("data/shakespeare_char", "train"), block_size=32, batch_size=16, seed=1337)
    x, y = batches.next()                           # (16, 32) int64 each; y is x shifted by one
"""
import json
import os
import pathlib

import numpy as np

from .download import DownloadError, data_root, fetch
from .tokenizers import BPETokenizer, CharTokenizer, Tokenizer, gpt2_tokenizer, tokenizer_from_dict
from .errors import ConfigError, DataError  # noqa: F401

SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def shakespeare(data_dir=None, download=True):
    """Path of tiny Shakespeare's input.txt: in `data_dir` (or $TINYGRAD_LM_DATA, or ./data) under
    tinyshakespeare/, downloaded there with a sha256 check if missing."""
    root = pathlib.Path(data_dir) if data_dir else data_root()
    path = root / "tinyshakespeare" / "input.txt"
    if path.exists():
        return path
    if not download:
        raise DataError(f"{path} not found")
    try:
        return fetch(SHAKESPEARE_URL, path, sha256=SHAKESPEARE_SHA256, what="tiny Shakespeare",
                     how_to_offline=f"Offline: copy input.txt to {path}, or pass --data-dir / set "
                                    "TINYGRAD_LM_DATA to a folder that holds tinyshakespeare/input.txt.")
    except DownloadError as e:
        raise DataError(str(e)) from None


def read_utf8(path):
    """The text of a file; non-UTF-8 input raises an error naming the first bad byte's offset."""
    path = pathlib.Path(path)
    if not path.exists():
        raise DataError(f"input file {path} does not exist")
    if not path.is_file():
        raise DataError(f"input {path} is not a file (a directory?): give the text file itself")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text: byte 0x{raw[e.start]:02x} at offset {e.start} "
                        f"({e.reason}); convert it first, e.g. `iconv -f latin1 -t utf-8`") from None


def make_tokenizer(spec, text, data_dir=None):
    """'char' | 'gpt2' | 'bpe:<vocab_size>' | a saved tokenizer file."""
    if isinstance(spec, Tokenizer):
        return spec
    if spec == "char":
        return CharTokenizer.from_text(text)
    if spec == "gpt2":
        root = pathlib.Path(data_dir) if data_dir else None
        return gpt2_tokenizer(root / "gpt2" if root and (root / "gpt2").exists() else None)
    if spec.startswith("bpe:"):
        size = spec.split(":", 1)[1]
        if not size.isdigit():
            raise DataError(f"tokenizer {spec!r}: write bpe:<vocab_size> with a whole number, e.g. bpe:1024")
        try:
            return BPETokenizer.train(text, int(size), special_tokens=["<|endoftext|>"])
        except ValueError as e:                            # e.g. a vocabulary smaller than the 256 bytes
            raise DataError(f"tokenizer {spec!r}: {e}") from e
    if os.path.exists(spec):
        return Tokenizer.load(spec)
    raise DataError(f"unknown tokenizer {spec!r}: use 'char', 'gpt2', 'bpe:<vocab_size>' or a tokenizer file")


def token_dtype(vocab_size):
    return np.uint16 if vocab_size <= 2 ** 16 else np.uint32


def prepare(input_path, out_dir, tokenizer="char", val_fraction=0.1, data_dir=None):
    """Tokenize a UTF-8 text into out_dir/{train.bin, val.bin, meta.json}. Returns the meta dict."""
    text = read_utf8(input_path)
    if len(text) < 2:
        raise DataError(f"{input_path} holds {len(text)} characters; a language model needs text")
    tok = make_tokenizer(tokenizer, text, data_dir)
    n_split = int(len(text) * (1 - val_fraction))
    kwargs = {"allowed_special": "all"} if isinstance(tok, BPETokenizer) else {}
    train_ids = tok.encode(text[:n_split], **kwargs)
    val_ids = tok.encode(text[n_split:], **kwargs)
    dtype = token_dtype(tok.vocab_size)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.asarray(train_ids, dtype=dtype).tofile(out / "train.bin")
    np.asarray(val_ids, dtype=dtype).tofile(out / "val.bin")
    meta = {"vocab_size": tok.vocab_size, "dtype": np.dtype(dtype).name, "train_tokens": len(train_ids),
            "val_tokens": len(val_ids), "source": str(input_path),
            "tokenizer": {"type": tok.kind, **tok.to_dict()}}
    (out / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return meta


def load_meta(data_dir):
    path = pathlib.Path(data_dir) / "meta.json"
    if not path.exists():
        raise DataError(f"{path} not found: run `python -m tinygrad_lm prepare` first")
    return json.loads(path.read_text(encoding="utf-8"))


def load_tokenizer(meta):
    return tokenizer_from_dict(meta["tokenizer"], source="meta.json")


def load_split(data_dir, split):
    """The token ids of 'train' or 'val' as a read-only memory map."""
    meta = load_meta(data_dir)
    path = pathlib.Path(data_dir) / f"{split}.bin"
    if not path.exists():
        raise DataError(f"{path} not found: run `python -m tinygrad_lm prepare` first")
    return np.memmap(path, dtype=meta["dtype"], mode="r")


class CausalLMBatches:
    """The batch source of causal language models: random windows of a token array,
    x = data[i : i+T], y = data[i+1 : i+T+1] for B random i.

    A batch source is what the training loop draws from: ``next()`` returns the arguments of the
    model's ``forward`` (here ``(x, y)``, so ``model(*batch) -> (logits, loss)``), and
    ``get_state()`` / ``set_state()`` save and restore its generator, for an exact resume. Other
    tasks (masked LM, sequence pairs) bring their own class with the same four members; it is built
    as ``cls(tokens, block_size, batch_size, seed=...)``.

    The generator is the source's own (seeded), so evaluation or dropout never shifts which
    batches training sees.
    """

    def __init__(self, data, block_size, batch_size, seed=0):
        if len(data) < block_size + 1:
            raise DataError(f"the data holds {len(data)} tokens, fewer than one block of {block_size} + 1 "
                            "(the targets are shifted by one): use more text or a smaller block_size")
        if batch_size < 1:
            raise ConfigError(f"CausalLMBatches: batch_size must be >= 1, got {batch_size}")
        self.data, self.block_size, self.batch_size = data, block_size, batch_size
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self._offsets = np.arange(block_size + 1)

    def next(self):
        starts = self.rng.integers(0, len(self.data) - self.block_size, size=self.batch_size)
        windows = np.asarray(self.data[starts[:, None] + self._offsets], dtype=np.int64)
        return windows[:, :-1], windows[:, 1:]

    def get_state(self):
        return self.rng.bit_generator.state

    def set_state(self, state):
        self.rng.bit_generator.state = state
