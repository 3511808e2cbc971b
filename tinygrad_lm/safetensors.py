"""A NumPy-only reader and writer of the safetensors format (no pickle, no torch).

    [8 bytes: N, little-endian u64] [N bytes: JSON header] [data area]
    header = {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
              "__metadata__": {"key": "text"}}           (offsets relative to the data area)

Everything is validated before any array is built, and a malformed or hostile file raises
SafetensorsError naming the problem: header size past the end of the file, a header that is not
JSON, unknown dtypes, shapes that disagree with the byte ranges, ranges outside the data area,
overlapping ranges, or bytes of the data area that no tensor owns.
"""
import json
import os
import pathlib
import tempfile

import numpy as np
from .errors import SafetensorsError  # noqa: F401

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": None, "I64": np.int64,
          "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "U16": np.uint16,
          "U32": np.uint32, "U64": np.uint64, "BOOL": np.bool_}
ITEMSIZE = {"BF16": 2, **{k: np.dtype(v).itemsize for k, v in DTYPES.items() if v is not None}}
NAMES = {np.dtype(v): k for k, v in DTYPES.items() if v is not None}
MAX_HEADER = 100 * 2 ** 20


def parse_header(buffer, source="safetensors data"):
    """Validate the layout of a safetensors byte buffer; return (entries, metadata, data_start)."""
    n_bytes = len(buffer)
    if n_bytes < 8:
        raise SafetensorsError(f"{source}: {n_bytes} bytes is too short to hold the 8-byte header size")
    n = int.from_bytes(bytes(buffer[:8]), "little")
    if n > n_bytes - 8:
        raise SafetensorsError(f"{source}: header size {n} runs past the end of the file ({n_bytes} bytes)")
    if n > MAX_HEADER:
        raise SafetensorsError(f"{source}: header size {n} is larger than the {MAX_HEADER}-byte limit")
    try:
        header = json.loads(bytes(buffer[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{source}: the header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{source}: the header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError(f"{source}: __metadata__ must map names to strings")
    data_start, data_len = 8 + n, n_bytes - 8 - n
    entries = []
    for name, info in header.items():
        where = f"{source}: tensor {name!r}"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError(f"{where}: needs exactly dtype, shape and data_offsets")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in DTYPES:
            raise SafetensorsError(f"{where}: unknown dtype {dtype!r} (known: {', '.join(DTYPES)})")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                  for d in shape):
            raise SafetensorsError(f"{where}: shape must be a list of non-negative integers, got {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and
                all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise SafetensorsError(f"{where}: data_offsets must be [begin, end], got {offsets!r}")
        begin, end = offsets
        if not 0 <= begin <= end <= data_len:
            raise SafetensorsError(f"{where}: data_offsets [{begin}, {end}] fall outside the data area "
                                   f"of {data_len} bytes")
        expected = int(np.prod(shape, dtype=object)) * ITEMSIZE[dtype]
        if end - begin != expected:
            raise SafetensorsError(f"{where}: shape {shape} of {dtype} needs {expected} bytes but "
                                   f"data_offsets cover {end - begin}")
        entries.append((name, dtype, tuple(shape), begin, end))
    position = 0
    for name, _, _, begin, end in sorted(entries, key=lambda e: (e[3], e[4])):
        if begin < position:
            raise SafetensorsError(f"{source}: tensor {name!r} at [{begin}, {end}] overlaps the previous tensor")
        if begin > position:
            raise SafetensorsError(f"{source}: bytes {position}..{begin} of the data area belong to no tensor")
        position = end
    if position != data_len:
        raise SafetensorsError(f"{source}: bytes {position}..{data_len} of the data area belong to no tensor")
    return entries, metadata, data_start


def _to_array(buffer, dtype, shape, begin, end):
    raw = np.frombuffer(buffer, dtype=np.uint8, count=end - begin, offset=begin)
    if dtype == "BF16":            # bfloat16 is the top half of a float32: shift it back up
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    array = raw.view(np.dtype(DTYPES[dtype]).newbyteorder("<")).reshape(shape)
    if dtype == "F16":
        return array.astype(np.float32)
    return array.astype(array.dtype.newbyteorder("="))       # native order, owned copy


def load_bytes(buffer, source="safetensors data"):
    """Parse safetensors bytes into ({name: NumPy array}, metadata). F16 and BF16 become float32."""
    entries, metadata, data_start = parse_header(buffer, source)
    data = memoryview(buffer)[data_start:]
    return {name: _to_array(data, dtype, shape, begin, end) for name, dtype, shape, begin, end in entries}, metadata


def load_file(path):
    """({name: NumPy array}, metadata) from a .safetensors file."""
    path = pathlib.Path(path)
    if not path.exists():
        raise SafetensorsError(f"{path} does not exist")
    return load_bytes(np.memmap(path, dtype=np.uint8, mode="r") if path.stat().st_size else b"", str(path))


def dump_bytes(tensors, metadata=None):
    """Serialise {name: array} (NumPy dtypes of the table above) to safetensors bytes."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        array = np.asarray(tensors[name])               # tobytes() writes C order whatever the strides
        if array.dtype not in NAMES:
            raise SafetensorsError(f"tensor {name!r}: dtype {array.dtype} has no safetensors name")
        raw = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": NAMES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)                # pad so the data area is 8-byte aligned
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)


def save_file(tensors, path, metadata=None):
    """Write a .safetensors file atomically (temporary file, then rename)."""
    path = pathlib.Path(path)
    data = dump_bytes(tensors, metadata)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
