"""The training loop: batches -> forward -> loss -> backward -> clip -> AdamW step, with periodic
evaluation, a log line (loss, perplexity, lr, ms/step, tokens/s, MFU), checkpoints that resume
exactly, a NaN guard, and a clean stop on Ctrl-C or SIGTERM.

    from tinygrad_lm.train import PRESETS, train
    model_config, train_config = PRESETS["atpesc"]()
    result = train(model_config, train_config, data_dir="data/shakespeare_char")
"""
import dataclasses
import math
import pathlib
import time
from dataclasses import dataclass

import numpy as np

from . import checkpoint, optim
from . import random as tg_random
from .data import Batches, load_meta, load_split
from .gpt import GPT, GPTConfig
from .tensor import no_grad


@dataclass
class TrainConfig:
    batch_size: int = 12
    max_iters: int = 2000
    learning_rate: float = 1e-3
    decay_lr: bool = True           # linear warmup + cosine decay (else constant)
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    optimizer: str = "adamw"        # "adamw", "adam" or "sgd"
    weight_decay: float = 0.1
    decay_all: bool = False         # True: decay every parameter (PyTorch's default AdamW usage)
    beta1: float = 0.9
    beta2: float = 0.99
    eps: float = 1e-8
    grad_clip: float = 1.0          # 0: no clipping
    eval_interval: int = 250
    eval_iters: int = 20
    log_interval: int = 10
    seed: int = 1337
    device: str = "cpu"
    dtype: str = "float32"
    out_dir: str = "out"
    peak_flops: float = 0.0         # FLOP/s the MFU is measured against; 0: a default per device

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Refuse settings that would run without error but mean nothing (a batch of 0 rows trains
        on no tokens and logs a loss of 0), naming every problem at once."""
        problems = [f"{name}={getattr(self, name)} must be >= {low}" for name, low in (
            ("batch_size", 1), ("max_iters", 0), ("learning_rate", 0), ("min_lr", 0), ("warmup_iters", 0),
            ("lr_decay_iters", 0), ("weight_decay", 0), ("eps", 0), ("grad_clip", 0), ("eval_interval", 1),
            ("eval_iters", 1), ("log_interval", 1), ("peak_flops", 0)) if not getattr(self, name) >= low]
        problems += [f"{name}={getattr(self, name)} must be in [0, 1)" for name in ("beta1", "beta2")
                     if not 0 <= getattr(self, name) < 1]
        for name, allowed in (("optimizer", ("adamw", "adam", "sgd")), ("dtype", ("float32", "float64"))):
            if getattr(self, name) not in allowed:
                problems.append(f"{name}={getattr(self, name)!r} is not one of {allowed}")
        if problems:
            raise ValueError("TrainConfig: " + "; ".join(problems))

    def with_max_iters(self, max_iters):
        """The same run made shorter or longer: a cosine decay that ended with the run still ends
        with it, and the warmup is cut to fit inside the run."""
        changes = {"max_iters": max_iters}
        if self.lr_decay_iters == self.max_iters:
            changes["lr_decay_iters"] = max_iters
            changes["warmup_iters"] = min(self.warmup_iters, max_iters)
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


DEFAULT_PEAK_FLOPS = {"cpu": 1e11, "cuda": 19.5e12}   # rough fp32 peaks: 2 CPU cores; an A100 without TF32


def preset_atpesc(vocab_size=65):
    """The tutorial's notebook model and optimizer exactly: batch 16, block 32, width 64, 4 heads,
    4 layers, dropout 0, AdamW with PyTorch's defaults (weight decay 0.01 on every parameter),
    constant lr 1e-3, 5000 steps. Evaluation every 500 steps on 100 batches per split."""
    model = GPTConfig.seed_mini(vocab_size=vocab_size, block_size=32, n_layer=4, n_head=4, n_embd=64, dropout=0.0)
    train = TrainConfig(batch_size=16, max_iters=5000, learning_rate=1e-3, decay_lr=False, weight_decay=0.01,
                        decay_all=True, beta1=0.9, beta2=0.999, grad_clip=0.0, eval_interval=500, eval_iters=100,
                        log_interval=100)
    return model, train


def preset_baby(vocab_size=65):
    """nanoGPT's CPU Shakespeare config: GPT-2 architecture (no biases, as nanoGPT's default),
    4 layers, 4 heads, width 128, block 64, batch 12, lr 1e-3 cosine to 1e-4 over 2000 steps with
    100 warmup, weight decay 0.1 on matrices, betas (0.9, 0.99), clipping 1.0."""
    model = GPTConfig.gpt2(vocab_size=vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0,
                           bias=False)
    train = TrainConfig(batch_size=12, max_iters=2000, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100,
                        lr_decay_iters=2000, weight_decay=0.1, beta1=0.9, beta2=0.99, grad_clip=1.0,
                        eval_interval=250, eval_iters=20, log_interval=50)
    return model, train


PRESETS = {"atpesc": preset_atpesc, "baby": preset_baby}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def make_optimizer(model, cfg):
    if cfg.optimizer == "sgd":
        return optim.SGD(model.parameters(), lr=cfg.learning_rate, momentum=0.9, weight_decay=cfg.weight_decay)
    groups = model.parameters() if cfg.decay_all else optim.gpt2_param_groups(model, cfg.weight_decay)
    cls = {"adamw": optim.AdamW, "adam": optim.Adam}[cfg.optimizer]     # TrainConfig checked the name
    return cls(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, weight_decay=cfg.weight_decay)


def make_schedule(cfg):
    if not cfg.decay_lr:
        return optim.ConstantLR(cfg.learning_rate)
    return optim.WarmupCosineLR(cfg.learning_rate, cfg.min_lr, cfg.warmup_iters, cfg.lr_decay_iters)


@no_grad()
def batch_losses(model, tokens, block_size, batch_size, n_batches, seed):
    """The loss of each of n_batches random batches drawn by a generator of their own (so the same
    seed gives the same batches, and training's generators are never touched), in eval mode."""
    was_training = model.training
    model.eval()
    batches = Batches(tokens, block_size, batch_size, seed=seed)
    losses = [model(*batches.next())[1].item() for _ in range(n_batches)]
    model.train(was_training)
    return losses


def estimate_loss(model, data, block_size, batch_size, eval_iters, seed):
    """Mean loss over eval_iters batches of each split, with fixed batches per split (the same at
    every evaluation)."""
    return {split: sum(batch_losses(model, tokens, block_size, batch_size, eval_iters, seed + 1000 + i)) / eval_iters
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


def _format_log(step, loss, lr, ms, tokens_per_s, mfu, losses=None):
    line = f"step {step:5d} | loss {loss:.4f}"
    if losses:
        line += f" | train {losses['train']:.4f} val {losses['val']:.4f} (ppl {math.exp(losses['val']):.2f})"
    return line + f" | lr {lr:.2e} | {ms:7.2f} ms/step | {tokens_per_s / 1e3:6.1f}k tok/s | mfu {mfu * 100:.2f}%"


def train(model_config, cfg, data_dir, init_from="scratch", log=print, on_step=None, model=None, distributed=False):
    """Train and return {'history': [...], 'evals': [...], 'best_val': float, 'step': int, 'out_dir': path}.

    init_from: "scratch", "resume" (continue out_dir/last.npz exactly), or a GPT-2 directory /
    checkpoint to fine-tune from. on_step(step, loss) is called after each step (tests use it to
    interrupt a run). Ctrl-C or SIGTERM saves out_dir/last.npz after the current step and returns
    (result['interrupted'] is True); a second one raises KeyboardInterrupt at once and saves nothing,
    since a step cut in half would not resume exactly. A NaN loss raises TrainingDiverged. On resume
    the caller's cfg is used as given; settings that differ from the checkpoint's are logged.
    """
    cfg.validate()                                   # fields may have been assigned since they were made
    model_config.validate()
    out_dir = pathlib.Path(cfg.out_dir)
    try:                                             # before any work: a run that cannot save is lost
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise checkpoint.CheckpointError(f"cannot create the output folder {out_dir} ({e})") from e
    meta = load_meta(data_dir)
    data = {"train": load_split(data_dir, "train"), "val": load_split(data_dir, "val")}
    dtype = np.dtype(cfg.dtype)

    comm, rank, world = None, 0, 1
    if distributed:
        from . import distributed as dist
        comm = dist.init()
        rank, world = comm.Get_rank(), comm.Get_size()
        data["train_shard"] = dist.shard(data["train"], rank, world)   # each rank its own slice
        if rank != 0:
            log = _silent                                             # only rank 0 logs and saves
    tg_random.manual_seed(cfg.seed)
    ckpt = None
    if init_from == "resume":
        ckpt = checkpoint.load(out_dir / "last.npz")
        model_config = GPTConfig.from_dict(ckpt["meta"]["model_config"])
        if ckpt["meta"]["tokenizer"] != meta["tokenizer"]:    # same vocabulary size is not enough
            saved = ckpt["meta"].get("dataset")
            raise checkpoint.CheckpointError(
                f"{out_dir / 'last.npz'} was trained on text tokenized by another tokenizer "
                f"({ckpt['meta']['tokenizer']['type']}) than {data_dir} ({meta['tokenizer']['type']}): "
                f"resume with the run's own dataset{f' ({saved})' if saved else ''}")
    if model_config.vocab_size < meta["vocab_size"]:
        raise ValueError(f"the data's tokenizer has {meta['vocab_size']} tokens but the model only "
                         f"{model_config.vocab_size}")
    if model is None:
        if init_from not in ("scratch", "resume"):
            model = _init_from_pretrained(init_from, model_config)
            model_config = model.config
        else:
            model = GPT(model_config)
    model.to(cfg.device, dtype=dtype)
    optimizer = make_optimizer(model, cfg)
    schedule = make_schedule(cfg)
    batches = Batches(data.pop("train_shard", data["train"]), model_config.block_size, cfg.batch_size,
                      seed=cfg.seed + rank)
    history, evals, best_val, start = [], [], float("inf"), 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(checkpoint.optimizer_state(ckpt))
        m = ckpt["meta"]
        tg_random.set_rng_state(m["rng_state"])
        history, evals, best_val, start = m["history"], m["evals"], m["best_val"], m["step"]
        log(f"resuming from {out_dir / 'last.npz'} at step {start}")
        saved_world = m.get("world_size", 1)
        if saved_world == world:
            batches.set_state(m["batch_rng_state"][rank] if world > 1 else m["batch_rng_state"])
        else:                       # the data is sharded differently: fresh generators, still seeded
            batches = Batches(batches.data, model_config.block_size, cfg.batch_size, seed=[cfg.seed, rank, start])
            log(f"note: {out_dir / 'last.npz'} was written by {saved_world} rank(s) and this run has {world}: "
                "each rank draws new batches, so the losses will differ from an uninterrupted run")
        changed = [f"{k} {v} (saved {m['train_config'][k]})" for k, v in cfg.to_dict().items()
                   if k != "out_dir" and k in m["train_config"] and m["train_config"][k] != v]
        if changed:
            log("note: resuming with settings that differ from the checkpoint's: " + ", ".join(changed)
                + "; so the losses may differ from those of an uninterrupted run")
    if comm is not None:
        dist.broadcast_parameters(optimizer, comm)

    def save(name, step):
        batch_state = batches.get_state()
        if comm is not None:                 # every rank calls save at the same steps: gather is safe
            batch_state = comm.gather(batch_state, root=0)
            if rank != 0:
                return None
        return checkpoint.save(out_dir / name, model, optimizer, meta={
            "step": step, "model_config": model_config.to_dict(), "train_config": cfg.to_dict(),
            "dtype": dtype.name, "tokenizer": meta["tokenizer"], "dataset": str(pathlib.Path(data_dir).resolve()),
            "rng_state": tg_random.get_rng_state(),
            "batch_rng_state": batch_state, "world_size": world, "history": history, "evals": evals, "best_val": best_val})

    tokens_per_step = cfg.batch_size * model_config.block_size * world
    peak = cfg.peak_flops or DEFAULT_PEAK_FLOPS.get(cfg.device, 1e11)
    flops_per_step = model.flops_per_token() * tokens_per_step
    log(f"model: {model.num_parameters():,} parameters | {tokens_per_step} tokens/step | device {cfg.device} | "
        f"{cfg.dtype} | out {out_dir}" + (f" | {world} ranks" if world > 1 else ""))
    step = start
    params = model.parameters()
    timing = {"eval": 0.0, "train": 0.0}
    t_last, steps_since = time.perf_counter(), 0
    model.train()
    interrupt = _DeferredInterrupt()
    mid_step = False                 # True while a step has changed some of the state but not yet all
    try:
        while True:
            already = bool(evals) and evals[-1]["step"] == step          # resumed right after an eval
            if (step % cfg.eval_interval == 0 or step == cfg.max_iters) and not already:
                t_eval = time.perf_counter()
                losses = estimate_loss(model, data, model_config.block_size, cfg.batch_size, cfg.eval_iters, cfg.seed)
                evals.append({"step": step, **losses})
                if all(math.isfinite(v) for v in losses.values()):
                    if losses["val"] < best_val:
                        best_val = losses["val"]
                        save("best.npz", step)
                    save("last.npz", step)
                log(f"eval  {step:5d} | train {losses['train']:.4f} | val {losses['val']:.4f} | "
                    f"val ppl {math.exp(min(losses['val'], 700)):.2f}")
                timing["eval"] += time.perf_counter() - t_eval
                t_last, steps_since = time.perf_counter(), 0      # evaluation is not step time
            if step >= cfg.max_iters:
                break
            lr = schedule(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            mid_step = True                          # from here the batch RNG, weights and moments change
            x, y = batches.next()
            _, loss = model(x, y)
            optimizer.zero_grad()
            loss.backward()
            if comm is not None:
                dist.allreduce_gradients(optimizer, comm)
            if cfg.grad_clip:
                optim.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                last = out_dir / "last.npz"
                raise TrainingDiverged(
                    f"the loss became {loss_value} at step {step}; training stopped. The last good checkpoint is "
                    f"{last if last.exists() else '(none yet)'}; lower the learning rate or enable grad_clip")
            step += 1
            steps_since += 1
            history.append([step, loss_value])
            mid_step = False
            if on_step is not None:
                on_step(step, loss_value)
            interrupt.raise_if_requested(comm)      # Ctrl-C and SIGTERM land here, between whole steps
            if step % cfg.log_interval == 0 or step == cfg.max_iters:
                timing["train"] += time.perf_counter() - t_last
                dt = (time.perf_counter() - t_last) / max(steps_since, 1)
                log(_format_log(step, loss_value, lr, dt * 1e3, tokens_per_step / dt, flops_per_step / dt / peak))
                t_last, steps_since = time.perf_counter(), 0
    except KeyboardInterrupt:
        if mid_step:        # a second Ctrl-C inside a step: saving its half-updated state would break resume
            log(f"interrupted inside step {step + 1}: not saved, so {out_dir / 'last.npz'} still resumes exactly")
            raise
        path = save("last.npz", step)
        log(f"{interrupt.requested or 'interrupted'}: saved {path} at step {step}; continue with --init-from resume")
        return {"history": history, "evals": evals, "best_val": best_val, "step": step, "out_dir": out_dir,
                "interrupted": True, "model": model, "rank": rank}
    finally:
        interrupt.restore()                          # also after a NaN or any other error
    if timing["train"] > 0:
        log(f"time: training {timing['train']:.1f} s, evaluation {timing['eval']:.1f} s "
            f"({100 * timing['eval'] / timing['train']:.1f}% of the training time)")
    return {"history": history, "evals": evals, "best_val": best_val, "step": step, "out_dir": out_dir,
            "interrupted": False, "model": model, "timing": timing, "rank": rank}


class _DeferredInterrupt:
    """Turn the first Ctrl-C (SIGINT) or SIGTERM (what PBS and Slurm send when a job is deleted or
    reaches its walltime, shortly before killing it) into a request that the loop honours after
    the current step, so the checkpoint it saves holds a whole step (never half an optimizer
    update). A second signal interrupts at once. Only in the main thread, where Python delivers
    signals. `requested` names the signal that asked ("Ctrl-C" or "SIGTERM"), or is None."""

    NAMES = {"SIGINT": "Ctrl-C", "SIGTERM": "SIGTERM"}

    def __init__(self):
        import signal
        import threading
        self.requested, self.previous = None, {}
        if threading.current_thread() is threading.main_thread():
            for name in self.NAMES:
                number = getattr(signal, name)
                self.previous[number] = signal.signal(number, self._handler)

    def _handler(self, signum, frame):
        import signal
        if self.requested:
            raise KeyboardInterrupt
        self.requested = self.NAMES[signal.Signals(signum).name]

    def raise_if_requested(self, comm=None):
        asked = self.requested is not None
        if comm is not None:        # every rank stops at the same step, or the next collective hangs
            asked = bool(comm.allreduce(int(asked), op=_mpi_max()))
            self.requested = self.requested or ("a signal to another rank" if asked else None)
        if asked:
            raise KeyboardInterrupt

    def restore(self):
        import signal
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}


def _mpi_max():
    from mpi4py import MPI
    return MPI.MAX


def _silent(*args, **kwargs):
    pass


def _init_from_pretrained(source, model_config):
    path = pathlib.Path(source)
    if path.is_dir() and (path / "config.json").exists():
        from .hf import load_gpt2
        model = load_gpt2(path)
    elif path.is_file():
        model, _, _ = checkpoint.load_model(path)
    else:
        raise checkpoint.CheckpointError(f"--init-from {source!r}: not 'scratch', 'resume', a checkpoint file or "
                                         "a Hugging Face GPT-2 directory (config.json + model.safetensors)")
    if model.config.vocab_size < model_config.vocab_size:
        raise checkpoint.CheckpointError(f"the pretrained model's vocabulary ({model.config.vocab_size}) is smaller than the data's")
    return model
