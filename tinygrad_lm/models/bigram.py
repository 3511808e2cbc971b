"""The smallest language model: a bigram table.

    idx (B, T) -> logits[b, t] = table[idx[b, t]]  (B, T, V) -> cross-entropy against the next token

Each token looks only at itself: row i of the table holds the logits of the token that follows
token i. It is the first model of the "Let's build GPT" path, and here it proves the model-family
seam: the same training loop, checkpoints and command line train, resume and sample it
(``python -m tinygrad_lm train --preset bigram``).
"""
from dataclasses import dataclass

from .. import nn
from ..errors import ConfigError
from ..nn import functional as F
from .base import ModelConfig
from .family import Family


@dataclass
class BigramConfig(ModelConfig):
    vocab_size: int = 65
    block_size: int = 8      # the length of the windows a batch source cuts; the model sees one token

    def validate(self):
        if min(self.vocab_size, self.block_size) < 1:
            raise ConfigError(f"BigramConfig: vocab_size={self.vocab_size} and block_size={self.block_size} "
                              "must be positive")

    def iter_parameter_shapes(self):
        """(state_dict name, shape) of Bigram(self)'s one parameter, without building it."""
        yield "token_logits.weight", (self.vocab_size, self.vocab_size)

    def num_parameters_estimate(self):
        return self.vocab_size * self.vocab_size


class Bigram(nn.Module):
    def __init__(self, config):
        super().__init__()
        config.validate()
        config.check_memory()                # vocab_size**2 logits: refused before building when too many
        self.config = config
        self.token_logits = nn.Embedding(config.vocab_size, config.vocab_size)   # row i: logits after token i

    def forward(self, idx, targets=None):
        """idx: (B, T) token ids -> (logits (B, T, vocab_size), loss or None)."""
        logits = self.token_logits(idx)
        loss = None if targets is None else F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                            targets.reshape(-1))
        return logits, loss

    @property
    def device(self):
        return self.token_logits.weight.device

    def flops_per_token(self):
        """Forward + backward FLOPs per token: softmax and cross-entropy over V logits, ~6 per logit."""
        return 6 * self.config.vocab_size


FAMILY = Family("bigram", Bigram, BigramConfig, commands=("sample", "genome-report"))
