"""Offline by default: the three small corpora ship inside the package, sha256-checked when used;
the lookup order (the user's folder, then the package's copy; a download only when asked); the
main job's first steps with the network unreachable and no data folder; the wheel and the sdist
carry the data, and the README states the installed size."""
import gzip
import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

from tinygrad_lm.data.text import read_utf8, shakespeare
from tinygrad_lm.errors import DataError, TokenizerFileError
from tinygrad_lm.genomes.sarscov2 import corpus_files
from tinygrad_lm.io import corpora
from tinygrad_lm.io.corpora import CORPUS_FILES, PACKAGE_CORPORA, corpus_file, packaged_file, read_bytes
from tinygrad_lm.tokenizers import gpt2_files

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_every_packaged_file_is_the_published_file_and_has_a_notice():
    for (corpus, name), (url, sha256, packaged) in CORPUS_FILES.items():
        path = PACKAGE_CORPORA / corpus / packaged
        data = read_bytes(path) if packaged != name else path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha256, (corpus, name)
        notice = (PACKAGE_CORPORA / corpus / "NOTICE.md").read_text(encoding="utf-8")
        assert sha256 in notice and "licence" in notice.lower() and packaged in notice
        assert url.startswith("https://") and (url in notice or url.rsplit("/", 1)[0] in notice)
    on_disk = {p.relative_to(PACKAGE_CORPORA).as_posix() for p in PACKAGE_CORPORA.rglob("*") if p.is_file()}
    listed = {f"{c}/{packaged}" for (c, _), (_, _, packaged) in CORPUS_FILES.items()}
    assert on_disk == listed | {f"{c}/NOTICE.md" for c, _ in CORPUS_FILES}       # nothing unlisted ships


def test_lookup_order_user_folder_then_package_and_download_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYGRAD_LM_DATA", raising=False)
    assert shakespeare() == PACKAGE_CORPORA / "tinyshakespeare" / "input.txt.gz"
    assert len(read_utf8(shakespeare())) == 1_115_394
    assert {p.parent for p in gpt2_files()} == {PACKAGE_CORPORA / "gpt2"}
    assert {p.parent for p in corpus_files().values()} == {PACKAGE_CORPORA / "sars-cov-2"}
    env_dir, arg_dir = tmp_path / "env", tmp_path / "arg"
    for folder in (env_dir, arg_dir):
        (folder / "tinyshakespeare").mkdir(parents=True)
        (folder / "tinyshakespeare" / "input.txt").write_text(f"{folder.name}'s own text\n")
    monkeypatch.setenv("TINYGRAD_LM_DATA", str(env_dir))
    assert shakespeare() == env_dir / "tinyshakespeare" / "input.txt"              # $TINYGRAD_LM_DATA
    assert shakespeare(arg_dir) == arg_dir / "tinyshakespeare" / "input.txt"        # --data-dir before it
    (tmp_path / "empty").mkdir()
    assert shakespeare(tmp_path / "empty") == PACKAGE_CORPORA / "tinyshakespeare" / "input.txt.gz"
    with pytest.raises(DataError, match="--data-dir .*nowhere is not a folder"):      # a typo is not ignored
        shakespeare(tmp_path / "nowhere")
    assert corpus_files(env_dir)["metadata"] == PACKAGE_CORPORA / "sars-cov-2" / "example_metadata.tsv.gz"
    with pytest.raises(KeyError, match="no packaged corpus file"):
        corpus_file("tinyshakespeare", "other.txt")


def test_a_damaged_packaged_copy_is_refused_naming_the_remedy(tmp_path, monkeypatch):
    copy = tmp_path / "corpora"
    shutil.copytree(PACKAGE_CORPORA, copy)
    monkeypatch.setattr(corpora, "PACKAGE_CORPORA", copy)
    monkeypatch.setattr(corpora, "_checked", {})
    monkeypatch.delenv("TINYGRAD_LM_DATA", raising=False)
    assert packaged_file("gpt2", "vocab.bpe") == copy / "gpt2" / "vocab.bpe.gz"
    target = copy / "gpt2" / "vocab.bpe.gz"                   # a valid gzip of other bytes: half the merges
    lines = read_bytes(target).split(b"\n")
    target.write_bytes(gzip.compress(b"\n".join(lines[: len(lines) // 2])))
    with pytest.raises(TokenizerFileError, match=r"package's copy of gpt2/vocab.bpe .* is damaged.*reinstall"):
        corpus_file("gpt2", "vocab.bpe", error=TokenizerFileError)
    target.write_bytes(target.read_bytes()[:1000])             # a truncated gzip stream
    with pytest.raises(DataError, match=r"package's copy of gpt2/vocab.bpe cannot be read .*not a complete gzip"):
        packaged_file("gpt2", "vocab.bpe")
    (copy / "tinyshakespeare" / "input.txt.gz").unlink()      # a broken install
    with pytest.raises(DataError, match=r"tinyshakespeare/input.txt cannot be read .*--data-dir"):
        shakespeare()


def test_a_gzipped_text_input_is_read_with_its_size_bound(tmp_path):
    path = tmp_path / "book.txt.gz"
    path.write_bytes(gzip.compress(b"to be or not to be\n" * 100))
    assert read_utf8(path) == "to be or not to be\n" * 100
    with pytest.raises(DataError, match="decompresses to, more than the 100 that prepare reads"):
        read_utf8(path, max_bytes=100)


# a guard that fails any attempt to open a network connection, loaded into the subprocess
_NO_NETWORK = """
import socket, sys
def refuse(*args, **kwargs):
    sys.stderr.write("NETWORK ATTEMPT\\n")
    raise OSError(101, "Network is unreachable (test_offline)")
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
"""


def test_the_main_job_runs_offline_with_no_data_folder(tmp_path):
    """The README's main job, first steps, in a fresh folder: no TINYGRAD_LM_DATA, the proxies at a
    closed local port, every socket refused: tiny Shakespeare comes from the package."""
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(_NO_NETWORK)
    env = {k: v for k, v in os.environ.items() if k != "TINYGRAD_LM_DATA" and "proxy" not in k.lower()}
    env.update(PYTHONPATH=f"{guard}{os.pathsep}{ROOT}", https_proxy="http://127.0.0.1:9",
               http_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", MPLCONFIGDIR=str(tmp_path / "mpl"))
    work = tmp_path / "fresh"
    work.mkdir()
    out = subprocess.run([sys.executable, "-m", "tinygrad_lm", "train", "--preset", "atpesc", "--max-iters", "3",
                          "--eval-interval", "3", "--eval-iters", "1", "--log-interval", "1", "--samples", "0"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "NETWORK ATTEMPT" not in out.stderr and "step     3 | loss" in out.stdout
    assert (work / "data" / "shakespeare_char" / "train.bin").exists() and (work / "out" / "last.npz").exists()
    assert not (work / "data" / "tinyshakespeare").exists()        # nothing was downloaded
    probe = subprocess.run([sys.executable, "-c", "import urllib.request; urllib.request.urlopen('https://example.org')"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0 and "NETWORK ATTEMPT" in probe.stderr      # the guard does refuse


def _build(kind, tmp_path):
    """Build the sdist or the wheel with setuptools' own PEP 517 hooks (offline), from a copy of the
    sources, so the checkout gets no build/ folder."""
    src = tmp_path / "src"
    if not src.exists():
        shutil.copytree(ROOT / "tinygrad_lm", src / "tinygrad_lm", ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("setup.cfg", "pyproject.toml", "README.md"):
            shutil.copy(ROOT / name, src / name)
    out = tmp_path / "dist"
    code = f"from setuptools import build_meta as b; print(b.build_{kind}({str(out)!r}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / done.stdout.strip().splitlines()[-1]


def test_the_wheel_and_the_sdist_carry_the_corpora_and_the_readme_states_the_size(tmp_path):
    pytest.importorskip("setuptools", reason="pip install 'setuptools>=70.1' (the dev extra has it)")
    wanted = {f"tinygrad_lm/corpora/{c}/{p}" for (c, _), (_, _, p) in CORPUS_FILES.items()}
    wanted |= {f"tinygrad_lm/corpora/{c}/NOTICE.md" for c, _ in CORPUS_FILES}
    wheel = _build("wheel", tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        infos = {i.filename: i for i in zf.infolist()}
    assert wanted <= set(infos), sorted(wanted - set(infos))
    sdist = _build("sdist", tmp_path)
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    assert wanted <= names, sorted(wanted - names)
    data_mb = sum(infos[n].file_size for n in wanted) / 1e6
    installed_mb = sum(i.file_size for i in infos.values()) / 1e6
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    stated = re.search(r"installed size is about ([\d.]+) MB, of which the corpora are ([\d.]+) MB", readme)
    assert stated, "the README states the installed size"
    assert abs(float(stated[1]) - installed_mb) <= 0.15 * installed_mb + 0.1, installed_mb
    assert abs(float(stated[2]) - data_mb) <= 0.05, data_mb
