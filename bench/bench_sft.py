"""Instruction tuning on the dates task (#28 point 2), measured: the greedy answers' exact match on
the held-out chats for each model named (SmolLM2 zero-shot, a tuned checkpoint), and the training
state LoRA keeps against full fine-tuning (gradient buffer and AdamW moments, from the optimizer's
own flat buffers).

    python -m tinygrad_lm prepare --corpus dates-chat
    python -m tinygrad_lm train --init-from smollm2 --preset smollm2-sft --dataset data/dates_chat --out-dir out_sft
    python bench/bench_sft.py smollm2 out_sft/best.npz [--val data/dates_chat/val.jsonl] [--memory]

Exact match: the reply (greedy, KV cache, up to 16 tokens, cut at <|im_end|>) equals the ISO date
whole; "contains" counts replies that hold it somewhere (a chatty right answer).
"""
import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from tinygrad_lm.data.chat import read_chat_jsonl  # noqa: E402
from tinygrad_lm.decoding.chat import answer_exact_match  # noqa: E402
from tinygrad_lm.nn.lora import get_peft_model  # noqa: E402
from tinygrad_lm.training.config import TrainConfig, make_optimizer  # noqa: E402
from tinygrad_lm.training.pretrained import load_chat_tokenizer, load_model_source  # noqa: E402


def exact_match(names, val):
    tok, template = load_chat_tokenizer("smollm2")
    chats = read_chat_jsonl(val)
    print(f"| model | exact match ({len(chats)} held-out dates) | contains the date | seconds |")
    print("| --- | --- | --- | --- |")
    for name in names:
        t = time.perf_counter()
        model = load_model_source(name).model
        right, replies = answer_exact_match(model, tok, template, chats, max_new_tokens=16)
        contains = sum(chat[-1]["content"] in reply for reply, chat in zip(replies, chats))
        print(f"| {name} | {right / len(chats):.3f} ({right}) | {contains / len(chats):.3f} | "
              f"{time.perf_counter() - t:.0f} |  e.g. {replies[:2]}", flush=True)


def memory():
    print("| training | trainable parameters | gradient buffer (MiB) | AdamW moments (MiB) |")
    print("| --- | --- | --- | --- |")
    for r in (8, 0):
        model = load_model_source("smollm2").model
        cfg = TrainConfig(lora_r=r, weight_decay=0.0)
        if r:
            get_peft_model(model, cfg.lora_config())
        opt = make_optimizer(model, cfg)
        grads = sum(f.grad.nbytes for f in opt.flat)
        moments = sum(v.nbytes for s in opt.state for v in s.values())
        n = sum(f.data.size for f in opt.flat)
        print(f"| {'LoRA r=8, all-linear' if r else 'full fine-tuning'} | {n:,} | {grads / 2 ** 20:.1f} | "
              f"{moments / 2 ** 20:.1f} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", help="smollm2, a checkpoint (.npz) or a GGUF file")
    ap.add_argument("--val", default="data/dates_chat/val.jsonl")
    ap.add_argument("--memory", action="store_true", help="also the training state of LoRA and of full fine-tuning")
    args = ap.parse_args()
    if args.models:
        exact_match(args.models, args.val)
    if args.memory:
        memory()


if __name__ == "__main__":
    main()
