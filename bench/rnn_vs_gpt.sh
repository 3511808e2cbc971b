#!/usr/bin/env bash
# "Before attention" tables (BENCHMARKS.md), from the repository root:
#     bash bench/rnn_vs_gpt.sh                        (about 15 minutes on 2 quiet cores)
#     MAX_ITERS=200 STEPS=10 bash bench/rnn_vs_gpt.sh (a smoke run)
# 1. curves: atpesc (GPT), char-lstm and char-gru (209-210k parameters each) trained through
#    `python -m tinygrad_lm train` for MAX_ITERS steps, one after the other: validation loss at
#    equal steps and at equal training time.
# 2. seqlen: one training step of atpesc and char-lstm at T = 32, 64, 128, 256 (our engine).
# 3. torch: char-lstm in our engine (fused LSTM) against the same model in torch.nn (nn.LSTM),
#    each in its own process, rounds alternating (tinygrad_lm/training/bench.py); once as the environment
#    is, once without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE.
# OPENBLAS_NUM_THREADS and OMP_NUM_THREADS default to 1 here (both engines on one core each): on a
# machine shared with other jobs, two BLAS threads per process fight for the cores and the timings
# become noise. Set them to 2 on a quiet 2-core machine. Every part prints the load average.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
PYTHON="${PYTHON:-python}"
MAX_ITERS="${MAX_ITERS:-1500}"
STEPS="${STEPS:-100}"
echo "host $(hostname), $(nproc --all) cores, OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS OMP_NUM_THREADS=$OMP_NUM_THREADS"
uptime
"$PYTHON" bench/bench_rnn.py curves --max-iters "$MAX_ITERS" --presets atpesc char-lstm char-gru
"$PYTHON" bench/bench_rnn.py seqlen --steps "$((STEPS / 3 > 1 ? STEPS / 3 : 1))"
"$PYTHON" bench/bench_rnn.py torch --steps "$STEPS"
echo "== env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PYTHON" bench/bench_rnn.py torch --steps "$STEPS"
uptime
