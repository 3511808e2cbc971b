"""Autograd overhead: forward + backward of a 64x64 matmul through Tensor vs the bare NumPy calls
it makes (x @ w, then g @ w.T and x.T @ g). Goal: ratio <= 2.

    python bench/bench_autograd.py
"""
import pathlib
import sys
import timeit

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import tinygrad_lm as tg  # noqa: E402


def main(n=64, repeat=7, number=2000):
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((n, n)).astype(np.float32)
    w_np = rng.standard_normal((n, n)).astype(np.float32)
    g_np = rng.standard_normal((n, n)).astype(np.float32)
    x = tg.Tensor(x_np, requires_grad=True)
    w = tg.Tensor(w_np, requires_grad=True)

    def bare():
        y = x_np @ w_np
        gx = g_np @ w_np.swapaxes(-1, -2)
        gw = x_np.swapaxes(-1, -2) @ g_np
        return y, gx, gw

    def engine():
        x.grad = w.grad = None
        y = x @ w
        y.backward(g_np)

    t_bare = min(timeit.repeat(bare, repeat=repeat, number=number)) / number
    t_engine = min(timeit.repeat(engine, repeat=repeat, number=number)) / number
    print(f"{n}x{n} matmul forward+backward: bare NumPy {t_bare * 1e6:.1f} us, Tensor {t_engine * 1e6:.1f} us, "
          f"ratio {t_engine / t_bare:.2f} (goal <= 2)")


if __name__ == "__main__":
    main()
