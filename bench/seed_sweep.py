"""Train a preset with several seeds and report how its final validation loss spreads.

One run's loss depends on its seed (initial weights and batch order) and the training loop's
estimate adds the noise of a few batches, so a single number says little about a goal a few
hundredths away. This script trains the preset once per seed and prints, per seed, the loop's
last estimate and the loss over the whole validation split, then their mean, spread and how many
runs meet the goal; it also measures how noisy a single `eval_iters`-batch estimate is.

    python bench/seed_sweep.py --preset baby --dataset data/shakespeare_char --seeds 1337 1 2 3 4 --goal 1.89
"""
import argparse
import math
import pathlib
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from tinygrad_lm.data.text import load_meta, load_split  # noqa: E402
from tinygrad_lm.training.presets import PRESETS  # noqa: E402
from tinygrad_lm.training.loop import batch_losses, split_loss, train  # noqa: E402


def estimate_spread(model, val, block_size, batch_size, eval_iters, n_batches=200, seed=0):
    """Standard deviation of an eval_iters-batch mean, from n_batches independent batch losses."""
    losses = np.array(batch_losses(model, val, block_size, batch_size, n_batches, seed))
    return losses.std(ddof=1) / math.sqrt(eval_iters)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="baby", choices=list(PRESETS))
    ap.add_argument("--dataset", default="data/shakespeare_char")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1337, 1, 2, 3, 4])
    ap.add_argument("--max-iters", type=int, default=None)
    ap.add_argument("--goal", type=float, default=None, help="count the runs whose loss is at most this")
    args = ap.parse_args()
    vocab_size = load_meta(args.dataset)["vocab_size"]
    val = load_split(args.dataset, "val")
    rows = []
    for seed in args.seeds:
        model_config, cfg = PRESETS[args.preset](vocab_size)
        if args.max_iters:
            cfg = cfg.with_max_iters(args.max_iters)
        cfg.seed = seed
        with tempfile.TemporaryDirectory() as out:
            cfg.out_dir = out
            t = time.perf_counter()
            result = train(model_config, cfg, args.dataset, log=lambda *a, **k: None)
            seconds = time.perf_counter() - t
        model = result["model"]
        loop_val = result["evals"][-1]["val"]
        full_val = split_loss(model, val, model_config.block_size)
        spread = estimate_spread(model, val, model_config.block_size, cfg.batch_size, cfg.eval_iters)
        rows.append((seed, loop_val, full_val, spread))
        print(f"seed {seed:5d}: in-loop val {loop_val:.4f} | full val {full_val:.4f} | "
              f"sd of a {cfg.eval_iters}-batch estimate {spread:.4f} | {seconds:.0f} s", flush=True)
    loop_vals, full_vals = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    sd = (lambda a: a.std(ddof=1)) if len(rows) > 1 else (lambda a: float("nan"))
    print(f"{args.preset}, {cfg.max_iters} steps, {len(rows)} seeds:")
    for name, vals in (("in-loop val", loop_vals), ("full val", full_vals)):
        line = (f"  {name:12s} mean {vals.mean():.4f} sd {sd(vals):.4f} "
                f"min {vals.min():.4f} max {vals.max():.4f}")
        if args.goal is not None:
            line += f" | {int((vals <= args.goal).sum())}/{len(vals)} at most {args.goal}"
        print(line)
    print(f"  sd of one in-loop estimate (eval noise alone): {np.mean([r[3] for r in rows]):.4f}")


if __name__ == "__main__":
    main()
