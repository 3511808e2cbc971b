"""Loss on held-out data: a few fixed random batches during training (estimate_loss), and a whole
split for reported results (split_loss)."""
import numpy as np

from .data import CausalLMBatches
from .tensor import no_grad


@no_grad()
def batch_losses(model, tokens, block_size, batch_size, n_batches, seed, batch_source=CausalLMBatches):
    """The loss of each of n_batches random batches drawn by a generator of their own (so the same
    seed gives the same batches, and training's generators are never touched), in eval mode."""
    was_training = model.training
    model.eval()
    batches = batch_source(tokens, block_size, batch_size, seed=seed)
    losses = [model(*batches.next())[1].item() for _ in range(n_batches)]
    model.train(was_training)
    return losses


def estimate_loss(model, data, block_size, batch_size, eval_iters, seed, batch_source=CausalLMBatches):
    """Mean loss over eval_iters batches of each split, with fixed batches per split (the same at
    every evaluation)."""
    return {split: sum(batch_losses(model, tokens, block_size, batch_size, eval_iters, seed + 1000 + i,
                                    batch_source)) / eval_iters
            for i, (split, tokens) in enumerate(data.items())}


@no_grad()
def split_loss(model, tokens, block_size, batch_size=64):
    """Mean loss over every non-overlapping block of a whole split: a steadier figure than
    estimate_loss's few random batches (used for reported results, not inside the loop)."""
    n = (len(tokens) - 1) // block_size
    if n < 1:
        raise ValueError(f"the split holds {len(tokens)} tokens, fewer than one block of {block_size} + 1")
    tokens = np.asarray(tokens[:n * block_size + 1], dtype=np.int64)
    x, y = tokens[:-1].reshape(n, block_size), tokens[1:].reshape(n, block_size)
    was_training = model.training
    model.eval()
    total = 0.0
    for i in range(0, n, batch_size):
        total += model(x[i:i + batch_size], y[i:i + batch_size])[1].item() * len(x[i:i + batch_size])
    model.train(was_training)
    return total / n


