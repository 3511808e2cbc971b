"""Encoder-decoder (seq2seq-dates) speed for BENCHMARKS.md, "Encoder-decoder: dates".

    python bench/bench_seq2seq.py decode --checkpoint out/dates/best.npz   # greedy tokens/s, cache on and off

The training step against PyTorch (the same model on torch.nn.Transformer: crosscheck/torch_seq2seq.py)
is the bench command's: ``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python -m tinygrad_lm bench
--preset seq2seq-dates --rounds 6 --steps 60``.

decode: greedy decoding of the held-out dates (batch 256) with the decoder's KV cache and
cross-attention K/V projected once, and with a full recompute every step; output tokens/s.
Every part prints the machine's load (`uptime`) first.
"""
import argparse
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import numpy as np  # noqa: E402

from tinygrad_lm.training import checkpoint
from tinygrad_lm.data import dates
from tinygrad_lm.decoding.beam_search import greedy_decode  # noqa: E402



def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


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
    p = sub.add_parser("decode")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    decode(args)


if __name__ == "__main__":
    main()
