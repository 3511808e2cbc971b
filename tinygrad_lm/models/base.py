"""What every model family's config shares: it is checked when made (and again by the model, since
fields may be assigned later), and it travels in checkpoints as a plain dict."""
import dataclasses

from ..errors import ConfigError


class ModelConfig:
    """Base of the config dataclasses (GPTConfig, BigramConfig...): subclasses add fields and
    ``validate``."""

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Raise ConfigError naming every setting that is out of range."""

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
        return cls(**d)
