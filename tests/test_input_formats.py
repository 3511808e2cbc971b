"""Hostile and careless input in the file formats (issue #19): safetensors headers, Hugging Face
config.json, dataset meta.json, tokenizer files and ids, sampling and training settings. Each
refusal is a TinygradLMError naming the problem, with bounded memory and time; on the command line
it is one `error:` line and exit status 1, never a traceback."""
import errno
import json
import math
import os
import pathlib
import struct
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_lm as tg
from tinygrad_lm.data import text as data
from tinygrad_lm import errors
from tinygrad_lm.io import hf
from tinygrad_lm.training.config import TrainConfig
from tinygrad_lm.errors import (ConfigError, DataError, DecodeError, EncodeError, PretrainedError, SafetensorsError,
                                TinygradLMError, TokenizerFileError)
from tinygrad_lm.models.generation import check_sampling
from tinygrad_lm.models.gpt import GPT, GPTConfig
from tinygrad_lm.io.safetensors import DTYPES, MAX_HEADER, load_bytes, load_file, read_header, save_file
from tinygrad_lm.tokenizers import BPETokenizer, CharTokenizer, Tokenizer, WordTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n" * 40


def _blob(header, payload=b"", header_size=None):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if header_size is None else header_size) + text + payload


def run_cli(*args, cwd, env=None):
    """A command in its own process: it must fail with exit status 1 and one `error:` line."""
    out = subprocess.run([sys.executable, "-m", "tinygrad_lm", *map(str, args)], cwd=cwd, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_every_error_raised_here_is_a_tinygrad_lm_error():
    for cls in (ConfigError, DataError, DecodeError, EncodeError, PretrainedError, SafetensorsError,
                TokenizerFileError):
        assert issubclass(cls, TinygradLMError) and issubclass(cls, ValueError)
    assert issubclass(DecodeError, errors.TokenizerError)


# ------------------------------------------------------------------ safetensors
JSON = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=False) |
                    st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                    max_leaves=12)
ENTRY = st.fixed_dictionaries({
    "dtype": st.sampled_from(sorted(DTYPES)) | JSON,
    "shape": st.lists(st.integers(-2, 2 ** 40), max_size=5) | JSON,
    "data_offsets": st.lists(st.integers(-4, 2 ** 66), max_size=3) | JSON,
})
HEADERS = st.dictionaries(st.sampled_from(["a", "b", "__metadata__"]) | st.text(max_size=6), ENTRY | JSON, max_size=4)


def _only_safetensors_errors(blob):
    try:
        tensors, metadata = load_bytes(blob)
    except SafetensorsError:
        return
    assert isinstance(metadata, dict) and all(isinstance(v, np.ndarray) for v in tensors.values())


@settings(max_examples=400, deadline=None)
@given(HEADERS, st.binary(max_size=48))
def test_random_json_headers_raise_only_safetensors_errors(header, payload):
    _only_safetensors_errors(_blob(header, payload))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2 ** 64 - 1), st.binary(max_size=64))
def test_any_declared_header_size_raises_only_safetensors_errors(size, rest):
    _only_safetensors_errors(struct.pack("<Q", size) + rest)


HOSTILE_HEADERS = {
    "dtype is a list": ({"a": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}, "unknown dtype"),
    "dtype is an object": ({"a": {"dtype": {"x": 1}, "shape": [1], "data_offsets": [0, 4]}}, "unknown dtype"),
    "shape is text": ({"a": {"dtype": "F32", "shape": "1", "data_offsets": [0, 4]}}, "shape must be"),
    "shape of bools": ({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, "shape must be"),
    "offsets of floats": ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0.0, 4.0]}}, "data_offsets must be"),
    "too many dimensions": ({"a": {"dtype": "F32", "shape": [1] * 40, "data_offsets": [0, 4]}}, "dimensions"),
    "huge declared size": ({"a": {"dtype": "F64", "shape": [2 ** 40, 2 ** 40], "data_offsets": [0, 4]}},
                           "needs"),
    "huge offsets": ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [2 ** 80, 2 ** 80 + 4]}}, "outside"),
    "metadata is a list": ({"__metadata__": ["x"]}, "__metadata__"),
    "metadata is false": ({"__metadata__": False}, "__metadata__"),
    "deeply nested": (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    "a 10,000-digit integer": (b'{"a": {"dtype": "F32", "shape": [' + b"9" * 10_000 + b'], "data_offsets": [0, 4]}}',
                               "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_HEADERS))
def test_hostile_headers_are_safetensors_errors(case, tmp_path):
    header, message = HOSTILE_HEADERS[case]
    blob = _blob(header, b"\0" * 4)
    with pytest.raises(SafetensorsError, match=message):
        load_bytes(blob)
    path = tmp_path / "x.safetensors"
    path.write_bytes(blob)
    for read in (load_file, read_header):
        with pytest.raises(SafetensorsError, match=message):
            read(path)


def test_a_huge_declared_header_is_refused_before_anything_is_allocated(tmp_path):
    path = tmp_path / "big.safetensors"
    path.write_bytes(struct.pack("<Q", 2 ** 40) + b"{}")
    tracemalloc.start()
    try:
        for read in (load_file, read_header):
            with pytest.raises(SafetensorsError, match="runs past the end of the file"):
                read(path)
        with pytest.raises(SafetensorsError, match="runs past the end of the file"):
            load_bytes(path.read_bytes())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    limit = tmp_path / "limit.safetensors"              # within the file but over the cap: not read either
    with open(limit, "wb") as f:
        f.write(struct.pack("<Q", MAX_HEADER + 1))
        f.truncate(MAX_HEADER + 16)                     # sparse: no real disk used
    with pytest.raises(SafetensorsError, match="limit"):
        read_header(limit)


def test_read_header_reads_no_tensor_data(tmp_path):
    path = save_file({"w": np.zeros((3, 4), np.float32), "i": np.arange(5)}, tmp_path / "t.safetensors",
                     metadata={"format": "pt"})
    header, metadata = read_header(path)
    assert header == {"w": ("F32", (3, 4)), "i": ("I64", (5,))} and metadata == {"format": "pt"}


def test_a_folder_or_unreadable_file_is_a_safetensors_error(tmp_path):
    (tmp_path / "dir.safetensors").mkdir()
    for read in (load_file, read_header):
        with pytest.raises(SafetensorsError, match="not a file"):
            read(tmp_path / "dir.safetensors")


def test_save_file_respects_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = save_file({"a": np.zeros(2, np.float32)}, tmp_path / "a.safetensors")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640


def test_save_file_into_a_missing_folder_is_a_safetensors_error(tmp_path):
    with pytest.raises(SafetensorsError, match="cannot write"):
        save_file({"a": np.zeros(2, np.float32)}, tmp_path / "nowhere" / "a.safetensors")


# ------------------------------------------------------------------ Hugging Face config.json
def _tiny_gpt2(folder, **kw):
    tg.manual_seed(0)
    config = dict(vocab_size=16, block_size=8, n_layer=2, n_head=2, n_embd=8)
    config.update(kw)
    GPT(GPTConfig.gpt2(**config)).save_pretrained(folder)
    return folder


def _edit_config(folder, **changes):
    path = folder / "config.json"
    cfg = json.loads(path.read_text())
    for key, value in changes.items():
        if value is _DELETE:
            cfg.pop(key)
        else:
            cfg[key] = value
    path.write_text(json.dumps(cfg))


_DELETE = object()


def _refuse_building(monkeypatch):
    """From now on, fail the test if a GPT is built or a byte of tensor data is read."""
    def refuse(*a, **k):
        raise AssertionError("built a model or read tensor data before checking config.json")
    monkeypatch.setattr(GPT, "__init__", refuse)
    monkeypatch.setattr(hf, "load_file", refuse)


@pytest.mark.parametrize("key, value, message", [
    ("n_layer", 1e9, "'n_layer' must be a positive integer, got 1000000000.0"),
    ("n_layer", 10 ** 9, "n_layer=1000000000 but .* holds 2 layers"),
    ("n_layer", 1, r"does not match .*unexpected tensors h\.1\."),
    ("n_layer", 3, "missing tensors"),
    ("n_embd", "8", "'n_embd' must be a positive integer, got '8'"),
    ("n_head", 0, "'n_head' must be a positive integer"),
    ("n_head", 3, "not divisible by n_head=3"),
    ("n_layer", True, "'n_layer' must be a positive integer, got True"),
    ("vocab_size", 10 ** 12, r"wte.weight is \[16, 8\], config.json implies \[1000000000000, 8\]"),
    ("n_positions", 4096, r"wpe.weight is \[8, 8\], config.json implies \[4096, 8\]"),
    ("n_inner", 64, "'n_inner' 64 is not 4 \\* n_embd"),
    ("activation_function", "relu", "'activation_function' 'relu' is not one of"),
    ("layer_norm_epsilon", "tiny", "'layer_norm_epsilon' must be a positive number"),
    ("vocab_size", _DELETE, "has no 'vocab_size'"),
    ("n_embd", _DELETE, "has no 'n_embd'"),
    ("model_type", "llama", "describes a 'llama' model"),
])
def test_config_json_is_checked_against_the_weights_before_building(tmp_path, monkeypatch, key, value, message):
    folder = _tiny_gpt2(tmp_path / "m")
    _edit_config(folder, **{key: value})
    _refuse_building(monkeypatch)
    start = time.perf_counter()
    with pytest.raises(PretrainedError, match=message):
        GPT.from_pretrained(folder)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("content", ["[1, 2]", "{not json", "[" * 100_000, "\udcff"])
def test_an_unreadable_config_json_is_a_pretrained_error(tmp_path, content):
    folder = _tiny_gpt2(tmp_path / "m")
    if content == "\udcff":
        (folder / "config.json").write_bytes(b"\xff\xfe{")
    else:
        (folder / "config.json").write_text(content)
    with pytest.raises(PretrainedError, match="config.json"):
        GPT.from_pretrained(folder)


def test_integer_weights_are_refused_not_read_as_garbage(tmp_path):
    folder = _tiny_gpt2(tmp_path / "m")
    tensors, meta = load_file(folder / "model.safetensors")
    tensors["h.0.ln_1.weight"] = np.ones(8, np.int32)
    save_file(tensors, folder / "model.safetensors", metadata=meta)
    with pytest.raises(SafetensorsError, match="'h.0.ln_1.weight' is I32; GPT-2 weights must be floating point"):
        GPT.from_pretrained(folder)


def test_a_valid_folder_still_loads_with_or_without_the_transformer_prefix(tmp_path):
    folder = _tiny_gpt2(tmp_path / "m")
    model = GPT.from_pretrained(folder)
    tensors, meta = load_file(folder / "model.safetensors")
    save_file({k.replace("transformer.", ""): v for k, v in tensors.items()}, folder / "model.safetensors", meta)
    again = GPT.from_pretrained(folder)
    idx = np.arange(6)[None] % 16
    np.testing.assert_array_equal(model(idx)[0].numpy(), again(idx)[0].numpy())


def test_export_onto_a_file_or_a_read_only_folder_names_the_path(tmp_path):
    model = GPT(GPTConfig.gpt2(vocab_size=16, block_size=8, n_layer=1, n_head=2, n_embd=8))
    (tmp_path / "a_file").write_text("precious")
    with pytest.raises(PretrainedError, match=f"{tmp_path / 'a_file'}.*not a folder"):
        model.save_pretrained(tmp_path / "a_file")
    assert (tmp_path / "a_file").read_text() == "precious"
    with pytest.raises(PretrainedError, match=f"cannot export to {tmp_path / 'a_file' / 'sub'}: Not a directory"):
        model.save_pretrained(tmp_path / "a_file" / "sub")
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(PretrainedError, match=f"cannot export to {locked / 'out'}"):
            model.save_pretrained(locked / "out")
        with pytest.raises(PretrainedError, match=f"cannot export to {locked}"):
            model.save_pretrained(locked)
    finally:
        locked.chmod(0o700)


# ------------------------------------------------------------------ tokenizers: decoding ids
def _tokenizers():
    return {"char": CharTokenizer.from_text("hello"), "word": WordTokenizer.from_text("the cat sat"),
            "bpe": BPETokenizer.train("the cat sat on the mat " * 5, 260, special_tokens=["<|endoftext|>"])}


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
@pytest.mark.parametrize("bad", [-1, -2, 10 ** 6, 1.5, None, True, "a", np.float32(1.0)])
def test_decode_refuses_ids_that_are_not_vocabulary_ints(kind, bad):
    tok = _tokenizers()[kind]
    with pytest.raises(DecodeError, match="decode"):
        tok.decode([0, bad])
    with pytest.raises(DecodeError):
        tok.decode(np.array([bad], dtype=object))


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_decode_accepts_numpy_integers_and_arrays(kind):
    tok = _tokenizers()[kind]
    ids = tok.encode({"char": "hello", "word": "the cat", "bpe": "the mat"}[kind])
    text = tok.decode(ids)
    for as_numpy in (np.array(ids, dtype=np.uint16), np.array(ids, dtype=np.int64), [np.int32(i) for i in ids],
                     tuple(ids), iter(ids)):
        assert tok.decode(as_numpy) == text
    assert tok.decode([]) == ""
    with pytest.raises(DecodeError, match="sequence of token ids"):
        tok.decode(5)


def test_bpe_decodes_its_special_tokens_and_nothing_between():
    tok = BPETokenizer(special_tokens={"<a>": 300})       # ids 256..299 are neither tokens nor special
    assert tok.decode([104, 300]) == "h<a>"
    with pytest.raises(DecodeError, match="id 280 is neither a token"):
        tok.decode([280])


# ------------------------------------------------------------------ tokenizers: files and patterns
@pytest.mark.parametrize("pattern, message", [("(unclosed", "not a valid regex"), ("[z-a]", "not a valid regex"),
                                              ("(\\w+)", "capturing group"), (5, "split pattern")])
def test_a_bad_split_pattern_in_a_file_is_a_tokenizer_file_error(tmp_path, pattern, message):
    path = tmp_path / "tok.json"
    path.write_text(json.dumps({"type": "bpe", "pattern": pattern, "merges": []}))
    with pytest.raises(TokenizerFileError, match=message):
        Tokenizer.load(path)


def test_a_catastrophic_pattern_from_a_file_times_out_naming_it(tmp_path, monkeypatch):
    monkeypatch.setattr(BPETokenizer, "FILE_PATTERN_TIMEOUT", (0.3, 0.0))
    path = tmp_path / "slow.json"
    path.write_text(json.dumps({"type": "bpe", "pattern": "(?:a|aa)+$", "merges": []}))
    tok = Tokenizer.load(path)
    assert tok.decode(tok.encode("baa")) == "aa"                # harmless text: as before
    start = time.perf_counter()
    with pytest.raises(EncodeError, match=r"split pattern '\(\?:a\|aa\)\+\$' \(from .*slow.json\) took more than"):
        tok.encode("a" * 60 + "b")
    assert time.perf_counter() - start < 10
    copy = BPETokenizer.from_dict(tok.to_dict())                # a checkpoint's copy: bounded too
    assert copy.pattern_timeout == (0.3, 0.0) and copy.pattern_name == "custom"
    assert BPETokenizer(pattern="(?:a|aa)+$").pattern_timeout is None          # code's own pattern: trusted
    assert BPETokenizer().pattern_timeout is None and BPETokenizer(pattern="gpt4").pattern_timeout is None


@pytest.mark.parametrize("content", [{"type": "char", "chars": ["a"], "unk_token": 5},
                                     {"type": "word", "words": [1, 2]},
                                     {"type": "bpe", "pattern": "gpt2", "merges": [], "special_tokens": {"<x>": 1.5}},
                                     {"type": "bpe", "pattern": "gpt2", "merges": [],
                                      "special_tokens": {"<x>": 300, "<y>": 300}},
                                     {"type": "bpe", "pattern": ["gpt2"], "merges": []}])
def test_malformed_tokenizer_fields_are_tokenizer_file_errors(tmp_path, content):
    path = tmp_path / "tok.json"
    path.write_text(json.dumps(content))
    with pytest.raises(TokenizerFileError, match=str(path)):
        Tokenizer.load(path)


def test_a_tokenizer_path_that_is_a_folder(tmp_path):
    with pytest.raises(TokenizerFileError, match="cannot be read"):
        Tokenizer.load(tmp_path)
    (tmp_path / "in.txt").write_text(TEXT)
    with pytest.raises(DataError, match="is a folder"):
        data.prepare(tmp_path / "in.txt", tmp_path / "d", tokenizer=str(tmp_path))


# ------------------------------------------------------------------ datasets
@pytest.fixture
def dataset(tmp_path):
    (tmp_path / "in.txt").write_text(TEXT)
    data.prepare(tmp_path / "in.txt", tmp_path / "d")
    return tmp_path / "d"


@pytest.mark.parametrize("change, message", [
    ({"vocab_size": "65"}, "'vocab_size' must be an integer"),
    ({"vocab_size": 0}, "'vocab_size' 0 must be between 1 and 65536"),
    ({"vocab_size": 70000}, "what uint16 holds"),
    ({"dtype": "float32"}, "'dtype' must be 'uint16' or 'uint32'"),
    ({"dtype": ["uint16"]}, "'dtype' must be a text"),
    ({"train_tokens": -1}, "'train_tokens' must be >= 0"),
    ({"val_tokens": 1.5}, "'val_tokens' must be an integer"),
    ({"tokenizer": "char"}, "'tokenizer' must be an object"),
    ({"tokenizer": {}}, "'tokenizer' must say its 'type'"),
    ({"train_tokens": None}, "'train_tokens' must be an integer"),
])
def test_an_invalid_meta_json_names_the_field(dataset, change, message):
    meta = json.loads((dataset / "meta.json").read_text())
    meta.update(change)
    (dataset / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=message):
        data.load_meta(dataset)


@pytest.mark.parametrize("content", ["[1]", "{", "[" * 100_000])
def test_an_unreadable_meta_json_is_a_data_error(dataset, content):
    (dataset / "meta.json").write_text(content)
    with pytest.raises(DataError, match="meta.json"):
        data.load_meta(dataset)


def test_a_token_file_that_disagrees_with_meta_json_is_a_data_error(dataset):
    raw = (dataset / "train.bin").read_bytes()
    (dataset / "train.bin").write_bytes(raw[:-3])
    with pytest.raises(DataError, match="truncated or from another preparation"):
        data.load_split(dataset, "train")
    assert len(data.load_split(dataset, "val")) == json.loads((dataset / "meta.json").read_text())["val_tokens"]


def test_prepare_on_a_full_disk_keeps_the_previous_dataset(dataset, monkeypatch):
    before = {p.name: p.read_bytes() for p in dataset.iterdir()}
    (dataset.parent / "other.txt").write_text("Some entirely different text, with new letters: QXZ!\n" * 50)
    real = data._write_tokens
    calls = []

    def full_disk(path, ids, dtype):
        calls.append(path.name)
        if path.name == "val.bin":                       # train.bin was written; the disk fills up now
            with open(path, "wb") as f:
                f.write(b"\0" * 10)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, ids, dtype)
    monkeypatch.setattr(data, "_write_tokens", full_disk)
    with pytest.raises(DataError, match="No space left on device.*previous dataset there, if any, is unchanged"):
        data.prepare(dataset.parent / "other.txt", dataset)
    assert calls == ["train.bin", "val.bin"]
    assert {p.name: p.read_bytes() for p in dataset.iterdir()} == before
    assert sorted(p.name for p in dataset.parent.iterdir()) == ["d", "in.txt", "other.txt"]   # no leftovers
    monkeypatch.setattr(data, "_write_tokens", real)
    meta = data.prepare(dataset.parent / "other.txt", dataset)                     # with space: replaced whole
    assert data.load_meta(dataset) == meta and "Q" in meta["tokenizer"]["chars"]
    assert len(data.load_split(dataset, "train")) == meta["train_tokens"]


# ------------------------------------------------------------------ settings
@pytest.mark.parametrize("kwargs, message", [
    ({"learning_rate": math.inf}, "learning_rate=inf must be a finite number"),
    ({"min_lr": math.inf, "decay_lr": False}, "min_lr=inf must be a finite number"),
    ({"weight_decay": math.inf}, "weight_decay=inf must be a finite number"),
    ({"min_lr": 1e-2, "learning_rate": 1e-3}, "min_lr=0.01 must be <= learning_rate=0.001"),
    ({"batch_size": "12"}, "batch_size='12' must be an integer"),
    ({"learning_rate": "fast"}, "learning_rate='fast' must be a finite number"),
])
def test_train_config_refuses_non_finite_and_contradictory_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)


def test_train_config_allows_min_lr_above_lr_without_decay():
    assert TrainConfig(min_lr=1e-2, learning_rate=1e-3, decay_lr=False).min_lr == 1e-2
    assert TrainConfig(batch_size=np.int64(4), learning_rate=np.float32(1e-3)).batch_size == 4


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": math.nan}, "temperature must be >= 0 and finite"),
    ({"temperature": math.inf}, "temperature must be >= 0 and finite"),
    ({"top_p": math.nan}, "top_p must be in"),
    ({"seed": -1}, "seed must be >= 0"),
    ({"seed": np.int64(-5)}, "seed must be >= 0"),
])
def test_check_sampling_refuses_non_finite_values_and_negative_seeds(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        check_sampling(**kwargs)


def test_generate_refuses_a_negative_seed_before_any_work():
    model = GPT(GPTConfig.gpt2(vocab_size=16, block_size=8, n_layer=1, n_head=2, n_embd=8))
    with pytest.raises(ConfigError, match="seed must be >= 0"):
        model.generate(np.array([[1, 2]]), 3, seed=-1)
    with pytest.raises(ConfigError, match="at least one token"):
        model.generate(np.zeros((1, 0), np.int64), 3)


# ------------------------------------------------------------------ the command line
@pytest.fixture(scope="module")
def cli_work(tmp_path_factory):
    work = tmp_path_factory.mktemp("formats_cli")
    (work / "text.txt").write_text(TEXT, encoding="utf-8")
    data.prepare(work / "text.txt", work / "data")
    model = _tiny_gpt2(work / "gpt2")
    hostile = work / "hostile"
    hostile.mkdir()
    (hostile / "config.json").write_text((model / "config.json").read_text())
    (hostile / "model.safetensors").write_bytes(_blob({"wte.weight": {"dtype": ["F32"], "shape": [1],
                                                                      "data_offsets": [0, 4]}}, b"\0" * 4))
    deep = work / "deep"
    deep.mkdir()
    (deep / "config.json").write_text((model / "config.json").read_text())
    (deep / "model.safetensors").write_bytes(_blob(b"[" * 50_000 + b"]" * 50_000))
    huge = work / "huge"
    huge.mkdir()
    (huge / "model.safetensors").write_bytes((model / "model.safetensors").read_bytes())
    cfg = json.loads((model / "config.json").read_text())
    (huge / "config.json").write_text(json.dumps({**cfg, "n_layer": 1e9}))
    bad_meta = work / "bad_meta"
    bad_meta.mkdir()
    (bad_meta / "meta.json").write_text(json.dumps({"vocab_size": "many"}))
    return work


CLI_CASES = {
    "generate: dtype is a list": (["generate", "--model", "hostile"], "unknown dtype"),
    "generate: deeply nested header": (["generate", "--model", "deep"], "not valid JSON"),
    "generate: n_layer 1e9": (["generate", "--model", "huge"], "'n_layer' must be a positive integer"),
    "attention: dtype is a list": (["attention", "--model", "hostile"], "unknown dtype"),
    "attention: n_layer 1e9": (["attention", "--model", "huge"], "'n_layer' must be a positive integer"),
    "generate --seed -1": (["generate", "--model", "gpt2", "--seed", "-1"], "seed must be >= 0"),
    "sample --seed -1": (["sample", "--checkpoint", "nothing.npz", "--seed", "-1"], "seed must be >= 0"),
    "generate --prompt ''": (["generate", "--model", "gpt2", "--prompt", ""], "--prompt is empty"),
    "generate --temperature nan": (["generate", "--model", "gpt2", "--temperature", "nan"], "temperature must be"),
    "sample --temperature inf": (["sample", "--checkpoint", "x.npz", "--temperature", "inf"], "temperature must be"),
    "prepare --tokenizer FOLDER": (["prepare", "--input", "text.txt", "--tokenizer", "./gpt2", "--dataset", "d2"],
                                   "is a folder"),
    "prepare --input FOLDER": (["prepare", "--input", "gpt2", "--dataset", "d3"], "is not a file"),
    "train: meta.json with a bad field": (["train", "--dataset", "bad_meta"], "'vocab_size' must be an integer"),
    "train --min-lr above the lr": (["train", "--dataset", "data", "--learning-rate", "1e-3", "--min-lr", "0.1"],
                                    "min_lr=0.1 must be <= learning_rate=0.001"),
    "train --learning-rate inf": (["train", "--dataset", "data", "--learning-rate", "inf"],
                                  "learning_rate=inf must be a finite number"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_command_line_refusals_are_one_error_line(cli_work, case):
    args, message = CLI_CASES[case]
    line = run_cli(*args, cwd=cli_work)
    assert message in line, line


def test_export_onto_an_existing_file_is_one_error_line(cli_work):
    out = subprocess.run([sys.executable, "-m", "tinygrad_lm", "train", "--dataset", "data", "--out-dir", "gpt",
                          "--n-layer", "1", "--n-head", "2", "--n-embd", "8", "--block-size", "8", "--batch-size", "2",
                          "--max-iters", "1", "--eval-interval", "1", "--eval-iters", "1", "--samples", "0"],
                         cwd=cli_work, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    (cli_work / "taken").write_text("precious")
    line = run_cli("export", "--checkpoint", "gpt/last.npz", "--out", "taken", cwd=cli_work)
    assert "taken" in line and "not a folder" in line, line
    assert (cli_work / "taken").read_text() == "precious"


# ------------------------------------------------------------------ issue #19: what the hostile table does not pin down
def test_load_split_refuses_ids_outside_the_vocabulary_naming_file_id_and_size(dataset):
    meta = json.loads((dataset / "meta.json").read_text())
    ids = np.fromfile(dataset / "train.bin", dtype="<u2")
    ids[7] = meta["vocab_size"] + 3
    ids.tofile(dataset / "train.bin")
    with pytest.raises(DataError, match=rf"train.bin holds token id {meta['vocab_size'] + 3} .*at token 7\).*"
                                        rf"vocabulary of {meta['vocab_size']}"):
        data.load_split(dataset, "train")
    assert len(data.load_split(dataset, "val")) == meta["val_tokens"]


def test_read_utf8_refuses_an_input_over_the_limit_unread(tmp_path):
    path = tmp_path / "big.txt"
    with open(path, "wb") as f:
        f.truncate(data.MAX_INPUT_BYTES + 1)                # sparse: no room on disk
    with pytest.raises(DataError, match="more than the 1,073,741,824 that prepare reads"):
        data.read_utf8(path)
    path.write_text("hello")
    with pytest.raises(DataError, match="more than the 3 that prepare reads"):
        data.read_utf8(path, max_bytes=3)


def test_bpe_bounds_what_merges_build_before_building_it(tmp_path):
    path = tmp_path / "tok.json"
    doubling = [[0, 0]] + [[256 + k, 256 + k] for k in range(20)]            # token k is 2**(k+1) bytes
    path.write_text(json.dumps({"type": "bpe", "pattern": "gpt2", "merges": doubling}))
    with pytest.raises(TokenizerFileError, match="merge 10 .* 2048 bytes, longer than MAX_TOKEN_BYTES=1024"):
        Tokenizer.load(path)
    path.write_text(json.dumps({"type": "bpe", "pattern": "gpt2", "merges": doubling[:10]}))   # 1024 bytes: fine
    assert len(Tokenizer.load(path).vocab[-1]) == 1024


def test_training_never_makes_a_token_longer_than_the_bound(monkeypatch):
    from tinygrad_lm.tokenizers import bpe
    monkeypatch.setattr(bpe, "MAX_TOKEN_BYTES", 4)
    text = "aaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbb abababababab " * 20
    tok = BPETokenizer.train(text, 300, pattern=None)
    assert max(len(t) for t in tok.vocab) <= 4 and len(tok.merges) > 0
    assert [tuple(m) for m in bpe.reference_train_merges(text, 300 - 256, pattern=None)] == tok.merges
    assert tok.decode(tok.encode(text)) == text


@pytest.mark.parametrize("ids, message", [({"<a>": 2 ** 24}, "past MAX_VOCAB_SIZE"), ({"<a>": 10 ** 12}, "past MAX"),
                                          ({"<a>": 100}, "which a merge already uses")])
def test_special_token_ids_are_checked_when_loaded(tmp_path, ids, message):
    path = tmp_path / "tok.json"
    path.write_text(json.dumps({"type": "bpe", "pattern": "gpt2", "merges": [], "special_tokens": ids}))
    with pytest.raises(TokenizerFileError, match=message):
        Tokenizer.load(path)


def test_bpe_vocab_size_covers_a_special_id_after_a_gap():
    tok = BPETokenizer(special_tokens={"<a>": 300})
    assert tok.vocab_size == 301 and data.token_dtype(tok.vocab_size) == np.uint16
    assert tok.encode("h<a>", allowed_special="all") == [104, 300]


@pytest.mark.parametrize("type_value", [["bpe"], {"t": 1}, None, 5])
def test_a_tokenizer_type_of_the_wrong_kind_is_a_tokenizer_file_error(tmp_path, type_value):
    path = tmp_path / "tok.json"
    path.write_text(json.dumps({"type": type_value, "merges": []}))
    with pytest.raises(TokenizerFileError, match="unknown tokenizer type"):
        Tokenizer.load(path)


def test_gpt2_files_are_checked_against_their_checksums(tmp_path, gpt2_dir):
    from tinygrad_lm.tokenizers import gpt2_tokenizer
    folder = tmp_path / "gpt2"
    folder.mkdir()
    (folder / "encoder.json").write_bytes((gpt2_dir / "encoder.json").read_bytes())
    lines = (gpt2_dir / "vocab.bpe").read_text(encoding="utf-8").split("\n")
    (folder / "vocab.bpe").write_text("\n".join(lines[: len(lines) // 2]), encoding="utf-8")   # valid, but not GPT-2's
    with pytest.raises(TokenizerFileError, match=r"vocab.bpe: its sha256 checksum differs from GPT-2's vocab.bpe"):
        gpt2_tokenizer(folder)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_non_finite_pretrained_weight_is_a_pretrained_error_naming_it(tmp_path, value):
    model = GPT(GPTConfig.gpt2(vocab_size=16, block_size=8, n_layer=1, n_head=2, n_embd=8))
    model.save_pretrained(tmp_path / "m")
    tensors, metadata = load_file(tmp_path / "m" / "model.safetensors")
    tensors = {k: v.copy() for k, v in tensors.items()}
    tensors["transformer.h.0.mlp.c_proj.weight"].flat[3] = value
    save_file(tensors, tmp_path / "m" / "model.safetensors", metadata)
    with pytest.raises(PretrainedError, match="'transformer.h.0.mlp.c_proj.weight' holds 1 NaN or infinite value"):
        GPT.from_pretrained(tmp_path / "m")


@pytest.mark.parametrize("shape", [[0, 2 ** 65], [2 ** 40, 0, 2 ** 40], [0, 2 ** 62], [2 ** 31, 0, 2 ** 31]])
def test_a_shape_numpy_cannot_hold_is_a_safetensors_error_even_when_empty(shape):
    with pytest.raises(SafetensorsError, match="larger than any array can be"):
        load_bytes(_blob({"x": {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}}))
    tensors, _ = load_bytes(_blob({"x": {"dtype": "F32", "shape": [0, 2 ** 40], "data_offsets": [0, 0]}}))
    assert tensors["x"].shape == (0, 2 ** 40)


def _variants():
    return [GPTConfig.seed_mini(65), GPTConfig.gpt2(vocab_size=101, block_size=16, n_layer=2, n_head=2, n_embd=8),
            GPTConfig.gpt2(vocab_size=101, block_size=16, n_layer=2, n_head=2, n_embd=8, bias=False,
                           pos_encoding="rotary"),
            GPTConfig.seed_mini(30, qkv_bias=True, pos_encoding="sinusoidal", tie_weights=True, lm_head_bias=False),
            GPTConfig.gpt2(vocab_size=50, block_size=8, n_layer=1, n_head=4, n_embd=8, qkv_bias=False,
                           lm_head_bias=True, tie_weights=False, mlp_ratio=2)]


def test_the_parameter_estimate_is_the_built_models_count():
    from tinygrad_lm.models import Bigram, BigramConfig
    for config in _variants():
        assert config.num_parameters_estimate() == GPT(config).num_parameters(), config
    assert BigramConfig(vocab_size=65).num_parameters_estimate() == Bigram(BigramConfig(vocab_size=65)).num_parameters()


@pytest.mark.parametrize("change", [{"n_layer": 10 ** 9}, {"n_embd": 10 ** 9}, {"block_size": 10 ** 12}])
def test_a_model_larger_than_the_machine_is_refused_before_it_is_built(change):
    config = dict(vocab_size=65, block_size=8, n_layer=1, n_head=2, n_embd=8)
    config.update(change)
    start = time.perf_counter()
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match="more than this machine's .* GiB of memory"):
            GPT(GPTConfig.gpt2(**config))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 ** 20 and time.perf_counter() - start < 1


def test_the_memory_bound_counts_the_training_state(monkeypatch):
    from tinygrad_lm.training.config import make_optimizer
    from tinygrad_lm.models import Bigram, BigramConfig, base
    model = Bigram(BigramConfig(vocab_size=64))                  # 4096 parameters, 16 KiB as float32
    monkeypatch.setattr(base, "physical_memory", lambda: 40_000)
    Bigram(BigramConfig(vocab_size=64))                          # the model itself fits
    with pytest.raises(ConfigError, match=r"training the model with adamw .* x 4 copies"):
        make_optimizer(model, TrainConfig())
    with pytest.raises(ConfigError, match="more than this machine's"):
        Bigram(BigramConfig(vocab_size=128))


def test_n_head_zero_is_a_config_error_not_a_division_by_zero():
    with pytest.raises(ConfigError, match="must be positive"):
        GPTConfig.gpt2(n_head=0)


@pytest.mark.parametrize("kwargs, message", [({"seed": -1}, "seed=-1 must be >= 0"),
                                             ({"out_dir": ""}, "out_dir='' must name a folder")])
def test_train_config_refuses_a_negative_seed_and_an_empty_out_dir(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)


def test_a_failed_bench_worker_is_one_error_of_its_own_class():
    from tinygrad_lm.training.bench import _worker_error
    e = _worker_error("tinygrad_lm", 1, "Traceback ...\n  File x\ntinygrad_lm.errors.DeviceError: unknown device 'tpu'\n")
    assert type(e) is errors.DeviceError and str(e) == "bench worker tinygrad_lm failed (exit 1): unknown device 'tpu'"
    e = _worker_error("tinygrad_lm", 1, "Traceback ...\nKeyError: 'nope'\n")
    assert isinstance(e, errors.DeviceError) and isinstance(e, RuntimeError) and str(e).endswith("KeyError: 'nope'")
    e = _worker_error("tinygrad_lm", 1, "tinygrad_lm.errors.ConfigError: bad\n")
    assert type(e) is ConfigError


def test_generate_refuses_a_model_whose_vocabulary_is_below_the_tokenizers(tmp_path):
    from tinygrad_lm.training.pretrained import check_vocabularies as _check_vocabularies
    model = GPT(GPTConfig.gpt2(vocab_size=30, block_size=8, n_layer=1, n_head=2, n_embd=8))
    tok = BPETokenizer(special_tokens={"<|endoftext|>": 300})
    with pytest.raises(PretrainedError, match="the tokenizer and the model disagree: .* ids up to 300 .* holds 30"):
        _check_vocabularies(tok, model, "m")
    _check_vocabularies(CharTokenizer.from_text("abc"), model, "m")
