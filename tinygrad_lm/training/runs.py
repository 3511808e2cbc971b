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
    whole checkpoint, since a half-updated one would not resume exactly. A NaN loss, or weights or
    optimizer moments that became infinite or NaN (checked at each save, never saved), raise
    TrainingDiverged and leave the last good checkpoint;
  - the folder's lock (out_dir/.lock, rank 0's): a second run into a folder in use is refused.
"""
import functools
import math
import pathlib
import time

import numpy as np

from .. import backend
from . import checkpoint, flops
from .. import random as tg_random
from .config import make_optimizer
from ..data.chat import ChatBatches, chat_batch_settings
from ..data.preferences import PreferenceBatches
from ..data.text import load_meta, load_split
from .distributed import Ranks
from ..errors import CheckpointError, ConfigError, TinygradLMError, TrainingDiverged
from .evaluate import estimate_loss
from ..models import build, family_of, family_record
from ..models.base import physical_memory
from ..nn.lora import apply_lora, get_peft_model, lora_layers, lora_record
from .lock import OutDirLock, prepare_out_dir
from .pretrained import check_same_tokenizer, pretrained_model
from .signals import DeferredInterrupt


class Run:
    def __init__(self, model_config, cfg, data_dir, init_from="scratch", log=print, model=None,
                 distributed=False, batch_source=None, resume_checkpoint=None):
        cfg.validate()                                # fields may have been assigned since they were made
        model_config.validate()
        self.cfg, self.data_dir, self.batch_source = cfg, data_dir, batch_source
        self.out_dir = pathlib.Path(cfg.out_dir)
        self.ranks = Ranks.start(distributed)
        self.log = log if self.ranks.is_main else _silent        # only rank 0 logs and saves
        # before any work: the folder can be written, no other run uses it, no half-written save is left
        self.lock = OutDirLock(self.out_dir, self.log)
        self._on_main(self._claim_out_dir)
        try:
            self._start(model_config, init_from, model, resume_checkpoint)
        except BaseException:
            self.lock.release()
            raise

    def _claim_out_dir(self):
        prepare_out_dir(self.out_dir)
        self.lock.acquire()
        removed = checkpoint.remove_stale_temporaries(self.out_dir)
        if removed:
            self.log(f"note: removed {', '.join(removed)} from {self.out_dir}, left by a save that was killed")

    def _on_main(self, fn):
        """fn() on rank 0, and its failure on every rank: rank 0 raises its error, the others a
        CheckpointError, all at the same step (a rank left waiting in the next collective would
        hang the job). Returns fn()'s value on rank 0, None elsewhere."""
        error = value = None
        if self.ranks.is_main:
            try:
                value = fn()
            except Exception as e:       # whatever it is, the other ranks must hear of it
                error = e if isinstance(e, TinygradLMError) else CheckpointError(
                    f"rank 0 failed on {self.out_dir}: {type(e).__name__}: {e}")
        if self.ranks.any(error is not None):
            raise error or CheckpointError(f"rank 0 could not write to the output folder {self.out_dir}")
        return value

    def _start(self, model_config, init_from, model, resume_checkpoint=None):
        cfg, data_dir, batch_source = self.cfg, self.data_dir, self.batch_source
        self.meta = load_meta(data_dir)
        self.data = {split: load_split(data_dir, split, self.meta) for split in ("train", "val")}
        self.dtype = np.dtype(cfg.dtype)
        tg_random.manual_seed(cfg.seed)

        saved = self._read_resume_checkpoint(resume_checkpoint) if init_from == "resume" else None
        if saved is not None:
            model_config = checkpoint.model_config(saved["meta"], self.out_dir / "last.npz")
            if model_config is None:
                raise CheckpointError(f"{self.out_dir / 'last.npz'} holds no model_config: it cannot be resumed")
        if model_config.vocab_size < self.meta["vocab_size"]:
            raise ConfigError(f"the data's tokenizer has {self.meta['vocab_size']} tokens but the model only "
                              f"{model_config.vocab_size}")
        if model is None:
            model = (pretrained_model(init_from, model_config, self.meta["tokenizer"]) if init_from not in ("scratch", "resume")
                     else build(model_config))
        self._adapt(model, saved)
        self.model, self.model_config = model, model.config
        self.model.to(cfg.device, dtype=self.dtype)
        self.optimizer = make_optimizer(self.model, cfg)
        self.reference = None                     # DPO: the reference's log-probabilities, per split
        if batch_source is None and "preference" in self.meta:  # pairs of answers: DPO against the start
            self.reference = dict(saved["meta"].get("dpo_reference") or {}) if saved is not None else {}
            self.batch_source = batch_source = functools.partial(
                PreferenceBatches, **chat_batch_settings(self.meta), beta=cfg.dpo_beta, reference=self.reference,
                rpo_alpha=cfg.rpo_alpha)
        elif batch_source is None and "chat" in self.meta:     # conversations: the loss on the answers only
            self.batch_source = batch_source = functools.partial(ChatBatches, **chat_batch_settings(self.meta))
        if batch_source is None:                  # the family's own (BERT: masked tokens; next tokens by default)
            self.batch_source = batch_source = family_record(self.model_config).batches(self.model_config)
        # a rank reads its slice of the token stream; conversations (chats, pairs) are drawn whole at
        # random by each rank's own seed, since a slice would cut one in two
        train_tokens = self.data["train"] if "chat" in self.meta else self.ranks.shard(self.data["train"])
        self.batches = batch_source(train_tokens, self.model_config.block_size,
                                    cfg.batch_size, seed=cfg.seed + self.ranks.rank)
        # rows as long as the batch source makes them (chats: their longest conversation, not the context)
        _check_batch_memory(getattr(self.batches, "rows_per_batch", cfg.batch_size),
                            getattr(self.batches, "row_tokens", self.model_config.block_size),
                            self.model_config.vocab_size)
        self.history, self.evals, self.best_val, self.step = [], [], float("inf"), 0
        if saved is not None:
            self._restore(saved)
        if self.reference is not None:
            self._reference_log_probs(resumed=saved is not None)
        self.ranks.broadcast_parameters(self.optimizer)
        self._start_clock()
        trainable = sum(int(f.data.size) for f in self.optimizer.flat) if lora_layers(self.model) else None
        self.log(f"model: {self.model.num_parameters():,} parameters"
                 + (f" ({trainable:,} trainable: LoRA r={self.cfg.lora_r})" if trainable is not None else "")
                 + f" | {self.tokens_per_step} tokens/step | "
                 f"device {cfg.device} | {cfg.dtype} | out {self.out_dir}"
                 + (f" | {self.ranks.world} ranks" if self.ranks.world > 1 else ""))

    def _adapt(self, model, saved):
        """LoRA: wrap the target Linears in adapters and freeze the rest, as the settings ask (a
        resumed run: as its checkpoint records, so its weights load into the same modules)."""
        record = saved["meta"].get("lora") if saved is not None else None
        try:
            if record is not None:
                apply_lora(model, record)
            elif saved is None and self.cfg.lora_config() is not None:
                get_peft_model(model, self.cfg.lora_config())
        except ValueError as e:
            raise ConfigError(f"LoRA: {e}") from None

    def _reference_log_probs(self, resumed):
        """DPO's reference: the log-probability of every answer of each split this run reads (its
        shard, and the train and val splits evaluation reads), computed once with the weights
        training starts from, before the first step; a resumed run has them from its checkpoint."""
        t, computed = time.perf_counter(), 0
        others = [self.batch_source(tokens, self.model_config.block_size, self.cfg.batch_size, seed=0)
                  for tokens in (self.data["train"], self.data["val"]) if tokens is not self.batches.data]
        for batches in (self.batches, *others):
            if batches.key in self.reference:
                continue
            if resumed:
                raise CheckpointError(f"{self.out_dir / 'last.npz'} holds no reference log-probabilities for this "
                                      "dataset: it was not trained on it, so it cannot be resumed on it")
            self.reference[batches.key] = batches.reference_log_probs(self.model)
            computed += len(self.reference[batches.key])
        if computed:
            self.log(f"reference: the log-probabilities of {computed:,} answers under the starting weights, "
                     f"computed once ({time.perf_counter() - t:.1f} s)")

    # ------------------------------------------------------------------ resume
    def _read_resume_checkpoint(self, saved=None):
        """out_dir/last.npz (`saved`: already loaded by the run's set-up, so it is read once)."""
        path = self.out_dir / "last.npz"
        saved = saved if saved is not None else checkpoint.load(path)
        dataset = saved["meta"].get("dataset")
        check_same_tokenizer(path, saved["meta"].get("tokenizer"), self.meta["tokenizer"], self.data_dir,
                              f"resume with the run's own dataset{f' ({dataset})' if isinstance(dataset, str) else ''}")
        return saved

    def _restore(self, saved):
        """Weights, optimizer moments, RNG states and history exactly as saved; the optimizer's
        hyperparameters are this run's (cfg), so a setting given when resuming takes effect."""
        path = self.out_dir / "last.npz"
        try:
            self._restore_state(saved, path)
        except TinygradLMError as e:
            raise CheckpointError(f"cannot resume from {path}: {e}") from None
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise CheckpointError(f"cannot resume from {path}: its metadata is incomplete or malformed "
                                  f"({type(e).__name__}: {e})") from None

    def _restore_state(self, saved, path):
        m = saved["meta"]
        self.model.load_state_dict(saved["model"])
        settings = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]
        try:
            self.optimizer.load_state_dict(checkpoint.optimizer_state(saved, path))
        except CheckpointError as e:
            raise CheckpointError(f"{e} (--optimizer and --decay-all cannot change when resuming)") from None
        for group, own in zip(self.optimizer.param_groups, settings):   # weight decay, betas, eps...: cfg's
            group.update(own)
        tg_random.set_rng_state(m["rng_state"])
        history, evals, best_val, step = m["history"], m["evals"], m["best_val"], m["step"]
        if not (isinstance(history, list) and isinstance(evals, list) and isinstance(best_val, (int, float))
                and isinstance(step, int) and step == self.optimizer.step_count
                and all(isinstance(h, list) and len(h) == 2 and all(isinstance(x, (int, float)) for x in h)
                        for h in history)
                and all(isinstance(e, dict) and isinstance(e.get("step"), int) for e in evals)):
            raise ValueError("history, evals, best_val or step is not what a run saves")
        self.history, self.evals, self.best_val, self.step = history, evals, best_val, step
        self.log(f"resuming from {path} at step {self.step}")
        rank, world = self.ranks.rank, self.ranks.world
        saved_world = m.get("world_size", 1)
        if not (isinstance(saved_world, int) and not isinstance(saved_world, bool) and saved_world >= 1):
            raise ValueError(f"world_size {saved_world!r} is not a number of ranks")
        if saved_world == world:
            self.batches.set_state(m["batch_rng_state"][rank] if world > 1 else m["batch_rng_state"])
        else:                       # the data is sharded differently: fresh generators, still seeded
            self.batches = self.batch_source(self.batches.data, self.model_config.block_size,
                                             self.cfg.batch_size, seed=[self.cfg.seed, rank, self.step])
            self.log(f"note: {path} was written by {saved_world} rank(s) and this run has {world}: "
                     "each rank draws new batches, so the losses will differ from an uninterrupted run")
        changed = [f"{k} {v} (saved {m['train_config'][k]})" for k, v in self.cfg.to_dict().items()
                   if k != "out_dir" and k in m["train_config"] and m["train_config"][k] != v]
        if changed:
            self.log("note: resuming with settings that differ from the checkpoint's: " + ", ".join(changed)
                     + "; so the losses may differ from those of an uninterrupted run")

    # ------------------------------------------------------------------ checkpoints
    def save(self, *names):
        """Write out_dir/<name> for each name on rank 0 (every rank calls it at the same step: the
        gather is collective); best.npz and last.npz of one evaluation share one check and one
        gather. Weights or moments that are not all finite are never saved: that checkpoint could
        not resume."""
        self.check_finite()
        meta = {"step": self.step, "model_family": family_of(self.model), "model_config": self.model_config.to_dict(),
                "train_config": self.cfg.to_dict(), "dtype": self.dtype.name, "tokenizer": self.meta["tokenizer"],
                "dataset": str(pathlib.Path(self.data_dir).resolve()), "rng_state": tg_random.get_rng_state(),
                "batch_rng_state": self.ranks.gather(self.batches.get_state()), "world_size": self.ranks.world,
                "history": self.history, "evals": self.evals, "best_val": self.best_val}
        if lora_layers(self.model):                 # the adapters' settings, to wrap the model again on load
            meta["lora"] = lora_record(self.model)
        if self.reference is not None:              # DPO: resuming needs the same reference
            meta["dpo_reference"] = self.reference
        self._on_main(lambda: [checkpoint.save(self.out_dir / name, self.model, self.optimizer, meta=meta)
                               for name in names])

    def check_finite(self):
        """Raise TrainingDiverged when a weight or an optimizer moment is infinite or NaN: one
        whole-array check per flat buffer, made at save time only (every rank holds the same values,
        so every rank raises together)."""
        opt = self.optimizer
        opt.sync_buffers()                                  # parameters whose data was replaced: into the buffers
        buffers = [("the weights", f.data) for f in opt.flat] + [(f"the optimizer's {name}", v)
                                                                 for s in opt.state for name, v in s.items()]
        bad = sorted({name for name, b in buffers if not bool(backend.get_array_module_of(b).isfinite(b).all())})
        if bad:
            raise TrainingDiverged(f"infinite or NaN values in {' and '.join(bad)} at step {self.step}: training "
                                   "stopped and nothing was saved (such a checkpoint could not resume). "
                                   + self._last_good())

    def _last_good(self):
        last = self.out_dir / "last.npz"
        return (f"The last good checkpoint is {last if last.exists() else '(none yet)'}; lower the learning "
                "rate or enable grad_clip")

    def evaluation_due(self):
        already = bool(self.evals) and self.evals[-1]["step"] == self.step    # resumed right after an eval
        return (self.step % self.cfg.eval_interval == 0 or self.step == self.cfg.max_iters) and not already

    def evaluate(self):
        """Estimate train and val loss; save best.npz when val improved, and last.npz."""
        t = time.perf_counter()
        losses = estimate_loss(self.model, self.data, self.model_config.block_size, self.cfg.batch_size,
                               self.cfg.eval_iters, self.cfg.seed, self.batch_source)
        self.evals.append({"step": self.step, **losses})
        scores = "".join(f" | {split} acc {losses[f'{split}_accuracy']:.4f}" for split in ("train", "val")
                         if f"{split}_accuracy" in losses)
        if all(math.isfinite(v) for v in losses.values()):
            improved = losses["val"] < self.best_val
            self.best_val = min(self.best_val, losses["val"])
            self.save(*(["best.npz"] if improved else []), "last.npz")
        # a perplexity is the exp of a mean cross-entropy; a batch source with its own objective (DPO) has none
        ppl = "" if hasattr(self.batches, "compute_loss") else f" | val ppl {math.exp(min(losses['val'], 700)):.2f}"
        self.log(f"eval  {self.step:5d} | train {losses['train']:.4f} | val {losses['val']:.4f}{ppl}{scores}")
        self.timing["eval"] += time.perf_counter() - t
        self._t_last, self._steps_since = time.perf_counter(), 0        # evaluation is not step time

    # ------------------------------------------------------------------ steps
    def changing_state(self):
        """Mark the part of a step that changes the batch RNG, weights and moments."""
        return _Flag(self, "_mid_step")

    def record(self, loss):
        """After a step: stop on a NaN loss, else count the step and keep its loss."""
        if not math.isfinite(loss):
            raise TrainingDiverged(f"the loss became {loss} at step {self.step}; training stopped. "
                                   + self._last_good())
        self.step += 1
        self._steps_since += 1
        self.history.append([self.step, loss])

    def stop_if_interrupted(self):
        self._interrupt.raise_if_requested(self.ranks)     # Ctrl-C and SIGTERM land here, between whole steps

    def _start_clock(self):
        cfg = self.cfg
        # tokens a step computes on: a full window per row, or what the batch source says a row holds on average
        row = getattr(self.batches, "mean_row_tokens", self.model_config.block_size)
        rows = getattr(self.batches, "rows_per_batch", cfg.batch_size)      # DPO: two answers per pair
        self.tokens_per_step = int(round(rows * row * self.ranks.world))
        per_token = getattr(self.model, "flops_per_token", None)
        if per_token is not None and hasattr(self.batches, "mean_row_tokens"):   # attention over rows this long
            per_token = functools.partial(per_token, seq_len=self.batches.mean_row_tokens)
        self.flops_per_step = per_token() * self.tokens_per_step if per_token else None
        if self.flops_per_step is not None and lora_layers(self.model):
            # 6 N per token counts forward (2 N), input gradients (2 N) and weight gradients (2 N); with
            # frozen weights the last is not computed (the adapters' own are tiny)
            self.flops_per_step *= 2 / 3
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
        rewards = getattr(self.batches, "last", None)       # DPO: how the step's pairs are ranked
        if rewards is not None:
            line += f" | reward acc {rewards['accuracy']:.2f} | margin {rewards['margin']:.3f}"
        self.log(line)
        self._t_last, self._steps_since = time.perf_counter(), 0

    # ------------------------------------------------------------------ start and end
    def __enter__(self):
        self._interrupt = DeferredInterrupt()
        self.interrupted = False
        return self

    def __exit__(self, kind, error, traceback):
        self._interrupt.restore()                            # also after a NaN or any other error
        try:
            return self._stop(kind)
        finally:
            self.lock.release()                              # the folder is free again, whatever happened

    def _stop(self, kind):
        if kind is None or not issubclass(kind, KeyboardInterrupt):
            return False
        path = self.out_dir / "last.npz"
        if self._mid_step:        # a second Ctrl-C inside a step: its half-updated state would break resume
            self.log(f"interrupted inside step {self.step + 1}: not saved, so {path} still resumes exactly")
            return False
        if self.ranks.world > 1 and not self._interrupt.agreed:
            # a second signal under MPI: this rank alone stopped here, the others are elsewhere, so a
            # save (a collective) would hang; last.npz keeps the last whole step
            self.log(f"interrupted again: not saved, so {path} still resumes exactly")
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
                "timing": self.timing, "rank": self.ranks.rank,
                # the shell's status for the signal that stopped the run (130 SIGINT, 143 SIGTERM), else 0
                "exit_status": (self._interrupt.exit_status or 130) if self.interrupted else 0}


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


def _check_batch_memory(batch_size, block_size, vocab_size, itemsize=4):
    """Refuse a batch whose logits alone (forward, softmax and gradient: three B x T x V arrays)
    need more than this machine's memory, before any batch is drawn (a batch_size of 10**12 in a
    checkpoint would otherwise fill the memory)."""
    memory = physical_memory()
    need = 3 * batch_size * block_size * vocab_size * itemsize
    if memory is not None and need > memory:
        raise ConfigError(f"batch_size={batch_size} x block_size={block_size} tokens need at least "
                          f"{need / 2 ** 30:,.1f} GiB for the logits over {vocab_size} tokens; this machine has "
                          f"{memory / 2 ** 30:,.1f} GiB: lower --batch-size")


def _silent(*args, **kwargs):
    pass
