#!/bin/bash
# GPU affinity for Polaris (4 NVIDIA A100 per node): each MPI rank on a node sees only "its" GPU,
# chosen from its node-local rank, so `device="cuda"` in every rank means a different GPU.
#   mpiexec ... ./scripts/polaris/set_affinity_gpu.sh python -m tinygrad_lm train ...
num_gpus=${NUM_GPUS_PER_NODE:-4}
local_rank=${PMI_LOCAL_RANK:-${OMPI_COMM_WORLD_LOCAL_RANK:-0}}
export CUDA_VISIBLE_DEVICES=$(( local_rank % num_gpus ))
exec "$@"
