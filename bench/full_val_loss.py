"""The loss of a checkpoint over the whole validation split (every non-overlapping block), a
steadier figure than the training loop's estimate from a few batches.

    python bench/full_val_loss.py out/last.npz data/shakespeare_char
"""
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from tinygrad_lm.checkpoint import load_model  # noqa: E402
from tinygrad_lm.data import load_split  # noqa: E402
from tinygrad_lm.tensor import no_grad  # noqa: E402


def main(checkpoint_path, dataset):
    model, _, ckpt = load_model(checkpoint_path)
    model.eval()
    val = np.asarray(load_split(dataset, "val"), dtype=np.int64)
    T = model.config.block_size
    n = (len(val) - 1) // T
    x, y = val[:n * T].reshape(n, T), val[1:n * T + 1].reshape(n, T)
    total = 0.0
    with no_grad():
        for i in range(0, n, 64):
            total += model(x[i:i + 64], y[i:i + 64])[1].item() * len(x[i:i + 64])
    print(f"{checkpoint_path}: step {ckpt['meta']['step']}, val loss over all {n * T} val tokens: {total / n:.4f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
