"""LoRA adapters on disk in peft's format, so that peft loads ours and we load peft's:
adapter_config.json (peft_type "LORA", r, lora_alpha, lora_dropout, target_modules, bias) and
adapter_model.safetensors, keys "base_model.model.<module path>.lora_A.weight" / "lora_B.weight"
(peft's saved names: the adapter's name, "default", left out)."""
import json
import pathlib

import numpy as np

from .. import backend
from ..errors import PretrainedError
from ..nn.lora import LoraConfig, get_peft_model, lora_layers, unload
from .safetensors import load_file, save_file

PREFIX = "base_model.model."


def save_adapter(model, out_dir, base_model_name_or_path=None):
    """Write the model's adapters (only they: a few MB for a model of hundreds) to out_dir."""
    layers = lora_layers(model)
    if not layers:
        raise ValueError(f"save_adapter: {type(model).__name__} has no LoRA adapters (get_peft_model first)")
    c = model.peft_config
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = {"peft_type": "LORA", "task_type": c.task_type, "r": c.r, "lora_alpha": c.lora_alpha,
              "lora_dropout": c.lora_dropout, "bias": c.bias, "fan_in_fan_out": False, "inference_mode": True,
              "target_modules": c.target_modules if c.target_modules == "all-linear" else sorted(c.target_modules),
              "base_model_name_or_path": base_model_name_or_path}
    (out / "adapter_config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    tensors = {}
    for name, layer in layers:
        for part in ("lora_A", "lora_B"):
            tensors[f"{PREFIX}{name}.{part}.weight"] = np.ascontiguousarray(getattr(layer, part).weight.numpy(),
                                                                            dtype=np.float32)
    save_file(tensors, out / "adapter_model.safetensors", metadata={"format": "pt"})
    return out


def load_adapter(model, adapter_dir):
    """Wrap `model` with the adapters a peft folder holds (get_peft_model with its config, then
    its lora_A / lora_B weights); every weight must have its place and shape in this model."""
    folder = pathlib.Path(adapter_dir)
    config_path = folder / "adapter_config.json"
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PretrainedError(f"{config_path}: not a readable adapter config ({e})") from None
    if not isinstance(raw, dict) or raw.get("peft_type") != "LORA":
        raise PretrainedError(f"{config_path}: peft_type {raw.get('peft_type') if isinstance(raw, dict) else raw!r}; "
                              "this reader knows LoRA adapters")
    for unsupported in ("use_dora", "use_rslora", "fan_in_fan_out"):
        if raw.get(unsupported):
            raise PretrainedError(f"{config_path}: {unsupported}=true is not built here")
    if raw.get("rank_pattern") or raw.get("alpha_pattern"):
        raise PretrainedError(f"{config_path}: per-module rank_pattern / alpha_pattern are not built here")
    if raw.get("modules_to_save"):
        raise PretrainedError(f"{config_path}: modules_to_save (whole modules saved beside the adapters) is not "
                              "read here")
    try:
        config = LoraConfig(r=raw.get("r", 8), lora_alpha=raw.get("lora_alpha", 8),
                            lora_dropout=raw.get("lora_dropout", 0.0) or 0.0,
                            target_modules=raw.get("target_modules") or [], bias=raw.get("bias", "none"),
                            task_type=raw.get("task_type") or "CAUSAL_LM")
    except ValueError as e:
        raise PretrainedError(f"{config_path}: {e}") from None
    tensors, _ = load_file(folder / "adapter_model.safetensors")      # read before the model is touched
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        return _wrap_and_fill(model, config, tensors, folder, config_path)
    except BaseException:               # refused part-way: the model is left as it came, unwrapped
        unload(model)
        for p, flag in flags:
            p.requires_grad = flag
        raise


def _wrap_and_fill(model, config, tensors, folder, config_path):
    try:
        get_peft_model(model, config)
    except ValueError as e:
        raise PretrainedError(f"{config_path}: {e}") from None
    layers = dict(lora_layers(model))
    expected = {f"{PREFIX}{n}.{part}.weight": getattr(layer, part).weight
                for n, layer in layers.items() for part in ("lora_A", "lora_B")}
    unknown = sorted(set(tensors) - set(expected))
    missing = sorted(set(expected) - set(tensors))
    if unknown or missing:
        raise PretrainedError(f"{folder}: an adapter for another model: " +
                              (f"no place here for {unknown[:3]}" if unknown else f"no weights for {missing[:3]}"))
    for key, p in expected.items():
        value = tensors[key]
        if tuple(value.shape) != tuple(p.shape):
            raise PretrainedError(f"{folder}: {key} has shape {tuple(value.shape)}, this model's is {tuple(p.shape)}")
        p.data[...] = backend.to_device(np.asarray(value, dtype=p.dtype), p.device)
    return model
