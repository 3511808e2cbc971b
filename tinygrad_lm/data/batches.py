"""The batch source of causal language models, on NumPy alone (the model registry names it, and
importing a model must not import the tokenizers)."""
import numpy as np

from ..errors import ConfigError, DataError


class CausalLMBatches:
    """The batch source of causal language models: random windows of a token array,
    x = data[i : i+T], y = data[i+1 : i+T+1] for B random i.

    A batch source is what the training loop draws from: ``next()`` returns the arguments of the
    model's ``forward`` (here ``(x, y)``, so ``model(*batch) -> (logits, loss)``), and
    ``get_state()`` / ``set_state()`` save and restore its generator, for an exact resume. Other
    tasks (masked LM, sequence pairs) bring their own class with the same four members; it is built
    as ``cls(tokens, block_size, batch_size, seed=...)``.

    The generator is the source's own (seeded), so evaluation or dropout never shifts which
    batches training sees.
    """

    def __init__(self, data, block_size, batch_size, seed=0):
        if len(data) < block_size + 1:
            raise DataError(f"the data holds {len(data)} tokens, fewer than one block of {block_size} + 1 "
                            "(the targets are shifted by one): use more text or a smaller block_size")
        if batch_size < 1:
            raise ConfigError(f"CausalLMBatches: batch_size must be >= 1, got {batch_size}")
        self.data, self.block_size, self.batch_size = data, block_size, batch_size
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self._offsets = np.arange(block_size + 1)

    def next(self):
        starts = self.rng.integers(0, len(self.data) - self.block_size, size=self.batch_size)
        windows = np.asarray(self.data[starts[:, None] + self._offsets], dtype=np.int64)
        return windows[:, :-1], windows[:, 1:]

    def get_state(self):
        return self.rng.bit_generator.state

    def set_state(self, state):
        self.rng.bit_generator.state = state
