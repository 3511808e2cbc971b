"""A training run: everything around the loop in train.py, so that the loop shows only the step.

``Run`` owns
  - the output folder (created before any work: a run that cannot save is lost) and the data;
  - the ranks (distributed.Ranks: one process, or MPI data parallel with rank 0 logging and saving);
  - the model (a fresh one, a resumed one rebuilt from its checkpoint's family and config, or a
    pretrained one to fine-tune), its optimizer and its batch source;
  - the checkpoint policy: evaluate every eval_interval steps, keep best.npz (lowest val loss)
    and last.npz; resume from last.npz exactly (weights, moments, RNG states, history);
  - the log line (loss, lr, ms/step, tokens/s, MFU against the measured peak of the hardware);
  - stopping: used as ``with run:``, Ctrl-C or SIGTERM saves last.npz after the current step and
    ends the loop; a second signal inside a step (``with run.changing_state():``) keeps the last
    whole checkpoint, since a half-updated one would not resume exactly. A NaN loss raises
    TrainingDiverged and leaves the last good checkpoint.
"""
import math
import pathlib
import time

import numpy as np

from . import checkpoint, flops
from . import random as tg_random
from .config import make_optimizer
from .data import load_meta, load_split
from .distributed import Ranks
from .errors import CheckpointError, ConfigError, TrainingDiverged
from .evaluate import estimate_loss
from .models import FAMILIES, GPT, family_of
from .signals import DeferredInterrupt


class Run:
    def __init__(self, model_config, cfg, data_dir, init_from="scratch", log=print, model=None,
                 distributed=False, batch_source=None):
        cfg.validate()                                # fields may have been assigned since they were made
        model_config.validate()
        self.cfg, self.data_dir, self.batch_source = cfg, data_dir, batch_source
        self.out_dir = pathlib.Path(cfg.out_dir)
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CheckpointError(f"cannot create the output folder {self.out_dir} ({e})") from e
        self.meta = load_meta(data_dir)
        self.data = {"train": load_split(data_dir, "train"), "val": load_split(data_dir, "val")}
        self.dtype = np.dtype(cfg.dtype)
        self.ranks = Ranks.start(distributed)
        self.log = log if self.ranks.is_main else _silent        # only rank 0 logs and saves
        tg_random.manual_seed(cfg.seed)

        saved = self._read_resume_checkpoint() if init_from == "resume" else None
        if saved is not None:
            model_config = FAMILIES[saved["meta"].get("model_family", "gpt")][1].from_dict(
                saved["meta"]["model_config"])
        if model_config.vocab_size < self.meta["vocab_size"]:
            raise ConfigError(f"the data's tokenizer has {self.meta['vocab_size']} tokens but the model only "
                              f"{model_config.vocab_size}")
        if model is None:
            model = (_pretrained(init_from, model_config) if init_from not in ("scratch", "resume")
                     else FAMILIES[family_of(model_config)][0](model_config))
        self.model, self.model_config = model, model.config
        self.model.to(cfg.device, dtype=self.dtype)
        self.optimizer = make_optimizer(self.model, cfg)
        self.batches = batch_source(self.ranks.shard(self.data["train"]), self.model_config.block_size,
                                    cfg.batch_size, seed=cfg.seed + self.ranks.rank)
        self.history, self.evals, self.best_val, self.step = [], [], float("inf"), 0
        if saved is not None:
            self._restore(saved)
        self.ranks.broadcast_parameters(self.optimizer)
        self._start_clock()
        self.log(f"model: {self.model.num_parameters():,} parameters | {self.tokens_per_step} tokens/step | "
                 f"device {cfg.device} | {cfg.dtype} | out {self.out_dir}"
                 + (f" | {self.ranks.world} ranks" if self.ranks.world > 1 else ""))

    # ------------------------------------------------------------------ resume
    def _read_resume_checkpoint(self):
        path = self.out_dir / "last.npz"
        saved = checkpoint.load(path)
        if saved["meta"]["tokenizer"] != self.meta["tokenizer"]:    # the same vocabulary size is not enough
            dataset = saved["meta"].get("dataset")
            raise CheckpointError(
                f"{path} was trained on text tokenized by another tokenizer "
                f"({saved['meta']['tokenizer']['type']}) than {self.data_dir} ({self.meta['tokenizer']['type']}): "
                f"resume with the run's own dataset{f' ({dataset})' if dataset else ''}")
        return saved

    def _restore(self, saved):
        """Weights, optimizer moments, RNG states and history exactly as saved."""
        m, path = saved["meta"], self.out_dir / "last.npz"
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(checkpoint.optimizer_state(saved))
        tg_random.set_rng_state(m["rng_state"])
        self.history, self.evals, self.best_val, self.step = m["history"], m["evals"], m["best_val"], m["step"]
        self.log(f"resuming from {path} at step {self.step}")
        rank, world = self.ranks.rank, self.ranks.world
        if m.get("world_size", 1) == world:
            self.batches.set_state(m["batch_rng_state"][rank] if world > 1 else m["batch_rng_state"])
        else:                       # the data is sharded differently: fresh generators, still seeded
            self.batches = self.batch_source(self.batches.data, self.model_config.block_size,
                                             self.cfg.batch_size, seed=[self.cfg.seed, rank, self.step])
            self.log(f"note: {path} was written by {m.get('world_size', 1)} rank(s) and this run has {world}: "
                     "each rank draws new batches, so the losses will differ from an uninterrupted run")
        changed = [f"{k} {v} (saved {m['train_config'][k]})" for k, v in self.cfg.to_dict().items()
                   if k != "out_dir" and k in m["train_config"] and m["train_config"][k] != v]
        if changed:
            self.log("note: resuming with settings that differ from the checkpoint's: " + ", ".join(changed)
                     + "; so the losses may differ from those of an uninterrupted run")

    # ------------------------------------------------------------------ checkpoints
    def save(self, name):
        """Write out_dir/name on rank 0 (every rank calls it at the same step: the gather is collective)."""
        batch_state = self.ranks.gather(self.batches.get_state())
        if not self.ranks.is_main:
            return None
        return checkpoint.save(self.out_dir / name, self.model, self.optimizer, meta={
            "step": self.step, "model_family": family_of(self.model), "model_config": self.model_config.to_dict(),
            "train_config": self.cfg.to_dict(), "dtype": self.dtype.name, "tokenizer": self.meta["tokenizer"],
            "dataset": str(pathlib.Path(self.data_dir).resolve()), "rng_state": tg_random.get_rng_state(),
            "batch_rng_state": batch_state, "world_size": self.ranks.world, "history": self.history,
            "evals": self.evals, "best_val": self.best_val})

    def evaluation_due(self):
        already = bool(self.evals) and self.evals[-1]["step"] == self.step    # resumed right after an eval
        return (self.step % self.cfg.eval_interval == 0 or self.step == self.cfg.max_iters) and not already

    def evaluate(self):
        """Estimate train and val loss; save best.npz when val improved, and last.npz."""
        t = time.perf_counter()
        losses = estimate_loss(self.model, self.data, self.model_config.block_size, self.cfg.batch_size,
                               self.cfg.eval_iters, self.cfg.seed, self.batch_source)
        self.evals.append({"step": self.step, **losses})
        if all(math.isfinite(v) for v in losses.values()):
            if losses["val"] < self.best_val:
                self.best_val = losses["val"]
                self.save("best.npz")
            self.save("last.npz")
        self.log(f"eval  {self.step:5d} | train {losses['train']:.4f} | val {losses['val']:.4f} | "
                 f"val ppl {math.exp(min(losses['val'], 700)):.2f}")
        self.timing["eval"] += time.perf_counter() - t
        self._t_last, self._steps_since = time.perf_counter(), 0        # evaluation is not step time

    # ------------------------------------------------------------------ steps
    def changing_state(self):
        """Mark the part of a step that changes the batch RNG, weights and moments."""
        return _Flag(self, "_mid_step")

    def record(self, loss):
        """After a step: stop on a NaN loss, else count the step and keep its loss."""
        if not math.isfinite(loss):
            last = self.out_dir / "last.npz"
            raise TrainingDiverged(
                f"the loss became {loss} at step {self.step}; training stopped. The last good checkpoint is "
                f"{last if last.exists() else '(none yet)'}; lower the learning rate or enable grad_clip")
        self.step += 1
        self._steps_since += 1
        self.history.append([self.step, loss])

    def stop_if_interrupted(self):
        self._interrupt.raise_if_requested(self.ranks)     # Ctrl-C and SIGTERM land here, between whole steps

    def _start_clock(self):
        cfg = self.cfg
        self.tokens_per_step = cfg.batch_size * self.model_config.block_size * self.ranks.world
        per_token = getattr(self.model, "flops_per_token", None)
        self.flops_per_step = per_token() * self.tokens_per_step if per_token else None
        if self.flops_per_step is not None:
            peak = cfg.peak_flops or self.ranks.first_on_node(lambda: flops.measure_peak_flops(cfg.device, cfg.dtype))
            self.peak = flops.hardware_peak(peak, cfg.device, self.ranks.world, self.ranks.per_node)
        self.timing = {"eval": 0.0, "train": 0.0}
        self._t_last, self._steps_since, self._mid_step = time.perf_counter(), 0, False

    def log_step(self, loss, lr):
        cfg = self.cfg
        if self.step % cfg.log_interval and self.step != cfg.max_iters:
            return
        elapsed = time.perf_counter() - self._t_last
        self.timing["train"] += elapsed
        dt = elapsed / max(self._steps_since, 1)
        line = (f"step {self.step:5d} | loss {loss:.4f} | lr {lr:.2e} | {dt * 1e3:7.2f} ms/step | "
                f"{self.tokens_per_step / dt / 1e3:6.1f}k tok/s")
        if self.flops_per_step is not None:
            line += f" | mfu {flops.mfu(self.flops_per_step, dt, self.peak) * 100:.2f}%"
        self.log(line)
        self._t_last, self._steps_since = time.perf_counter(), 0

    # ------------------------------------------------------------------ start and end
    def __enter__(self):
        self._interrupt = DeferredInterrupt()
        self.interrupted = False
        return self

    def __exit__(self, kind, error, traceback):
        self._interrupt.restore()                            # also after a NaN or any other error
        if kind is not KeyboardInterrupt:
            return False
        path = self.out_dir / "last.npz"
        if self._mid_step:        # a second Ctrl-C inside a step: its half-updated state would break resume
            self.log(f"interrupted inside step {self.step + 1}: not saved, so {path} still resumes exactly")
            return False
        self.save("last.npz")
        self.log(f"{self._interrupt.requested or 'interrupted'}: saved {path} at step {self.step}; "
                 "continue with --init-from resume")
        self.interrupted = True
        return True                                          # the loop ends; train() returns the result

    def result(self):
        if self.timing["train"] > 0 and not self.interrupted:
            self.log(f"time: training {self.timing['train']:.1f} s, evaluation {self.timing['eval']:.1f} s "
                     f"({100 * self.timing['eval'] / self.timing['train']:.1f}% of the training time)")
        return {"history": self.history, "evals": self.evals, "best_val": self.best_val, "step": self.step,
                "out_dir": self.out_dir, "interrupted": self.interrupted, "model": self.model,
                "timing": self.timing, "rank": self.ranks.rank}


class _Flag:
    """``with _Flag(obj, name):`` sets obj.name True inside the block; it stays True if the block
    raised, which is the point: the exception handler must know a step was cut in half."""

    def __init__(self, obj, name):
        self.obj, self.name = obj, name

    def __enter__(self):
        setattr(self.obj, self.name, True)

    def __exit__(self, kind, error, traceback):
        if kind is None:
            setattr(self.obj, self.name, False)
        return False


def _silent(*args, **kwargs):
    pass


def _pretrained(source, model_config):
    """A model to fine-tune: a Hugging Face GPT-2 folder or a training checkpoint."""
    path = pathlib.Path(source)
    if path.is_dir() and (path / "config.json").exists():
        model = GPT.from_pretrained(path)
    elif path.is_file():
        model, _, _ = checkpoint.load_model(path)
    else:
        raise CheckpointError(f"--init-from {source!r}: not 'scratch', 'resume', a checkpoint file or "
                              "a Hugging Face GPT-2 directory (config.json + model.safetensors)")
    if model.config.vocab_size < model_config.vocab_size:
        raise CheckpointError(f"the pretrained model's vocabulary ({model.config.vocab_size}) is smaller than the data's")
    return model
