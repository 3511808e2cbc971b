"""A model family declares what it is and what it can do in one record beside its model, so the
training loop, the checkpoints, the command line and the benchmark take it without asking the
model what it looks like:

    FAMILY = Family("gpt", GPT, GPTConfig, commands=("sample", "attention", "export", "genome-report"),
                    torch_twin="tinygrad_lm.crosscheck.torch_gpt:bench_twin")

- ``name``: what a checkpoint stores as its ``model_family``;
- ``model``, ``config``: the classes (``model(config)`` builds one; the config has to_dict/from_dict);
- ``batch_source``: config -> the class (or factory) of its training batches, built as
  ``source(tokens, block_size, batch_size, seed=...)`` with ``next()`` returning the model's
  arguments; None: next-token batches (data.CausalLMBatches: ``(x, y)``);
- ``commands``: the commands beyond ``train`` that take this family (sample, chat, translate,
  fill-mask, embed, attention, export, genome-report); ``bench`` takes every family;
- ``bench_tokens``: (config, n, rng) -> a token stream of about n ids that the batch source reads,
  for the benchmark's random batches (None: uniform ids below vocab_size);
- ``torch_twin``: "module:function", the same model in PyTorch for ``bench`` (function(config,
  device) -> a torch module whose forward(*batch) returns (logits, loss)); None: no twin;
- ``bench_goal``: the ratio goal bench prints beside its ratio.

``register(family)`` adds a record to FAMILIES (models/__init__.py registers the package's own;
a test or a user's module may register another, tests/test_toy_family.py does).
"""
from dataclasses import dataclass

from ..data.batches import CausalLMBatches
from ..errors import ConfigError

COMMANDS = ("sample", "chat", "translate", "fill-mask", "embed", "attention", "export", "genome-report")
FAMILIES = {}


@dataclass(frozen=True)
class Family:
    name: str
    model: type
    config: type
    batch_source: object = None
    commands: tuple = ()
    bench_tokens: object = None
    torch_twin: str = None
    bench_goal: str = ""

    def __post_init__(self):
        unknown = sorted(set(self.commands) - set(COMMANDS))
        if unknown:
            raise ValueError(f"family {self.name!r}: no command {unknown} (commands: {', '.join(COMMANDS)})")

    def batches(self, config):
        """The class (or factory) of this family's training batches for `config`."""
        return CausalLMBatches if self.batch_source is None else self.batch_source(config)

    @property
    def causal(self):
        """A next-token model: its batches are (x, y) and it samples text."""
        return self.batch_source is None


def register(family):
    """Add `family` to FAMILIES (under family.name) and return it; a name is registered once."""
    known = FAMILIES.get(family.name)
    if known is not None and known != family:
        raise ValueError(f"a model family named {family.name!r} is already registered ({known.model.__name__})")
    FAMILIES[family.name] = family
    return family


def family_of(model_or_config):
    """The registered family name of a model or a config."""
    return family_record(model_or_config).name


def family_record(model_or_config):
    """The Family record of a model or a config (the most specific class wins: a BertMLM is a
    BertForMaskedLM, and each has its own record only if registered)."""
    for family in FAMILIES.values():
        if type(model_or_config) in (family.model, family.config):
            return family
    for family in FAMILIES.values():
        if isinstance(model_or_config, (family.model, family.config)):
            return family
    raise TypeError(f"{type(model_or_config).__name__} is not a registered model family ({sorted(FAMILIES)})")


def build(config):
    """A fresh model of the family `config` belongs to (GPTConfig -> GPT, BigramConfig -> Bigram)."""
    return family_record(config).model(config)


def require(command, model_or_config, source):
    """Raise ConfigError, one line, when `command` does not apply to the family `source` holds
    (`model_or_config`: a model, a config or a Family record); return the family."""
    family = model_or_config if isinstance(model_or_config, Family) else family_record(model_or_config)
    if command != "bench" and command not in family.commands:
        takers = [name for name, f in FAMILIES.items() if command in f.commands]
        kind = family.model.__name__ if isinstance(model_or_config, Family) else type(model_or_config).__name__
        raise ConfigError(f"{command} does not apply to {source}: it holds a {family.name} model ({kind}); "
                          f"{command} takes {', '.join(takers) or 'no family'}")
    return family
