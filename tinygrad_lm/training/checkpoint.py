"""Checkpoints: one ``.npz`` file of plain arrays plus a JSON document, never a pickle.

    model/<name>           every parameter (float arrays); a LoRA run's frozen base weights too
    optim/<group>/<name>   the optimizer's flat state arrays (moments, momentum)
    __meta__.json          (stored as uint8 bytes) config, step, optimizer hyperparameters, RNG
                           states, tokenizer, history: everything else, human-readable

Writes are atomic: the file is written next to its destination under a temporary name, flushed
to disk, then renamed over it, so a crash mid-save leaves the previous checkpoint intact.
Reading never unpickles, and checks what a file declares before allocating for it: the keys (model/,
optim/<group>/ with a group the metadata declares), each entry's dtype and shape against its size
in the zip, and the parameters' shapes against those the model config implies, computed without
building the model (whose config fields are type-checked first). Memory stays that of the model.
"""
import json
import math
import os
import pathlib
import tempfile
import zipfile

import numpy as np

from .. import models
from ..io.download import new_file_mode
from ..nn.lora import apply_lora, lora_parameter_shapes
from ..tokenizers import tokenizer_from_dict
from ..errors import CheckpointError, ConfigError, TinygradLMError

META_KEY = "__meta__.json"


def save(path, model=None, optimizer=None, meta=None):
    """Write a checkpoint atomically (a temporary file renamed into place). Returns the path. A write
    that fails (disk full, no permission) raises CheckpointError and leaves the previous file as it was."""
    path = pathlib.Path(path)
    payload = {}
    if model is not None:
        for name, t in model.state_dict().items():
            payload[f"model/{name}"] = t.numpy()
    meta = dict(meta or {})
    if optimizer is not None:
        sd = optimizer.state_dict()
        for i, state in enumerate(sd["state"]):
            for name, value in state.items():
                payload[f"optim/{i}/{name}"] = value
        meta["optimizer"] = {"type": sd["type"], "step": sd["step"], "param_groups": sd["param_groups"]}
    payload[META_KEY] = np.frombuffer(json.dumps(meta, default=_jsonable).encode("utf-8"), dtype=np.uint8)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        os.chmod(fd, new_file_mode())             # mkstemp makes 0600; a checkpoint is like any other output
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise CheckpointError(f"could not write checkpoint {path} ({e}); "
                              f"{'the previous one is unchanged' if path.exists() else 'nothing was saved'}") from e
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return path


def _jsonable(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(f"checkpoint metadata: {type(x).__name__} is not JSON-serialisable")


# ------------------------------------------------------------------ reading, checked
# A checkpoint may come from anywhere, so what it declares is checked before memory is spent on
# it: the JSON entry's size, every key, every entry's header (dtype, shape) against its size in
# the zip and against the shapes its model config implies, and the config's field types.
MAX_META_BYTES = 64 << 20          # the JSON document: settings, tokenizer, history (~30 bytes a step)
MAX_OPTIMIZER_GROUPS = 64
MAX_EXPANSION = 64                 # uncompressed / on-disk size; np.savez stores entries uncompressed


def _corrupt(path, why):
    return CheckpointError(f"checkpoint {path} is corrupt or not a tinygrad_lm checkpoint ({why})")


def _entry_header(zf, info, path):
    """(shape, dtype, header bytes) of one .npy entry, from its header only."""
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise _corrupt(path, f"entry {info.filename} has .npy format version {version}")
        return shape, dtype, f.tell()


def _read_entry(zf, info):
    with zf.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _check_meta(meta, path):
    if not isinstance(meta, dict):
        raise _corrupt(path, f"its metadata is a JSON {type(meta).__name__}, not an object")
    opt = meta.get("optimizer")
    if opt is not None:
        groups = opt.get("param_groups") if isinstance(opt, dict) else None
        if not (isinstance(groups, list) and len(groups) <= MAX_OPTIMIZER_GROUPS
                and all(isinstance(g, dict) for g in groups) and isinstance(opt.get("type"), str)
                and isinstance(opt.get("step"), int) and not isinstance(opt.get("step"), bool) and opt["step"] >= 0):
            raise _corrupt(path, "its optimizer metadata is not {type, step >= 0, param_groups: [at most "
                                 f"{MAX_OPTIMIZER_GROUPS} objects]}}")
    return meta


def model_config(meta, path="checkpoint"):
    """The model config a checkpoint's metadata describes (family known, every field's type and
    range checked), or None when it holds none. Nothing is built."""
    if "model_config" not in meta:
        return None
    family = meta.get("model_family", "gpt")         # checkpoints from before the registry hold GPTs
    if not isinstance(family, str) or family not in models.FAMILIES:
        raise CheckpointError(f"checkpoint {path} holds a {family!r} model; this version knows "
                              f"{sorted(models.FAMILIES)}")
    try:
        return models.FAMILIES[family].config.from_dict(meta["model_config"])
    except (ConfigError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} holds an invalid model_config: {e}") from None


def _plan(infos, entries, meta, path):
    """Check every array entry's key, dtype and shape before any is read."""
    groups = len(meta["optimizer"]["param_groups"]) if isinstance(meta.get("optimizer"), dict) else 0
    config = model_config(meta, path)
    model_keys = [k for k in entries if k.startswith("model/")]
    limit = 2 * len(model_keys) + 16             # enough to name a few missing ones, never a billion
    expected = config.parameter_shapes(limit=limit) if config is not None else None
    if expected is not None:
        if len(expected) > limit:
            raise CheckpointError(f"checkpoint {path}: its model_config declares more parameters than the "
                                  f"{len(model_keys)} arrays it holds")
        for name, source in getattr(config, "tied_parameters", {}).items():   # saved under both names
            if source in expected:
                expected.setdefault(name, expected[source])
        if meta.get("lora") is not None:             # a LoRA run: the adapted model's names and shapes
            try:
                expected = lora_parameter_shapes(expected, meta["lora"])
            except (ValueError, TypeError, KeyError) as e:
                raise CheckpointError(f"checkpoint {path}: its LoRA adapters do not fit its model ({e})") from None
        numel = sum(math.prod(s) for s in expected.values())
        if config.buffer_numel() > numel + (1 << 20):
            raise CheckpointError(f"checkpoint {path}: its model_config would build position tables of "
                                  f"{config.buffer_numel():,} numbers for a model of {numel:,} parameters")
        missing = [k for k in expected if f"model/{k}" not in entries]
        unexpected = [k[len("model/"):] for k in model_keys if k[len("model/"):] not in expected]
        if missing or unexpected:
            raise CheckpointError(
                f"checkpoint {path} does not hold the model its model_config describes"
                + (f"; missing: {', '.join(missing[:10])}" + (" ..." if len(missing) > 10 else "") if missing else "")
                + (f"; unexpected: {', '.join(unexpected[:10])}" + (" ..." if len(unexpected) > 10 else "")
                   if unexpected else ""))
    optim_numel, model_numel = 0, 0
    for key, (shape, dtype, header) in entries.items():
        kind, _, name = key.partition("/")
        if dtype.kind != "f" or dtype.hasobject:
            raise _corrupt(path, f"{key} holds {dtype}, not floating-point numbers")
        if kind == "model":
            if expected is not None and tuple(shape) != tuple(expected[name]):
                raise CheckpointError(f"checkpoint {path}: {key} has shape {tuple(shape)} but its model_config "
                                      f"needs {tuple(expected[name])}")
            model_numel += math.prod(shape)
        elif kind == "optim":
            group, _, state_name = name.partition("/")
            if not (group.isdigit() and len(group) <= 3 and int(group) < groups and state_name.isidentifier()):
                raise _corrupt(path, f"optimizer key {key!r}: expected optim/<group < {groups}>/<name>")
            if len(shape) != 1:
                raise _corrupt(path, f"{key} has shape {tuple(shape)}; optimizer state is flat")
            optim_numel += math.prod(shape)
        else:
            raise _corrupt(path, f"unknown entry {key!r}: expected model/..., optim/... or {META_KEY}")
    if optim_numel > 2 * model_numel:            # Adam keeps two numbers per parameter, SGD one
        raise _corrupt(path, f"its optimizer state holds {optim_numel:,} numbers for {model_numel:,} parameters")


def _read(path, only_meta=False):
    """-> (arrays by key, metadata dict); only_meta reads the JSON entry and no array."""
    path = pathlib.Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {}
            for info in zf.infolist():
                key = info.filename[:-len(".npy")] if info.filename.endswith(".npy") else None
                if key is None or key in infos:
                    raise _corrupt(path, f"unexpected zip entry {info.filename!r}")
                infos[key] = info
            if META_KEY not in infos:
                raise CheckpointError(f"checkpoint {path} has no {META_KEY}: not a tinygrad_lm checkpoint")
            declared = sum(i.file_size for i in infos.values())
            if declared > (1 << 20) + MAX_EXPANSION * path.stat().st_size:
                raise _corrupt(path, f"its entries expand to {declared:,} bytes from a file of "
                                     f"{path.stat().st_size:,}")
            entries = {k: _entry_header(zf, i, path) for k, i in infos.items()}
            for key, (shape, dtype, header) in entries.items():
                nbytes = math.prod(shape) * dtype.itemsize
                if header + nbytes != infos[key].file_size:
                    raise _corrupt(path, f"entry {key} declares {nbytes:,} bytes of data in "
                                         f"{infos[key].file_size - header:,}")
            shape, dtype, _ = entries.pop(META_KEY)
            if dtype != np.uint8 or len(shape) != 1 or shape[0] > MAX_META_BYTES:
                raise _corrupt(path, f"{META_KEY} is not a JSON document of at most {MAX_META_BYTES >> 20} MiB")
            try:
                meta = json.loads(_read_entry(zf, infos[META_KEY]).tobytes().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
                raise _corrupt(path, f"its metadata is not valid JSON: {e}") from None
            meta = _check_meta(meta, path)
            if only_meta:
                return {}, meta
            _plan(infos, entries, meta, path)
            return {k: _read_entry(zf, infos[k]) for k in entries}, meta
    except CheckpointError:
        raise
    except Exception as e:     # zipfile.BadZipFile, ValueError, EOFError...: all mean "not readable"
        raise _corrupt(path, f"{type(e).__name__}: {e}") from None


def read_meta(path):
    """Only a checkpoint's metadata (step, model and training settings, tokenizer), without its arrays."""
    return _read(path, only_meta=True)[1]


def load(path):
    """-> {'model': {name: array}, 'optim': [{name: array}] (one dict per declared group), 'meta': dict}.
    Every key, shape and size is checked against what the metadata declares before it is read."""
    files, meta = _read(path)
    groups = len(meta["optimizer"]["param_groups"]) if isinstance(meta.get("optimizer"), dict) else 0
    out = {"model": {}, "optim": [{} for _ in range(groups)], "meta": meta}
    for key, value in files.items():
        kind, _, name = key.partition("/")
        if kind == "model":
            out["model"][name] = value
        else:                                      # _plan allowed only model/ and optim/<group>/<name>
            group, _, state_name = name.partition("/")
            out["optim"][int(group)][state_name] = value
    return out


def optimizer_state(ckpt, path="checkpoint"):
    """The optimizer state_dict stored in a loaded checkpoint."""
    info = ckpt["meta"].get("optimizer")
    if info is None:
        raise CheckpointError(f"checkpoint {path} holds no optimizer state")
    return {"type": info["type"], "step": info["step"], "param_groups": info["param_groups"], "state": ckpt["optim"]}


def load_model(path, device="cpu"):
    """Rebuild a model of the family it was trained as (and its tokenizer, when stored) from a
    training checkpoint: -> (model, tokenizer or None, the loaded checkpoint)."""
    ckpt = load(path)                      # keys, shapes and the model config checked: memory is bounded
    meta = ckpt["meta"]
    config = model_config(meta, path)
    if config is None:
        raise CheckpointError(f"checkpoint {path} holds no model_config")
    try:
        model = models.build(config)
    except ValueError as e:               # a combination the config's own checks do not cover
        raise CheckpointError(f"checkpoint {path}: its model_config cannot be built ({e})") from None
    if meta.get("lora") is not None:        # the adapters, wrapped as when it was saved (_plan checked them)
        try:
            apply_lora(model, meta["lora"])
        except ValueError as e:
            raise CheckpointError(f"checkpoint {path}: {e}") from None
    for name, array in ckpt["model"].items():   # a run never saves these (runs.Run.check_finite)
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise CheckpointError(f"checkpoint {path}: parameter {name} holds {int((~np.isfinite(array)).sum())} "
                                  "NaN or infinite values; it was not written by a healthy run")
    try:
        model.load_state_dict(ckpt["model"])
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path}: {e}") from None
    model.to(device)
    tokenizer = None
    if meta.get("tokenizer"):
        try:
            tokenizer = tokenizer_from_dict(meta["tokenizer"])
        except TinygradLMError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CheckpointError(f"checkpoint {path} holds an unreadable tokenizer ({type(e).__name__}: {e})") from None
    return model, tokenizer, ckpt


def remove_stale_temporaries(folder):
    """Delete what a save killed mid-write left in `folder` (last.npz.*.tmp, best.npz.*.tmp):
    only a run's own checkpoints' temporaries, never other files. Returns the names removed."""
    removed = []
    for pattern in ("last.npz.*.tmp", "best.npz.*.tmp"):
        for p in pathlib.Path(folder).glob(pattern):
            try:
                p.unlink()
                removed.append(p.name)
            except OSError:
                pass
    return sorted(removed)
