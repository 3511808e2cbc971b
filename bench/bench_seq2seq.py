"""Encoder-decoder (seq2seq-dates) speed for BENCHMARKS.md, "Encoder-decoder: dates".

    python bench/bench_seq2seq.py speed --rounds 6 --steps 60     # training step: ours vs torch.nn.Transformer
    python bench/bench_seq2seq.py decode --checkpoint out/dates/best.npz   # greedy tokens/s, cache on and off

speed: one training step of the seq2seq-dates preset (forward, cross-entropy without padding,
backward, clipping, AdamW) on the same batches of date pairs, in tinygrad_lm (models/seq2seq.py)
and in PyTorch (the same model written on torch.nn.Transformer: shared embedding * sqrt(d),
sinusoidal positions, pre-LayerNorm, key padding masks, causal mask, tied head, torch.optim.AdamW).
As tinygrad_lm/training/bench.py does: each engine in a fresh process per round, the order alternating, the
median step time per engine and the median of the per-round ratios; --threads sets both engines'
threads (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, torch.set_num_threads).

decode: greedy decoding of the held-out dates (batch 256) with the decoder's KV cache and
cross-attention K/V projected once, and with a full recompute every step; output tokens/s.
Every part prints the machine's load (`uptime`) first.
"""
import argparse
import json
import math
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import numpy as np  # noqa: E402

from tinygrad_lm.training import checkpoint
from tinygrad_lm.data import dates
from tinygrad_lm import optim  # noqa: E402
from tinygrad_lm.training.bench import _timed, peak_rss_mib  # noqa: E402
from tinygrad_lm.training.config import make_optimizer  # noqa: E402
from tinygrad_lm.training.flops import blas_description  # noqa: E402
from tinygrad_lm.models import build  # noqa: E402
from tinygrad_lm.training.presets import PRESETS  # noqa: E402
from tinygrad_lm.data.pairs import PairBatches  # noqa: E402
from tinygrad_lm.decoding.beam_search import greedy_decode  # noqa: E402

OURS, TORCH = "tinygrad_lm", "torch"


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _config():
    return PRESETS["seq2seq-dates"](len(dates.CHARACTERS))


def _batches(cfg, n=4):
    ids = np.array(dates.encode_pairs(dates.date_pairs(5000, seed=0)), dtype=np.uint16)
    source = PairBatches(ids, 32, cfg.batch_size, seed=0)
    return [source.next() for _ in range(n)]


def _ours(config, cfg, batches):
    model = build(config)
    opt = make_optimizer(model, cfg)
    params = model.parameters()
    state = {"i": 0}

    def step():
        batch = batches[state["i"] % len(batches)]
        state["i"] += 1
        _, loss = model(*batch)
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        state["loss"] = loss.item()
    return step, state


def _torch(config, cfg, batches):
    import torch                                            # optional: only in this worker
    torch.manual_seed(0)
    c, d = config, config.d_model

    class TorchSeq2Seq(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(c.src_vocab_size, d, padding_idx=c.pad_id)
            torch.nn.init.normal_(self.embed.weight, std=d ** -0.5)
            position = torch.arange(c.block_size)[:, None]
            freq = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
            pe = torch.zeros(c.block_size, d)
            pe[:, 0::2], pe[:, 1::2] = torch.sin(position * freq), torch.cos(position * freq)
            self.register_buffer("pe", pe)
            self.transformer = torch.nn.Transformer(d, c.nhead, c.num_encoder_layers, c.num_decoder_layers,
                                                    c.dim_feedforward, c.dropout, c.activation, batch_first=True,
                                                    norm_first=c.norm_first, layer_norm_eps=c.layer_norm_eps)
            self.head = torch.nn.Linear(d, c.tgt_vocab_size, bias=False)
            self.head.weight = self.embed.weight

        def forward(self, src, tgt_in, tgt_out):
            x = self.embed(src) * d ** 0.5 + self.pe[:src.shape[1]]
            y = self.embed(tgt_in) * d ** 0.5 + self.pe[:tgt_in.shape[1]]
            causal = torch.nn.Transformer.generate_square_subsequent_mask(tgt_in.shape[1], dtype=torch.bool)
            src_pad, tgt_pad = src == c.pad_id, tgt_in == c.pad_id
            h = self.transformer(x, y, tgt_mask=causal, src_key_padding_mask=src_pad, tgt_key_padding_mask=tgt_pad,
                                 memory_key_padding_mask=src_pad)
            logits = self.head(h)
            return torch.nn.functional.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=c.pad_id)

    model = TorchSeq2Seq().train()
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
    tensors = [tuple(torch.tensor(a) for a in batch) for batch in batches]
    state = {"i": 0}

    def step():
        batch = tensors[state["i"] % len(tensors)]
        state["i"] += 1
        loss = model(*batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        state["loss"] = loss.item()
    return step, state


def worker(engine, steps, warmup, threads):
    if engine == TORCH:
        import torch
        torch.set_num_threads(threads)
    config, cfg = _config()
    step, state = (_ours if engine == OURS else _torch)(config, cfg, _batches(cfg))
    sec = _timed(step, steps, warmup)
    return {"engine": engine, "pid": os.getpid(), "ms": sec * 1e3, "loss": state["loss"], "rss_mib": peak_rss_mib(),
            "torch_loaded": "torch" in sys.modules}


def speed(args):
    print(uptime())
    print(f"BLAS: {blas_description()}; {args.threads} thread(s) per engine")
    config, cfg = _config()
    chunk = max(args.steps // args.rounds, 1)
    print(f"seq2seq-dates: batch {cfg.batch_size} pairs (sources <= 29, targets 11 tokens), d_model {config.d_model}, "
          f"{config.num_encoder_layers} + {config.num_decoder_layers} layers; {args.rounds} rounds, each engine in a "
          f"fresh process per round (order alternating), {args.warmup} warm-up + {chunk} timed steps per process")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS=str(args.threads),
               OMP_NUM_THREADS=str(args.threads))
    reports = {OURS: [], TORCH: []}
    for r in range(args.rounds):
        for engine in ((OURS, TORCH) if r % 2 == 0 else (TORCH, OURS)):
            spec = json.dumps({"engine": engine, "steps": chunk, "warmup": args.warmup, "threads": args.threads})
            out = subprocess.run([sys.executable, __file__, "worker", spec], capture_output=True, text=True, env=env)
            if out.returncode:
                sys.exit(f"{engine} worker failed: {out.stderr.strip().splitlines()[-1:]}")
            reports[engine].append(json.loads(out.stdout.strip().splitlines()[-1]))
    ms = {e: [rep["ms"] for rep in reps] for e, reps in reports.items()}
    for e in (OURS, TORCH):
        rounds = ", ".join(f"{v:.1f}" for v in ms[e])
        print(f"{e:12s}: {np.median(ms[e]):8.2f} ms/step (median)  loss {reports[e][-1]['loss']:.3f}  "
              f"peak RSS {max(r['rss_mib'] for r in reports[e]):.0f} MiB  rounds: {rounds}")
    ratios = [a / b for a, b in zip(ms[OURS], ms[TORCH])]
    assert not any(r["torch_loaded"] for r in reports[OURS]), "torch was imported in tinygrad_lm's worker"
    print(f"ratio tinygrad_lm / torch step time: median {np.median(ratios):.2f} over {args.rounds} rounds "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f}; goal <= 1.0, floor <= 1.25)")


def decode(args):
    print(uptime())
    model, _, _ = checkpoint.load_model(args.checkpoint)
    _, val_dates = dates.split_dates(0)
    tok = dates.date_tokenizer()
    sources = [tok.encode(s) for s, _ in dates.pairs_of_dates(val_dates[:args.batch], seed=0)]
    src = np.zeros((len(sources), max(map(len, sources))), dtype=np.int64)
    for i, s in enumerate(sources):
        src[i, :len(s)] = s
    for use_cache in (True, False):
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            ids = greedy_decode(model, src, max_new_tokens=11, use_cache=use_cache)
            times.append(time.perf_counter() - t)
        tokens = int((ids != model.config.pad_id).sum())
        best = min(times)
        print(f"cache {'on ' if use_cache else 'off'}: {tokens} tokens for {len(src)} sources in {best * 1e3:.0f} ms "
              f"(best of {args.repeats}): {tokens / best:,.0f} tokens/s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="part", required=True)
    p = sub.add_parser("speed")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p = sub.add_parser("decode")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    p = sub.add_parser("worker")
    p.add_argument("spec")
    args = ap.parse_args()
    if args.part == "worker":
        print(json.dumps(worker(**json.loads(args.spec))))
    else:
        {"speed": speed, "decode": decode}[args.part](args)


if __name__ == "__main__":
    main()
