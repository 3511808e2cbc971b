"""TrainConfig, every setting of a training run, and the optimizer and learning-rate schedule it
describes."""
import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .. import optim
from ..errors import ConfigError
from ..models.base import field_type_problems
from ..nn.lora import LoraConfig


def _setting(default, help, **cli):
    """A TrainConfig field with its help text (and command-line extras: choices, aliases): the
    command line builds its flags from these, so a new field is a new flag."""
    return field(default=default, metadata={"help": help, **cli})


@dataclass
class TrainConfig:
    batch_size: int = _setting(12, "sequences per step (per rank)")
    max_iters: int = _setting(2000, "optimizer steps in all")
    learning_rate: float = _setting(1e-3, "peak learning rate", aliases=("--lr",))
    decay_lr: bool = _setting(True, "linear warmup then cosine decay to min_lr (else constant)")
    min_lr: float = _setting(1e-4, "learning rate at the end of the cosine decay")
    warmup_iters: int = _setting(100, "steps of linear warmup")
    lr_decay_iters: int = _setting(2000, "step where the cosine decay reaches min_lr")
    optimizer: str = _setting("adamw", "optimizer", choices=("adamw", "adam", "sgd"))
    weight_decay: float = _setting(0.1, "decoupled weight decay (AdamW)")
    decay_all: bool = _setting(False, "decay every parameter (PyTorch's default AdamW use), not only matrices")
    beta1: float = _setting(0.9, "Adam's first-moment decay")
    beta2: float = _setting(0.99, "Adam's second-moment decay")
    eps: float = _setting(1e-8, "Adam's epsilon")
    grad_clip: float = _setting(1.0, "clip the global gradient norm to this (0: no clipping)")
    eval_interval: int = _setting(250, "evaluate and save a checkpoint every this many steps")
    eval_iters: int = _setting(20, "batches per split in each evaluation")
    log_interval: int = _setting(10, "print a log line every this many steps")
    seed: int = _setting(1337, "seed of the initial weights, batches and dropout")
    device: str = _setting("cpu", "where to train", choices=("cpu", "cuda"))
    dtype: str = _setting("float32", "parameter dtype", choices=("float32", "float64"))
    out_dir: str = _setting("out", "folder for last.npz, best.npz and loss.png")
    peak_flops: float = _setting(0.0, "FLOP/s of one device for the MFU figure (0: measure once and cache)")
    lora_r: int = _setting(0, "LoRA rank: train adapters of this rank beside frozen Linears (0: train every weight)")
    lora_alpha: float = _setting(16.0, "LoRA's alpha: the adapters' output is scaled by lora_alpha / lora_r")
    lora_dropout: float = _setting(0.0, "dropout on the adapters' input")
    lora_target_modules: str = _setting("all-linear", "the Linears to adapt: names such as q_proj,v_proj, or all-linear")
    dpo_beta: float = _setting(0.1, "preference data (DPO): beta, how far the policy may move from the reference")
    rpo_alpha: float = _setting(0.0, "preference data: add this times the chosen answers' negative log-likelihood "
                                     "per token to DPO's loss (trl's rpo_alpha; 0: DPO alone)")

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Refuse settings that would run without error but mean nothing (a batch of 0 rows trains
        on no tokens and logs a loss of 0), naming every problem at once."""
        kinds = field_type_problems(type(self), {f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        if kinds:                                      # a wrong type (e.g. from a checkpoint): say only that
            raise ConfigError("TrainConfig: " + "; ".join(kinds))
        problems = []
        if self.decay_lr and self.max_iters > 0 and self.min_lr > self.learning_rate:
            problems.append(f"min_lr={self.min_lr} must be <= learning_rate={self.learning_rate}: the cosine "
                            "decay goes down to min_lr (or turn it off: --no-decay-lr)")
        problems += [f"{name}={getattr(self, name)} must be >= {low}" for name, low in (
            ("batch_size", 1), ("max_iters", 0), ("learning_rate", 0), ("min_lr", 0), ("warmup_iters", 0),
            ("lr_decay_iters", 0), ("weight_decay", 0), ("eps", 0), ("grad_clip", 0), ("eval_interval", 1),
            ("eval_iters", 1), ("log_interval", 1), ("peak_flops", 0), ("seed", 0), ("lora_r", 0),
            ("lora_dropout", 0)) if not getattr(self, name) >= low]
        if self.lora_r and not self.lora_alpha > 0:
            problems.append(f"lora_alpha={self.lora_alpha} must be > 0")
        if not self.dpo_beta > 0:
            problems.append(f"dpo_beta={self.dpo_beta} must be > 0")
        if not self.rpo_alpha >= 0:
            problems.append(f"rpo_alpha={self.rpo_alpha} must be >= 0")
        if not self.lora_dropout < 1:
            problems.append(f"lora_dropout={self.lora_dropout} must be < 1")
        if self.lora_r and not self.lora_target_modules.strip(" ,"):
            problems.append("lora_target_modules names no module (e.g. q_proj,v_proj or all-linear)")
        if not self.out_dir.strip():
            problems.append(f"out_dir={self.out_dir!r} must name a folder (the default is 'out')")
        problems += [f"{name}={getattr(self, name)} must be in [0, 1)" for name in ("beta1", "beta2")
                     if not 0 <= getattr(self, name) < 1]
        for f in dataclasses.fields(self):
            allowed = f.metadata.get("choices")
            if allowed and f.name != "device" and getattr(self, f.name) not in allowed:   # devices: backend.py says
                problems.append(f"{f.name}={getattr(self, f.name)!r} is not one of {allowed}")
        if problems:
            raise ConfigError("TrainConfig: " + "; ".join(problems))

    def lora_config(self):
        """The LoraConfig these settings describe (nn.lora), or None when lora_r is 0."""
        if not self.lora_r:
            return None
        names = self.lora_target_modules.strip()
        targets = "all-linear" if names == "all-linear" else [n.strip() for n in names.split(",") if n.strip()]
        return LoraConfig(r=self.lora_r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                          target_modules=targets)

    def with_max_iters(self, max_iters):
        """The same run made shorter or longer: a cosine decay that ended with the run still ends
        with it, and the warmup is cut to fit inside the run."""
        changes = {"max_iters": max_iters}
        if self.lr_decay_iters == self.max_iters:
            changes["lr_decay_iters"] = max_iters
            changes["warmup_iters"] = min(self.warmup_iters, max_iters)
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# numbers kept per parameter while training: the parameter and its gradient, plus the optimizer's
# state (Adam/AdamW: two moments; SGD with momentum: one buffer)
TRAINING_COPIES = {"adamw": 4, "adam": 4, "sgd": 3}


def make_optimizer(model, cfg):
    """The optimizer cfg describes, over model's parameters. A model whose training state (see
    TRAINING_COPIES) cannot fit in this machine's memory is refused first (ConfigError)."""
    config = getattr(model, "config", None)
    if hasattr(config, "check_memory"):
        config.check_memory(itemsize=np.dtype(cfg.dtype).itemsize, copies=TRAINING_COPIES[cfg.optimizer],
                            what=f"training the model with {cfg.optimizer} (parameters, gradients, moments)")
    trainable = [p for p in model.parameters() if p.requires_grad]     # LoRA: the adapters alone
    if not trainable:
        raise ConfigError(f"{type(model).__name__}: no parameter requires grad, nothing to train")
    if cfg.optimizer == "sgd":
        return optim.SGD(trainable, lr=cfg.learning_rate, momentum=0.9, weight_decay=cfg.weight_decay)
    groups = trainable if cfg.decay_all else optim.gpt2_param_groups(model, cfg.weight_decay)
    cls = {"adamw": optim.AdamW, "adam": optim.Adam}[cfg.optimizer]     # TrainConfig checked the name
    return cls(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, weight_decay=cfg.weight_decay)


def make_schedule(cfg):
    if not cfg.decay_lr:
        return optim.ConstantLR(cfg.learning_rate)
    return optim.WarmupCosineLR(cfg.learning_rate, cfg.min_lr, cfg.warmup_iters, cfg.lr_decay_iters)


