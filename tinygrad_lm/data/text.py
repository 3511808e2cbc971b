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
import shutil
import tempfile

import numpy as np

from ..io.corpora import corpus_file, read_bytes
from ..io.download import DownloadError
from ..tokenizers import BPETokenizer, CharTokenizer, Tokenizer, gpt2_tokenizer, tokenizer_from_dict
from ..errors import ConfigError, DataError  # noqa: F401
from .batches import CausalLMBatches  # noqa: F401  (the batch source of text, numpy alone)

def shakespeare(data_dir=None, download=False):
    """Path of tiny Shakespeare's input.txt: the user's copy when `data_dir` (or $TINYGRAD_LM_DATA)
    holds tinyshakespeare/input.txt, else the package's own (input.txt.gz, sha256-checked); with
    download=True a missing user copy is fetched from the public URL instead (io/corpora.py)."""
    try:
        return corpus_file("tinyshakespeare", "input.txt", data_dir, download)
    except DownloadError as e:
        raise DataError(str(e)) from None


# prepare holds the whole text in memory, as bytes and as a str, and its token ids as a Python list
# (8 bytes or more per token) before writing them: about 10-20 bytes of memory per byte of text.
# 1 GiB of text (about 2,000 times tiny Shakespeare) is then already 10-20 GiB; a larger corpus is
# refused before it is read: split it and prepare the parts (one saved tokenizer for all: --tokenizer FILE).
MAX_INPUT_BYTES = 2 ** 30


def read_utf8(path, max_bytes=MAX_INPUT_BYTES):
    """The text of a file (a .gz file decompressed); non-UTF-8 input raises an error naming the first
    bad byte's offset. A file larger than `max_bytes` (MAX_INPUT_BYTES, 1 GiB) is refused unread
    (see MAX_INPUT_BYTES); a .gz file once that many bytes are decompressed."""
    path = pathlib.Path(path)
    if not path.exists():
        raise DataError(f"input file {path} does not exist")
    if not path.is_file():
        raise DataError(f"input {path} is not a file (a directory?): give the text file itself")

    def too_large(size):
        holds = f"holds {size:,} bytes" if size is not None else "decompresses to"
        return DataError(f"input {path} {holds}, more than the {max_bytes:,} that prepare reads: "
                         "it keeps the whole text and its token ids in memory (10-20 bytes per byte of text); "
                         "split the text and prepare it in parts")
    try:
        size = path.stat().st_size
        if size > max_bytes and not path.name.endswith(".gz"):
            raise too_large(size)
        raw = read_bytes(path, max_bytes)          # a .gz file: its text, decompressed
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    if len(raw) > max_bytes:
        raise too_large(None if path.name.endswith(".gz") else len(raw))
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
        return gpt2_tokenizer(data_dir=data_dir)        # <data_dir>/gpt2 when it is there, else the package's
    if spec.startswith("bpe:"):
        size = spec.split(":", 1)[1]
        if not size.isdigit():
            raise DataError(f"tokenizer {spec!r}: write bpe:<vocab_size> with a whole number, e.g. bpe:1024")
        try:
            return BPETokenizer.train(text, int(size), special_tokens=["<|endoftext|>"])
        except ValueError as e:                            # e.g. a vocabulary smaller than the 256 bytes
            raise DataError(f"tokenizer {spec!r}: {e}") from e
    if os.path.isdir(spec):
        raise DataError(f"tokenizer {spec!r} is a folder; give a tokenizer file saved with Tokenizer.save "
                        "(or 'char', 'gpt2', 'bpe:<vocab_size>')")
    if os.path.exists(spec):
        return Tokenizer.load(spec)
    raise DataError(f"unknown tokenizer {spec!r}: use 'char', 'gpt2', 'bpe:<vocab_size>' or a tokenizer file")


def token_dtype(vocab_size):
    return np.uint16 if vocab_size <= 2 ** 16 else np.uint32


def _write_tokens(path, ids, dtype):
    """Write token ids as raw little-endian integers (the writer prepare uses; tests make it fail)."""
    np.asarray(ids, dtype=np.dtype(dtype).newbyteorder("<")).tofile(path)


def prepare(input_path, out_dir, tokenizer="char", val_fraction=0.1, data_dir=None):
    """Tokenize a UTF-8 text into out_dir/{train.bin, val.bin, meta.json}. Returns the meta dict.

    The files are written in a temporary folder beside out_dir and renamed into place at the end,
    meta.json last (the old one is removed first): a reader sees the old dataset, none, or the new
    one, never new token files with an old meta.json. A failed write (a full disk) leaves the
    previous dataset as it was."""
    text = read_utf8(input_path)
    if len(text) < 2:
        raise DataError(f"{input_path} holds {len(text)} characters; a language model needs text")
    tok = make_tokenizer(tokenizer, text, data_dir)
    n_split = int(len(text) * (1 - val_fraction))
    kwargs = {"allowed_special": "all"} if isinstance(tok, BPETokenizer) else {}
    train_ids = tok.encode(text[:n_split], **kwargs)
    val_ids = tok.encode(text[n_split:], **kwargs)
    return write_dataset(out_dir, tok, train_ids, val_ids, source=str(input_path))


def tokenizer_record(tok):
    """A tokenizer as meta.json stores it (and so as a checkpoint does): its kind and to_dict(),
    in JSON's types, so a record made now equals one read back from a file."""
    return json.loads(json.dumps({"type": tok.kind, **tok.to_dict()}, ensure_ascii=False))


def write_dataset(out_dir, tok, train_ids, val_ids, **extra):
    """Write token ids and meta.json (with the tokenizer, and any `extra` fields) as prepare does,
    atomically (see prepare). Returns the meta dict. Any corpus's preparation ends here."""
    dtype = token_dtype(tok.vocab_size)
    meta = {"vocab_size": tok.vocab_size, "dtype": np.dtype(dtype).name, "train_tokens": len(train_ids),
            "val_tokens": len(val_ids), **extra, "tokenizer": tokenizer_record(tok)}
    out = pathlib.Path(out_dir)
    staging, moving = None, False
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = pathlib.Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
        _write_tokens(staging / "train.bin", train_ids, dtype)
        _write_tokens(staging / "val.bin", val_ids, dtype)
        (staging / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        out.mkdir(exist_ok=True)
        moving = True
        (out / "meta.json").unlink(missing_ok=True)         # the old bins are now unclaimed, never mixed
        for name in ("train.bin", "val.bin", "meta.json"):  # renames within one filesystem: each atomic
            os.replace(staging / name, out / name)
    except OSError as e:
        if moving:
            raise DataError(f"could not move the new dataset into {out} ({e.strerror or e}); run prepare "
                            "again") from None
        raise DataError(f"could not write the dataset {out} ({e.strerror or e}); the previous dataset there, "
                        "if any, is unchanged") from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return meta


META_FIELDS = {"vocab_size": int, "dtype": str, "train_tokens": int, "val_tokens": int, "tokenizer": dict}
_KINDS = {int: "an integer", str: "a text", dict: "an object"}


def load_meta(data_dir):
    """meta.json of a prepared dataset, every field prepare writes checked (DataError names it)."""
    path = pathlib.Path(data_dir) / "meta.json"
    if not path.exists():
        raise DataError(f"{path} not found: run `python -m tinygrad_lm prepare` first")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:          # ValueError: bad JSON or UTF-8
        reason = "nested too deeply" if isinstance(e, RecursionError) else e.strerror if isinstance(e, OSError) else e
        raise DataError(f"{path} cannot be read ({reason or e}): run `python -m tinygrad_lm prepare` again") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path} must hold a JSON object, got {type(meta).__name__}")
    for name, kind in META_FIELDS.items():
        value = meta.get(name)
        if name not in meta:
            raise DataError(f"{path} has no {name!r}: run `python -m tinygrad_lm prepare` again")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise DataError(f"{path}: {name!r} must be {_KINDS[kind]}, got {value!r}")
    if meta["dtype"] not in ("uint16", "uint32"):
        raise DataError(f"{path}: 'dtype' must be 'uint16' or 'uint32', got {meta['dtype']!r}")
    if not 1 <= meta["vocab_size"] <= np.iinfo(meta["dtype"]).max + 1:
        raise DataError(f"{path}: 'vocab_size' {meta['vocab_size']} must be between 1 and "
                        f"{np.iinfo(meta['dtype']).max + 1} (what {meta['dtype']} holds)")
    for name in ("train_tokens", "val_tokens"):
        if meta[name] < 0:
            raise DataError(f"{path}: {name!r} must be >= 0, got {meta[name]}")
    if not isinstance(meta["tokenizer"].get("type"), str):
        raise DataError(f"{path}: 'tokenizer' must say its 'type'")
    return meta


def load_tokenizer(meta):
    return tokenizer_from_dict(meta["tokenizer"], source="meta.json")


def load_split(data_dir, split, meta=None):
    """The token ids of 'train' or 'val' as a read-only memory map, checked against meta.json: its
    length, and every id below meta's vocab_size (an id past it would index outside the model's
    embedding in the middle of training). `meta`: load_meta(data_dir), when the caller has it."""
    meta = load_meta(data_dir) if meta is None else meta
    path = pathlib.Path(data_dir) / f"{split}.bin"
    if not path.is_file():
        raise DataError(f"{path} not found: run `python -m tinygrad_lm prepare` first")
    dtype = np.dtype(meta["dtype"]).newbyteorder("<")
    expected = meta[f"{split}_tokens"]
    size = path.stat().st_size
    if size != expected * dtype.itemsize:
        raise DataError(f"{path} holds {size} bytes but meta.json promises {expected} {meta['dtype']} tokens "
                        f"({expected * dtype.itemsize} bytes): the file is truncated or from another "
                        "preparation; run `python -m tinygrad_lm prepare` again")
    if expected == 0:
        return np.zeros(0, dtype=dtype)
    try:
        tokens = np.memmap(path, dtype=dtype, mode="r")
        largest = int(tokens.max())            # one pass in C over the map: ~0.1 s per 100 M tokens
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    if largest >= meta["vocab_size"]:
        first = int(np.argmax(tokens >= meta["vocab_size"]))
        raise DataError(f"{path} holds token id {largest} (first bad id {int(tokens[first])} at token {first}), "
                        f"outside the vocabulary of {meta['vocab_size']} that meta.json gives: the file is corrupt "
                        "or from another preparation; run `python -m tinygrad_lm prepare` again")
    return tokens
