"""GPT-2 checkpoints in the Hugging Face layout, as plain arrays: ``GPT.from_pretrained`` and
``GPT.save_pretrained`` (models/gpt.py) build on these.

A GPT-2 directory holds ``config.json`` and ``model.safetensors``. GPT-2 stores its projections
as "Conv1D" layers, whose weight is (in, out), the transpose of our Linear's (out, in): those four
kinds of weight are transposed on the way in and out. The output head is tied to the token
embedding, so the file may omit ``lm_head.weight``.
"""
import json
import math
import pathlib

import numpy as np

from .download import DownloadError, data_root, fetch
from .safetensors import FLOAT_DTYPES, load_file, read_header, save_file
from .errors import PretrainedError, SafetensorsError  # noqa: F401

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
HUB_URL = "https://huggingface.co/{name}/resolve/main/{file}"
HUB_SIZES = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")


ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu"}
REQUIRED = ("vocab_size", "n_layer", "n_head", "n_embd")


def gpt2_config_kwargs(cfg, source="config.json"):
    """The GPTConfig.gpt2(...) arguments that a Hugging Face GPT-2 config.json describes, every
    field checked (required keys present, integers that are integers, sizes positive): a
    PretrainedError names the key."""
    if not isinstance(cfg, dict):
        raise PretrainedError(f"{source} must hold a JSON object, got {type(cfg).__name__}")
    if cfg.get("model_type", "gpt2") != "gpt2":
        raise PretrainedError(f"{source} describes a {cfg.get('model_type')!r} model, not GPT-2")

    def integer(key, default=None):
        value = cfg.get(key, default)
        if key not in cfg and default is None:
            raise PretrainedError(f"{source} has no {key!r}: a GPT-2 config.json needs {', '.join(REQUIRED)}")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise PretrainedError(f"{source}: {key!r} must be a positive integer, got {value!r}")
        return value
    kwargs = {key: integer(key) for key in REQUIRED}
    kwargs["block_size"] = integer("n_positions" if "n_positions" in cfg else "n_ctx", 1024)
    if kwargs["n_embd"] % kwargs["n_head"]:
        raise PretrainedError(f"{source}: n_embd={kwargs['n_embd']} is not divisible by n_head={kwargs['n_head']}")
    n_inner = cfg.get("n_inner")
    if n_inner is not None and n_inner != 4 * kwargs["n_embd"]:
        raise PretrainedError(f"{source}: 'n_inner' {n_inner!r} is not 4 * n_embd = {4 * kwargs['n_embd']}, "
                              "the only MLP width this GPT builds")
    activation = cfg.get("activation_function", "gelu_new")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise PretrainedError(f"{source}: 'activation_function' {activation!r} is not one of {sorted(ACTIVATIONS)}")
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 < eps < math.inf:
        raise PretrainedError(f"{source}: 'layer_norm_epsilon' must be a positive number, got {eps!r}")
    kwargs.update(activation=ACTIVATIONS[activation], layer_norm_eps=float(eps))
    return kwargs


def _file_key(name):
    """A tensor name in model.safetensors -> ours without "transformer." (None: a stored causal mask)."""
    if name.endswith((".attn.bias", ".attn.masked_bias")):
        return None                                  # GPT-2's stored causal mask: we build our own
    return name[len("transformer."):] if name.startswith("transformer.") else name


def check_gpt2_header(kwargs, header, config_path, weights_path, file_shapes):
    """Compare the shapes config.json implies (file_shapes(kwargs): {name in the file without
    "transformer.": shape as stored}) with those model.safetensors declares (its header only),
    before a model is built or a byte of tensor data is read."""
    expected = file_shapes(kwargs) if kwargs["n_layer"] <= len(header) else None
    found = {}
    for name, (dtype, shape) in header.items():
        key = _file_key(name)
        if key is None:
            continue
        if dtype not in FLOAT_DTYPES:
            raise SafetensorsError(f"{weights_path}: tensor {name!r} is {dtype}; GPT-2 weights must be floating "
                                   f"point ({', '.join(FLOAT_DTYPES)})")
        found[key] = shape
    layers = len({k.split(".")[1] for k in found if k.startswith("h.")})
    if expected is None:                              # more layers than the file has tensors: say so cheaply
        raise PretrainedError(f"{config_path} says n_layer={kwargs['n_layer']} but {weights_path} holds "
                              f"{layers} layers")
    lm_head = found.pop("lm_head.weight", None)
    if lm_head is not None and lm_head != expected["wte.weight"]:
        raise PretrainedError(f"{weights_path}: lm_head.weight has shape {list(lm_head)}, but config.json implies "
                              f"{list(expected['wte.weight'])}")
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    wrong = [f"{k} is {list(found[k])}, config.json implies {list(v)}" for k, v in expected.items()
             if k in found and found[k] != v]
    if missing or unexpected or wrong:
        problems = ([f"{len(missing)} missing tensors (e.g. {', '.join(missing[:3])})"] if missing else []) + \
                   ([f"unexpected tensors {', '.join(unexpected[:3])}"] if unexpected else []) + wrong[:3]
        raise PretrainedError(f"{weights_path} does not match {config_path} (n_layer={kwargs['n_layer']}, "
                              f"n_embd={kwargs['n_embd']}, vocab_size={kwargs['vocab_size']}, "
                              f"n_positions={kwargs['block_size']}; the file holds {layers} layers): "
                              + "; ".join(problems))


def read_gpt2(path, file_shapes):
    """-> (GPTConfig.gpt2 arguments, state_dict with our key names) of a Hugging Face GPT-2 folder.
    config.json is checked, then checked against model.safetensors' header (file_shapes: see
    check_gpt2_header; GPT.from_pretrained gives the model's own shapes) before any tensor is read;
    then every weight must be finite (a NaN or inf names its tensor)."""
    path = pathlib.Path(path)
    config_path, weights_path = path / "config.json", path / "model.safetensors"
    for p in (config_path, weights_path):
        if not p.exists():
            raise PretrainedError(f"{p} not found: a GPT-2 directory needs config.json and model.safetensors "
                                  "(download_gpt2() fetches them, or copy them from a machine that has them)")
    try:
        cfg = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:     # ValueError: bad JSON or UTF-8
        reason = "nested too deeply" if isinstance(e, RecursionError) else f"{type(e).__name__}: {e}"
        raise PretrainedError(f"{config_path} is not a GPT-2 config.json ({reason})") from None
    kwargs = gpt2_config_kwargs(cfg, str(config_path))
    header, _ = read_header(weights_path)
    check_gpt2_header(kwargs, header, config_path, weights_path, file_shapes)
    tensors, _ = load_file(weights_path)
    state = {}
    for name, array in tensors.items():
        key = _file_key(name)
        if key is None:
            continue
        if not np.isfinite(array).all():           # a NaN or inf weight: every output it touches is NaN
            bad = int(np.count_nonzero(~np.isfinite(array)))
            raise PretrainedError(f"{weights_path}: tensor {name!r} holds {bad:,} NaN or infinite "
                                  f"value{'s' if bad > 1 else ''}: the file is corrupt")
        key = key if key.startswith("lm_head.") else "transformer." + key
        state[key] = array.T if key.endswith(CONV1D) else array
    state.setdefault("lm_head.weight", state.get("transformer.wte.weight"))
    return kwargs, state


def write_gpt2(c, state, out_dir):
    """Write a GPT-2 config `c` (a GPTConfig) and its state_dict (NumPy arrays) as a Hugging Face folder."""
    out = pathlib.Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PretrainedError(f"cannot export to {out}: it exists and is not a folder")
    tensors = {}
    for name, array in state.items():
        if name == "lm_head.weight":
            continue                                   # tied to transformer.wte.weight
        array = array.astype(np.float32)
        tensors[name] = np.ascontiguousarray(array.T) if name.endswith(CONV1D) else array
    config = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": c.vocab_size,
              "n_positions": c.block_size, "n_ctx": c.block_size, "n_embd": c.n_embd, "n_layer": c.n_layer,
              "n_head": c.n_head, "n_inner": None, "layer_norm_epsilon": c.layer_norm_eps,
              "activation_function": "gelu_new" if c.activation == "gelu_tanh" else "gelu",
              "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
              "initializer_range": 0.02, "bos_token_id": 50256, "eos_token_id": 50256,
              "tie_word_embeddings": True}
    try:
        out.mkdir(parents=True, exist_ok=True)
        save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
        (out / "config.json").write_text(json.dumps(config, indent=2))
    except (OSError, SafetensorsError) as e:
        reason = e.strerror or e if isinstance(e, OSError) else e
        raise PretrainedError(f"cannot export to {out}: {reason}") from None
    return out


def download_gpt2(name="gpt2", directory=None):
    """Fetch config.json and model.safetensors of a GPT-2 size from the public hub, with a progress
    bar. Offline, explains how to point at a local directory instead."""
    if name not in HUB_SIZES:
        raise PretrainedError(f"unknown GPT-2 size {name!r}; choose one of {HUB_SIZES}")
    folder = pathlib.Path(directory) if directory else data_root() / "hf" / name
    for file in ("config.json", "model.safetensors"):
        try:
            fetch(HUB_URL.format(name=name, file=file), folder / file, what=f"{name} {file}",
                  how_to_offline=f"Offline: copy config.json and model.safetensors of {name} into {folder} "
                                 "(or any folder) and pass that folder as --model.")
        except DownloadError as e:
            raise PretrainedError(str(e)) from None
    return folder


def resolve_model_dir(model):
    """A GPT-2 folder given by path, or by size name (downloaded once when online)."""
    path = pathlib.Path(model)
    if path.exists():
        return path
    if model in HUB_SIZES:
        return download_gpt2(model)
    raise PretrainedError(f"--model {model!r}: no such directory (or use one of {HUB_SIZES} to download)")
