"""LoRA adapters with peft's names: LoraConfig, get_peft_model (wrap the target Linears and freeze
everything else), LoraLinear (base_layer, lora_A, lora_B; merge / unmerge), merge_and_unload.

A pretrained Linear W (out, in) stays frozen; beside it train A (r, in) and B (out, r):
    y = x W^T + b + (lora_alpha / r) * x A^T B^T
B starts at zero, so the adapted model starts as the pretrained one; A starts as peft's (PyTorch's
Linear default, kaiming-uniform with a = sqrt(5)). Fused (ops/lora.py: the backward written out,
no gradient for W); fused=False composes it from two Linears (autograd derives it).
"""
import math
from dataclasses import dataclass, field

from . import functional as F
from . import init
from ..ops.lora import LoRALinear as LoRAOp
from .layers import Linear
from .module import Module


@dataclass
class LoraConfig:
    """peft's LoraConfig fields: r, lora_alpha, lora_dropout, target_modules (names of the last
    part of a module's path, e.g. ["q_proj", "v_proj"], or "all-linear"), bias ("none" only),
    task_type, modules_to_save (names of modules trained whole, not adapted: a classifier's new
    head; task_type "SEQ_CLS" makes it ["classifier", "score"], as peft)."""
    r: int = 8
    lora_alpha: int = 8
    lora_dropout: float = 0.0
    target_modules: list = field(default_factory=lambda: ["q_proj", "v_proj"])
    bias: str = "none"
    task_type: str = "CAUSAL_LM"
    modules_to_save: list = None     # modules trained whole beside the adapters (SEQ_CLS: the new head)

    def __post_init__(self):
        problems = []
        number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        if not isinstance(self.r, int) or isinstance(self.r, bool) or self.r < 1:
            problems.append(f"r={self.r!r} must be an integer >= 1")
        if not (number(self.lora_alpha) and self.lora_alpha > 0):
            problems.append(f"lora_alpha={self.lora_alpha!r} must be a number > 0")
        if not (number(self.lora_dropout) and 0 <= self.lora_dropout < 1):
            problems.append(f"lora_dropout={self.lora_dropout!r} must be a number in [0, 1)")
        if self.bias != "none":
            problems.append(f"bias={self.bias!r}: only 'none' (biases stay frozen) is built")
        if isinstance(self.target_modules, str) and self.target_modules != "all-linear":
            self.target_modules = [self.target_modules]
        if not (self.target_modules == "all-linear" or isinstance(self.target_modules, list)
                and all(isinstance(t, str) and t for t in self.target_modules)):
            problems.append(f"target_modules={str(self.target_modules)[:60]} must be module names or 'all-linear'")
        if not isinstance(self.task_type, str):
            problems.append(f"task_type={str(self.task_type)[:40]} must be a text (CAUSAL_LM, SEQ_CLS, ...)")
        elif self.modules_to_save is None and self.task_type == "SEQ_CLS":
            self.modules_to_save = ["classifier", "score"]      # peft's default: a classifier's head is new
        if not (self.modules_to_save is None or isinstance(self.modules_to_save, list)
                and all(isinstance(t, str) and t for t in self.modules_to_save)):
            problems.append(f"modules_to_save={str(self.modules_to_save)[:60]} must be a list of module names")
        if problems:
            raise ValueError("LoraConfig: " + "; ".join(problems))

    @property
    def scaling(self):
        return self.lora_alpha / self.r


class LoraLinear(Module):
    """A frozen Linear (base_layer) plus lora_B(lora_A(dropout(x))) * lora_alpha / r."""

    def __init__(self, base_layer, r=8, lora_alpha=8, lora_dropout=0.0, fused=True):
        super().__init__()
        self.base_layer = base_layer
        for p in base_layer.parameters():
            p.requires_grad = False
        out_features, in_features = base_layer.weight.shape
        self.r, self.lora_alpha, self.scaling = r, lora_alpha, lora_alpha / r
        self.lora_dropout, self.fused, self.merged = lora_dropout, fused, False
        where = dict(device=base_layer.weight.device, dtype=base_layer.weight.dtype)
        self.lora_A = Linear(in_features, r, bias=False, **where)     # Linear's default: peft's init of A
        self.lora_B = Linear(r, out_features, bias=False, **where)
        init.zeros_(self.lora_B.weight)

    @property
    def weight(self):
        return self.base_layer.weight

    def delta_weight(self):
        """(out, in): what merging adds to W, scaling * B @ A (an array)."""
        return self.scaling * (self.lora_B.weight.data @ self.lora_A.weight.data)

    def merge(self):
        """W += scaling B A: one Linear again, as fast as the base (for inference)."""
        if not self.merged:
            self.base_layer.weight.data[...] += self.delta_weight()
            self.merged = True

    def unmerge(self):
        if self.merged:
            self.base_layer.weight.data[...] -= self.delta_weight()
            self.merged = False

    def forward(self, x):
        if self.merged:
            return self.base_layer(x)
        x_a = F.dropout(x, self.lora_dropout, self.training)
        if not self.fused:
            return self.base_layer(x) + self.lora_B(self.lora_A(x_a)) * self.scaling
        bias = self.base_layer.bias
        return LoRAOp.apply(x, x_a, self.lora_A.weight, self.lora_B.weight, weight=self.base_layer.weight.data,
                            bias=None if bias is None else bias.data, scaling=self.scaling)

    def extra_repr(self):
        return f"r={self.r}, lora_alpha={self.lora_alpha}, merged={self.merged}"


def _targets(model, target_modules):
    for name, module in model.named_modules():
        if not name or not isinstance(module, Linear):
            continue
        last = name.rsplit(".", 1)[-1]
        if (target_modules == "all-linear" and last != "lm_head") or last in target_modules:
            yield name                          # all-linear leaves the output head alone, as peft


def _replace(model, name, new):
    """Put `new` at the dotted path `name`, keeping the parent's order of children."""
    parent = model
    *path, last = name.split(".")
    for part in path:
        parent = parent._modules[part]
    parent._modules[last] = new
    object.__setattr__(parent, last, new)


def get_peft_model(model, peft_config, fused=True):
    """Freeze every parameter of `model` and wrap each target Linear in a LoraLinear (in place;
    returns the model). Only the adapters' lora_A and lora_B (and the modules_to_save) then require
    gradients, so an optimizer over the parameters that require grad holds them alone."""
    names = list(_targets(model, peft_config.target_modules))
    if not names:
        raise ValueError(f"get_peft_model: no Linear named {peft_config.target_modules} in {type(model).__name__}")
    whole = set(peft_config.modules_to_save or ())              # trained whole, not adapted
    saved = [m for n, m in model.named_modules() if n and n.rsplit(".", 1)[-1] in whole]
    names = [n for n in names if n.rsplit(".", 1)[-1] not in whole]
    for p in model.parameters():
        p.requires_grad = False
    for name in names:
        base = dict(model.named_modules())[name]
        _replace(model, name, LoraLinear(base, peft_config.r, peft_config.lora_alpha, peft_config.lora_dropout,
                                         fused=fused))
    for module in saved:                        # modules_to_save: trained whole
        for p in module.parameters():
            p.requires_grad = True
    model.peft_config = peft_config
    return model


def lora_layers(model):
    """(name, LoraLinear) of every adapter in the model."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LoraLinear)]


def merge_and_unload(model):
    """Merge every adapter into its base weight and put the plain Linear back (in place)."""
    for name, layer in lora_layers(model):
        layer.merge()
        _replace(model, name, layer.base_layer)
    return model


def unload(model):
    """Put every plain Linear back, dropping the adapters unmerged (peft's unload): the model is
    the base model again (the requires_grad flags are the caller's to restore)."""
    for name, layer in lora_layers(model):
        layer.unmerge()
        _replace(model, name, layer.base_layer)
    model.__dict__.pop("peft_config", None)
    return model


# ---------------------------------------------------------------------- adapters in a training checkpoint
def lora_record(model):
    """What a checkpoint stores of a model's adapters, to rebuild them before its weights load:
    {"config": LoraConfig's fields, "targets": the dotted names of the wrapped Linears}."""
    cfg = model.peft_config
    config = {"r": cfg.r, "lora_alpha": cfg.lora_alpha, "lora_dropout": cfg.lora_dropout,
              "target_modules": cfg.target_modules}
    if cfg.modules_to_save:
        config.update(task_type=cfg.task_type, modules_to_save=cfg.modules_to_save)
    return {"config": config, "targets": [name for name, _ in lora_layers(model)]}


def apply_lora(model, record):
    """Wrap the Linears `record` (lora_record's) names, as get_peft_model did: ValueError when the
    model's Linears are not those."""
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict) or \
            not isinstance(record.get("targets"), list):
        raise ValueError("the LoRA record is not {'config': {...}, 'targets': [...]}")
    try:
        config = LoraConfig(**record["config"])
    except TypeError as e:
        raise ValueError(f"the LoRA record's config is not a LoraConfig's ({e})") from None
    get_peft_model(model, config)
    made = [name for name, _ in lora_layers(model)]
    if made != record["targets"]:
        raise ValueError(f"the adapters wrap {len(made)} Linears here but {len(record['targets'])} when saved")
    return model


def lora_parameter_shapes(shapes, record):
    """{name: shape} of a model's parameters once the Linears of `record` are wrapped, from the
    plain model's (a config's parameter_shapes): nothing is built. Each target's weight and bias
    move under base_layer, and lora_A (r, in) and lora_B (out, r) are added."""
    out, r = dict(shapes), record["config"]["r"]
    for name in record["targets"]:
        weight = out.pop(f"{name}.weight", None)
        if weight is None or len(weight) != 2:
            raise ValueError(f"the LoRA record wraps {name}, which is no Linear of this model")
        out[f"{name}.base_layer.weight"] = weight
        if f"{name}.bias" in out:
            out[f"{name}.base_layer.bias"] = out.pop(f"{name}.bias")
        out[f"{name}.lora_A.weight"], out[f"{name}.lora_B.weight"] = (r, weight[1]), (weight[0], r)
    return out
