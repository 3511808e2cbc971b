"""``python -m tinygrad_lm bench --preset NAME``: time training steps of tinygrad_lm and, when torch
is installed, of the same model in PyTorch eager; print both, the ratio and peak RSS.

Each engine runs in a process of its own (``python -m tinygrad_lm.training.bench '{"engine": ...}'``):
in one process OpenBLAS's and PyTorch's thread pools compete for the same cores and slow each
other down. Every round starts one fresh process per engine, alternating which goes first (round 1:
tinygrad_lm then PyTorch, round 2: PyTorch then tinygrad_lm, ...), so both see the same machine
load. Each process builds the model, runs the same warm-up, times its steps, prints one JSON line
(its pid, ms/step, last loss, peak RSS) and exits. The report gives the median step time per engine
and the median of the per-round ratios, with the BLAS NumPy uses and the OPENBLAS_* settings
(OPENBLAS_CORETYPE forces an older, slower kernel on some machines).

Both engines run the same work: forward, the loss, backward, gradient clipping when the preset
clips, and an AdamW step, on the same batches of the preset's shape, made from random tokens by the
family's own batch source. Every family is timed this way against the PyTorch twin its record
names (models/family.py ``torch_twin``: crosscheck/torch_gpt.py, torch_rnnlm.py, torch_bert.py
(transformers' BERT), torch_seq2seq.py (torch.nn.Transformer)); a family without one runs alone.
"""
import dataclasses
import importlib
import importlib.util
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

import numpy as np

from .. import backend, errors, optim
from .config import make_optimizer
from .flops import blas_description, openblas_env_description, openblas_runtime
from ..models import build, family_record
from .presets import PRESETS

OURS, TORCH = "tinygrad_lm", "PyTorch"


def peak_rss_mib():
    """This process's peak resident memory. On Linux from /proc (VmHWM): getrusage's ru_maxrss
    also counts the parent's memory from before the worker's exec, which Linux carries over."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration, ValueError):
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


def family_batches(model_config, cfg, seed=0, n=4):
    """n training batches of the preset's shape from random tokens, made by the family's own batch
    source (models/family.py): (x, y) for a next-token model, masked text for BERT, pairs for the
    encoder-decoder. Both engines run on these same NumPy batches."""
    family = family_record(model_config)
    rng = np.random.default_rng(seed)
    size = max(8 * cfg.batch_size * (model_config.block_size + 1), 10_000)
    tokens = (family.bench_tokens(model_config, size, rng) if family.bench_tokens is not None
              else rng.integers(0, model_config.vocab_size, size))
    source = family.batches(model_config)(tokens, model_config.block_size, cfg.batch_size, seed=seed)
    return [source.next() for _ in range(n)]


def _training_step(model, opt, batches, clip, clip_grad_norm, to_device, zero_grad):
    """One closure for both engines: forward on the next batch, backward, clipping when the preset
    clips, an optimizer step; and a function giving the last loss."""
    batches = [tuple(None if a is None else to_device(a) for a in batch) for batch in batches]
    params = list(model.parameters())
    state = {"i": 0, "loss": None}

    def step():
        batch = batches[state["i"] % len(batches)]
        state["i"] += 1
        _, loss = model(*batch)
        zero_grad()
        loss.backward()
        if clip:
            clip_grad_norm(params, clip)
        opt.step()
        state["loss"] = loss
    return step, lambda: state["loss"].item()


def build_ours(model_config, cfg, device="cpu", seed=0):
    """A closure running one training step of tinygrad_lm, its sync, and the last loss."""
    model = build(model_config).to(device)
    opt = make_optimizer(model, cfg)
    step, loss = _training_step(model, opt, family_batches(model_config, cfg, seed), cfg.grad_clip,
                                optim.clip_grad_norm_, lambda a: backend.to_device(a, device), opt.zero_grad)
    xp = backend.get_array_module(device)
    sync = (lambda: xp.cuda.Stream.null.synchronize()) if device == "cuda" else (lambda: None)
    return step, sync, loss


def torch_twin(model_config):
    """The function that builds the family's PyTorch twin (config, device) -> module, or None."""
    where = family_record(model_config).torch_twin
    if where is None:
        return None
    module, _, name = where.partition(":")
    return getattr(importlib.import_module(module), name)


def build_torch(model_config, cfg, device="cpu", seed=0):
    """The same for PyTorch eager: the family's twin (crosscheck/), torch.optim.AdamW with GPT-2's
    grouping (weight decay on matrices only), unless decay_all."""
    import torch                                         # optional: only in the PyTorch worker
    torch.manual_seed(seed)
    model = torch_twin(model_config)(model_config, device).train()
    if cfg.decay_all:
        groups = model.parameters()
    else:
        params = list(model.parameters())
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                            weight_decay=cfg.weight_decay)
    step, loss = _training_step(model, opt, family_batches(model_config, cfg, seed), cfg.grad_clip,
                                torch.nn.utils.clip_grad_norm_, lambda a: torch.as_tensor(np.ascontiguousarray(a)).to(device),
                                lambda: opt.zero_grad(set_to_none=True))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    return step, sync, loss


def worker(engine, preset, steps, warmup, device="cpu", seed=0, model=None):
    """What one worker process does: build, warm up, time `steps` steps; a dict for its JSON line.
    `model`: fields of the preset's model config to change (e.g. {"block_size": 128})."""
    if engine == OURS:
        backend.keep_freed_memory_in_the_heap()     # as training does (train() calls it too)
    model_config, cfg = _preset(preset, model)
    step, sync, loss = (build_ours if engine == OURS else build_torch)(model_config, cfg, device, seed)
    sec = _timed(step, steps, warmup, sync)
    if engine == OURS:
        threads = openblas_runtime().get("threads")
    else:
        import torch
        threads = torch.get_num_threads()
    return {"engine": engine, "pid": os.getpid(), "ms": sec * 1e3, "loss": loss(), "rss_mib": peak_rss_mib(),
            "threads": threads, "torch_loaded": "torch" in sys.modules}


def _preset(preset, model=None):
    model_config, cfg = PRESETS[preset]()
    return dataclasses.replace(model_config, **(model or {})), cfg


def _run_worker(engine, preset, steps, warmup, device, model=None):
    """Start one worker process and return its report."""
    spec = {"engine": engine, "preset": preset, "steps": steps, "warmup": warmup, "device": device, "model": model,
            "modules": defining_modules(preset)}
    cmd = [sys.executable, "-m", "tinygrad_lm.training.bench", json.dumps(spec)]
    root = str(pathlib.Path(__file__).resolve().parents[2])  # the folder holding tinygrad_lm/
    env = dict(os.environ, PYTHONPATH=root + (os.pathsep + os.environ["PYTHONPATH"]
                                               if os.environ.get("PYTHONPATH") else ""))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        raise _worker_error(engine, out.returncode, out.stderr)
    return json.loads(lines[-1])


def defining_modules(preset):
    """[(name, file)] of the modules outside tinygrad_lm that define the preset and its family (a
    test's or a user's): a worker is a fresh process, and imports them to know the family too."""
    if preset not in PRESETS:
        return []
    model_config, _ = PRESETS[preset]()
    family = family_record(model_config)
    found = []
    for obj in (PRESETS[preset], family.model, family.config):
        module = sys.modules.get(obj.__module__)
        where = getattr(module, "__file__", None)
        if module is not None and where and not module.__name__.startswith("tinygrad_lm") and \
                (module.__name__, where) not in found:
            found.append((module.__name__, where))
    return found


def import_defining_modules(modules):
    """In a worker: import each (name, file) from defining_modules, registering its family."""
    for name, where in modules:
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(name, where)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)


def _worker_error(engine, returncode, stderr):
    """A failed worker as one error carrying its last stderr line (the exception it died of): of
    that TinygradLMError class when the worker raised one (DeviceError: no GPU), else a DeviceError
    (this machine could not run it). The command line prints it as one `error:` line."""
    last = next((ln.strip() for ln in reversed(stderr.splitlines()) if ln.strip()), "no output")
    name, _, message = last.partition(": ")
    cls = getattr(errors, name.rsplit(".", 1)[-1], None) if message and " " not in name else None
    if not (isinstance(cls, type) and issubclass(cls, errors.TinygradLMError)):
        cls, message = errors.DeviceError, last
    return cls(f"bench worker {engine} failed (exit {returncode}): {message}")


def run_bench(preset, steps=50, warmup=5, device="cpu", compare_torch=True, print_fn=print, rounds=5, model=None):
    """Time `steps` training steps split over `rounds` rounds (max(steps // rounds, 1) per process,
    each after `warmup` untimed steps), one fresh process per engine and round, alternating which
    engine goes first; report the median step times and the median per-round ratio. `model`
    changes fields of the preset's model config (bench/bench_rnn.py: {"block_size": T}).

    Returns {"preset", "ours_ms", "rss_mib" (tinygrad_lm's peak RSS), "rss" (per engine), "pids"
    (per engine, one per round)} and, with PyTorch, "torch_ms" and "ratio"."""
    model_config, cfg = _preset(preset, model)
    family = family_record(model_config)
    engines = [OURS]
    if compare_torch:
        if family.torch_twin is None:
            print_fn(f"PyTorch     : the {family.name} family has no PyTorch twin (models/family.py torch_twin), "
                     "tinygrad_lm alone")
        elif importlib.util.find_spec("torch") is None:
            print_fn("PyTorch     : not installed, no reference (pip install torch); tinygrad_lm alone")
        else:
            engines.append(TORCH)
    rounds = max(int(rounds), 1)
    chunk = max(steps // rounds, 1)
    print_fn(f"BLAS        : {blas_description()}")
    print_fn(f"environment : {openblas_env_description()}")
    tokens = cfg.batch_size * model_config.block_size
    n_params = model_config.num_parameters_estimate()       # by arithmetic: no model built in this process
    size = f"{n_params:,} parameters" if n_params is not None else "size not estimated"
    print_fn(f"preset {preset} ({family.name}) on {device}: {size}, batch {cfg.batch_size} x block "
             f"{model_config.block_size}; {rounds} round{'s' if rounds > 1 else ''}, each engine in a fresh "
             f"process per round (order alternating), {warmup} warm-up + {chunk} timed steps per process")
    reports = {name: [] for name in engines}
    for r in range(rounds):
        for name in (engines if r % 2 == 0 else engines[::-1]):
            reports[name].append(_run_worker(name, preset, chunk, warmup, device, model))
    ms = {name: [rep["ms"] for rep in reps] for name, reps in reports.items()}
    median = {name: float(np.median(v)) for name, v in ms.items()}
    rss = {name: max(rep["rss_mib"] for rep in reps) for name, reps in reports.items()}
    for name, reps in reports.items():
        last = reps[-1]
        threads = f", {last['threads']} threads" if last.get("threads") else ""
        print_fn(f"{name:12s}: {median[name]:8.2f} ms/step (median)  {tokens / median[name]:8.1f}k tok/s  "
                 f"(loss {last['loss']:.3f}{threads}; rounds: {', '.join(f'{v:.1f}' for v in ms[name])} ms)")
    print_fn("peak RSS: " + ", ".join(f"{name} {v:.0f} MiB" for name, v in rss.items()) + " (each in its own process)")
    result = {"preset": preset, "ours_ms": median[OURS], "rss_mib": rss[OURS], "rss": rss,
              "pids": {name: [rep["pid"] for rep in reps] for name, reps in reports.items()},
              "torch_loaded_in_ours": any(rep["torch_loaded"] for rep in reports[OURS])}
    if TORCH in median:
        ratios = [a / b for a, b in zip(ms[OURS], ms[TORCH])]
        result.update(torch_ms=median[TORCH], ratio=float(np.median(ratios)))
        goal = f"; {family.bench_goal}" if family.bench_goal else ""
        print_fn(f"ratio tinygrad_lm / PyTorch step time: median {result['ratio']:.2f} over {rounds} rounds "
                 f"(min {min(ratios):.2f}, max {max(ratios):.2f}{goal})")
    return result


if __name__ == "__main__":
    # a worker process: its one argument is the JSON spec that _run_worker wrote
    spec = json.loads(sys.argv[1])
    import_defining_modules(spec.get("modules", []))
    print(json.dumps(worker(spec["engine"], spec["preset"], spec["steps"], spec["warmup"], spec["device"],
                            model=spec.get("model"))), flush=True)
