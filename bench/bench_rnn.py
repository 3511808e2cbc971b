"""The LSTM against the atpesc GPT at equal parameter count (BENCHMARKS.md, "Before attention").

    python bench/bench_rnn.py curves --max-iters 1500     # validation loss at equal steps and equal time
    python bench/bench_rnn.py seqlen                       # training step time against T = 32..256
    python bench/bench_rnn.py torch                        # our LSTM (fused) vs torch.nn.LSTM, ms/step

curves: trains each preset through the command line (`python -m tinygrad_lm train --preset P`),
one after the other, each with OPENBLAS_NUM_THREADS as set here, and reads its log: each `eval`
line's validation loss, and the training time up to it (the sum of the logged ms/step over the
steps before it; evaluation is not counted). It prints the validation loss of every preset at the
same steps, and at the same training-time budgets (the last evaluation inside each budget).

seqlen and torch reuse tinygrad_lm/training/bench.py: each engine in a fresh process per round, rounds
alternating. seqlen times our engine only (add --torch for PyTorch beside it) on random batches of
the preset's shape with block_size = T.

Every part prints the machine's load (`uptime`) first: the numbers mean little on a busy machine.
"""
import argparse
import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import dataclasses  # noqa: E402

import numpy as np  # noqa: E402

import tinygrad_lm as tg  # noqa: E402
from tinygrad_lm.training.bench import run_bench  # noqa: E402
from tinygrad_lm.teaching.gradient_flow import sequential_depth  # noqa: E402
from tinygrad_lm.models import RNNLMConfig, build  # noqa: E402
from tinygrad_lm.training.presets import PRESETS  # noqa: E402

STEP = re.compile(r"^step\s+(\d+) \| loss ([\d.]+) \| lr \S+ \|\s+([\d.]+) ms/step")
EVAL = re.compile(r"^eval\s+(\d+) \| train ([\d.]+) \| val ([\d.]+)")


def load():
    return f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}" if os.path.exists("/proc/loadavg") \
        else "load average unknown"


def parse_log(text):
    """[(step, train-time seconds before it, train loss, val loss)] from a `train` command's log."""
    evals, seconds, last_step = [], 0.0, 0
    for line in text.splitlines():
        m = STEP.match(line)
        if m:
            step, ms = int(m.group(1)), float(m.group(3))
            seconds += (step - last_step) * ms / 1e3          # the logged ms/step covers the steps since the last line
            last_step = step
            continue
        m = EVAL.match(line)
        if m:
            evals.append((int(m.group(1)), seconds, float(m.group(2)), float(m.group(3))))
    return evals


def train_run(preset, max_iters, eval_interval, eval_iters, out_root, dataset, extra):
    out = pathlib.Path(out_root) / preset
    cmd = [sys.executable, "-m", "tinygrad_lm", "train", "--preset", preset, "--max-iters", str(max_iters),
           "--eval-interval", str(eval_interval), "--eval-iters", str(eval_iters), "--log-interval", "50",
           "--out-dir", str(out), "--samples", "0", *(["--dataset", dataset] if dataset else []), *extra]
    if (out / "last.npz").exists():
        for name in ("last.npz", "best.npz"):               # a fresh run each time: not a resume
            (out / name).unlink(missing_ok=True)
    print("$ " + " ".join(cmd[1:]).replace("-m tinygrad_lm", "python -m tinygrad_lm"), flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise SystemExit(f"{preset} failed:\n{done.stderr}")
    evals = parse_log(done.stdout)
    print(f"  {preset}: {len(evals)} evaluations, {evals[-1][1]:.1f} s of training, final val {evals[-1][3]:.4f}")
    return evals


def curves(args):
    print(f"curves: {', '.join(args.presets)}, {args.max_iters} steps each; {load()}")
    runs = {p: train_run(p, args.max_iters, args.eval_interval, args.eval_iters, args.out, args.dataset, args.extra)
            for p in args.presets}
    names = list(runs)
    print("\nvalidation loss at equal steps")
    print("| step | " + " | ".join(names) + " |")
    print("| ---: | " + " | ".join("---:" for _ in names) + " |")
    steps = sorted(set.intersection(*(set(e[0] for e in evals) for evals in runs.values())))
    for step in steps:
        vals = [next(e[3] for e in runs[n] if e[0] == step) for n in names]
        print(f"| {step} | " + " | ".join(f"{v:.4f}" for v in vals) + " |")
    print("\ntraining time (s) per run: " + ", ".join(f"{n} {runs[n][-1][1]:.1f}" for n in names))
    print("\nvalidation loss at equal training time (the last evaluation within the budget; step in brackets)")
    print("| seconds | " + " | ".join(names) + " |")
    print("| ---: | " + " | ".join("---:" for _ in names) + " |")
    shortest = min(runs[n][-1][1] for n in names)
    for frac in (0.25, 0.5, 0.75, 1.0):
        budget = shortest * frac
        cells = []
        for n in names:
            inside = [e for e in runs[n] if e[1] <= budget + 1e-9]
            cells.append(f"{inside[-1][3]:.4f} ({inside[-1][0]})" if inside else "-")
        print(f"| {budget:.1f} | " + " | ".join(cells) + " |")
    print(f"done; {load()}")


def seqlen(args):
    print(f"seqlen: T = {args.T}; {load()}")
    rows = {}
    for T in args.T:
        for preset in args.presets:
            lines = []
            result = run_bench(preset, steps=args.steps, warmup=args.warmup, rounds=args.rounds,
                               compare_torch=args.torch, print_fn=lines.append, model={"block_size": T})
            rows[(T, preset)] = result
            print(f"  T={T:4d} {preset:10s}: {result['ours_ms']:8.2f} ms/step"
                  + (f" (PyTorch {result['torch_ms']:.2f})" if "torch_ms" in result else ""), flush=True)
    print("\n| T | " + " | ".join(f"{p} ms/step" for p in args.presets) + " | " +
          " | ".join(f"{p} us/token" for p in args.presets) + " |")
    print("| ---: |" + " ---: |" * (2 * len(args.presets)))
    for T in args.T:
        ms = [rows[(T, p)]["ours_ms"] for p in args.presets]
        tokens = [PRESETS[p]()[1].batch_size * T for p in args.presets]
        print(f"| {T} | " + " | ".join(f"{m:.1f}" for m in ms) + " | " +
              " | ".join(f"{m * 1e3 / n:.1f}" for m, n in zip(ms, tokens)) + " |")
    print("\nlongest chain of ops to the loss (composite ops: what must run one after another)")
    print("| T | " + " | ".join(args.presets) + " |")
    print("| ---: |" + " ---: |" * len(args.presets))
    for T in args.T:
        print(f"| {T} | " + " | ".join(str(depth(p, T)) for p in args.presets) + " |")
    print(f"done; {load()}")


def depth(preset, T):
    """sequential_depth of one forward pass + loss of the preset's model at block_size T, built
    from composite ops (an RNN's fused op would count as one)."""
    model_config, _ = PRESETS[preset]()
    model_config = dataclasses.replace(model_config, block_size=T, **(
        {"fused": False} if isinstance(model_config, RNNLMConfig) else {}))
    tg.manual_seed(0)
    x = np.zeros((2, T), dtype=np.int64)
    _, loss = build(model_config)(x, x)
    return sequential_depth(loss)


def torch_vs_ours(args):
    print(f"torch: {', '.join(args.presets)}; {load()}")
    for preset in args.presets:
        run_bench(preset, steps=args.steps, warmup=args.warmup, rounds=args.rounds, compare_torch=True)
    print(f"done; {load()}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    p = sub.add_parser("curves", help="validation loss at equal steps and equal training time")
    p.add_argument("--presets", nargs="+", default=["atpesc", "char-lstm"])
    p.add_argument("--max-iters", type=int, default=1500)
    p.add_argument("--eval-interval", type=int, default=250)
    p.add_argument("--eval-iters", type=int, default=100)
    p.add_argument("--out", default="out_bench_rnn")
    p.add_argument("--dataset", default=None)
    p.add_argument("extra", nargs="*", help="more flags for every train command (after --)")
    p.set_defaults(run=curves)
    p = sub.add_parser("seqlen", help="training step time against the sequence length")
    p.add_argument("--presets", nargs="+", default=["atpesc", "char-lstm"])
    p.add_argument("--T", nargs="+", type=int, default=[32, 64, 128, 256])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--torch", action="store_true", help="time PyTorch beside ours")
    p.set_defaults(run=seqlen)
    p = sub.add_parser("torch", help="our LSTM (fused) against torch.nn.LSTM, each in its own process")
    p.add_argument("--presets", nargs="+", default=["char-lstm"])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rounds", type=int, default=5)
    p.set_defaults(run=torch_vs_ours)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
