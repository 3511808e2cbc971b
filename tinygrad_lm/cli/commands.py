"""One function per command. Each takes the parsed flags, calls the library, prints; a problem is
raised as a TinygradLMError (cli.main prints it as one ``error:`` line)."""
import dataclasses
import os
import pathlib

import numpy as np

from .. import backend, checkpoint
from ..bench import run_bench
from ..config import TrainConfig, make_schedule
from ..data import load_meta, load_tokenizer, make_tokenizer, prepare as prepare_dataset, shakespeare
from ..distributed import launched_under_mpi
from ..errors import CheckpointError, ConfigError, DataError, PretrainedError
from ..generate import check_sampling, generate as generate_ids
from ..hf import resolve_model_dir
from ..models import GPT
from ..presets import PRESETS
from ..train import train as train_model
from ..viz import plot_attention, plot_losses

# model-config fields that a flag may set when a run starts (the model's shape is fixed after)
MODEL_FLAGS = ("n_layer", "n_head", "n_embd", "block_size", "dropout")


def _not_empty(value, flag):
    """An empty value names nothing: it is refused, not read as "use the default" (leave the flag out)."""
    if value is not None and not str(value).strip():
        raise ConfigError(f"{flag} {value!r} names nothing; give a path, or leave {flag} out for the default")
    return value


def _dataset_dir(args, tokenizer="char"):
    if _not_empty(args.dataset, "--dataset"):
        return pathlib.Path(args.dataset)
    return pathlib.Path("data") / f"shakespeare_{tokenizer.replace(':', '')}"


def prepare(args):
    _not_empty(args.input, "--input")
    _not_empty(args.dataset, "--dataset")
    source = args.input if args.input is not None else shakespeare(args.data_dir)
    out = _dataset_dir(args, args.tokenizer)
    meta = prepare_dataset(source, out, tokenizer=args.tokenizer,
                           data_dir=args.data_dir or os.environ.get("TINYGRAD_LM_DATA"))
    print(f"prepared {out}: vocab {meta['vocab_size']}, {meta['train_tokens']:,} train and "
          f"{meta['val_tokens']:,} val tokens ({meta['dtype']})")
    return out


# ---------------------------------------------------------------------- train
def train_configs(args, vocab_size, saved=None):
    """(model config, TrainConfig) for this run: the preset's (or, when resuming, the checkpoint's),
    with the flags given on top."""
    for name in ("samples", "sample_tokens"):              # what train does after the run: checked before it
        if getattr(args, name, 0) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if saved is not None:
        model_config, train_config = _saved_configs(args, saved)
    else:
        model_config, train_config = PRESETS[args.preset or "default"](vocab_size)
    if args.max_iters is not None:
        train_config = train_config.with_max_iters(args.max_iters)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                 if getattr(args, f.name, None) is not None}
    train_config = dataclasses.replace(train_config, **overrides)
    try:
        make_schedule(train_config)                      # a schedule that contradicts itself: say so now
    except ValueError as e:
        raise ConfigError(f"{e} (see --max-iters, --warmup-iters and --lr-decay-iters)") from None
    model_overrides = {k: getattr(args, k) for k in MODEL_FLAGS if getattr(args, k, None) is not None}
    unknown = [k for k in model_overrides if not hasattr(model_config, k)]
    if unknown:
        raise ConfigError(f"{type(model_config).__name__} has no {', '.join(unknown)}: "
                          f"{', '.join('--' + k.replace('_', '-') for k in unknown)} do not apply to this model")
    return dataclasses.replace(model_config, **model_overrides), train_config


def _saved_configs(args, meta):
    """Resuming continues the run as it was saved: the model and training settings come from the
    checkpoint's metadata, not from a preset or the defaults (which would quietly change the run).
    Training flags given now still apply on top, e.g. --max-iters to train longer."""
    out_dir = args.out_dir or "out"
    path = pathlib.Path(out_dir) / "last.npz"
    fixed = [f"--{name.replace('_', '-')}" for name in MODEL_FLAGS if getattr(args, name, None) is not None]
    if fixed:
        raise ConfigError(f"{', '.join(fixed)} cannot change when resuming: {path} holds the model it trained")
    if args.preset:
        print(f"note: --preset {args.preset} is not used when resuming; the settings saved in {path} are")
    model_config = checkpoint.model_config(meta, path)
    if model_config is None or not isinstance(meta.get("train_config"), dict):
        raise CheckpointError(f"{path} holds no model_config or train_config: it cannot be resumed")
    try:
        train_config = TrainConfig.from_dict(dict(meta["train_config"], out_dir=out_dir))
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path} holds an invalid train_config: {e}") from None
    return model_config, train_config


def _use_saved_dataset(args, meta):
    """Train on the data a checkpoint was trained on, while it is there and no --dataset is given."""
    saved_data = meta.get("dataset")
    if args.dataset is None and isinstance(saved_data, str) and (pathlib.Path(saved_data) / "meta.json").exists():
        args.dataset = saved_data


def train(args):
    saved = None                             # the checkpoint's metadata, when resuming: read once
    if args.init_from == "resume":
        saved = checkpoint.read_meta(pathlib.Path(args.out_dir or "out") / "last.npz")
        _use_saved_dataset(args, saved)      # resume on the data the run trained on, while it is there
    elif args.init_from != "scratch":        # checked before any data is prepared for it
        source = pathlib.Path(args.init_from)
        if source.is_dir() and (source / "config.json").exists():
            if args.tokenizer == "char":
                args.tokenizer = "gpt2"      # fine-tuning GPT-2 needs its tokenizer
        elif source.is_file():               # a training checkpoint: its own data and tokenizer
            init_meta = checkpoint.read_meta(source)
            _use_saved_dataset(args, init_meta)
            stored = init_meta.get("tokenizer")
            if args.tokenizer == "char" and isinstance(stored, dict) and stored.get("type") == "bpe":
                args.tokenizer = "gpt2"      # a fine-tuned GPT-2 (another BPE: give its --dataset)
        else:
            raise CheckpointError(f"--init-from {args.init_from!r}: not 'scratch', 'resume', a checkpoint file or "
                                  "a Hugging Face GPT-2 directory (config.json + model.safetensors)")
    dataset = _dataset_dir(args, args.tokenizer)
    if not (dataset / "meta.json").exists():
        if args.dataset:
            raise DataError(f"{dataset}/meta.json not found; run `python -m tinygrad_lm prepare` first")
        if args.distributed or launched_under_mpi():     # every rank would prepare the same folder at once
            raise DataError(f"{dataset}/meta.json not found: under MPI, run `python -m tinygrad_lm prepare` "
                            "once before starting the ranks")
        print(f"{dataset} not prepared yet: preparing tiny Shakespeare with the {args.tokenizer} tokenizer")
        args.input = None
        prepare(args)
    meta = load_meta(dataset)
    model_config, train_config = train_configs(args, meta["vocab_size"], saved)
    if args.init_from not in ("scratch", "resume"):
        model_config = dataclasses.replace(model_config, vocab_size=max(model_config.vocab_size, meta["vocab_size"]))
    result = train_model(model_config, train_config, dataset, init_from=args.init_from, log=print,
                         distributed=args.distributed or launched_under_mpi())
    if result["rank"] != 0:
        if result["interrupted"]:
            raise SystemExit(result["exit_status"])
        return
    out = pathlib.Path(train_config.out_dir)
    plot = plot_losses(result["history"], result["evals"], out / "loss.png", title=args.preset or "training")
    print(f"loss curves: {plot}; best val loss {result['best_val']:.4f}; checkpoints in {out}")
    if args.samples and not result["interrupted"]:         # stopped by a signal: exit promptly
        tok = load_tokenizer(meta)
        start = tok.encode("\n") if "\n" in getattr(tok, "stoi", {"\n": 0}) else [0]
        ids = generate_ids(result["model"], [start], args.sample_tokens, temperature=1.0, seed=train_config.seed)
        print("--- sample ---")
        print(tok.decode(ids[0].tolist()))
    if result["interrupted"]:                # 130 after Ctrl-C, 143 after SIGTERM: a job script resubmits on 143
        raise SystemExit(result["exit_status"])


# ---------------------------------------------------------------------- sampling
def _check_sampling_flags(args, count):
    """Bad sampling flags end the command before a model is loaded."""
    check_sampling(args.temperature, args.top_k, args.top_p, args.max_new_tokens, args.seed)
    if count < 1:
        raise ConfigError(f"the number of samples must be >= 1, got {count}")


def sample(args):
    _check_sampling_flags(args, args.num_samples)
    path = pathlib.Path(args.checkpoint or pathlib.Path(args.out_dir) / "last.npz")
    model, tok, _ = checkpoint.load_model(path, device=args.device)
    if tok is None:
        raise checkpoint.CheckpointError(f"{path} holds no tokenizer")
    start = tok.encode(args.start) if args.start else [0]
    ids = generate_ids(model, [start] * args.num_samples, args.max_new_tokens, temperature=args.temperature,
                       top_k=args.top_k, top_p=args.top_p, seed=args.seed)
    for row in ids:
        print(tok.decode(row.tolist()))
        print("---")


def bench(args):
    if args.steps < 1 or args.warmup < 0 or args.rounds < 1:
        raise ConfigError(f"bench needs --steps >= 1, --warmup >= 0 and --rounds >= 1, got {args.steps}, "
                          f"{args.warmup} and {args.rounds}")
    backend.get_array_module(backend.normalize_device(args.device))   # DeviceError now, not in each worker
    run_bench(args.preset, steps=args.steps, device=args.device, warmup=args.warmup, rounds=args.rounds,
              compare_torch=not args.no_torch)


# ---------------------------------------------------------------------- GPT-2
def _gpt2_tokenizer(args):
    # --data-dir/gpt2 when given, else $TINYGRAD_LM_DATA/gpt2 (or ./data/gpt2), downloaded if missing
    return make_tokenizer("gpt2", "", getattr(args, "data_dir", None))


def _check_vocabularies(tok, model, source):
    """Every id the tokenizer makes must be a row of the model's embedding: a GPT-2 folder whose
    config.json says vocab_size 30 cannot read GPT-2's ids (up to 50256)."""
    if tok.vocab_size > model.config.vocab_size:
        raise PretrainedError(f"{source}: the tokenizer and the model disagree: the tokenizer makes ids up to "
                              f"{tok.vocab_size - 1:,} but the model's vocabulary holds {model.config.vocab_size:,} "
                              "tokens (vocab_size in its config)")


def generate(args):
    """The tutorial's text-generation demo, with GPT-2's weights running in our own code."""
    _check_sampling_flags(args, args.num_return_sequences)
    if not args.prompt:
        raise ConfigError("--prompt is empty; generation continues a prompt of at least one token")
    model_dir = resolve_model_dir(args.model)
    model = GPT.from_pretrained(model_dir).to(args.device)
    tok = _gpt2_tokenizer(args)
    _check_vocabularies(tok, model, model_dir)
    prompt = tok.encode(args.prompt)
    ids = generate_ids(model, [prompt] * args.num_return_sequences, args.max_new_tokens,
                       temperature=0.0 if args.greedy else args.temperature, top_k=None if args.greedy else args.top_k,
                       top_p=args.top_p, seed=args.seed, use_cache=not args.no_cache)
    for i, row in enumerate(ids):
        print(f"[{i}] {tok.decode(row.tolist())}")
    return ids


def attention(args):
    if not args.prompt:
        raise ConfigError("--prompt is empty; the attention maps need at least one token")
    _not_empty(args.out, "--out")
    out = pathlib.Path(args.out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give the image's file name, e.g. {out / 'attention.png'}")
    path = pathlib.Path(args.model)
    if path.is_dir():
        model, tok = GPT.from_pretrained(path), _gpt2_tokenizer(args)
    else:
        model, tok, _ = checkpoint.load_model(path)
        if tok is None:
            raise CheckpointError(f"{path} holds no tokenizer")
    if not hasattr(model, "attention_maps"):
        raise ConfigError(f"{path} holds a {type(model).__name__} model, which has no attention to draw")
    _check_vocabularies(tok, model, path)
    ids = tok.encode(args.prompt)[: model.config.block_size]
    if not ids:
        raise ConfigError(f"--prompt {args.prompt!r} encodes to no tokens; the attention maps need at least one")
    maps = model.attention_maps(np.array([ids]))[:, 0]           # (layer, head, T, T)
    try:
        np.save(out.with_suffix(".npy"), maps)
        plot_attention(maps, [tok.decode([i]) for i in ids], out)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    print(f"attention maps: {out} (raw array {out.with_suffix('.npy')}, shape {maps.shape})")


def export(args):
    _not_empty(args.out, "--out")
    model, _, _ = checkpoint.load_model(args.checkpoint)
    if not isinstance(model, GPT):
        raise ConfigError(f"{args.checkpoint} holds a {type(model).__name__} model; only GPT-2 exports")
    print(f"exported to {model.save_pretrained(args.out)}")
