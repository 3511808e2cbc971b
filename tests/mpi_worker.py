"""Run under mpiexec by tests/test_distributed.py (not collected by pytest itself).

    mpiexec -n 2 python tests/mpi_worker.py parity K B        # 2 ranks x batch B == 1 process x batch 2B
    mpiexec -n 2 python tests/mpi_worker.py train DATASET OUT  # train() with --distributed semantics
    mpiexec -n 2 python tests/mpi_worker.py preference DATASET OUT  # DPO on whole pairs, one reference
    mpiexec -n 2 python tests/mpi_worker.py fail               # rank 1 raises: the job must exit non-zero
"""
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import tinygrad_lm as tg  # noqa: E402
from tinygrad_lm.training import checkpoint, distributed
from tinygrad_lm import optim  # noqa: E402
from tinygrad_lm.models.gpt import GPT, GPTConfig  # noqa: E402

CONFIG = GPTConfig.gpt2(vocab_size=17, block_size=8, n_layer=2, n_head=2, n_embd=16)


def run_steps(model, opt, batches, comm=None):
    params = model.parameters()
    for x, y in batches:
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        if comm is not None:
            distributed.allreduce_gradients(opt, comm)
        optim.clip_grad_norm_(params, 0.5)
        opt.step()


def parity(k, b):
    comm = distributed.init()
    rank, world = comm.Get_rank(), comm.Get_size()
    rng = np.random.default_rng(0)
    global_batches = [rng.integers(0, 17, (2, world * b, 8)) for _ in range(k)]
    tg.manual_seed(rank + 1)                       # different init per rank: the broadcast must fix it
    model = GPT(CONFIG).double()
    opt = optim.AdamW(optim.gpt2_param_groups(model, 0.1), lr=1e-2)
    distributed.broadcast_parameters(opt, comm)
    mine = [(xy[0][rank * b:(rank + 1) * b], xy[1][rank * b:(rank + 1) * b]) for xy in global_batches]
    run_steps(model, opt, mine, comm)
    gathered = comm.gather([p.numpy() for p in model.parameters()], root=0)
    if rank == 0:
        tg.manual_seed(1)
        ref = GPT(CONFIG).double()
        ref_opt = optim.AdamW(optim.gpt2_param_groups(ref, 0.1), lr=1e-2)
        run_steps(ref, ref_opt, [(x, y) for x, y in global_batches])
        worst = 0.0
        for r, params in enumerate(gathered):
            for p, q in zip(params, ref.parameters()):
                worst = max(worst, float(np.abs(p - q.numpy()).max()))
        print(f"max |2-rank - 1-process| = {worst:.3e}", flush=True)
        assert worst <= 1e-6, worst
        print("PARITY OK", flush=True)


def train_run(dataset, out):
    from tinygrad_lm.training.loop import TrainConfig, train
    comm = distributed.init()
    saves = []
    original = checkpoint.save

    def spy(path, *args, **kwargs):
        saves.append(str(path))
        return original(path, *args, **kwargs)
    checkpoint.save = spy                           # runs.py saves through the module
    cfg = TrainConfig(batch_size=4, max_iters=6, eval_interval=3, eval_iters=2, log_interval=3, out_dir=out,
                      warmup_iters=1, lr_decay_iters=6)
    lines = []
    train(GPTConfig.gpt2(vocab_size=40, block_size=16, n_layer=1, n_head=2, n_embd=16), cfg, dataset,
          log=lines.append, distributed=True)
    counts = comm.gather((len(saves), len(lines)), root=0)
    if comm.Get_rank() == 0:
        print("saves and log lines per rank:", counts, flush=True)
        assert counts[0][0] > 0 and counts[0][1] > 0
        assert all(s == 0 and n == 0 for s, n in counts[1:])
        meta = checkpoint.load(pathlib.Path(out) / "last.npz")["meta"]
        assert meta["world_size"] == comm.Get_size() and len(meta["batch_rng_state"]) == comm.Get_size()
        print("ONLY RANK 0 WRITES", flush=True)
        print("\n".join(line for line in lines if "mfu" in line or "ranks" in line), flush=True)


def preference_run(dataset, out):
    """DPO on two ranks: whole conversations (not a slice of the stream, which would cut one),
    the same reference on both, and the losses of the same model on every rank."""
    from tinygrad_lm.models import LlamaConfig
    from tinygrad_lm.training.loop import TrainConfig, train
    comm = distributed.init()
    meta = json.loads((pathlib.Path(dataset) / "meta.json").read_text())
    cfg = TrainConfig(batch_size=2, max_iters=3, eval_interval=3, eval_iters=1, log_interval=1, out_dir=out,
                      warmup_iters=0, decay_lr=False, lora_r=2, lora_target_modules="q_proj", peak_flops=1e9)
    config = LlamaConfig(vocab_size=meta["vocab_size"], hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    lines = []
    result = train(config, cfg, dataset, log=lines.append, distributed=True)
    keys = comm.gather(sorted(result["model"].state_dict()), root=0)
    histories = comm.gather(result["history"], root=0)
    if comm.Get_rank() == 0:
        assert keys[0] == keys[1] and len(histories[0]) == 3
        assert any(line.startswith("reference:") for line in lines) and any("reward acc" in line for line in lines)
        saved = checkpoint.load(pathlib.Path(out) / "last.npz")["meta"]
        assert saved["world_size"] == 2 and saved["dpo_reference"]
        print("DPO ON 2 RANKS OK", flush=True)


def save_fails(dataset, out):
    """Rank 0's checkpoint write fails (a full disk) while rank 1 has nothing to complain about:
    through the command line, the job must end with one error line, not leave rank 1 waiting."""
    from tinygrad_lm.cli import main
    from tinygrad_lm.errors import CheckpointError

    def full_disk(path, *args, **kwargs):
        raise CheckpointError(f"could not write checkpoint {path} (disk full, simulated)")
    checkpoint.save = full_disk
    main(["train", "--preset", "bigram", "--dataset", dataset, "--out-dir", out, "--max-iters", "4",
          "--eval-interval", "2", "--eval-iters", "1", "--samples", "0"])
    print("unreachable", flush=True)


def fail():
    comm = distributed.init()
    if comm.Get_rank() == 1:
        raise RuntimeError("rank 1 fails on purpose")
    comm.Barrier()                                  # rank 0 would wait here forever without the abort
    print("unreachable", flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "parity":
        parity(int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "train":
        train_run(sys.argv[2], sys.argv[3])
    elif mode == "preference":
        preference_run(sys.argv[2], sys.argv[3])
    elif mode == "save_fails":
        save_fails(sys.argv[2], sys.argv[3])
    else:
        fail()
