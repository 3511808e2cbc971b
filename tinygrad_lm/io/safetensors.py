"""A NumPy-only reader and writer of the safetensors format (no pickle, no torch).

    [8 bytes: N, little-endian u64] [N bytes: JSON header] [data area]
    header = {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
              "__metadata__": {"key": "text"}}           (offsets relative to the data area)

Everything is validated before any array is built, and a malformed or hostile file raises
SafetensorsError naming the problem (never another exception): header size past the end of the
file or over MAX_HEADER (checked before a byte of it is read), a header that is not JSON (or nested
too deeply), wrong types for dtype, shape or data_offsets, unknown dtypes, shapes NumPy cannot hold (even with a zero
dimension: [0, 2**65]), shapes that disagree
with the byte ranges, ranges outside the data area, overlapping ranges, or bytes of the data area
that no tensor owns. ``read_header(path)`` reads and checks the header alone, so a caller can
compare the declared shapes with what it expects before any tensor data is read.
"""
import json
import math
import os
import pathlib
import tempfile

import numpy as np
from .download import new_file_mode
from ..errors import SafetensorsError  # noqa: F401

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": None, "I64": np.int64,
          "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "U16": np.uint16,
          "U32": np.uint32, "U64": np.uint64, "BOOL": np.bool_}
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")
ITEMSIZE = {"BF16": 2, **{k: np.dtype(v).itemsize for k, v in DTYPES.items() if v is not None}}
NAMES = {np.dtype(v): k for k, v in DTYPES.items() if v is not None}
MAX_HEADER = 100 * 2 ** 20      # as the reference implementation: a larger header is refused unread
MAX_DIMS = 32                   # NumPy's limit on dimensions (no real tensor comes close)
MAX_ARRAY_BYTES = np.iinfo(np.intp).max   # NumPy's limit on nonzero dimensions x itemsize


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _header_size(prefix, n_bytes, source):
    """The header size the first 8 bytes declare, checked against the file size and MAX_HEADER
    before anything is read or allocated from it."""
    if n_bytes < 8:
        raise SafetensorsError(f"{source}: {n_bytes} bytes is too short to hold the 8-byte header size")
    n = int.from_bytes(bytes(prefix[:8]), "little")
    if n > n_bytes - 8:
        raise SafetensorsError(f"{source}: header size {n} runs past the end of the file ({n_bytes} bytes)")
    if n > MAX_HEADER:
        raise SafetensorsError(f"{source}: header size {n} is larger than the {MAX_HEADER}-byte limit")
    return n


def _parse_header_json(text, data_len, source):
    """Validate the JSON header `text` (bytes) against a data area of `data_len` bytes:
    -> (entries [(name, dtype, shape, begin, end)], metadata)."""
    try:
        header = json.loads(bytes(text).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:    # ValueError: JSONDecodeError, huge ints
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise SafetensorsError(f"{source}: the header is not valid JSON ({reason})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{source}: the header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError(f"{source}: __metadata__ must map names to strings")
    entries = []
    for name, info in header.items():
        where = f"{source}: tensor {name!r}"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError(f"{where}: needs exactly dtype, shape and data_offsets")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise SafetensorsError(f"{where}: unknown dtype {_short(dtype)} (known: {', '.join(DTYPES)})")
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise SafetensorsError(f"{where}: shape must be a list of non-negative integers, got {_short(shape)}")
        if len(shape) > MAX_DIMS:
            raise SafetensorsError(f"{where}: shape has {len(shape)} dimensions, more than {MAX_DIMS}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
            raise SafetensorsError(f"{where}: data_offsets must be [begin, end], got {_short(offsets)}")
        begin, end = offsets
        if not 0 <= begin <= end <= data_len:
            raise SafetensorsError(f"{where}: data_offsets [{begin}, {end}] fall outside the data area "
                                   f"of {data_len} bytes")
        expected = math.prod(shape) * ITEMSIZE[dtype]
        if end - begin != expected:
            raise SafetensorsError(f"{where}: shape {shape} of {dtype} needs {expected} bytes but "
                                   f"data_offsets cover {end - begin}")
        if math.prod(d for d in shape if d) * ITEMSIZE[dtype] > MAX_ARRAY_BYTES:
            # NumPy refuses such a shape even with a zero in it ([0, 2**65], 0 bytes): say so here, unbuilt
            raise SafetensorsError(f"{where}: shape {_short(shape)} is larger than any array can be (its nonzero "
                                   f"dimensions times {ITEMSIZE[dtype]} bytes exceed {MAX_ARRAY_BYTES})")
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
    return entries, metadata


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def parse_header(buffer, source="safetensors data"):
    """Validate the layout of a safetensors byte buffer; return (entries, metadata, data_start)."""
    n_bytes = len(buffer)
    n = _header_size(buffer, n_bytes, source)
    entries, metadata = _parse_header_json(buffer[8:8 + n], n_bytes - 8 - n, source)
    return entries, metadata, 8 + n


def _open_checked(path):
    path = pathlib.Path(path)
    if not path.exists():
        raise SafetensorsError(f"{path} does not exist")
    if not path.is_file():
        raise SafetensorsError(f"{path} is not a file (a directory?): give the .safetensors file itself")
    return path


def read_header(path):
    """{name: (dtype, shape)} and the metadata of a .safetensors file, reading and validating the
    header only: no tensor data is read, so a caller can check the shapes before loading."""
    path = _open_checked(path)
    try:
        with open(path, "rb") as f:
            n_bytes = os.fstat(f.fileno()).st_size
            n = _header_size(f.read(8), n_bytes, str(path))
            text = f.read(n)
    except OSError as e:
        raise SafetensorsError(f"cannot read {path}: {e.strerror or e}") from None
    if len(text) != n:
        raise SafetensorsError(f"{path}: the file changed while it was read")
    entries, metadata = _parse_header_json(text, n_bytes - 8 - n, str(path))
    return {name: (dtype, shape) for name, dtype, shape, _, _ in entries}, metadata


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
    path = _open_checked(path)
    try:
        buffer = np.memmap(path, dtype=np.uint8, mode="r") if path.stat().st_size else b""
    except OSError as e:
        raise SafetensorsError(f"cannot read {path}: {e.strerror or e}") from None
    return load_bytes(buffer, str(path))


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
    """Write a .safetensors file atomically (temporary file, then rename). The file gets the
    permissions of any new file (0o666 less the umask), not mkstemp's private 0o600."""
    path = pathlib.Path(path)
    data = dump_bytes(tensors, metadata)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except OSError as e:
        raise SafetensorsError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return path
