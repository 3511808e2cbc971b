"""The loss of a checkpoint over the whole validation split (every non-overlapping block), a
steadier figure than the training loop's estimate from a few batches.

    python bench/full_val_loss.py out/last.npz data/shakespeare_char
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from tinygrad_lm.training.checkpoint import load_model  # noqa: E402
from tinygrad_lm.data.text import load_split  # noqa: E402
from tinygrad_lm.training.loop import split_loss  # noqa: E402


def main(checkpoint_path, dataset):
    model, _, ckpt = load_model(checkpoint_path)
    val = load_split(dataset, "val")
    T = model.config.block_size
    n = (len(val) - 1) // T
    print(f"{checkpoint_path}: step {ckpt['meta']['step']}, val loss over all {n * T} val tokens: "
          f"{split_loss(model, val, T):.4f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
