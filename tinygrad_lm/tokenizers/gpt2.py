"""GPT-2's tokenizer files: where to find them, and how to read them.

encoder.json maps token strings to ids; vocab.bpe lists the 50,000 merges in order. Both spell
bytes through GPT-2's byte->unicode table (printable bytes stand for themselves, the other 68
become chr(256 + n): a leading space shows as 'Ġ'), which we undo to get plain bytes.
"""
import json
import pathlib

from ..io.corpora import CORPUS_FILES, PACKAGE_CORPORA, corpus_file, published_sha256, read_bytes
from .base import TokenizerFileError

GPT2_NAMES = ("encoder.json", "vocab.bpe")      # their URLs and checksums: io/corpora.py's CORPUS_FILES
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
        encoder = json.loads(read_bytes(encoder_json).decode("utf-8"))         # (a .gz file: decompressed)
        lines = read_bytes(vocab_bpe).decode("utf-8").split("\n")
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


def gpt2_files(directory=None, download=False, data_dir=None):
    """Paths of encoder.json and vocab.bpe: from `directory` when it is given (both must be there),
    else by the corpus lookup (io/corpora.py): <data_dir or $TINYGRAD_LM_DATA>/gpt2 when it holds them, else the
    package's own gzipped copies (download=True fetches a missing user copy instead). Each file's
    sha256 must be GPT-2's: a modified vocab.bpe (half its merges, say) would otherwise load as a
    valid but different tokenizer and quietly re-tokenize a dataset."""
    paths = {}
    for name in GPT2_NAMES:
        if directory is not None:
            path = pathlib.Path(directory) / name
            if not path.exists():
                raise TokenizerFileError(f"GPT-2 tokenizer file {path} not found; put encoder.json and vocab.bpe "
                                         "there, or leave the folder out to use the package's own copy")
        else:
            path = corpus_file("gpt2", name, data_dir, download=download, error=TokenizerFileError)
        if path.is_file() and path.parent != PACKAGE_CORPORA / "gpt2":   # (the package's copy: checked)
            try:
                got = published_sha256(path, path.name, name)
            except OSError as e:
                raise TokenizerFileError(f"GPT-2 tokenizer file {path} cannot be read: {e.strerror or e}") from None
            sha = CORPUS_FILES["gpt2", name][1]
            if got != sha:
                raise TokenizerFileError(f"GPT-2 tokenizer file {path}: its sha256 checksum differs from GPT-2's "
                                         f"{name} ({got[:16]}..., expected {sha[:16]}...): the file is modified, "
                                         "truncated or another tokenizer's; copy GPT-2's own file there again")
        paths[name] = path
    return paths["encoder.json"], paths["vocab.bpe"]
