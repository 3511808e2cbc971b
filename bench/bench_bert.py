"""BERT (encoder-only) results for BENCHMARKS.md, "BERT (encoder-only)".

    python bench/bench_bert.py speed --rounds 6 --steps 60     # bert-mini training step: ours vs transformers
    python bench/bench_bert.py quality --mlm out/bert-mini/best.npz --gpt out/gpt-mini/best.npz \
        --nsp out/bert-nsp/best.npz --nsp-scratch out/bert-nsp-scratch/best.npz

speed: one training step of the bert-mini preset (forward, masked-LM cross-entropy, backward,
clipping, AdamW) on masked batches of its shape, in tinygrad_lm (models/bert_tasks.py BertMLM)
and in transformers' BertForMaskedLM (same config, sdpa attention, torch.optim.AdamW). As
tinygrad_lm/training/bench.py does: each engine in a fresh process per round, the order alternating, the
median step time per engine and the median of the per-round ratios. --threads sets both engines'
thread count (OPENBLAS_NUM_THREADS for NumPy's BLAS, torch.set_num_threads for PyTorch);
--hidden-act gelu_new times both with the tanh GELU instead of BERT's exact (erf) one.

quality: on the validation split (the last 10% of tiny Shakespeare), over --batches fixed batches:
the masked-LM checkpoint's masked-token loss and accuracy; a unigram baseline on the same masked
positions (the training split's character frequencies: its cross-entropy, and the accuracy of
always guessing the most frequent character); a same-size causal GPT's next-token loss and
accuracy (every position of its val blocks); and next-sentence accuracy of the fine-tuned and the
from-scratch classifiers against chance (50%).

Every part prints the machine's load (`uptime`) first.
"""
import argparse
import dataclasses
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import numpy as np  # noqa: E402

from tinygrad_lm.training import checkpoint
from tinygrad_lm import optim  # noqa: E402
from tinygrad_lm.training.bench import _timed, peak_rss_mib  # noqa: E402
from tinygrad_lm.training.config import make_optimizer  # noqa: E402
from tinygrad_lm.data.text import load_split  # noqa: E402
from tinygrad_lm.training.flops import blas_description  # noqa: E402
from tinygrad_lm.models import build  # noqa: E402
from tinygrad_lm.training.presets import PRESETS  # noqa: E402
from tinygrad_lm.tensor import no_grad  # noqa: E402

OURS, HF = "tinygrad_lm", "transformers"


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# ---------------------------------------------------------------------------- speed
def _batches(config, batch_size, seed=0, n=4):
    """n masked-LM batches of the preset's shape, drawn from random text tokens."""
    text = np.random.default_rng(seed).integers(0, config.pad_token_id, 100_000)
    source = config.batch_source()(text, config.block_size, batch_size, seed=seed)
    return [source.next() for _ in range(n)]


def _ours(config, cfg, batches):
    model = build(config)
    opt = make_optimizer(model, cfg)
    params = model.parameters()
    state = {"i": 0}

    def step():
        ids, _, _, labels = batches[state["i"] % len(batches)]
        state["i"] += 1
        _, loss = model(ids, labels=labels)
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        state["loss"] = loss.item()
    return step, state


def _transformers(config, cfg, batches):
    import torch                                            # optional: only in this worker
    import transformers
    torch.manual_seed(0)
    hf_config = transformers.BertConfig(**{k: v for k, v in config.to_dict().items()
                                           if k not in ("cls_token_id", "sep_token_id", "mask_token_id",
                                                        "line_break_id", "classifier_dropout")})
    model = transformers.BertForMaskedLM(hf_config).train()
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
    tensors = [(torch.tensor(ids), torch.tensor(labels)) for ids, _, _, labels in batches]
    state = {"i": 0}

    def step():
        ids, labels = tensors[state["i"] % len(tensors)]
        state["i"] += 1
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        state["loss"] = loss.item()
    return step, state


def _config(hidden_act=None):
    config, cfg = PRESETS["bert-mini"]()
    return (dataclasses.replace(config, hidden_act=hidden_act) if hidden_act else config), cfg


def worker(engine, steps, warmup, threads, hidden_act=None):
    if engine == HF:
        import torch
        torch.set_num_threads(threads)
    config, cfg = _config(hidden_act)
    batches = _batches(config, cfg.batch_size)
    step, state = (_ours if engine == OURS else _transformers)(config, cfg, batches)
    sec = _timed(step, steps, warmup)
    return {"engine": engine, "pid": os.getpid(), "ms": sec * 1e3, "loss": state["loss"], "rss_mib": peak_rss_mib(),
            "torch_loaded": "torch" in sys.modules}


def speed(args):
    print(uptime())
    print(f"BLAS: {blas_description()}; {args.threads} thread(s) per engine")
    config, cfg = _config(args.hidden_act)
    chunk = max(args.steps // args.rounds, 1)
    print(f"bert-mini: batch {cfg.batch_size} x {config.block_size}, hidden {config.hidden_size}, "
          f"{config.num_hidden_layers} layers, {config.hidden_act}; {args.rounds} rounds, each engine in a fresh "
          f"process per round (order alternating), {args.warmup} warm-up + {chunk} timed steps per process")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS=str(args.threads),
               OMP_NUM_THREADS=str(args.threads))
    reports = {OURS: [], HF: []}
    for r in range(args.rounds):
        for engine in ((OURS, HF) if r % 2 == 0 else (HF, OURS)):
            spec = json.dumps({"engine": engine, "steps": chunk, "warmup": args.warmup, "threads": args.threads,
                               "hidden_act": args.hidden_act})
            out = subprocess.run([sys.executable, __file__, "worker", spec], capture_output=True, text=True, env=env)
            if out.returncode:
                sys.exit(f"{engine} worker failed: {out.stderr.strip().splitlines()[-1:]}")
            reports[engine].append(json.loads(out.stdout.strip().splitlines()[-1]))
    ms = {e: [rep["ms"] for rep in reps] for e, reps in reports.items()}
    tokens = cfg.batch_size * config.block_size
    for e in (OURS, HF):
        med = float(np.median(ms[e]))
        rounds = ", ".join(f"{v:.1f}" for v in ms[e])
        print(f"{e:12s}: {med:8.2f} ms/step (median)  {tokens / med:7.1f}k tok/s  loss {reports[e][-1]['loss']:.3f}  "
              f"peak RSS {max(r['rss_mib'] for r in reports[e]):.0f} MiB  rounds: {rounds}")
    ratios = [a / b for a, b in zip(ms[OURS], ms[HF])]
    assert not any(r["torch_loaded"] for r in reports[OURS]), "torch was imported in tinygrad_lm's worker"
    print(f"ratio tinygrad_lm / transformers step time: median {np.median(ratios):.2f} over {args.rounds} rounds "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f}; goal <= 1.0, floor <= 1.25)")
    print(uptime())


# ---------------------------------------------------------------------------- quality
@no_grad()
def _scores(model, source, n):
    """Mean loss, accuracy and every batch over n batches of `source` (model in eval mode)."""
    model.eval()
    losses, right, count, batches = [], 0, 0, []
    for _ in range(n):
        batch = source.next()
        logits, loss = model(*batch)
        losses.append(loss.item())
        r, c = source.accuracy(batch, logits)
        right, count = right + r, count + c
        batches.append(batch)
    return float(np.mean(losses)), right / count, batches


def quality(args):
    print(uptime())
    model, _, ckpt = checkpoint.load_model(args.mlm)
    data_dir = ckpt["meta"]["dataset"]
    train_tokens, val = load_split(data_dir, "train"), load_split(data_dir, "val")
    config, B = model.config, 32
    print(f"data {data_dir}: val {len(val):,} tokens; {args.batches} batches of {B} per figure; "
          f"masked LM {args.mlm} (step {ckpt['meta']['step']})")
    loss, acc, batches = _scores(model, config.batch_source()(val, config.block_size, B, seed=args.seed), args.batches)
    print(f"masked LM  (bert-mini) : masked-token loss {loss:.4f} | accuracy {acc:.4f}")
    counts = np.bincount(np.asarray(train_tokens), minlength=config.pad_token_id)[:config.pad_token_id] + 1
    logp = np.log(counts / counts.sum())
    targets = np.concatenate([b[3][b[3] != -100] for b in batches])
    print(f"unigram (train chars)  : masked-token loss {-logp[targets].mean():.4f} | accuracy "
          f"{(targets == counts.argmax()).mean():.4f}  ({len(targets):,} masked positions)")
    if args.gpt:
        gpt, _, gckpt = checkpoint.load_model(args.gpt)
        gpt.eval()
        T = gpt.config.block_size
        rng = np.random.default_rng(args.seed)
        losses, right, count = [], 0, 0
        with no_grad():
            for _ in range(args.batches):
                starts = rng.integers(0, len(val) - T - 1, B)
                window = np.asarray(val[starts[:, None] + np.arange(T + 1)], dtype=np.int64)
                logits, l = gpt(window[:, :-1], window[:, 1:])
                losses.append(l.item())
                right += int((logits.numpy().argmax(-1) == window[:, 1:]).sum())
                count += window[:, 1:].size
        print(f"causal GPT (same size) : next-token loss {np.mean(losses):.4f} | accuracy {right / count:.4f}  "
              f"({args.gpt}, step {gckpt['meta']['step']}, {gpt.num_parameters():,} parameters against "
              f"bert-mini's {model.num_parameters():,})")
    for name, path in (("fine-tuned from MLM", args.nsp), ("from scratch", args.nsp_scratch)):
        if path:
            clf, _, c = checkpoint.load_model(path)
            source = clf.config.batch_source()(val, clf.config.block_size, B, seed=args.seed)
            loss, acc, _ = _scores(clf, source, args.batches)
            print(f"next sentence, {name:19s}: loss {loss:.4f} | accuracy {acc:.4f} (chance 0.5; {path}, "
                  f"step {c['meta']['step']})")
    print(uptime())


def main():
    if sys.argv[1:2] == ["worker"]:
        spec = json.loads(sys.argv[2])
        print(json.dumps(worker(spec["engine"], spec["steps"], spec["warmup"], spec["threads"], spec["hidden_act"])),
              flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    p = sub.add_parser("speed")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--hidden-act", choices=("gelu", "gelu_new"), help="change the preset's activation in both engines")
    p = sub.add_parser("quality")
    p.add_argument("--mlm", required=True)
    p.add_argument("--gpt")
    p.add_argument("--nsp")
    p.add_argument("--nsp-scratch")
    p.add_argument("--batches", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    (speed if args.part == "speed" else quality)(args)


if __name__ == "__main__":
    main()
