# %% [markdown]
# # Lesson 11 — The same model on a GPU with CuPy
#
# Every op asks `tinygrad_lm.backend` for its array module: NumPy for "cpu", CuPy for "cuda".
# So `model.to("cuda")` and `Tensor(..., device="cuda")` are all it takes. Timing GPU code needs
# care: kernels run asynchronously, so synchronise before reading the clock, and warm up first
# (the first calls compile kernels). Without a GPU this lesson says so and runs the CPU part.

# %%
import time

import numpy as np

import tinygrad_lm as tg
from tinygrad_lm import backend, optim
from tinygrad_lm.models.gpt import GPT
from tinygrad_lm.training.presets import PRESETS
from tinygrad_lm.teaching.lesson_utils import figure_path, pyplot, quick

HAS_GPU = backend.is_available("cuda")
print("GPU available:", HAS_GPU)
devices = ["cpu"] + (["cuda"] if HAS_GPU else [])


def synchronize(device):
    if device == "cuda":
        backend.get_array_module("cuda").cuda.Stream.null.synchronize()


def time_steps(device, steps):
    tg.manual_seed(0)                      # same seed -> same initial weights on every device
    model_config, train_config = PRESETS["baby"](vocab_size=65)     # nanoGPT's CPU model: 4 layers, width 128
    model = GPT(model_config).to(device)
    opt = optim.AdamW(model.parameters(), lr=train_config.learning_rate)
    B, T = train_config.batch_size, model_config.block_size
    x = backend.to_device(np.random.default_rng(0).integers(0, 65, (B, T)), device)
    losses = []
    for i in range(steps + 2):
        if i == 2:                         # two warm-up steps, then start the clock
            synchronize(device)
            t = time.perf_counter()
        _, loss = model(x, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss)                # keep device scalars; reading one would synchronise
    synchronize(device)
    elapsed = (time.perf_counter() - t) / steps
    return elapsed, [l.item() for l in losses]


results = {d: time_steps(d, quick(20, 5)) for d in devices}
for d, (sec, losses) in results.items():
    print(f"{d}: {sec * 1e3:.1f} ms/step, first losses {np.round(losses[:3], 4)}")
if HAS_GPU:
    cpu_losses, gpu_losses = results["cpu"][1], results["cuda"][1]
    assert np.allclose(cpu_losses, gpu_losses, rtol=1e-3)
    print("same seed, same losses on both devices (to float32 rounding)")
else:
    print("No GPU here: on a GPU node, `pip install cupy-cuda12x` and rerun; the CPU part ran above.")
assert results["cpu"][1][-1] < results["cpu"][1][0]
plt = pyplot()
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.bar(list(results), [sec * 1e3 for sec, _ in results.values()])
ax.set(ylabel="ms per training step", title="baby-size GPT, batch 12 x 64")
fig.savefig(figure_path("11_devices.png"), dpi=90)

# %% [markdown]
# ## Exercises
# 1. On a GPU, find the batch size where the GPU starts to beat the CPU for this model.
# 2. Why does `loss.item()` inside the loop slow the GPU down? Measure it.
# 3. Run `python -m tinygrad_lm bench --preset gpu --device cuda` and compare with PyTorch.
