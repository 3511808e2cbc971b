"""GPT-2's tokenizer files: where to find them, and how to read them.

encoder.json maps token strings to ids; vocab.bpe lists the 50,000 merges in order. Both spell
bytes through GPT-2's byte->unicode table (printable bytes stand for themselves, the other 68
become chr(256 + n): a leading space shows as 'Ġ'), which we undo to get plain bytes.
"""
import json
import os
import pathlib

from ..io.download import data_root, fetch, sha256_of
from .base import TokenizerFileError

GPT2_URL = "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/"
GPT2_FILES = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}
END_OF_TEXT = "<|endoftext|>"


def bytes_to_unicode():
    """GPT-2's table: byte -> a printable unicode character standing for it."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    table, n = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + n)
            n += 1
    return table


def read_gpt2_files(encoder_json, vocab_bpe):
    """-> (byte_ids, merges as id pairs, special tokens) for BPETokenizer."""
    try:
        encoder = json.loads(pathlib.Path(encoder_json).read_text(encoding="utf-8"))
        lines = pathlib.Path(vocab_bpe).read_text(encoding="utf-8").split("\n")
    except FileNotFoundError as e:
        raise TokenizerFileError(f"GPT-2 tokenizer file missing: {e.filename}") from None
    except OSError as e:                                  # a folder, no permission
        raise TokenizerFileError(f"GPT-2 tokenizer file {e.filename} cannot be read: {e.strerror or e}") from None
    except (ValueError, RecursionError) as e:             # bad JSON or UTF-8
        raise TokenizerFileError(f"GPT-2 encoder.json {encoder_json} (or vocab.bpe) is corrupt: {e!r}") from None
    if not isinstance(encoder, dict) or not all(type(i) is int and i >= 0 for i in encoder.values()):
        raise TokenizerFileError(f"GPT-2 encoder.json {encoder_json} must map token texts to ids >= 0")
    byte_char = bytes_to_unicode()
    try:
        byte_ids = [encoder[byte_char[b]] for b in range(256)]
    except KeyError as e:
        raise TokenizerFileError(f"{encoder_json}: no id for the single byte token {e}") from None
    merge_lines = [ln for ln in lines[1:] if ln.strip()] if lines and lines[0].startswith("#") else \
        [ln for ln in lines if ln.strip()]
    merges = []
    for k, line in enumerate(merge_lines):
        parts = line.split()
        if len(parts) != 2:
            raise TokenizerFileError(f"{vocab_bpe}: line {k + 2} is not 'left right': {line!r}")
        a, b = parts
        try:
            ids = (encoder[a], encoder[b], encoder[a + b])
        except KeyError as e:
            raise TokenizerFileError(f"{vocab_bpe}: merge {k} uses {e}, which encoder.json lacks") from None
        if ids[2] != 256 + k:
            raise TokenizerFileError(f"{vocab_bpe}: merge {k} makes id {ids[2]}, expected {256 + k}")
        merges.append(ids[:2])
    specials = {t: i for t, i in encoder.items() if i >= 256 + len(merges)}
    return byte_ids, merges, specials


def gpt2_files(directory=None, download=True):
    """Paths of encoder.json and vocab.bpe: from `directory`, else $TINYGRAD_LM_DATA/gpt2 (or
    ./data/gpt2), downloading them there when they are missing. Found or downloaded, each file's
    sha256 must be GPT-2's (GPT2_FILES): a modified vocab.bpe (half its merges, say) would otherwise
    load as a valid but different tokenizer and quietly re-tokenize a dataset."""
    folder = pathlib.Path(directory) if directory else data_root() / "gpt2"
    paths = {}
    for name, sha in GPT2_FILES.items():
        path = folder / name
        if not path.exists() and download and directory is None:
            fetch(GPT2_URL + name, path, sha256=sha, what=f"GPT-2 {name}",
                  how_to_offline=f"Offline: copy encoder.json and vocab.bpe into {folder} or set "
                                 "TINYGRAD_LM_DATA to a folder holding gpt2/encoder.json and gpt2/vocab.bpe.")
        if not path.exists():
            raise TokenizerFileError(f"GPT-2 tokenizer file {path} not found; put encoder.json and vocab.bpe "
                                     "there (or set TINYGRAD_LM_DATA to a folder holding gpt2/)")
        if path.is_file():                   # (a folder: read_gpt2_files says so)
            try:
                got = sha256_of(path)
            except OSError as e:
                raise TokenizerFileError(f"GPT-2 tokenizer file {path} cannot be read: {e.strerror or e}") from None
            if got != sha:
                raise TokenizerFileError(f"GPT-2 tokenizer file {path}: its sha256 checksum differs from GPT-2's "
                                         f"{name} ({got[:16]}..., expected {sha[:16]}...): the file is modified, "
                                         "truncated or another tokenizer's; copy GPT-2's own file there again")
        paths[name] = path
    return paths["encoder.json"], paths["vocab.bpe"]
