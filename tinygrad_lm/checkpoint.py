"""Checkpoints: one ``.npz`` file of plain arrays plus a JSON document, never a pickle.

    model/<name>           every parameter (float arrays)
    optim/<group>/<name>   the optimizer's flat state arrays (moments, momentum)
    __meta__.json          (stored as uint8 bytes) config, step, optimizer hyperparameters, RNG
                           states, tokenizer, history: everything else, human-readable

Writes are atomic: the file is written next to its destination under a temporary name, flushed
to disk, then renamed over it, so a crash mid-save leaves the previous checkpoint intact.
Reading uses ``np.load(allow_pickle=False)``.
"""
import json
import os
import pathlib
import tempfile

import numpy as np

from . import models
from .tokenizers import tokenizer_from_dict
from .errors import CheckpointError  # noqa: F401

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


def _read(path, only_meta=False):
    """-> (arrays by key, metadata dict); only_meta reads the JSON entry and no array."""
    path = pathlib.Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:          # entries are read one by one, on access
            keys = [k for k in f.files if k == META_KEY or not only_meta]
            files = {k: f[k] for k in keys}
    except Exception as e:     # zipfile.BadZipFile, ValueError, EOFError...: all mean "not readable"
        raise CheckpointError(f"checkpoint {path} is corrupt or not a tinygrad_lm checkpoint "
                              f"({type(e).__name__}: {e})") from None
    if META_KEY not in files:
        raise CheckpointError(f"checkpoint {path} has no {META_KEY}: not a tinygrad_lm checkpoint")
    return files, json.loads(files.pop(META_KEY).tobytes().decode("utf-8"))


def read_meta(path):
    """Only a checkpoint's metadata (step, model and training settings, tokenizer), without its arrays."""
    return _read(path, only_meta=True)[1]


def load(path):
    """-> {'model': {name: array}, 'optim': [{name: array}], 'meta': dict}."""
    files, meta = _read(path)
    out = {"model": {}, "optim": [], "meta": meta}
    for key, value in files.items():
        kind, _, name = key.partition("/")
        if kind == "model":
            out["model"][name] = value
        elif kind == "optim":
            group, _, state_name = name.partition("/")
            while len(out["optim"]) <= int(group):
                out["optim"].append({})
            out["optim"][int(group)][state_name] = value
    return out


def optimizer_state(ckpt):
    """The optimizer state_dict stored in a loaded checkpoint."""
    info = ckpt["meta"]["optimizer"]
    return {"type": info["type"], "step": info["step"], "param_groups": info["param_groups"], "state": ckpt["optim"]}


def load_model(path, device="cpu"):
    """Rebuild a model of the family it was trained as (and its tokenizer, when stored) from a
    training checkpoint: -> (model, tokenizer or None, the loaded checkpoint)."""
    ckpt = load(path)
    meta = ckpt["meta"]
    if "model_config" not in meta:
        raise CheckpointError(f"checkpoint {path} holds no model_config")
    family = meta.get("model_family", "gpt")         # checkpoints from before the registry hold GPTs
    if family not in models.FAMILIES:
        raise CheckpointError(f"checkpoint {path} holds a {family!r} model; this version knows "
                              f"{sorted(models.FAMILIES)}")
    model = models.build(family, meta["model_config"])
    model.load_state_dict(ckpt["model"])
    model.to(device)
    tokenizer = tokenizer_from_dict(meta["tokenizer"]) if meta.get("tokenizer") else None
    return model, tokenizer, ckpt
