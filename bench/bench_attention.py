"""Fused vs composite causal attention, forward + backward, at the nanoGPT CPU config's size
(B=12, T=64, 4 heads, width 128). Prints time per call, peak traced memory, and how many T x T
arrays the graph keeps alive between forward and backward.

    python bench/bench_attention.py
"""
import pathlib
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import tinygrad_lm as tg  # noqa: E402
import tinygrad_lm.nn.functional as F  # noqa: E402
from tinygrad_lm.tensor import topological_order  # noqa: E402


def txt_arrays_alive(out, T):
    seen, count = set(), 0
    for node in topological_order(out):
        for array in ([node.data] + ([v for v in vars(node._ctx).values()] if node._ctx else [])):
            if isinstance(array, np.ndarray) and array.ndim >= 2 and array.shape[-2:] == (T, T) \
                    and id(array) not in seen:
                seen.add(id(array))
                count += 1
    return count


def run(attend, q, k, v, g):
    for t in (q, k, v):
        t.grad = None
    out = attend(q, k, v, is_causal=True)
    out.backward(g)
    return out


def main(B=12, H=4, T=64, C=128, iters=50):
    D = C // H
    rng = np.random.default_rng(0)
    q, k, v = (tg.Tensor(rng.standard_normal((B, H, T, D)).astype(np.float32), requires_grad=True) for _ in range(3))
    g = rng.standard_normal((B, H, T, D)).astype(np.float32)
    results = {}
    for name, attend in (("fused", F.scaled_dot_product_attention),
                         ("composite", F.scaled_dot_product_attention_composite)):
        run(attend, q, k, v, g)
        t = time.perf_counter()
        for _ in range(iters):
            run(attend, q, k, v, g)
        ms = (time.perf_counter() - t) / iters * 1e3
        tracemalloc.start()
        out = attend(q, k, v, is_causal=True)
        alive = txt_arrays_alive(out, T)
        out.backward(g)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        results[name] = (ms, peak, alive)
        print(f"{name:9s}: {ms:6.2f} ms forward+backward, peak {peak:5.1f} MiB, T x T arrays kept for backward: {alive}")
    f, c = results["fused"], results["composite"]
    print(f"fused/composite: time x{f[0] / c[0]:.2f}, peak memory x{f[1] / c[1]:.2f}, T x T arrays {f[2]} vs {c[2]}")


if __name__ == "__main__":
    main()
