"""A NumPy-only reader of GGUF files (llama.cpp's single-file model format), validating what the
file declares before any memory is spent on it, as the safetensors reader does.

Layout (little-endian; format version 2 or 3):

    "GGUF"  uint32 version  uint64 tensor_count  uint64 metadata_count
    metadata_count x (string key, uint32 value_type, value)
    tensor_count   x (string name, uint32 n_dims, uint64 dims[n_dims], uint32 ggml_type, uint64 offset)
    padding to `general.alignment` (default 32), then the tensor data; each offset is relative to
    the start of the data and a multiple of the alignment.

A string is a uint64 byte length and UTF-8 bytes; an array is a uint32 element type, a uint64
count and the elements. dims list the fastest-varying axis first (ggml's ne[0]), so a NumPy array
has them reversed: a (rows, columns) matrix is stored as dims (columns, rows).

Tensor data types, dequantized block by block to float32 (x = the value, q = a stored integer):

    F32   4 bytes a value                         F16  IEEE half   BF16  the top 16 bits of an F32
    Q8_0  blocks of 32 values, 34 bytes: float16 d, int8 q[32];               x = d * q
    Q4_0  blocks of 32 values, 18 bytes: float16 d, uint8 qs[16];             x = d * (q - 8)
    Q4_1  blocks of 32 values, 20 bytes: float16 d, float16 m, uint8 qs[16];  x = d * q + m
          (in both 4-bit types byte j holds value j in its low nibble and value j + 16 in its high)

Any other type (the K-quants, the IQ types...) is refused by name.
"""
import pathlib
import struct

import numpy as np

from ..errors import PretrainedError

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_COUNT = 1 << 24                 # tensors, metadata entries, array elements: a bound before allocating
MAX_DIMS = 8

# value types of the metadata: struct format of the scalars
SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
STRING, ARRAY = 8, 9
NUMPY_SCALARS = {0: "u1", 1: "i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "u1", 10: "<u8",
                 11: "<i8", 12: "<f8"}

# ggml tensor types this reader dequantizes: (name, values per block, bytes per block)
TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 8: ("Q8_0", 32, 34),
         30: ("BF16", 1, 2)}
# ... and the names of the others, so a refusal says which one the file holds
OTHER_TYPES = {6: "Q5_0", 7: "Q5_1", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K",
               15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S",
               22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M"}


class GGUFTensor:
    """One tensor's entry: its name, NumPy shape (dims reversed), ggml type name, and where its bytes are."""

    def __init__(self, name, shape, type_name, start, nbytes):
        self.name, self.shape, self.type, self.start, self.nbytes = name, shape, type_name, start, nbytes

    def __repr__(self):
        return f"GGUFTensor({self.name!r}, shape={self.shape}, type={self.type})"


class GGUFFile:
    """``GGUFFile(path)``: .version, .metadata {key: value} (numbers, strings, lists; long numeric
    arrays as NumPy arrays), .tensors {name: GGUFTensor} in the file's order, and
    ``.array(name)``: the tensor dequantized to float32 (or ``dtype``). The file is memory-mapped,
    so a tensor's bytes are read when it is asked for."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        if not self.path.is_file():
            raise PretrainedError(f"{self.path}: no such GGUF file")
        self._data = np.memmap(self.path, dtype=np.uint8, mode="r")
        self._buffer = memoryview(self._data)
        self._pos = 0
        self._read_header()

    # ----------------------------------------------------------------- the header
    def _fail(self, why):
        raise PretrainedError(f"{self.path}: not a readable GGUF file: {why}")

    def _take(self, n):
        if n < 0 or self._pos + n > len(self._data):
            self._fail(f"it ends inside its header (needs {n} more bytes at byte {self._pos}, has "
                       f"{len(self._data) - self._pos})")
        start, self._pos = self._pos, self._pos + n
        return self._buffer[start:self._pos]

    def _unpack(self, fmt):
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self._take(size))[0]

    def _string(self):
        n = self._unpack("Q")
        try:
            return bytes(self._take(n)).decode("utf-8")
        except UnicodeDecodeError:
            self._fail(f"a string at byte {self._pos - n} is not UTF-8")

    def _count(self, what):
        n = self._unpack("Q")
        if n > MAX_COUNT:
            self._fail(f"it declares {n:,} {what}, more than this reader accepts ({MAX_COUNT:,})")
        return n

    def _value(self, kind, key):
        if kind in SCALARS:
            return self._unpack(SCALARS[kind])
        if kind == STRING:
            return self._string()
        if kind == ARRAY:
            item = self._unpack("I")
            n = self._count(f"elements in {key}")
            if item in NUMPY_SCALARS:                  # numbers: one NumPy view, copied out of the map
                dtype = np.dtype(NUMPY_SCALARS[item])
                values = np.frombuffer(self._take(n * dtype.itemsize), dtype=dtype).copy()
                return values.astype(bool) if item == 7 else values
            if item == STRING:
                return [self._string() for _ in range(n)]
            if item == ARRAY:
                self._fail(f"{key} is an array of arrays, which no model file needs")
            self._fail(f"{key}: unknown array element type {item}")
        self._fail(f"{key}: unknown metadata value type {kind}")

    def _read_header(self):
        if bytes(self._take(4)) != MAGIC:
            self._fail("it does not start with the bytes GGUF")
        self.version = self._unpack("I")
        if self.version not in (2, 3):
            self._fail(f"format version {self.version} (this reader knows 2 and 3)")
        n_tensors = self._count("tensors")
        n_meta = self._count("metadata entries")
        self.metadata = {}
        for _ in range(n_meta):
            key = self._string()
            self.metadata[key] = self._value(self._unpack("I"), key)
        alignment = self.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment < 1 or alignment & (alignment - 1):
            self._fail(f"general.alignment {alignment!r} is not a power of two")
        infos = []
        for _ in range(n_tensors):
            name = self._string()
            n_dims = self._unpack("I")
            if n_dims > MAX_DIMS:
                self._fail(f"tensor {name} has {n_dims} dimensions")
            dims = [self._unpack("Q") for _ in range(n_dims)]
            infos.append((name, dims, self._unpack("I"), self._unpack("Q")))
        data_start = -(-self._pos // alignment) * alignment
        self.tensors, spans = {}, []
        for name, dims, kind, offset in infos:
            if kind not in TYPES:
                raise PretrainedError(f"{self.path}: tensor {name} is stored as "
                                      f"{OTHER_TYPES.get(kind, f'ggml type {kind}')}, which this reader does not "
                                      f"dequantize (it reads {', '.join(t[0] for t in TYPES.values())})")
            type_name, block, block_bytes = TYPES[kind]
            count = int(np.prod(dims, dtype=object)) if dims else 1
            if count % block:
                self._fail(f"tensor {name} has {count} values, not a whole number of {type_name} blocks of {block}")
            nbytes = count // block * block_bytes
            start = data_start + offset
            if offset % alignment or start + nbytes > len(self._data):
                self._fail(f"tensor {name} ({nbytes:,} bytes at offset {offset:,}) is misaligned or runs past "
                           f"the end of the file ({len(self._data):,} bytes)")
            if name in self.tensors:
                self._fail(f"tensor {name} is listed twice")
            self.tensors[name] = GGUFTensor(name, tuple(int(d) for d in reversed(dims)), type_name, start, nbytes)
            spans.append((start, start + nbytes, name))
        spans.sort()
        for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
            if start < end:
                self._fail(f"tensors {a} and {b} overlap")

    # ----------------------------------------------------------------- the tensors
    def raw(self, name):
        """The stored bytes of one tensor (a read-only uint8 view of the file)."""
        t = self._tensor(name)
        return self._data[t.start:t.start + t.nbytes]

    def array(self, name, dtype=np.float32):
        """One tensor dequantized (see the module's docstring for each type's formula), NumPy shape."""
        t = self._tensor(name)
        return dequantize(self.raw(name), t.type, t.shape).astype(dtype, copy=False)

    def _tensor(self, name):
        if name not in self.tensors:
            raise PretrainedError(f"{self.path} holds no tensor {name!r}")
        return self.tensors[name]


def dequantize(raw, type_name, shape):
    """float32 values of `shape` from the bytes of one tensor of ggml type `type_name`."""
    raw = np.asarray(raw, dtype=np.uint8)
    if type_name == "F32":
        values = raw.view("<f4")
    elif type_name == "F16":
        values = raw.view("<f2").astype(np.float32)
    elif type_name == "BF16":
        values = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
    elif type_name == "Q8_0":
        blocks = raw.view(np.dtype([("d", "<f2"), ("q", "i1", 32)]))
        values = blocks["d"].astype(np.float32)[:, None] * blocks["q"]
    elif type_name in ("Q4_0", "Q4_1"):
        fields = [("d", "<f2")] + ([("m", "<f2")] if type_name == "Q4_1" else []) + [("qs", "u1", 16)]
        blocks = raw.view(np.dtype(fields))
        qs = blocks["qs"]
        q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32)     # values 0..15, then 16..31
        d = blocks["d"].astype(np.float32)[:, None]
        values = d * (q - 8) if type_name == "Q4_0" else d * q + blocks["m"].astype(np.float32)[:, None]
    else:
        raise PretrainedError(f"no dequantization for ggml type {type_name}")
    return np.ascontiguousarray(values, dtype=np.float32).reshape(shape)


def unpermute_rows(weight, n_head):
    """Undo the row order llama.cpp's converter gives the q and k projections of llama-architecture
    files: within each head it interleaves the rotary pairs (row 2i and 2i + 1 are a pair); Hugging
    Face's layout puts the pairs half a head apart (rows i and i + D/2). n_head: the projection's
    heads (the key/value heads for k)."""
    rows = weight.shape[0]
    half = rows // n_head // 2
    return weight.reshape(n_head, half, 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
