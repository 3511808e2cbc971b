"""GPT-2 checkpoints in the Hugging Face layout, as plain arrays: ``GPT.from_pretrained`` and
``GPT.save_pretrained`` (models/gpt.py) build on these.

A GPT-2 directory holds ``config.json`` and ``model.safetensors``. GPT-2 stores its projections
as "Conv1D" layers, whose weight is (in, out), the transpose of our Linear's (out, in): those four
kinds of weight are transposed on the way in and out. The output head is tied to the token
embedding, so the file may omit ``lm_head.weight``.
"""
import json
import pathlib

import numpy as np

from .download import DownloadError, data_root, fetch
from .safetensors import load_file, save_file
from .errors import PretrainedError  # noqa: F401

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
HUB_URL = "https://huggingface.co/{name}/resolve/main/{file}"
HUB_SIZES = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")


def gpt2_config_kwargs(cfg):
    """The GPTConfig.gpt2(...) arguments that a Hugging Face GPT-2 config.json describes."""
    if cfg.get("model_type", "gpt2") != "gpt2":
        raise PretrainedError(f"config.json describes a {cfg.get('model_type')!r} model, not GPT-2")
    activation = cfg.get("activation_function", "gelu_new")
    return dict(vocab_size=cfg["vocab_size"], block_size=cfg.get("n_positions", cfg.get("n_ctx", 1024)),
                n_layer=cfg["n_layer"], n_head=cfg["n_head"], n_embd=cfg["n_embd"],
                activation="gelu" if activation == "gelu" else "gelu_tanh",
                layer_norm_eps=cfg.get("layer_norm_epsilon", 1e-5))


def read_gpt2(path):
    """-> (GPTConfig.gpt2 arguments, state_dict with our key names) of a Hugging Face GPT-2 folder."""
    path = pathlib.Path(path)
    config_path, weights_path = path / "config.json", path / "model.safetensors"
    for p in (config_path, weights_path):
        if not p.exists():
            raise PretrainedError(f"{p} not found: a GPT-2 directory needs config.json and model.safetensors "
                                  "(download_gpt2() fetches them, or copy them from a machine that has them)")
    try:
        kwargs = gpt2_config_kwargs(json.loads(config_path.read_text()))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise PretrainedError(f"{config_path} is not a GPT-2 config.json ({type(e).__name__}: {e})") from None
    tensors, _ = load_file(weights_path)
    state = {}
    for name, array in tensors.items():
        if name.endswith((".attn.bias", ".attn.masked_bias")):
            continue                                     # GPT-2's stored causal mask: we build our own
        key = name if name.startswith(("transformer.", "lm_head.")) else "transformer." + name
        state[key] = array.T if key.endswith(CONV1D) else array
    state.setdefault("lm_head.weight", state.get("transformer.wte.weight"))
    return kwargs, state


def write_gpt2(c, state, out_dir):
    """Write a GPT-2 config `c` (a GPTConfig) and its state_dict (NumPy arrays) as a Hugging Face folder."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, array in state.items():
        if name == "lm_head.weight":
            continue                                   # tied to transformer.wte.weight
        array = array.astype(np.float32)
        tensors[name] = np.ascontiguousarray(array.T) if name.endswith(CONV1D) else array
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    config = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": c.vocab_size,
              "n_positions": c.block_size, "n_ctx": c.block_size, "n_embd": c.n_embd, "n_layer": c.n_layer,
              "n_head": c.n_head, "n_inner": None, "layer_norm_epsilon": c.layer_norm_eps,
              "activation_function": "gelu_new" if c.activation == "gelu_tanh" else "gelu",
              "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
              "initializer_range": 0.02, "bos_token_id": 50256, "eos_token_id": 50256,
              "tie_word_embeddings": True}
    (out / "config.json").write_text(json.dumps(config, indent=2))
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
