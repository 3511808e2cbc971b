"""The three small corpora the project trains on by default, shipped inside the package (so every
command and lesson runs offline, as the tutorial's compute nodes are), and the one rule for where
a corpus file is read from.

    corpus_file("tinyshakespeare", "input.txt")   -> .../tinygrad_lm/corpora/tinyshakespeare/input.txt.gz
    read_bytes(path)                               -> the file's bytes (through gzip for a .gz name)

Lookup order, for each file:
  1. a data folder the user names (`data_dir`: --data-dir; else $TINYGRAD_LM_DATA) that holds
     <corpus>/<name>: that file, used as it is (a user may bring another version);
  2. with download=True, a file missing there is fetched from its public URL into that folder
     (sha256-checked; DownloadError with instructions when offline);
  3. else the package's own copy, in tinygrad_lm/corpora/<corpus>/ (gzip-compressed where that
     saves space), its sha256 checked against the published file's before it is used; each
     folder's NOTICE.md names the source and the licence.
"""
import gzip
import hashlib
import os
import pathlib
import zlib

from ..errors import DataError
from .download import data_root, fetch

PACKAGE_CORPORA = pathlib.Path(__file__).resolve().parent.parent / "corpora"
_NEXTSTRAIN = "https://github.com/nextstrain/ncov/raw/master/"
# (corpus, file name as published) -> (public URL, sha256 of the published file, packaged name)
CORPUS_FILES = {
    ("tinyshakespeare", "input.txt"): (
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed", "input.txt.gz"),
    ("gpt2", "encoder.json"): (
        "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
        "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783", "encoder.json.gz"),
    ("gpt2", "vocab.bpe"): (
        "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
        "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5", "vocab.bpe.gz"),
    ("sars-cov-2", "example_sequences.fasta.gz"): (     # published compressed: packaged as it is
        _NEXTSTRAIN + "data/example_sequences.fasta.gz",
        "983baf012f652c0c7cb77828e6f09ddf71cee7c1218d119acd03cf8a0c386626", "example_sequences.fasta.gz"),
    ("sars-cov-2", "example_metadata.tsv"): (
        _NEXTSTRAIN + "data/example_metadata.tsv",
        "dbdb516e65fbea9563a13ff2c9db2e0235506b66e220e0911917d951b75d7260", "example_metadata.tsv.gz"),
    ("sars-cov-2", "reference_seq.gb"): (
        _NEXTSTRAIN + "defaults/reference_seq.gb",
        "76b783830f9fa35024dbed3313654c7d3b1e3696f6a388fbe761589cf5b5e073", "reference_seq.gb.gz"),
}


def read_bytes(path, max_bytes=None):
    """The bytes of a file; one whose name ends in .gz is decompressed (at most max_bytes + 1 bytes
    are read, so a caller can refuse a larger file unread). A corrupt or truncated gzip stream
    raises OSError, as an unreadable file does."""
    path = pathlib.Path(path)
    limit = -1 if max_bytes is None else max_bytes + 1
    if path.name.endswith(".gz"):
        try:
            with gzip.open(path, "rb") as f:
                return f.read(limit)
        except (EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise OSError(f"{path} is not a complete gzip file ({e})") from None
    with open(path, "rb") as f:
        return f.read(limit)


def published_sha256(path, packaged_name, published_name):
    """sha256 of the file as published: of the bytes themselves when packaged as published, of the
    decompressed bytes when the package gzipped it."""
    data = read_bytes(path) if packaged_name != published_name else pathlib.Path(path).read_bytes()
    return hashlib.sha256(data).hexdigest()


_checked = {}          # packaged path -> (size, mtime) when its checksum last matched


def packaged_file(corpus, name, error=DataError):
    """The package's copy of <corpus>/<name>, its checksum checked (once per process and file
    version); `error` is raised, naming the remedy, when it is missing or damaged."""
    url, sha256, packaged = CORPUS_FILES[corpus, name]
    path = PACKAGE_CORPORA / corpus / packaged
    try:
        stat = path.stat()
        if _checked.get(path) != (stat.st_size, stat.st_mtime_ns):
            got = published_sha256(path, packaged, name)
            if got != sha256:
                raise error(f"the package's copy of {corpus}/{name} ({path}) is damaged: its sha256 is "
                            f"{got[:16]}..., the published file's {sha256[:16]}...; reinstall tinygrad_lm, "
                            f"or pass --data-dir DIR with {corpus}/{name} in it")
            _checked[path] = (stat.st_size, stat.st_mtime_ns)
    except OSError as e:
        raise error(f"the package's copy of {corpus}/{name} cannot be read ({e.strerror or e}); reinstall "
                    f"tinygrad_lm, or pass --data-dir DIR with {corpus}/{name} in it") from None
    return path


def user_data_dir(data_dir=None):
    """The data folder the user named (`data_dir`, else $TINYGRAD_LM_DATA), or None."""
    if data_dir:
        return pathlib.Path(data_dir)
    env = os.environ.get("TINYGRAD_LM_DATA")
    return pathlib.Path(env) if env else None


def corpus_file(corpus, name, data_dir=None, download=False, error=DataError):
    """Where to read <corpus>/<name> from, by the lookup order above."""
    if (corpus, name) not in CORPUS_FILES:
        raise KeyError(f"no packaged corpus file {corpus}/{name}: known {sorted(CORPUS_FILES)}")
    folder = user_data_dir(data_dir)
    if data_dir and not download and not folder.is_dir():         # a folder named on purpose: a typo?
        raise error(f"--data-dir {folder} is not a folder: name one that holds {corpus}/{name}, or leave "
                    "--data-dir out to use the package's own copy")
    if folder is not None and (folder / corpus / name).exists():
        return folder / corpus / name
    if download:
        target = (folder or data_root()) / corpus / name
        url, sha256, _ = CORPUS_FILES[corpus, name]
        return fetch(url, target, sha256=sha256, what=f"{corpus}/{name}",
                     how_to_offline=f"Offline: leave out --download to use the package's own copy, or copy "
                                    f"{name} to {target.parent}.")
    return packaged_file(corpus, name, error)
