#!/usr/bin/env bash
# Step-time table (BENCHMARKS.md, "Training step time against PyTorch"), from the repository root:
#     bash bench/step_time.sh                   (about 2 minutes on 2 quiet cores)
#     bash bench/step_time.sh --steps 4 --warmup 1    (a smoke run; extra arguments go to every bench)
# Runs `python -m tinygrad_lm bench` for each preset (PRESETS, default "atpesc baby") twice: once in
# the environment as it is, once without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (which force an
# older OpenBLAS kernel on some machines). OPENBLAS_NUM_THREADS is left as it is. Each engine runs
# in its own process, 5 rounds alternating which goes first (see tinygrad_lm/training/bench.py).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PYTHON="${PYTHON:-python}"
echo "host $(hostname), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
for preset in ${PRESETS:-atpesc baby}; do
    echo "== $preset, environment as is (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<not set>})"
    "$PYTHON" -m tinygrad_lm bench --preset "$preset" --steps 100 --warmup 5 "$@"
    echo "== $preset, env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PYTHON" -m tinygrad_lm bench --preset "$preset" --steps 100 --warmup 5 "$@"
done
