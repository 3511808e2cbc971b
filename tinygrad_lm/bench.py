"""``python -m tinygrad_lm bench --preset NAME``: time training steps of tinygrad_lm and, when torch
is installed, of the same model in PyTorch eager, in one process; print both, the ratio and peak RSS.

Both sides run the same work: forward, cross-entropy, backward, gradient clipping when the preset
clips, and an AdamW step, on random token batches of the preset's shape.
"""
import dataclasses
import resource
import sys
import time

import numpy as np

from .gpt import GPT, GPTConfig
from .train import PRESETS, TrainConfig, make_optimizer
from . import optim


def gpu_preset(vocab_size=65):
    """nanoGPT's GPU Shakespeare config: 6 layers, 6 heads, width 384, block 256, batch 64."""
    model = GPTConfig.gpt2(vocab_size=vocab_size, block_size=256, n_layer=6, n_head=6, n_embd=384, bias=False)
    return model, TrainConfig(batch_size=64, learning_rate=1e-3, weight_decay=0.1, beta2=0.99, grad_clip=1.0)


def peak_rss_mib():
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def _timed(step, steps, warmup, sync=lambda: None):
    for _ in range(warmup):
        step()
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - t) / steps


def bench_ours(model_config, cfg, steps, warmup, device="cpu", seed=0):
    from . import backend
    rng = np.random.default_rng(seed)
    model = GPT(model_config).to(device)
    opt = make_optimizer(model, cfg)
    B, T = cfg.batch_size, model_config.block_size
    batches = [rng.integers(0, model_config.vocab_size, (2, B, T)) for _ in range(4)]
    state = {"i": 0, "loss": None}
    xp = backend.get_array_module(device)
    params = model.parameters()

    def step():
        x, y = batches[state["i"] % 4]
        state["i"] += 1
        _, loss = model(backend.to_device(x, device), backend.to_device(y, device))
        opt.zero_grad()
        loss.backward()
        if cfg.grad_clip:
            optim.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        state["loss"] = loss

    sync = (lambda: xp.cuda.Stream.null.synchronize()) if device == "cuda" else (lambda: None)
    return _timed(step, steps, warmup, sync), state["loss"].item()


def bench_torch(model_config, cfg, steps, warmup, device="cpu", seed=0):
    import torch
    from .crosscheck.torch_gpt import GPT as TorchGPT
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    # the seed's per-head attention is the same function as batched heads; PyTorch runs it batched
    config = dataclasses.replace(model_config, attention="batched")
    model = TorchGPT(config).to(device)
    if cfg.decay_all:
        groups = model.parameters()
    else:
        params = list(model.parameters())
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay)
    B, T = cfg.batch_size, model_config.block_size
    batches = [torch.tensor(rng.integers(0, model_config.vocab_size, (2, B, T))).to(device) for _ in range(4)]
    state = {"i": 0, "loss": None}

    def step():
        x, y = batches[state["i"] % 4]
        state["i"] += 1
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        state["loss"] = loss

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    return _timed(step, steps, warmup, sync), state["loss"].item()


def run_bench(preset, steps=50, warmup=5, device="cpu", compare_torch=True, print_fn=print):
    model_config, cfg = (gpu_preset() if preset == "gpu" else PRESETS[preset]())
    tokens = cfg.batch_size * model_config.block_size
    ours, loss = bench_ours(model_config, cfg, steps, warmup, device)
    rss = peak_rss_mib()
    print_fn(f"preset {preset} on {device}: {GPT(model_config).num_parameters():,} parameters, "
             f"batch {cfg.batch_size} x block {model_config.block_size}, {steps} steps")
    print_fn(f"tinygrad_lm : {ours * 1e3:8.2f} ms/step  {tokens / ours / 1e3:8.1f}k tok/s  "
             f"(loss {loss:.3f}, peak RSS {rss:.0f} MiB)")
    result = {"preset": preset, "ours_ms": ours * 1e3, "rss_mib": rss}
    if compare_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            print_fn("PyTorch     : not installed, no reference (pip install torch)")
            return result
        theirs, t_loss = bench_torch(model_config, cfg, steps, warmup, device)
        print_fn(f"PyTorch     : {theirs * 1e3:8.2f} ms/step  {tokens / theirs / 1e3:8.1f}k tok/s  "
                 f"(loss {t_loss:.3f}, peak RSS {peak_rss_mib():.0f} MiB, {torch.get_num_threads()} threads)")
        print_fn(f"ratio tinygrad_lm / PyTorch step time: {ours / theirs:.2f}  (goal <= 0.8; done at <= 1.25)")
        result.update(torch_ms=theirs * 1e3, ratio=ours / theirs)
    return result
