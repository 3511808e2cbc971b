"""What a run needs before it starts, chosen once from what was asked (``plan_run``): which
dataset (the preset's own corpus, the one a checkpoint was trained on, or tiny Shakespeare with
the tokenizer asked for, prepared when missing), which tokenizer a pretrained model needs, the
model and training configs (a preset's, or a resumed checkpoint's with the settings given now on
top), and the checkpoint to resume or the model to start from, each read from disk once.

The train command parses its flags and hands them here; loop.train(**plan.train_arguments()) runs it.
"""
import dataclasses
import os
import pathlib

from . import checkpoint
from .config import TrainConfig, make_schedule
from .distributed import launched_under_mpi
from .presets import PRESETS
from .pretrained import load_model_source, registered_names, resolve_model
from ..data.chat import hold_out, prepare_chat, read_chat_jsonl
from ..data.dates import prepare_dates
from ..data.text import load_meta, prepare as prepare_text, shakespeare
from ..errors import CheckpointError, ConfigError, DataError
from ..io.download import sha256_of
from ..tokenizers.chat_template import ChatML

# model-config fields that may be set when a run starts (the model's shape is fixed after)
MODEL_SETTINGS = ("n_layer", "n_head", "n_embd", "block_size", "dropout")
# presets that train on a corpus of their own: its folder under data/ and how it is prepared
PRESET_CORPORA = {"seq2seq-dates": ("dates", prepare_dates)}


def default_dataset_dir(preset=None, tokenizer="char"):
    """Where a dataset is prepared when no folder is named: the preset's own corpus, else
    data/shakespeare_<tokenizer>."""
    if preset in PRESET_CORPORA:
        return pathlib.Path("data") / PRESET_CORPORA[preset][0]
    return pathlib.Path("data") / f"shakespeare_{tokenizer.replace(':', '')}"


@dataclasses.dataclass
class RunPlan:
    model_config: object
    train_config: TrainConfig
    dataset: pathlib.Path
    init_from: object = "scratch"      # "scratch", "resume", or the LoadedModel / ModelSource to start from
    resume_checkpoint: dict = None     # out_dir/last.npz, loaded once, when resuming
    distributed: bool = False

    def train_arguments(self):
        return {"model_config": self.model_config, "cfg": self.train_config, "data_dir": self.dataset,
                "init_from": self.init_from, "resume_checkpoint": self.resume_checkpoint,
                "distributed": self.distributed}


def plan_run(preset=None, dataset=None, tokenizer="char", init_from="scratch", out_dir=None, data_dir=None,
             max_iters=None, train_settings=None, model_settings=None, distributed=False, log=print):
    """The RunPlan for what was asked. train_settings: TrainConfig fields given now (on top of the
    preset's or the checkpoint's); model_settings: MODEL_SETTINGS given now (not when resuming)."""
    train_settings, model_settings = dict(train_settings or {}), dict(model_settings or {})
    distributed = distributed or launched_under_mpi()
    saved = start = None
    if init_from == "resume":
        saved = checkpoint.load(pathlib.Path(out_dir or "out") / "last.npz")    # the one read of last.npz
        dataset = dataset or _saved_dataset(saved["meta"])
    elif init_from != "scratch":                   # checked before any data is prepared for it
        named = pathlib.Path(init_from).exists() or init_from in registered_names()
        source = resolve_model(init_from, "--init-from") if named else None
        if source is not None and source.kind == "gpt2-folder" and (source.path / "config.json").exists():
            start = source
            tokenizer = "gpt2" if tokenizer == "char" else tokenizer       # fine-tuning GPT-2 needs its tokenizer
        elif source is not None and source.kind == "gguf":            # a pretrained Llama, tuned on chats
            start = load_model_source(source)
            if dataset is not None and str(dataset).endswith(".jsonl"):
                dataset = prepare_chat_file(dataset, start, distributed, log)
            elif dataset is None:
                raise ConfigError(f"--init-from {init_from}: give --dataset, chat data as a .jsonl file (one "
                                  "{\"messages\": [...]} per line) or a folder prepared with this model's tokenizer")
        elif source is not None and source.kind == "checkpoint":      # its own data and tokenizer
            start = load_model_source(source)
            meta = start.checkpoint["meta"]
            dataset = dataset or _saved_dataset(meta)
            stored = meta.get("tokenizer")
            if tokenizer == "char" and isinstance(stored, dict) and stored.get("type") == "bpe":
                tokenizer = "gpt2"                 # a fine-tuned GPT-2 (another BPE: give its --dataset)
        else:
            raise CheckpointError(f"--init-from {init_from!r}: not 'scratch', 'resume', a checkpoint file or "
                                  "a Hugging Face GPT-2 directory (config.json + model.safetensors)")
    folder = pathlib.Path(dataset) if dataset else default_dataset_dir(preset, tokenizer)
    if not (folder / "meta.json").exists():
        _prepare_missing(folder, bool(dataset), preset, tokenizer, data_dir, distributed, log)
    meta = load_meta(folder)
    if saved is not None:
        model_config, train_config = _saved_configs(saved["meta"], out_dir, preset, model_settings, log)
    else:
        model_config, train_config = PRESETS[preset or "default"](meta["vocab_size"])
    train_config = _with_settings(train_config, max_iters, train_settings)
    model_config = _with_model_settings(model_config, model_settings)
    if start is not None and getattr(start, "source", start).kind == "gguf":   # the file's model, not the preset's
        model_config = start.model.config
    elif start is not None:
        model_config = dataclasses.replace(model_config, vocab_size=max(model_config.vocab_size, meta["vocab_size"]))
    return RunPlan(model_config, train_config, folder, init_from if start is None else start, saved, distributed)


def prepare_chat_file(path, loaded, distributed=False, log=print):
    """A chat JSONL file as a dataset of the model `loaded` (a GGUF LoadedModel: its tokenizer and
    chat template), in data/chat_<file name>: prepared again when the file's bytes changed (its
    sha256 in meta.json). A tenth of the conversations (at least one) is held out for validation,
    chosen by a fixed seed."""
    path = pathlib.Path(path)
    folder = pathlib.Path("data") / f"chat_{path.stem}"
    digest = sha256_of(path) if path.is_file() else None
    chats = read_chat_jsonl(path)                      # names the bad line before anything is written
    meta_path = folder / "meta.json"
    if meta_path.exists() and digest == load_meta(folder).get("source_sha256"):
        return folder
    if distributed:
        raise DataError(f"{folder} must be prepared from {path} once before the MPI ranks start: run the same "
                        "command without mpiexec first (or `prepare --corpus chat`)")
    template = chat_template_of(loaded)
    train, val = hold_out(chats, path)
    meta = prepare_chat(train, val, folder, loaded.tokenizer, template, source=str(path), source_sha256=digest)
    log(f"prepared {folder} from {path}: {len(train)} training and {len(val)} held-out conversations, "
        f"{meta['train_tokens']:,} and {meta['val_tokens']:,} tokens")
    return folder


def chat_template_of(loaded):
    """The ChatML template a loaded model's tokenizer carries (a GGUF file's)."""
    text = getattr(loaded.tokenizer, "chat_template", None)
    if text is None:
        raise ConfigError(f"{loaded.source}: holds no chat template, so its chats cannot be rendered")
    return ChatML.from_template(text)


def _saved_dataset(meta):
    """The dataset a checkpoint was trained on, while it is there (None otherwise)."""
    saved = meta.get("dataset")
    return saved if isinstance(saved, str) and (pathlib.Path(saved) / "meta.json").exists() else None


def _prepare_missing(folder, named, preset, tokenizer, data_dir, distributed, log):
    if named:
        raise DataError(f"{folder}/meta.json not found; run `python -m tinygrad_lm prepare` first")
    if distributed:                            # every rank would prepare the same folder at once
        raise DataError(f"{folder}/meta.json not found: under MPI, run `python -m tinygrad_lm prepare` "
                        "once before starting the ranks")
    if preset in PRESET_CORPORA:
        corpus, prepare = PRESET_CORPORA[preset]
        log(f"{folder} not prepared yet: preparing the {corpus} corpus")
        prepare(folder)
        return
    log(f"{folder} not prepared yet: preparing tiny Shakespeare with the {tokenizer} tokenizer")
    meta = prepare_text(shakespeare(data_dir), folder, tokenizer=tokenizer,
                        data_dir=data_dir)
    log(f"prepared {folder}: vocab {meta['vocab_size']}, {meta['train_tokens']:,} train and "
        f"{meta['val_tokens']:,} val tokens ({meta['dtype']})")


def _saved_configs(meta, out_dir, preset, model_settings, log):
    """Resuming continues the run as it was saved: the model and training settings come from the
    checkpoint's metadata, not from a preset or the defaults (which would quietly change the run)."""
    out_dir = out_dir or "out"
    path = pathlib.Path(out_dir) / "last.npz"
    if model_settings:
        fixed = ", ".join(f"--{name.replace('_', '-')}" for name in model_settings)
        raise ConfigError(f"{fixed} cannot change when resuming: {path} holds the model it trained")
    if preset:
        log(f"note: --preset {preset} is not used when resuming; the settings saved in {path} are")
    model_config = checkpoint.model_config(meta, path)
    if model_config is None or not isinstance(meta.get("train_config"), dict):
        raise CheckpointError(f"{path} holds no model_config or train_config: it cannot be resumed")
    try:
        train_config = TrainConfig.from_dict(dict(meta["train_config"], out_dir=out_dir))
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path} holds an invalid train_config: {e}") from None
    return model_config, train_config


def _with_settings(train_config, max_iters, settings):
    if max_iters is not None:
        train_config = train_config.with_max_iters(max_iters)
    train_config = dataclasses.replace(train_config, **settings)
    try:
        make_schedule(train_config)                      # a schedule that contradicts itself: say so now
    except ValueError as e:
        raise ConfigError(f"{e} (see --max-iters, --warmup-iters and --lr-decay-iters)") from None
    return train_config


def _with_model_settings(model_config, settings):
    fields = {f.name for f in dataclasses.fields(model_config)}     # (BERT's block_size is derived, not a field)
    unknown = [k for k in settings if k not in fields]
    if unknown:
        raise ConfigError(f"{type(model_config).__name__} has no {', '.join(unknown)}: "
                          f"{', '.join('--' + k.replace('_', '-') for k in unknown)} do not apply to this model")
    return dataclasses.replace(model_config, **settings)
