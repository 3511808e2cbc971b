"""The training loop, as a reader expects it:

    for each step:  batch -> forward -> loss -> backward -> (average over ranks) -> clip -> step -> log

``train_step`` is one step and ``train`` the loop around it. Everything else a real run needs,
the output folder, data, MPI ranks, resuming, evaluation, checkpoints, the log line, and stopping
cleanly on Ctrl-C or SIGTERM, is the ``Run`` object's (runs.py), which the loop calls.

    from tinygrad_lm.training.presets import PRESETS
    from tinygrad_lm.training.loop import train
    model_config, train_config = PRESETS["atpesc"]()
    result = train(model_config, train_config, data_dir="data/shakespeare_char")

Any model family trains here: ``model(*batch)`` must return ``(logits, loss)``, and the batch
source (data.CausalLMBatches for language models) must give ``batch = batches.next()``. A batch
source with an objective of its own (data.PreferenceBatches: DPO) has ``batches.compute_loss(model,
batch) -> (logits, loss)``, which the step calls instead.
"""
import dataclasses
import pathlib

from .. import backend, optim
from .config import TrainConfig, make_optimizer, make_schedule  # noqa: F401  (what a training script needs)
from ..data.text import CausalLMBatches  # noqa: F401  (the default batch source)
from ..errors import ConfigError
from .evaluate import batch_losses, estimate_loss, split_loss  # noqa: F401
from .runs import Run


def train_step(model, optimizer, batch, lr, grad_clip=0.0, average_gradients=None, compute_loss=None):
    """One optimizer step on one batch; returns the loss as a Python float. compute_loss(model,
    batch) -> (logits, loss): a batch source's own objective (DPO's), instead of model(*batch)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    _, loss = model(*batch) if compute_loss is None else compute_loss(model, batch)   # forward: the mean loss
    optimizer.zero_grad()
    loss.backward()                             # d loss / d every parameter, into the flat .grad buffer
    if average_gradients is not None:
        average_gradients(optimizer)            # data parallel: the mean gradient over all ranks
    if grad_clip:
        optim.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()                            # AdamW: moments, bias correction, decay, update
    return loss.item()


def train(model_config, cfg, data_dir, init_from="scratch", log=print, on_step=None, model=None,
          distributed=False, batch_source=None, resume_checkpoint=None):
    """Train and return {'history', 'evals', 'best_val', 'step', 'out_dir', 'interrupted', 'model', ...}.

    init_from: "scratch", "resume" (continue out_dir/last.npz exactly, with the checkpoint's model;
    settings in `cfg` that differ from the saved ones are logged), or a GPT-2 directory / checkpoint
    to fine-tune (a path, or what training.setup.plan_run resolved). batch_source: the class (or
    factory) of the training batches; None: the family's (models/family.py: BERT's masked tokens,
    the encoder-decoder's pairs), else data.CausalLMBatches. resume_checkpoint: last.npz when the
    caller has loaded it already (plan_run), so it is read once.
    on_step(step, loss) runs after each step (tests use it to interrupt a run).
    Ctrl-C or SIGTERM saves out_dir/last.npz after the current step and returns with
    result['interrupted'] True; a second one inside a step raises KeyboardInterrupt at once and keeps
    the last whole checkpoint. A NaN loss raises TrainingDiverged.
    """
    backend.keep_freed_memory_in_the_heap()     # GELU's backward is 6x slower without (BENCHMARKS.md)
    schedule = make_schedule(cfg)               # a schedule that contradicts itself stops before the Run
    run = Run(model_config, cfg, data_dir, init_from=init_from, log=log, model=model,
              distributed=distributed, batch_source=batch_source, resume_checkpoint=resume_checkpoint)
    with run:                                   # Ctrl-C / SIGTERM: save a whole step and return
        while True:
            if run.evaluation_due():
                run.evaluate()                  # train/val loss, best.npz and last.npz
            if run.step >= cfg.max_iters:
                break
            lr = schedule(run.step)
            with run.changing_state():          # batch RNG, weights and moments change in here
                loss = train_step(run.model, run.optimizer, run.batches.next(), lr, cfg.grad_clip,
                                  run.ranks.average_gradients, getattr(run.batches, "compute_loss", None))
                run.record(loss)                # NaN guard, step + 1, history
            if on_step is not None:
                on_step(run.step, loss)
            run.stop_if_interrupted()
            run.log_step(loss, lr)              # loss, lr, ms/step, tokens/s, MFU
    return run.result()


def sweep(name, values, model_config, train_config, data_dir, log=print):
    """The tutorial's homework: train once per value of one hyperparameter (a field of the model
    config or of TrainConfig), each run in its own out_dir/<name>=<value>. Returns {value: evals};
    viz.plot_sweep(results, name, path) draws the val perplexity curves together."""
    results = {}
    for value in values:
        mc, tc = model_config, train_config
        if hasattr(mc, name):
            mc = dataclasses.replace(mc, **{name: value})
        elif hasattr(tc, name):
            tc = dataclasses.replace(tc, **{name: value})
        else:
            raise ConfigError(f"sweep: {name!r} is neither a {type(mc).__name__} nor a TrainConfig field")
        tc = dataclasses.replace(tc, out_dir=str(pathlib.Path(train_config.out_dir) / f"{name}={value}"))
        log(f"--- {name} = {value}")
        results[value] = train(mc, tc, data_dir, log=log)["evals"]
    return results
