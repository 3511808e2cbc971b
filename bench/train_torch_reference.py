"""Train a preset's model in PyTorch from the same initial weights, batches and schedule as
tinygrad_lm, and report the full validation loss: a reference that isolates the engine.

    python bench/train_torch_reference.py --preset baby --dataset data/shakespeare_char
"""
import argparse
import dataclasses
import math
import pathlib
import sys
import time

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import tinygrad_lm as tg  # noqa: E402
from tinygrad_lm.crosscheck.torch_gpt import from_ours  # noqa: E402
from tinygrad_lm.data.text import CausalLMBatches, load_meta, load_split  # noqa: E402
from tinygrad_lm.models.gpt import GPT  # noqa: E402
from tinygrad_lm.training.presets import PRESETS  # noqa: E402
from tinygrad_lm.training.loop import make_schedule  # noqa: E402


def full_val_loss(model, val, T):
    n = (len(val) - 1) // T
    x = torch.tensor(val[:n * T].reshape(n, T))
    y = torch.tensor(val[1:n * T + 1].reshape(n, T))
    total = 0.0
    with torch.no_grad():
        for i in range(0, n, 64):
            total += model(x[i:i + 64], y[i:i + 64])[1].item() * len(x[i:i + 64])
    return total / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="baby", choices=list(PRESETS))
    ap.add_argument("--dataset", default="data/shakespeare_char")
    ap.add_argument("--max-iters", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--activation", default=None, choices=["gelu_tanh", "gelu", "relu"],
                    help="override the preset's MLP activation (nanoGPT uses exact GELU)")
    args = ap.parse_args()
    meta = load_meta(args.dataset)
    model_config, cfg = PRESETS[args.preset](meta["vocab_size"])
    if args.max_iters:
        cfg = cfg.with_max_iters(args.max_iters)
    if args.seed is not None:
        cfg.seed = args.seed
    if args.activation:
        model_config = dataclasses.replace(model_config, activation=args.activation)
    tg.manual_seed(cfg.seed)
    model = from_ours(GPT(model_config), dtype=torch.float32)
    params = list(model.parameters())
    groups = params if cfg.decay_all else [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                            weight_decay=cfg.weight_decay)
    schedule = make_schedule(cfg)
    batches = CausalLMBatches(load_split(args.dataset, "train"), model_config.block_size, cfg.batch_size, seed=cfg.seed)
    t = time.perf_counter()
    for step in range(cfg.max_iters):
        for g in opt.param_groups:
            g["lr"] = schedule(step)
        x, y = batches.next()
        _, loss = model(torch.tensor(x), torch.tensor(y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        if (step + 1) % 500 == 0:
            print(f"step {step + 1}: loss {loss.item():.4f} ({time.perf_counter() - t:.0f} s)", flush=True)
    val = np.asarray(load_split(args.dataset, "val"), dtype=np.int64)
    v = full_val_loss(model.eval(), val, model_config.block_size)
    print(f"PyTorch {args.preset}: {cfg.max_iters} steps in {time.perf_counter() - t:.0f} s, "
          f"full val loss {v:.4f} (ppl {math.exp(v):.2f})")


if __name__ == "__main__":
    main()
