"""Generation speed with and without the KV cache (random weights), at the baby size and at GPT-2
small's shape (12 layers, 12 heads, width 768, vocab 50257).

    python bench/bench_generate.py [--new-tokens 200] [--sizes baby gpt2]

Prints overall tokens/s of each mode and the time of single steps at growing lengths: without a
cache a step reruns the whole context, so its cost grows with the length; with the cache a step
runs one token: the gap widens as the text grows.
"""
import argparse
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import tinygrad_lm as tg  # noqa: E402
from tinygrad_lm.models.gpt import GPT, GPTConfig  # noqa: E402

SIZES = {
    "baby": GPTConfig.gpt2(vocab_size=65, block_size=256, n_layer=4, n_head=4, n_embd=128, bias=False),
    "gpt2": GPTConfig.gpt2(),
}


def timed_generation(model, prompt, new_tokens, use_cache):
    """Total seconds, and the seconds of each model call (one call per new token)."""
    step_times = []
    forward = model.forward

    def timed_forward(*args, **kwargs):
        t = time.perf_counter()
        out = forward(*args, **kwargs)
        step_times.append(time.perf_counter() - t)
        return out
    model.forward = timed_forward
    try:
        t = time.perf_counter()
        model.generate(prompt, new_tokens, temperature=0, use_cache=use_cache)
        return time.perf_counter() - t, step_times
    finally:
        del model.forward


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--new-tokens", type=int, default=200)
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = ap.parse_args()
    n = args.new_tokens
    for name in args.sizes:
        tg.manual_seed(0)
        model = GPT(SIZES[name])
        prompt = np.zeros((1, 8), dtype=np.int64)
        total_c, steps_c = timed_generation(model, prompt, n, True)
        total_n, steps_n = timed_generation(model, prompt, n, False)
        print(f"{name}: {model.num_parameters() / 1e6:.1f}M parameters, 8-token prompt, {n} new tokens")
        print(f"  overall: KV cache {n / total_c:8.1f} tok/s, no cache {n / total_n:8.1f} tok/s, "
              f"cache x{total_n / total_c:.1f}")
        for i in sorted({n // 10, n // 4, n // 2, n - 1}):
            print(f"  step {i + 1:4d} (context {8 + i:4d}): cache {steps_c[i] * 1e3:8.2f} ms, "
                  f"no cache {steps_n[i] * 1e3:8.2f} ms, x{steps_n[i] / steps_c[i]:.1f}")


if __name__ == "__main__":
    main()
