"""Command line: python -m tinygrad_lm prepare | train | sample | bench | generate | attention | export

    python -m tinygrad_lm train --preset atpesc        # prepares tiny Shakespeare if needed, trains,
                                                       # saves out/last.npz, out/loss.png, prints samples
    python -m tinygrad_lm sample --out-dir out --max-new-tokens 300
"""
import argparse
import dataclasses
import os
import pathlib
import sys


def _add_data_dir(p):
    p.add_argument("--data-dir", default=None,
                   help="folder holding tinyshakespeare/input.txt and gpt2/ (default: $TINYGRAD_LM_DATA or ./data)")


def _dataset_dir(args, tokenizer="char"):
    if args.dataset:
        return pathlib.Path(args.dataset)
    return pathlib.Path("data") / f"shakespeare_{tokenizer.replace(':', '')}"


def cmd_prepare(args):
    from .data import prepare, shakespeare
    source = args.input or shakespeare(args.data_dir)
    out = _dataset_dir(args, args.tokenizer)
    meta = prepare(source, out, tokenizer=args.tokenizer, data_dir=args.data_dir or os.environ.get("TINYGRAD_LM_DATA"))
    print(f"prepared {out}: vocab {meta['vocab_size']}, {meta['train_tokens']:,} train and "
          f"{meta['val_tokens']:,} val tokens ({meta['dtype']})")
    return out


MODEL_FLAGS = ("n_layer", "n_head", "n_embd", "block_size", "dropout")     # flags that shape the model


def _train_configs(args, vocab_size, saved=None):
    try:
        return _build_train_configs(args, vocab_size, saved)
    except ValueError as e:                              # a flag out of range: say which, no traceback
        sys.exit(f"error: {e}")


def _build_train_configs(args, vocab_size, saved=None):
    from .gpt import GPTConfig
    from .train import PRESETS, TrainConfig, make_schedule
    if saved is not None:
        model_config, train_config = _saved_configs(args, saved)
    elif args.preset:
        model_config, train_config = PRESETS[args.preset](vocab_size)
    else:
        model_config, train_config = GPTConfig.gpt2(vocab_size=vocab_size, block_size=64, n_layer=4, n_head=4,
                                                    n_embd=128), TrainConfig()
    if args.max_iters is not None:
        train_config = train_config.with_max_iters(args.max_iters)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                 if getattr(args, f.name, None) is not None}
    train_config = dataclasses.replace(train_config, **overrides)
    try:
        make_schedule(train_config)                      # a schedule that contradicts itself: say so now
    except ValueError as e:
        sys.exit(f"error: {e} (see --max-iters, --warmup-iters and --lr-decay-iters)")
    model_overrides = {k: getattr(args, k) for k in MODEL_FLAGS if getattr(args, k, None) is not None}
    return dataclasses.replace(model_config, **model_overrides), train_config


def _saved_configs(args, meta):
    """Resuming continues the run as it was saved: the model and training settings come from the
    checkpoint's metadata `meta`, not from a preset or the defaults (which would quietly change the
    run). Training flags given now still apply on top, e.g. --max-iters to train longer."""
    from .gpt import GPTConfig
    from .train import TrainConfig
    out_dir = args.out_dir or "out"
    path = pathlib.Path(out_dir) / "last.npz"
    fixed = [f"--{name.replace('_', '-')}" for name in MODEL_FLAGS if getattr(args, name, None) is not None]
    if fixed:
        sys.exit(f"error: {', '.join(fixed)} cannot change when resuming: {path} holds the model it trained")
    if args.preset:
        print(f"note: --preset {args.preset} is not used when resuming; the settings saved in {path} are")
    return GPTConfig.from_dict(meta["model_config"]), TrainConfig.from_dict(dict(meta["train_config"], out_dir=out_dir))


def cmd_train(args):
    from .data import load_meta
    from .train import TrainingDiverged, train
    from .viz import plot_losses
    if args.init_from not in ("scratch", "resume") and args.tokenizer == "char":
        args.tokenizer = "gpt2"              # fine-tuning GPT-2 needs its tokenizer
    saved = None                             # the checkpoint's metadata, when resuming: read once
    if args.init_from == "resume":
        from .checkpoint import read_meta
        saved = read_meta(pathlib.Path(args.out_dir or "out") / "last.npz")
        saved_data = saved.get("dataset")    # resume on the data the run trained on, while it is there
        if not args.dataset and saved_data and (pathlib.Path(saved_data) / "meta.json").exists():
            args.dataset = saved_data
    dataset = _dataset_dir(args, args.tokenizer)
    if not (dataset / "meta.json").exists():
        if args.dataset:
            sys.exit(f"error: {dataset}/meta.json not found; run `python -m tinygrad_lm prepare` first")
        print(f"{dataset} not prepared yet: preparing tiny Shakespeare with the {args.tokenizer} tokenizer")
        args.input = None
        cmd_prepare(args)
    meta = load_meta(dataset)
    model_config, train_config = _train_configs(args, meta["vocab_size"], saved)
    if args.init_from not in ("scratch", "resume"):
        model_config = dataclasses.replace(model_config, vocab_size=max(model_config.vocab_size, meta["vocab_size"]))
    from .distributed import launched_under_mpi
    try:
        result = train(model_config, train_config, dataset, init_from=args.init_from, log=print,
                       distributed=args.distributed or launched_under_mpi())
    except TrainingDiverged as e:
        sys.exit(f"error: {e}")
    if result.get("rank", 0) != 0:
        return
    out = pathlib.Path(train_config.out_dir)
    plot = plot_losses(result["history"], result["evals"], out / "loss.png",
                       title=args.preset or "training")
    print(f"loss curves: {plot}; best val loss {result['best_val']:.4f}; checkpoints in {out}")
    if args.samples and not result["interrupted"]:         # stopped by a signal: exit promptly
        from .data import load_tokenizer
        tok = load_tokenizer(meta)
        model = result["model"]
        start = tok.encode("\n") if "\n" in getattr(tok, "stoi", {"\n": 0}) else [0]
        ids = model.generate([start], args.sample_tokens, temperature=1.0, seed=train_config.seed)
        print("--- sample ---")
        print(tok.decode(ids[0].tolist()))


def check_sampling_flags(args, count):
    """Bad sampling flags end the command before a model is loaded, with a one-line message."""
    from .generate import check_sampling
    try:
        check_sampling(args.temperature, args.top_k, args.top_p, args.max_new_tokens)
    except ValueError as e:
        sys.exit(f"error: {e}")
    if count < 1:
        sys.exit(f"error: the number of samples must be >= 1, got {count}")


def cmd_sample(args):
    from .checkpoint import load_model
    check_sampling_flags(args, args.num_samples)
    path = pathlib.Path(args.checkpoint or pathlib.Path(args.out_dir) / "last.npz")
    model, tok, _ = load_model(path, device=args.device)
    if tok is None:
        sys.exit(f"error: {path} holds no tokenizer")
    start = tok.encode(args.start) if args.start else [0]
    ids = model.generate([start] * args.num_samples, args.max_new_tokens, temperature=args.temperature,
                         top_k=args.top_k, top_p=args.top_p, seed=args.seed)
    for row in ids:
        print(tok.decode(row.tolist()))
        print("---")


def cmd_bench(args):
    from .bench import run_bench
    if args.steps < 1 or args.warmup < 0:
        sys.exit(f"error: bench needs --steps >= 1 and --warmup >= 0, got {args.steps} and {args.warmup}")
    run_bench(args.preset, steps=args.steps, device=args.device, warmup=args.warmup, compare_torch=not args.no_torch)


def cmd_generate(args):
    from .hf import generate_cli
    check_sampling_flags(args, args.num_return_sequences)
    generate_cli(args)


def cmd_attention(args):
    from .hf import attention_cli
    if not args.prompt:
        sys.exit("error: --prompt is empty; the attention maps need at least one token")
    attention_cli(args)


def cmd_export(args):
    from .hf import export_cli
    export_cli(args)


def build_parser():
    ap = argparse.ArgumentParser(prog="python -m tinygrad_lm", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="tokenize a text into data/<name>/{train,val}.bin + meta.json")
    p.add_argument("--input", default=None, help="a UTF-8 text file (default: tiny Shakespeare)")
    p.add_argument("--tokenizer", default="char", help="char | gpt2 | bpe:<vocab_size> | a tokenizer file")
    p.add_argument("--dataset", default=None, help="output folder (default: data/shakespeare_<tokenizer>)")
    _add_data_dir(p)
    p.set_defaults(fn=cmd_prepare)

    p = sub.add_parser("train", help="train a GPT")
    p.add_argument("--preset", choices=["atpesc", "baby"], default=None)
    p.add_argument("--dataset", default=None, help="a prepared folder (default: data/shakespeare_char, prepared if missing)")
    p.add_argument("--tokenizer", default="char", help="tokenizer used when the dataset must be prepared")
    _add_data_dir(p)
    p.add_argument("--init-from", default="scratch", help="scratch | resume | a GPT-2 directory | a checkpoint file")
    p.add_argument("--max-iters", type=int, dest="max_iters")
    p.add_argument("--batch-size", type=int, dest="batch_size")
    p.add_argument("--learning-rate", "--lr", type=float, dest="learning_rate")
    p.add_argument("--min-lr", type=float, dest="min_lr")
    p.add_argument("--warmup-iters", type=int, dest="warmup_iters")
    p.add_argument("--lr-decay-iters", type=int, dest="lr_decay_iters")
    p.add_argument("--weight-decay", type=float, dest="weight_decay")
    p.add_argument("--grad-clip", type=float, dest="grad_clip")
    p.add_argument("--eval-interval", type=int, dest="eval_interval")
    p.add_argument("--eval-iters", type=int, dest="eval_iters")
    p.add_argument("--log-interval", type=int, dest="log_interval")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument("--dtype", choices=["float32", "float64"])
    p.add_argument("--out-dir", dest="out_dir")
    p.add_argument("--peak-flops", type=float, dest="peak_flops", help="FLOP/s for the MFU figure")
    p.add_argument("--n-layer", type=int, dest="n_layer")
    p.add_argument("--n-head", type=int, dest="n_head")
    p.add_argument("--n-embd", type=int, dest="n_embd")
    p.add_argument("--block-size", type=int, dest="block_size")
    p.add_argument("--dropout", type=float)
    p.add_argument("--distributed", action="store_true",
                   help="data parallel over MPI ranks (automatic when started by mpiexec)")
    p.add_argument("--samples", type=int, default=1, help="print this many samples after training (0: none)")
    p.add_argument("--sample-tokens", type=int, default=300)
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("sample", help="sample text from a training checkpoint")
    p.add_argument("--out-dir", default="out")
    p.add_argument("--checkpoint", default=None, help="a .npz file (default: <out-dir>/last.npz)")
    p.add_argument("--start", default="\n")
    p.add_argument("--num-samples", type=int, default=1)
    p.add_argument("--max-new-tokens", type=int, default=500)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.set_defaults(fn=cmd_sample)

    p = sub.add_parser("bench", help="time training steps of tinygrad_lm and PyTorch side by side")
    p.add_argument("--preset", choices=["atpesc", "baby", "gpu"], default="atpesc")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-torch", action="store_true")
    p.set_defaults(fn=cmd_bench)

    p = sub.add_parser("generate", help="generate text with a GPT-2 checkpoint (Hugging Face directory)")
    p.add_argument("--model", required=True, help="directory with config.json + model.safetensors")
    p.add_argument("--prompt", default="My dog really wanted to eat icecream because")
    p.add_argument("--max-new-tokens", type=int, default=20)
    p.add_argument("--num-return-sequences", type=int, default=5)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=50)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--greedy", action="store_true")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--device", default="cpu")
    _add_data_dir(p)
    p.set_defaults(fn=cmd_generate)

    p = sub.add_parser("attention", help="plot every layer x head attention map of a prompt (PNG + .npy)")
    p.add_argument("--model", required=True, help="a GPT-2 directory or a training checkpoint (.npz)")
    p.add_argument("--prompt", default="The man ate the sandwich because he was hungry")
    p.add_argument("--out", default="attention.png")
    _add_data_dir(p)
    p.set_defaults(fn=cmd_attention)

    p = sub.add_parser("export", help="export a GPT-2-architecture checkpoint to a Hugging Face directory")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_export)
    return ap


def main(argv=None):
    from .checkpoint import CheckpointError
    from .data import DataError
    from .download import DownloadError
    from .hf import PretrainedError
    from .tokenizers import EncodeError, TokenizerFileError
    from .backend import DeviceError
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (DataError, DownloadError, TokenizerFileError, EncodeError, CheckpointError, PretrainedError,
            DeviceError) as e:
        # problems with the user's files, text, network or device: a message, not a traceback
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:            # a second Ctrl-C, or one outside training: stop, quietly
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
