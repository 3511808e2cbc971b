"""GPT-2 checkpoints in the Hugging Face layout, as plain arrays: ``GPT.from_pretrained`` and
``GPT.save_pretrained`` (models/gpt.py) build on these.

A GPT-2 directory holds ``config.json`` and ``model.safetensors``. GPT-2 stores its projections
as "Conv1D" layers, whose weight is (in, out), the transpose of our Linear's (out, in): those four
kinds of weight are transposed on the way in and out. The output head is tied to the token
embedding, so the file may omit ``lm_head.weight``.

BERT's folders (config.json, model.safetensors, vocab.txt) are read and written by the functions at
the end, for ``BertModel`` and its task models (models/bert.py); they share the checks above.
"""
import json
import math
import pathlib

import numpy as np

from .download import DownloadError, data_root, fetch
from .safetensors import FLOAT_DTYPES, load_file, read_header, save_file
from ..errors import PretrainedError, SafetensorsError  # noqa: F401

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
    kwargs = gpt2_config_kwargs(_read_json(config_path, "GPT-2"), str(config_path))
    header, _ = read_header(weights_path)
    check_gpt2_header(kwargs, header, config_path, weights_path, file_shapes)
    tensors, _ = load_file(weights_path)
    state = {}
    for name, array in tensors.items():
        key = _file_key(name)
        if key is None:
            continue
        _check_finite(array, name, weights_path)
        key = key if key.startswith("lm_head.") else "transformer." + key
        state[key] = array.T if key.endswith(CONV1D) else array
    state.setdefault("lm_head.weight", state.get("transformer.wte.weight"))
    return kwargs, state


def _read_json(config_path, what):
    """A config.json's object, or PretrainedError saying why the file is not one."""
    try:
        return json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:     # ValueError: bad JSON or UTF-8
        reason = "nested too deeply" if isinstance(e, RecursionError) else f"{type(e).__name__}: {e}"
        raise PretrainedError(f"{config_path} is not a {what} config.json ({reason})") from None


def _check_finite(array, name, weights_path):
    if not np.isfinite(array).all():               # a NaN or inf weight: every output it touches is NaN
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise PretrainedError(f"{weights_path}: tensor {name!r} holds {bad:,} NaN or infinite "
                              f"value{'s' if bad > 1 else ''}: the file is corrupt")


def write_gpt2(c, state, out_dir):
    """Write a GPT-2 config `c` (a GPTConfig) and its state_dict (NumPy arrays) as a Hugging Face folder."""
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
    return _write_folder(out_dir, tensors, config)


def _write_folder(out_dir, tensors, config):
    """model.safetensors (float32 NumPy arrays) and config.json into `out_dir`, or PretrainedError."""
    out = pathlib.Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PretrainedError(f"cannot export to {out}: it exists and is not a folder")
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
    return _download(name, ("config.json", "model.safetensors"), directory)


def _download(name, files, directory=None):
    """Fetch `files` of the hub model `name` into `directory` (default $TINYGRAD_LM_DATA/hf/NAME)."""
    folder = pathlib.Path(directory) if directory else data_root() / "hf" / name
    listed = files[0] if len(files) == 1 else f"{', '.join(files[:-1])} and {files[-1]}"
    for file in files:
        try:
            fetch(HUB_URL.format(name=name, file=file), folder / file, what=f"{name} {file}",
                  how_to_offline=f"Offline: copy {listed} of {name} into {folder} "
                                 "(or any folder) and pass that folder as --model.")
        except DownloadError as e:
            raise PretrainedError(str(e)) from None
    return folder


# ------------------------------------------------------------------ BERT (models/bert.py builds on these)
BERT_HUB_NAMES = ("bert-base-uncased", "bert-base-cased", "bert-large-uncased", "bert-large-cased")
BERT_FILES = ("config.json", "model.safetensors", "vocab.txt")
BERT_REQUIRED = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
BERT_FIELDS = BERT_REQUIRED + ("hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
                               "max_position_embeddings", "type_vocab_size", "initializer_range",
                               "layer_norm_eps", "pad_token_id", "classifier_dropout")
BERT_HEADS = ("bert.pooler.", "cls.", "classifier.")   # tensors of one task's head: others may skip them


def resolve_bert_dir(name_or_path, files=BERT_FILES):
    """A BERT folder given by path, or by hub name (its `files` downloaded once into
    $TINYGRAD_LM_DATA/hf/NAME when online; offline, the error says which files to put where)."""
    path = pathlib.Path(name_or_path)
    if path.is_dir():
        return path
    if str(name_or_path) in BERT_HUB_NAMES:
        return _download(str(name_or_path), files)
    raise PretrainedError(f"{str(name_or_path)!r} is not a folder: give a Hugging Face BERT folder ("
                          f"{', '.join(BERT_FILES)}) or, online, one of {', '.join(BERT_HUB_NAMES)}")


def read_bert_config(folder):
    """The BertConfig fields of a Hugging Face BERT folder's config.json (their types and ranges
    are BertConfig's to check); architectures this BERT does not build are refused by name."""
    folder = pathlib.Path(folder)
    for file in ("config.json", "model.safetensors"):
        if not (folder / file).exists():
            raise PretrainedError(f"{folder / file} not found: a BERT folder needs {', '.join(BERT_FILES)} "
                                  f"(a hub name such as {BERT_HUB_NAMES[0]!r} downloads them when online)")
    config_path = folder / "config.json"
    cfg = _read_json(config_path, "BERT")
    if not isinstance(cfg, dict):
        raise PretrainedError(f"{config_path} must hold a JSON object, got {type(cfg).__name__}")
    if cfg.get("model_type", "bert") != "bert":
        raise PretrainedError(f"{config_path} describes a {cfg.get('model_type')!r} model, not BERT")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise PretrainedError(f"{config_path}: position_embedding_type {cfg['position_embedding_type']!r}; "
                              "only 'absolute' (learned positions) is built here")
    if cfg.get("is_decoder") or cfg.get("add_cross_attention"):
        raise PretrainedError(f"{config_path} describes a BERT decoder; only the encoder is built here")
    missing = [key for key in BERT_REQUIRED if key not in cfg]
    if missing:
        raise PretrainedError(f"{config_path} has no {', '.join(map(repr, missing))}: a BERT config.json "
                              f"needs {', '.join(BERT_REQUIRED)}")
    kwargs = {key: cfg[key] for key in BERT_FIELDS if key in cfg}
    labels = cfg.get("id2label")
    if isinstance(labels, dict) and labels:
        kwargs["num_labels"] = len(labels)
    return kwargs


def bert_file_key(name):
    """A tensor name in a BERT file -> the name in the head models' state_dict ("bert." + the
    encoder's name; None for a stored buffer). Files written by BertModel lack the "bert." prefix,
    and the original checkpoints call LayerNorm's weight and bias gamma and beta."""
    if name.endswith("position_ids"):
        return None
    name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
    return name if name.startswith(("bert.",) + BERT_HEADS) else "bert." + name


def read_bert_weights(folder, expected):
    """-> (state {name: array}, the names of `expected` that the file lacks).

    expected: {name: shape} of the model's parameters, named as bert_file_key names them. The
    header is checked first (every tensor the model uses has its shape and a float dtype; a tensor
    that is neither the model's nor another task's head is refused), then each weight read must be
    finite."""
    weights_path = pathlib.Path(folder) / "model.safetensors"
    header, _ = read_header(weights_path)
    keys, unexpected, wrong = {}, [], []
    for name, (dtype, shape) in header.items():
        key = bert_file_key(name)
        if key is None or (key not in expected and key.startswith(BERT_HEADS)):
            continue                                   # a buffer, or a head this model has not got
        if key not in expected:
            unexpected.append(name)
        elif dtype not in FLOAT_DTYPES:
            raise SafetensorsError(f"{weights_path}: tensor {name!r} is {dtype}; BERT weights must be floating "
                                   f"point ({', '.join(FLOAT_DTYPES)})")
        elif tuple(shape) != tuple(expected[key]):
            wrong.append(f"{name} is {list(shape)}, config.json implies {list(expected[key])}")
        else:
            keys[name] = key
    if unexpected or wrong:
        problems = ([f"unexpected tensors {', '.join(unexpected[:3])}"] if unexpected else []) + wrong[:3]
        raise PretrainedError(f"{weights_path} does not match {pathlib.Path(folder) / 'config.json'}: "
                              + "; ".join(problems))
    tensors, _ = load_file(weights_path)
    state = {}
    for name, key in keys.items():
        _check_finite(tensors[name], name, weights_path)
        state[key] = tensors[name]
    return state, [key for key in expected if key not in state]


def write_bert(fields, architecture, state, out_dir):
    """Write a BertConfig's fields (a dict) and a state_dict (NumPy arrays, tied copies left out)
    as a Hugging Face folder that transformers' `architecture` class loads."""
    num_labels = fields.get("num_labels", 2)
    config = {"architectures": [architecture], "model_type": "bert",
              **{key: fields[key] for key in BERT_FIELDS if key in fields},
              "position_embedding_type": "absolute", "tie_word_embeddings": True,
              "id2label": {str(i): f"LABEL_{i}" for i in range(num_labels)},
              "label2id": {f"LABEL_{i}": i for i in range(num_labels)}}
    tensors = {name: np.ascontiguousarray(array, dtype=np.float32) for name, array in state.items()}
    return _write_folder(out_dir, tensors, config)
