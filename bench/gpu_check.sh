#!/usr/bin/env bash
# GPU check (issue: GPU and scale-out). On a machine with an NVIDIA GPU where CuPy and torch are
# already installed (it installs nothing), from the repository root:
#     bash bench/gpu_check.sh            (about 5 minutes; every part has its own time limit)
# 1. the GPU variants of the tests (every test with the "cuda" device);
# 2. training steps of the baby preset and of nanoGPT's GPU Shakespeare config (6 layers, 6 heads,
#    width 384, block 256, batch 64) with tinygrad_lm (CuPy) and PyTorch eager, each in its own process:
#    ms/step, tokens/s and the ratio (goal on the larger config: <= 1.0).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python -c "import cupy, torch, numpy; print('cupy', cupy.__version__, '| torch', torch.__version__, '| numpy', numpy.__version__, '| torch sees cuda:', torch.cuda.is_available())"
echo "== GPU tests"
timeout 240 python -m pytest -q -x tests -k "cuda" -p no:cacheprovider 2>&1 | tail -n 15
echo "== baby preset, 40 steps"
timeout 100 python -m tinygrad_lm bench --preset baby --device cuda --steps 40 --warmup 5
echo "== nanoGPT GPU config, 20 steps"
timeout 150 python -m tinygrad_lm bench --preset gpu --device cuda --steps 20 --warmup 3
