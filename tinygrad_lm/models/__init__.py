"""Model families, one readable file each, and the registry that rebuilds them from checkpoints.

A family is a model class whose ``forward(x, targets)`` returns ``(logits, loss)`` and a config
dataclass with ``to_dict`` / ``from_dict``. The training loop, the checkpoints and the command line
take any family registered here without change:

    FAMILIES["gpt"]    = (GPT, GPTConfig)        models/gpt.py: the tutorial's GPT and GPT-2
    FAMILIES["bigram"] = (Bigram, BigramConfig)  models/bigram.py: one table of next-token logits
"""
from .bigram import Bigram, BigramConfig
from .gpt import GPT, GPTConfig

FAMILIES = {"gpt": (GPT, GPTConfig), "bigram": (Bigram, BigramConfig)}


def family_of(model_or_config):
    """The registered family name of a model or a config."""
    for name, (model_cls, config_cls) in FAMILIES.items():
        if isinstance(model_or_config, (model_cls, config_cls)):
            return name
    raise TypeError(f"{type(model_or_config).__name__} is not a registered model family ({sorted(FAMILIES)})")


def build(config):
    """A fresh model of the family `config` belongs to (GPTConfig -> GPT, BigramConfig -> Bigram)."""
    return FAMILIES[family_of(config)][0](config)


__all__ = ["FAMILIES", "GPT", "GPTConfig", "Bigram", "BigramConfig", "family_of", "build"]
