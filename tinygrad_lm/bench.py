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
    return (time.perf_counter() - t) / max(steps, 1)


def build_ours(model_config, cfg, device="cpu", seed=0):
    """A closure running one training step of tinygrad_lm, its sync, and the last loss."""
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
    return step, sync, lambda: state["loss"].item()


def build_torch(model_config, cfg, device="cpu", seed=0):
    """The same for PyTorch eager."""
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
    return step, sync, lambda: state["loss"].item()


def run_bench(preset, steps=50, warmup=5, device="cpu", compare_torch=True, print_fn=print, rounds=5):
    """Time `steps` training steps in each of `rounds` rounds, alternating tinygrad_lm and PyTorch
    so both see the same machine load; report the median step times and the median ratio."""
    model_config, cfg = (gpu_preset() if preset == "gpu" else PRESETS[preset]())
    tokens = cfg.batch_size * model_config.block_size
    runners = {"tinygrad_lm": build_ours(model_config, cfg, device)}
    _timed(runners["tinygrad_lm"][0], 0, warmup, runners["tinygrad_lm"][1])
    ours_rss = peak_rss_mib()                      # before torch is even imported
    if compare_torch:
        try:
            import torch
            runners["PyTorch"] = build_torch(model_config, cfg, device)
        except ImportError:
            print_fn("PyTorch     : not installed, no reference (pip install torch)")
    per_step = {name: [] for name in runners}
    for name, (step, sync, _) in list(runners.items())[1:]:
        _timed(step, 0, warmup, sync)
    chunk = max(steps // rounds, 1)
    for _ in range(rounds):
        for name, (step, sync, _) in runners.items():
            per_step[name].append(_timed(step, chunk, 0, sync))
    median = {name: float(np.median(times)) for name, times in per_step.items()}
    print_fn(f"preset {preset} on {device}: {GPT(model_config).num_parameters():,} parameters, "
             f"batch {cfg.batch_size} x block {model_config.block_size}, {rounds} rounds of {chunk} steps each")
    result = {"preset": preset, "ours_ms": median["tinygrad_lm"] * 1e3, "rss_mib": ours_rss}
    for name, sec in median.items():
        extra = f", {torch.get_num_threads()} threads" if name == "PyTorch" else ""
        print_fn(f"{name:12s}: {sec * 1e3:8.2f} ms/step (median)  {tokens / sec / 1e3:8.1f}k tok/s  "
                 f"(loss {runners[name][2]():.3f}{extra})")
    print_fn(f"peak RSS: {ours_rss:.0f} MiB with tinygrad_lm alone, {peak_rss_mib():.0f} MiB with PyTorch loaded too")
    if "PyTorch" in median:
        ratios = [a / b for a, b in zip(per_step["tinygrad_lm"], per_step["PyTorch"])]
        result.update(torch_ms=median["PyTorch"] * 1e3, ratio=float(np.median(ratios)))
        print_fn(f"ratio tinygrad_lm / PyTorch step time: median {result['ratio']:.2f} over {rounds} rounds "
                 f"(min {min(ratios):.2f}, max {max(ratios):.2f}; goal <= 0.8, done at <= 1.25)")
    return result
