"""Makers of hostile inputs, and the runner that feeds them to the command line under a memory
bound (used by tests/test_hostile_inputs.py).

Every maker starts from a valid file the project wrote (a trained checkpoint, a saved tokenizer, a
GPT-2 folder written by GPT.save_pretrained) and breaks it one way: cut short, replaced by random
bytes, a declaration of gigabytes, a value of the wrong type, a field left out, NaN or inf.

The memory bound. Each command runs in its own process under ``RLIMIT_AS = AS_LIMIT`` (2 GiB of
address space). A normal small command (numpy + tinygrad_lm imported, a tiny model trained,
sampled or exported, GPT-2's tokenizer read) peaks at 120-250 MB of address space with one BLAS
thread (measured with /proc/self/status VmPeak), so 2 GiB is about 8 times what an honest input
needs, while every hostile declaration here asks for 4 GiB or (much) more. The BLAS libraries
reserve address space per thread (OpenBLAS: tens of MB each, up to its MAX_THREADS), so the runner
pins them to one thread: the bound then means the same on a 2-core laptop and a 128-core node.
"""
import contextlib
import hashlib
import io
import json
import os
import pathlib
import random
import subprocess
import sys
import zipfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
AS_LIMIT = 2 * 2 ** 30                      # bytes of address space a command may map
TIMEOUT = 30                                # seconds a command may run (the normal ones take 0.3-4 s)
GIB = 2 ** 30
META_KEY = "__meta__.json"

# ------------------------------------------------------------------ running a command, bounded
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER, _CAP_LINUX_IMMUTABLE = 1, 2, 3, 9
_PR_CAPBSET_DROP = 24
try:                                                 # Linux only: drop root's right to ignore modes
    import ctypes
    _LIBC = ctypes.CDLL(None, use_errno=True)
except (OSError, ImportError):                       # pragma: no cover
    _LIBC = None


def _limit_child():
    """In the child, before exec: bound its address space; no core files; and when run as root,
    drop the capabilities that let root write into a read-only folder (so a read-only destination
    means the same as for a user)."""
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if os.geteuid() == 0 and _LIBC is not None:
        for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER, _CAP_LINUX_IMMUTABLE):
            _LIBC.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)


def cli_env(**extra):
    """The environment of a bounded command: the package on the path, one BLAS thread, no
    network (a closed local port as proxy), caches and matplotlib's config inside the test folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("TINYGRAD_LM_GPT2_DIR", "PYTHONWARNINGS")}
    env.update({"PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1", "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
                "http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_cli(args, cwd, env, timeout=TIMEOUT):
    """python -m tinygrad_lm ARGS in `cwd`, under the address-space bound. -> CompletedProcess, or
    None when it ran past `timeout` (killed)."""
    try:
        return subprocess.run([sys.executable, "-m", "tinygrad_lm", *map(str, args)], cwd=cwd, env=env,
                              capture_output=True, text=True, errors="replace", timeout=timeout,
                              preexec_fn=_limit_child)
    except subprocess.TimeoutExpired:
        return None


def verdict(out, may_succeed=False):
    """Why a hostile command's ending is wrong, or None when it ended as it should: exit status 1,
    exactly one line starting with 'error:' on stderr, no traceback, no MemoryError (the bound was
    hit: the command believed a declaration), not killed. With may_succeed (an output in a folder
    that does not exist yet: creating it is as right as refusing), exit status 0 is also right."""
    if out is None:
        return f"ran past {TIMEOUT} s (killed)"
    err = out.stderr
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    problems = []
    if out.returncode < 0:
        problems.append(f"killed by signal {-out.returncode}")
    elif may_succeed and out.returncode == 0:
        pass
    elif out.returncode != 1:
        problems.append(f"exit status {out.returncode}")
    if "MemoryError" in err:
        problems.append(f"MemoryError under the {AS_LIMIT // GIB} GiB address-space bound")
    if "Traceback" in err:
        last = [line for line in err.strip().splitlines() if line and not line.startswith(" ")]
        problems.append(f"traceback ({last[-1][:300] if last else '?'})")
    if not (may_succeed and out.returncode == 0) and len(lines) != 1:
        problems.append(f"{len(lines)} 'error:' lines")
    if not problems:
        return None
    tail = "\n".join(err.strip().splitlines()[-6:])
    return "; ".join(problems) + f"\n--- stderr (last lines) ---\n{tail}\n--- stdout (end) ---\n{out.stdout[-500:]}"


# ------------------------------------------------------------------ "nothing saved changed"
def snapshot(*roots):
    """{path: sha256} of every file under the given files and folders."""
    hashes = {}
    for root in map(pathlib.Path, roots):
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        for p in paths:
            if p.stat().st_size > 64 * 2 ** 20:          # a sparse giant: its size and time stand for it
                st = p.stat()
                hashes[str(p)] = f"size {st.st_size} mtime {st.st_mtime_ns}"
                continue
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            hashes[str(p)] = h.hexdigest()
    return hashes


def changed_since(before):
    """The files of a snapshot that are now different or gone."""
    now = snapshot(*[p for p in before if os.path.isfile(p)])
    return sorted(p for p in before if now.get(p) != before[p])


# ------------------------------------------------------------------ bytes
def random_bytes(n, seed=0):
    return random.Random(seed).randbytes(n)


def truncate(path, keep=0.5):
    """Cut a file to a fraction of its bytes (0: empty)."""
    path = pathlib.Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def deep_json(depth=100_000):
    """A JSON text nested `depth` lists deep: valid JSON that a recursive parser cannot read."""
    return "[" * depth + "]" * depth


def sparse_file(path, size):
    """A file of `size` NUL bytes that takes no room on disk."""
    with open(path, "wb") as f:
        f.truncate(size)


# ------------------------------------------------------------------ checkpoints (.npz)
def npy_bytes(array):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(array), allow_pickle=True)
    return buf.getvalue()


def npy_declaring(shape, descr="<f4", payload=b"\0" * 64):
    """A .npy member whose header declares `shape` (gigabytes) but that holds only `payload`."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue() + payload


def read_npz(path):
    """-> ({member name without .npy: raw .npy bytes}, metadata dict) of a checkpoint."""
    with zipfile.ZipFile(path) as z:
        members = {name[:-4] if name.endswith(".npy") else name: z.read(name) for name in z.namelist()}
    meta = json.loads(np.load(io.BytesIO(members.pop(META_KEY))).tobytes().decode("utf-8"))
    return members, meta


def array_of(raw):
    return np.load(io.BytesIO(raw), allow_pickle=False)


def write_npz(path, members, meta=None, meta_bytes=None):
    """Write a checkpoint from raw .npy members (bytes) or arrays, with `meta` (a JSON value) or
    `meta_bytes` (the raw JSON text, any bytes) as __meta__.json."""
    if meta_bytes is None:
        meta_bytes = json.dumps(meta).encode("utf-8")
    members = dict(members)
    if META_KEY not in members:
        members[META_KEY] = np.frombuffer(meta_bytes, dtype=np.uint8)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, value in members.items():
            z.writestr(name + ".npy", value if isinstance(value, bytes) else npy_bytes(value))
    return path


def edit_checkpoint(src, dst, edit):
    """Copy checkpoint `src` to `dst` through edit(members, meta), which changes them in place (or
    returns a replacement (members, meta) or raw meta bytes)."""
    members, meta = read_npz(src)
    out = edit(members, meta)
    meta_bytes = None
    if isinstance(out, tuple):
        members, meta = out
    elif isinstance(out, bytes):
        meta_bytes = out
    write_npz(dst, members, meta, meta_bytes)
    return dst


def first_key(members, prefix):
    return sorted(k for k in members if k.startswith(prefix))[0]


# ------------------------------------------------------------------ safetensors
def read_safetensors(path):
    """-> (header dict, data bytes)."""
    raw = pathlib.Path(path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write_safetensors(path, header, data, header_text=None, declared=None):
    """Write a safetensors file from a header (dict or raw text) and a data area; `declared`
    overrides the 8-byte header size."""
    text = (header_text if header_text is not None else json.dumps(header)).encode("utf-8")
    size = len(text) if declared is None else declared
    pathlib.Path(path).write_bytes(size.to_bytes(8, "little") + text + data)


def edit_tensor(path, name, fn):
    """Replace the bytes of F32 tensor `name` in a safetensors file by fn(array) (same shape)."""
    header, data = read_safetensors(path)
    begin, end = header[name]["data_offsets"]
    array = np.frombuffer(data[begin:end], dtype="<f4").copy()
    new = np.asarray(fn(array), dtype="<f4").tobytes()
    assert len(new) == end - begin
    write_safetensors(path, header, data[:begin] + new + data[end:])


def drop_tensor(path, name):
    """Remove tensor `name` (and its bytes) from a safetensors file, keeping the rest consistent."""
    header, data = read_safetensors(path)
    begin, end = header.pop(name)["data_offsets"]
    for info in header.values():
        if isinstance(info, dict) and "data_offsets" in info and info["data_offsets"][0] >= end:
            info["data_offsets"] = [o - (end - begin) for o in info["data_offsets"]]
    write_safetensors(path, header, data[:begin] + data[end:])


# ------------------------------------------------------------------ JSON files
def edit_json(path, edit):
    """Rewrite a JSON file through edit(value), which changes it in place or returns a replacement
    (a JSON value, or raw text as str/bytes)."""
    path = pathlib.Path(path)
    value = json.loads(path.read_text(encoding="utf-8"))
    out = edit(value)
    if out is None:
        out = value
    if isinstance(out, bytes):
        path.write_bytes(out)
    elif isinstance(out, str):
        path.write_text(out, encoding="utf-8")
    else:
        path.write_text(json.dumps(out), encoding="utf-8")


# ------------------------------------------------------------------ in-process memory bound
@contextlib.contextmanager
def address_space_bound(extra=int(1.5 * GIB)):
    """Bound this process's address space to what it maps now plus `extra` while the block runs
    (for the in-process fuzzing: a loader that believes a declaration gets a MemoryError instead
    of taking the machine's memory). A no-op where RLIMIT_AS or /proc is missing."""
    try:
        import resource
        with open("/proc/self/status") as f:
            vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (ImportError, OSError, StopIteration):
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    new = vm + extra if hard == resource.RLIM_INFINITY else min(hard, vm + extra)
    resource.setrlimit(resource.RLIMIT_AS, (new, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
