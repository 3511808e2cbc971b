"""Fetch a public file once, check its sha256, and keep it; or explain how to supply it offline."""
import hashlib
import os
import pathlib
import shutil
import sys
import tempfile
import urllib.request
from ..errors import DownloadError  # noqa: F401


def new_file_mode():
    """The permissions a new file gets (0o666 less the umask): what a file written through mkstemp
    (private, 0o600) is given before it is renamed into place, as every other output has."""
    mask = os.umask(0o22)            # the only portable way to read the umask is to set it (and put it back)
    os.umask(mask)
    return 0o666 & ~mask


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def data_root():
    """Where downloaded and prepared data lives: $TINYGRAD_LM_DATA, else ./data."""
    return pathlib.Path(os.environ.get("TINYGRAD_LM_DATA", "data"))


def fetch(url, dest, sha256=None, what="file", how_to_offline="", progress=True, timeout=30):
    """Download `url` to `dest` (atomically: a temporary file renamed into place) unless it is
    already there with the right checksum. Raises DownloadError with instructions when offline."""
    dest = pathlib.Path(dest)
    if dest.exists():
        if sha256 is None or sha256_of(dest) == sha256:
            return dest
        raise DownloadError(f"{dest} exists but its sha256 is {sha256_of(dest)}, not the expected {sha256}: "
                            "the file is corrupt or another version; delete it to download again")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    except OSError as e:
        raise DownloadError(f"cannot write {what} to {dest.parent} ({e.strerror or e}). {how_to_offline}") from None
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while True:
                block = response.read(1 << 20)
                if not block:
                    break
                out.write(block)
                done += len(block)
                if progress and total:
                    sys.stderr.write(f"\rdownloading {what}: {done / 1e6:.1f} / {total / 1e6:.1f} MB")
            if progress and total:
                sys.stderr.write("\n")
        if sha256 is not None and sha256_of(tmp) != sha256:
            raise DownloadError(f"{url}: checksum mismatch (got {sha256_of(tmp)}, expected {sha256})")
        os.chmod(tmp, new_file_mode())        # mkstemp's file is private (0o600): give it a new file's mode
        shutil.move(tmp, dest)
        return dest
    except OSError as e:   # URLError and socket errors are OSErrors: offline, DNS, refused
        raise DownloadError(f"could not download {what} from {url} ({e}). {how_to_offline}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
