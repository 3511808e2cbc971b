"""Loss on held-out data: a few fixed random batches during training (estimate_loss), and a whole
split for reported results (split_loss)."""
import numpy as np

from ..data.text import CausalLMBatches
from ..nn import eval_mode
from ..tensor import no_grad


@no_grad()
def batch_scores(model, tokens, block_size, batch_size, n_batches, seed, batch_source=CausalLMBatches):
    """The loss of each of n_batches random batches drawn by a generator of their own (so the same
    seed gives the same batches, and training's generators are never touched), in eval mode, and
    the fraction of labelled predictions that are right when the batch source scores them (its
    ``accuracy(batch, logits) -> (correct, counted)``: masked tokens, sentence pairs, whole target
    sequences), else None."""
    batches = batch_source(tokens, block_size, batch_size, seed=seed)
    score = getattr(batches, "accuracy", None)       # the batch source protocol: scoring is optional
    compute = getattr(batches, "compute_loss", None)  # and so is an objective of its own (DPO)
    losses, correct, counted = [], 0, 0
    with eval_mode(model):
        for _ in range(n_batches):
            batch = batches.next()
            logits, loss = model(*batch) if compute is None else compute(model, batch)
            losses.append(loss.item())
            if score is not None:
                right, n = score(batch, logits)
                correct, counted = correct + right, counted + n
    return losses, (correct / max(counted, 1) if score is not None else None)


def batch_losses(model, tokens, block_size, batch_size, n_batches, seed, batch_source=CausalLMBatches):
    """The loss of each of n_batches fixed random batches (batch_scores without the accuracy)."""
    return batch_scores(model, tokens, block_size, batch_size, n_batches, seed, batch_source)[0]


def estimate_loss(model, data, block_size, batch_size, eval_iters, seed, batch_source=CausalLMBatches):
    """Mean loss over eval_iters batches of each split, with fixed batches per split (the same at
    every evaluation); with a batch source that scores predictions, also '<split>_accuracy'."""
    result = {}
    for i, (split, tokens) in enumerate(data.items()):
        losses, accuracy = batch_scores(model, tokens, block_size, batch_size, eval_iters, seed + 1000 + i,
                                        batch_source)
        if accuracy is not None:
            result[f"{split}_accuracy"] = accuracy
        result[split] = sum(losses) / eval_iters
    return result


@no_grad()
def split_loss(model, tokens, block_size, batch_size=64):
    """Mean loss over every non-overlapping block of a whole split: a steadier figure than
    estimate_loss's few random batches (used for reported results, not inside the loop)."""
    n = (len(tokens) - 1) // block_size
    if n < 1:
        raise ValueError(f"the split holds {len(tokens)} tokens, fewer than one block of {block_size} + 1")
    tokens = np.asarray(tokens[:n * block_size + 1], dtype=np.int64)
    x, y = tokens[:-1].reshape(n, block_size), tokens[1:].reshape(n, block_size)
    total = 0.0
    with eval_mode(model):
        for i in range(0, n, batch_size):
            total += model(x[i:i + batch_size], y[i:i + batch_size])[1].item() * len(x[i:i + batch_size])
    return total / n


