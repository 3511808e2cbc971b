#!/bin/sh
# BENCHMARKS.md, "BERT (encoder-only)": every run of the section, one after the other, from the
# repository root (tiny Shakespeare, character vocabulary: data/shakespeare_char, prepared if missing).
# One BLAS thread per process: on a small busy machine OpenBLAS's threads slow each other down.
set -e
export OPENBLAS_NUM_THREADS=1
PY=${PYTHON:-python}
uptime
$PY -m tinygrad_lm train --preset bert-mini --out-dir out/bert-mini                    # masked LM, 1000 steps
$PY -m tinygrad_lm train --preset baby --n-layer 2 --batch-size 32 --max-iters 1000 --weight-decay 0.01 \
    --beta2 0.999 --samples 0 --out-dir out/gpt-mini                                      # the same-size causal GPT
$PY -m tinygrad_lm train --preset bert-nsp --init-from out/bert-mini/best.npz --out-dir out/bert-nsp
$PY -m tinygrad_lm train --preset bert-nsp --out-dir out/bert-nsp-scratch
$PY bench/bench_bert.py quality --mlm out/bert-mini/best.npz --gpt out/gpt-mini/best.npz \
    --nsp out/bert-nsp/best.npz --nsp-scratch out/bert-nsp-scratch/best.npz
OMP_NUM_THREADS=1 $PY -m tinygrad_lm bench --preset bert-mini --rounds 6 --steps 60
OMP_NUM_THREADS=1 $PY -m tinygrad_lm bench --preset bert-mini --rounds 4 --steps 40 --set hidden_act=gelu_new   # the tanh GELU in both engines
# the longer masked-LM run and its fine-tune
$PY -m tinygrad_lm train --preset bert-mini --max-iters 2000 --eval-interval 500 --out-dir out/bert-mini-2000
$PY -m tinygrad_lm train --preset bert-nsp --init-from out/bert-mini-2000/best.npz --out-dir out/bert-nsp-2000
$PY bench/bench_bert.py quality --mlm out/bert-mini-2000/best.npz --nsp out/bert-nsp-2000/best.npz
uptime
