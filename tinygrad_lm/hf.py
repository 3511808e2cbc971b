"""GPT-2 checkpoints in the Hugging Face layout: load them into our GPT, export ours back.

A GPT-2 directory holds ``config.json`` and ``model.safetensors``. GPT-2 stores its projections
as "Conv1D" layers, whose weight is (in, out), the transpose of our Linear's (out, in): those four
kinds of weight are transposed on the way in and out. The output head is tied to the token
embedding, so the file may omit ``lm_head.weight``.
"""
import json
import pathlib

import numpy as np

from .download import DownloadError, data_root, fetch
from .gpt import GPT, GPTConfig
from .safetensors import load_file, save_file

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
HUB_URL = "https://huggingface.co/{name}/resolve/main/{file}"
HUB_SIZES = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")


class PretrainedError(ValueError):
    pass


def config_from_hf(cfg):
    if cfg.get("model_type", "gpt2") != "gpt2":
        raise PretrainedError(f"config.json describes a {cfg.get('model_type')!r} model, not GPT-2")
    activation = cfg.get("activation_function", "gelu_new")
    return GPTConfig.gpt2(vocab_size=cfg["vocab_size"], block_size=cfg.get("n_positions", cfg.get("n_ctx", 1024)),
                          n_layer=cfg["n_layer"], n_head=cfg["n_head"], n_embd=cfg["n_embd"],
                          activation="gelu" if activation == "gelu" else "gelu_tanh",
                          layer_norm_eps=cfg.get("layer_norm_epsilon", 1e-5))


def load_gpt2(path, dtype=np.float32):
    """Our GPT with the weights of a Hugging Face GPT-2 directory (any size)."""
    path = pathlib.Path(path)
    config_path, weights_path = path / "config.json", path / "model.safetensors"
    for p in (config_path, weights_path):
        if not p.exists():
            raise PretrainedError(f"{p} not found: a GPT-2 directory needs config.json and model.safetensors "
                                  "(download_gpt2() fetches them, or copy them from a machine that has them)")
    config = config_from_hf(json.loads(config_path.read_text()))
    tensors, _ = load_file(weights_path)
    state = {}
    for name, array in tensors.items():
        if name.endswith((".attn.bias", ".attn.masked_bias")):
            continue                                     # GPT-2's stored causal mask: we build our own
        key = name if name.startswith(("transformer.", "lm_head.")) else "transformer." + name
        state[key] = array.T if key.endswith(CONV1D) else array
    state.setdefault("lm_head.weight", state.get("transformer.wte.weight"))
    model = GPT(config)
    model.load_state_dict(state)
    return model.to(dtype=dtype)


def export_gpt2(model, out_dir):
    """Write our GPT-2-architecture model as a Hugging Face directory that transformers loads."""
    c = model.config
    if not (c.attention == "batched" and c.tie_weights and c.pos_encoding == "learned" and c.bias
            and c.activation in ("gelu_tanh", "gelu") and c.attn_scale == "head" and not c.lm_head_bias):
        raise PretrainedError("only GPT-2-architecture models can be exported (GPTConfig.gpt2(...))")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, t in model.state_dict().items():
        if name == "lm_head.weight":
            continue                                   # tied to transformer.wte.weight
        array = t.numpy().astype(np.float32)
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


def _resolve_model_dir(model):
    path = pathlib.Path(model)
    if path.exists():
        return path
    if model in HUB_SIZES:
        return download_gpt2(model)
    raise PretrainedError(f"--model {model!r}: no such directory (or use one of {HUB_SIZES} to download)")


def _gpt2_tokenizer(args):
    # --data-dir/gpt2 when given, else $TINYGRAD_LM_DATA/gpt2 (or ./data/gpt2), downloaded if missing
    from .data import make_tokenizer
    return make_tokenizer("gpt2", "", getattr(args, "data_dir", None))


def generate_cli(args):
    """The tutorial's text-generation demo, with the weights running in our own code."""
    model = load_gpt2(_resolve_model_dir(args.model)).to(args.device)
    tok = _gpt2_tokenizer(args)
    prompt = tok.encode(args.prompt)
    ids = model.generate([prompt] * args.num_return_sequences, args.max_new_tokens,
                         temperature=0.0 if args.greedy else args.temperature, top_k=None if args.greedy else args.top_k,
                         top_p=args.top_p, seed=args.seed, use_cache=not args.no_cache)
    for i, row in enumerate(ids):
        print(f"[{i}] {tok.decode(row.tolist())}")
    return ids


def attention_cli(args):
    from .viz import plot_attention
    path = pathlib.Path(args.model)
    if path.is_dir():
        model, tok = load_gpt2(path), _gpt2_tokenizer(args)
    else:
        from .checkpoint import load_model
        model, tok, _ = load_model(path)
    ids = tok.encode(args.prompt)[: model.config.block_size]
    maps = model.attention_maps(np.array([ids]))[:, 0]           # (layer, head, T, T)
    out = pathlib.Path(args.out)
    np.save(out.with_suffix(".npy"), maps)
    plot_attention(maps, [tok.decode([i]) for i in ids], out)
    print(f"attention maps: {out} (raw array {out.with_suffix('.npy')}, shape {maps.shape})")


def export_cli(args):
    from .checkpoint import load_model
    model, _, _ = load_model(args.checkpoint)
    print(f"exported to {export_gpt2(model, args.out)}")
