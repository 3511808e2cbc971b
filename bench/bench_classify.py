"""Sequence classification with a causal LM (#28 point 4), measured: who says this speech, of the
four speakers of tiny Shakespeare with the most speeches (balanced; data/speakers.py), by
SmolLM2-135M-Instruct with a head on the last real token (LlamaForSequenceClassification),
fine-tuned with LoRA (the adapters and the new head train) or fully; held-out accuracy against
the majority class and a bag of characters (logistic regression on character frequencies).

    python bench/bench_classify.py [--steps 120] [--batch-size 16] [--full] [--lr 1e-3]

The loop is the library's own training step (training.loop.train_step), AdamW, cosine decay.
"""
import argparse
import math
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import tinygrad_lm as tg  # noqa: E402
from tinygrad_lm import backend  # noqa: E402
from tinygrad_lm.data.speakers import (ClassificationBatches, bag_of_characters_baseline, encode_examples,  # noqa: E402
                                       majority_baseline, speaker_task)
from tinygrad_lm.data.text import read_utf8, shakespeare  # noqa: E402
from tinygrad_lm.models import LlamaForCausalLM, LlamaForSequenceClassification  # noqa: E402
from tinygrad_lm.nn import eval_mode  # noqa: E402
from tinygrad_lm.nn.lora import LoraConfig, get_peft_model  # noqa: E402
from tinygrad_lm.tensor import no_grad  # noqa: E402
from tinygrad_lm.training.config import TrainConfig, make_optimizer  # noqa: E402
from tinygrad_lm.training.loop import train_step  # noqa: E402
from tinygrad_lm.training.pretrained import load_chat_tokenizer  # noqa: E402


@no_grad()
def accuracy(model, examples, pad_id, rows=32):
    batches = ClassificationBatches(examples, rows, pad_id)
    right = 0
    with eval_mode(model):
        for start in range(0, len(examples), rows):
            batch = batches.rows(range(start, min(start + rows, len(examples))))
            right += batches.accuracy(batch, model(*batch[:2])[0])[0]
    return right / len(examples)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--full", action="store_true", help="fine-tune every weight (default: LoRA r=8, all-linear)")
    ap.add_argument("--max-chars", type=int, default=200)
    args = ap.parse_args()

    backend.keep_freed_memory_in_the_heap()                 # as training.loop.train does
    task = speaker_task(read_utf8(shakespeare()), n_speakers=4, max_chars=args.max_chars)
    print(f"task: {len(task.names)} speakers ({', '.join(task.names)}), {len(task.train)} training and "
          f"{len(task.val)} held-out speeches")
    t = time.perf_counter()
    baselines = {"majority class": majority_baseline(task.train, task.val),
                 "bag of characters": bag_of_characters_baseline(task.train, task.val)}
    print(f"baselines ({time.perf_counter() - t:.1f} s): " + ", ".join(f"{k} {v:.3f}" for k, v in baselines.items()))

    tok, _ = load_chat_tokenizer("smollm2")
    pad_id = tok.token_id("<|endoftext|>")
    train, val = encode_examples(tok, task.train), encode_examples(tok, task.val)
    tg.manual_seed(0)
    model = LlamaForSequenceClassification.from_causal_lm(LlamaForCausalLM.from_pretrained("smollm2"), len(task.names))
    if not args.full:
        get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="SEQ_CLS"))
    cfg = TrainConfig(learning_rate=args.lr, weight_decay=0.0)
    optimizer = make_optimizer(model, cfg)
    trainable = sum(int(f.data.size) for f in optimizer.flat)
    zero = accuracy(model, val, pad_id)
    print(f"{'full fine-tuning' if args.full else 'LoRA r=8 + head'}: {trainable:,} trainable parameters; "
          f"held-out accuracy before training (random head) {zero:.3f}", flush=True)
    batches = ClassificationBatches(train, args.batch_size, pad_id, seed=1)
    t, losses = time.perf_counter(), []
    warmup = 10
    for step in range(args.steps):
        lr = args.lr * min(1, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        losses.append(train_step(model, optimizer, batches.next(), lr, grad_clip=1.0))
        if (step + 1) % 20 == 0:
            print(f"step {step + 1:4d} | loss {np.mean(losses[-20:]):.4f} | "
                  f"{(time.perf_counter() - t) / (step + 1):.2f} s/step", flush=True)
    elapsed = time.perf_counter() - t
    after = accuracy(model, val, pad_id)
    print(f"| model | held-out accuracy ({len(val)} speeches, 4 speakers) |")
    print("| --- | --- |")
    for name, value in baselines.items():
        print(f"| {name} | {value:.3f} |")
    print(f"| SmolLM2-135M + head, {'full' if args.full else 'LoRA r=8'}, {args.steps} steps of {args.batch_size} "
          f"({elapsed:.0f} s) | {after:.3f} |")


if __name__ == "__main__":
    main()
