#!/usr/bin/env bash
# GPU check (issues: GPU and scale-out; GPU readiness). On a machine with an NVIDIA GPU where CuPy
# and torch are already installed (it installs nothing and needs no internet), from the
# repository root:
#     bash bench/gpu_check.sh            (about 6 minutes; every part has its own time limit)
# 1. the GPU variants of the tests (every test with the "cuda" device), every failure listed;
# 2. one training run on the GPU end to end (the baby preset, 30 steps), stopped at 20 and resumed;
# 3. training steps of the baby preset and of nanoGPT's GPU Shakespeare config (6 layers, 6 heads,
#    width 384, block 256, batch 64) with tinygrad_lm (CuPy) and PyTorch eager, each in its own
#    process: ms/step, tokens/s and the ratio (goal on the larger config: <= 1.0).
# Everything printed is also written to gpu_check.log (PYTHON=... picks the interpreter: python3
# by default, as the GPU machines have no `python`).
set -u
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec > >(tee gpu_check.log) 2>&1
status=0
part() { echo; echo "== $1"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import cupy, torch, numpy; print('cupy', cupy.__version__, '| torch', torch.__version__, '| numpy', numpy.__version__, '| torch sees cuda:', torch.cuda.is_available())" || status=1

part "GPU tests (every failure listed)"
timeout 240 "$PY" -m pytest -q -rf tests -k "cuda" -p no:cacheprovider > gpu_tests.log 2>&1 || status=1
grep -E "^(FAILED|ERROR)|passed|failed|error" gpu_tests.log | tail -n 40

part "train --device cuda end to end: 20 steps, then resumed to 30"
rm -rf out_gpu_check
timeout 120 "$PY" -m tinygrad_lm train --preset baby --device cuda --max-iters 20 --eval-interval 10 \
    --out-dir out_gpu_check --samples 0 | tail -n 4 || status=1
timeout 120 "$PY" -m tinygrad_lm train --init-from resume --preset baby --device cuda --max-iters 30 \
    --eval-interval 10 --out-dir out_gpu_check --samples 0 | tail -n 4 || status=1

part "baby preset, 40 steps"
timeout 100 "$PY" -m tinygrad_lm bench --preset baby --device cuda --steps 40 --warmup 5 || status=1
part "nanoGPT GPU config, 20 steps"
timeout 150 "$PY" -m tinygrad_lm bench --preset gpu --device cuda --steps 20 --warmup 3 || status=1
echo
echo "gpu_check: $([ $status -eq 0 ] && echo 'every part ran' || echo 'a part failed: see above and gpu_tests.log')"
exit $status
