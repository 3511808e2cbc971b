"""One function per command. Each takes the parsed flags, calls the library, prints; a problem is
raised as a TinygradLMError (cli.main prints it as one ``error:`` line)."""
import dataclasses
import json
import os
import pathlib
import sys
import time

import numpy as np

from .. import backend
from ..training import checkpoint
from ..viz.attention_view import attention_view
from ..training.bench import run_bench
from ..training.config import TrainConfig
from ..data.text import load_meta, load_split, load_tokenizer, prepare as prepare_dataset, shakespeare
from ..data.chat import hold_out, prepare_chat, read_chat_jsonl, write_chat_jsonl
from ..data.preferences import prepare_preferences, read_preference_jsonl, write_preference_jsonl
from ..data.dates import dates_chat_splits, prepare_dates
from ..errors import CheckpointError, ConfigError, DataError
from ..models.base import KIND_NAMES, check_field_types, field_kind
from ..decoding.fill_mask import contextual_embeddings, fill_mask as fill_mask_text
from ..training.pretrained import load_chat_tokenizer, load_fill_mask, load_model_source
from ..models.generation import check_sampling, generate as generate_ids
from ..decoding.chat import ChatSession, pairs_from_mistakes
from ..tokenizers.chat_template import ChatML
from ..genomes.probes import is_genome_tokenizer, tok_end_id
from ..genomes.report import format_report as format_genome_report, genome_report as make_genome_report
from ..genomes.sarscov2 import WHOLE_GENOME, prepare_genomes
from ..models import family_record, require
from ..training.presets import PRESETS
from ..viz.alignment import alignment_view, text_alignment
from ..training.loop import train as train_model
from ..training.setup import MODEL_SETTINGS, default_dataset_dir, plan_run
from ..decoding.translate import exact_match, translate as translate_lines
from ..viz.plots import plot_alignment, plot_attention, plot_losses

MODEL_FLAGS = MODEL_SETTINGS        # model-config fields that a flag may set when a run starts


def _not_empty(value, flag, what="a path"):
    """An empty value names nothing: it is refused, not read as "use the default" (leave the flag out)."""
    if value is not None and not str(value).strip():
        raise ConfigError(f"{flag} {value!r} names nothing; give {what}, or leave {flag} out for the default")
    return value


def _dataset_dir(args, tokenizer="char"):
    if _not_empty(args.dataset, "--dataset"):
        return pathlib.Path(args.dataset)
    return default_dataset_dir(getattr(args, "preset", None), tokenizer)


def prepare(args):
    _not_empty(args.input, "--input")
    _not_empty(args.dataset, "--dataset")
    _not_empty(args.tokenizer, "--tokenizer", "a tokenizer")    # None means the corpus's default
    _not_empty(getattr(args, "gene", None), "--gene", "a gene name")
    if getattr(args, "corpus", "shakespeare") == "sars-cov-2":
        return prepare_sars_cov_2(args)
    if getattr(args, "corpus", "shakespeare") == "dates":
        return prepare_date_pairs(args)
    if getattr(args, "corpus", "shakespeare") in ("chat", "dates-chat"):
        return prepare_chats(args)
    if getattr(args, "corpus", "shakespeare") in ("preference", "dates-dpo"):
        return prepare_preference_pairs(args)
    if getattr(args, "model", None) is not None or getattr(args, "val_input", None) is not None:
        raise ConfigError("--model and --val-input apply to --corpus chat, dates-chat, preference and dates-dpo only")
    if getattr(args, "gene", None) is not None:
        raise ConfigError("--gene applies to --corpus sars-cov-2 only")
    args.tokenizer = args.tokenizer or "char"
    source = args.input if args.input is not None else shakespeare(args.data_dir, download=getattr(args, "download", False))
    out = _dataset_dir(args, args.tokenizer)
    meta = prepare_dataset(source, out, tokenizer=args.tokenizer,
                           data_dir=args.data_dir)
    print(f"prepared {out}: vocab {meta['vocab_size']}, {meta['train_tokens']:,} train and "
          f"{meta['val_tokens']:,} val tokens ({meta['dtype']})")
    return out


def prepare_sars_cov_2(args):
    if args.input is not None:
        raise ConfigError("--input applies to text corpora; the sars-cov-2 files are read from --data-dir")
    tokenizer, gene = args.tokenizer or "nucleotide", args.gene or WHOLE_GENOME
    out = pathlib.Path(args.dataset or pathlib.Path("data") / f"sars-cov-2_{gene}_{tokenizer.replace(':', '')}")
    meta = prepare_genomes(out, tokenizer=tokenizer, gene=gene, data_dir=args.data_dir, download=getattr(args, "download", False))
    corpus = meta["corpus"]
    for name in ("train", "val"):
        split = corpus[name]
        print(f"{name}: {split['genomes']} genomes sampled {split['first_date']} .. {split['last_date']}, "
              f"{meta[name + '_tokens']:,} tokens")
    print(f"prepared {out}: {gene} of {corpus['genomes_read']} genomes, {len(corpus['left_out'])} left out "
          f"(reasons in meta.json), {tokenizer} tokenizer, vocab {meta['vocab_size']}")
    return out


def prepare_date_pairs(args):
    if args.input is not None or args.tokenizer is not None:
        raise ConfigError("--input and --tokenizer do not apply to --corpus dates: it writes its own pairs in "
                          "its own character vocabulary")
    out = pathlib.Path(args.dataset or pathlib.Path("data") / "dates")
    meta = prepare_dates(out, n_train=100_000 if getattr(args, 'pairs', None) is None else args.pairs)
    corpus = meta["corpus"]
    print(f"prepared {out}: {corpus['train_pairs']:,} training pairs of {corpus['train_dates']:,} dates, "
          f"{corpus['val_pairs']:,} held-out pairs (one per held-out date), vocab {meta['vocab_size']}")
    return out


def prepare_preference_pairs(args):
    """Preference pairs for DPO in the tokenizer and template of --model: --corpus preference reads
    --input (and --val-input, else a tenth held out); dates-dpo builds pairs from --model's own
    mistakes on the dates task (chosen: the ISO date, rejected: its greedy reply), the held-out
    pairs from held-out dates, and keeps train.jsonl / val.jsonl beside the tokens."""
    if args.tokenizer is not None:
        raise ConfigError("--tokenizer does not apply to preference data: it is encoded with --model's own tokenizer")
    name = args.model or "smollm2"
    tok, template = load_chat_tokenizer(name)
    if args.corpus == "dates-dpo":
        if args.input is not None or args.val_input is not None:
            raise ConfigError("--input and --val-input do not apply to --corpus dates-dpo: it writes its own pairs")
        out = pathlib.Path(args.dataset or pathlib.Path("data") / "dates_dpo")
        model = load_model_source(name).model
        chats = dates_chat_splits(n_train=400 if args.pairs is None else args.pairs, n_val=args.val_pairs)
        split_pairs = []
        for split, prompts in zip(("train", "val"), chats):
            t = time.perf_counter()
            pairs, replies = pairs_from_mistakes(model, tok, template, prompts, max_new_tokens=24)
            print(f"{split}: {name} answers {len(prompts) - len(pairs)} of {len(prompts)} prompts right "
                  f"({time.perf_counter() - t:.0f} s); the {len(pairs)} wrong replies are the rejected answers")
            split_pairs.append(pairs)
        train, val = split_pairs
        meta = prepare_preferences(train, val, out, tok, template, source=f"dates-dpo ({name})")
        for split, pairs in (("train", train), ("val", val)):
            write_preference_jsonl(pairs, out / f"{split}.jsonl")
    else:
        if args.input is None:
            raise ConfigError("--corpus preference needs --input, a .jsonl file of (prompt, chosen, rejected) pairs")
        train, val = _read_splits(args, read_preference_jsonl, "preference pair")
        out = pathlib.Path(args.dataset or pathlib.Path("data") / f"preference_{pathlib.Path(args.input).stem}")
        meta = prepare_preferences(train, val, out, tok, template, source=str(args.input))
    counts = meta["preference"]
    print(f"prepared {out}: {counts['train_pairs']:,} training and {counts['val_pairs']:,} held-out pairs, "
          f"{meta['train_tokens']:,} and {meta['val_tokens']:,} tokens, vocab {meta['vocab_size']:,}")
    return out


def _read_splits(args, read, what):
    """(train, val) records of --input and --val-input, or of --input with a tenth held out."""
    records = read(args.input)
    if args.val_input is not None:
        return records, read(args.val_input)
    return hold_out(records, args.input, what)


def prepare_chats(args):
    """Chat data in the tokenizer and template of --model (a GGUF model): --corpus chat reads
    --input (and --val-input, else a tenth of --input held out); dates-chat writes the dates task
    as chats (held-out dates never trained on) and keeps train.jsonl / val.jsonl beside the tokens."""
    if args.tokenizer is not None:
        raise ConfigError("--tokenizer does not apply to chat data: it is encoded with --model's own tokenizer")
    tok, template = load_chat_tokenizer(args.model or "smollm2")
    if args.corpus == "dates-chat":
        if args.input is not None or args.val_input is not None:
            raise ConfigError("--input and --val-input do not apply to --corpus dates-chat: it writes its own chats")
        out = pathlib.Path(args.dataset or pathlib.Path("data") / "dates_chat")
        train, val = dates_chat_splits(n_train=2000 if args.pairs is None else args.pairs, n_val=args.val_pairs)
        meta = prepare_chat(train, val, out, tok, template, source="dates-chat")
        for name, chats in (("train", train), ("val", val)):
            write_chat_jsonl(chats, out / f"{name}.jsonl")
    else:
        if args.input is None:
            raise ConfigError("--corpus chat needs --input, a .jsonl file of conversations")
        train, val = _read_splits(args, read_chat_jsonl, "conversation")
        out = pathlib.Path(args.dataset or pathlib.Path("data") / f"chat_{pathlib.Path(args.input).stem}")
        meta = prepare_chat(train, val, out, tok, template, source=str(args.input))
    chat = meta["chat"]
    print(f"prepared {out}: {chat['train_conversations']:,} training and {chat['val_conversations']:,} held-out "
          f"conversations, {meta['train_tokens']:,} and {meta['val_tokens']:,} tokens, vocab {meta['vocab_size']:,}")
    return out


# ---------------------------------------------------------------------- train
def train(args):
    """Hand the flags to the library's run set-up once (training.setup.plan_run), train, then
    draw the losses and, for a family that samples, print a sample."""
    for name in ("samples", "sample_tokens"):              # what train does after the run: checked before it
        if getattr(args, name, 0) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    _not_empty(args.dataset, "--dataset")
    plan = plan_run(preset=args.preset, dataset=args.dataset, tokenizer=args.tokenizer, init_from=args.init_from,
                    out_dir=args.out_dir, data_dir=getattr(args, "data_dir", None), max_iters=args.max_iters,
                    train_settings={f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                                    if getattr(args, f.name, None) is not None},
                    model_settings={k: getattr(args, k) for k in MODEL_SETTINGS if getattr(args, k, None) is not None},
                    distributed=args.distributed)
    result = train_model(**plan.train_arguments(), log=print)
    if result["rank"] != 0:
        if result["interrupted"]:
            raise SystemExit(result["exit_status"])
        return
    model_config, train_config, dataset = plan.model_config, plan.train_config, plan.dataset
    out = pathlib.Path(train_config.out_dir)
    plot = out / "loss.png"
    plot_losses(result["history"], result["evals"], plot, title=args.preset or "training")
    print(f"loss curves: {plot}; best val loss {result['best_val']:.4f}; checkpoints in {out}")
    family = family_record(model_config)
    if "translate" in family.commands and not result["interrupted"]:
        print("exact match on the held-out pairs (greedy decoding): "
              f"{exact_match(result['model'], load_split(dataset, 'val')):.4f}")
    if args.samples and "sample" in family.commands and not result["interrupted"]:   # a signal: exit promptly
        tok = load_tokenizer(load_meta(dataset))
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
    loaded = load_model_source(path, device=args.device, what="--checkpoint")
    require("sample", loaded.family, path)   # an encoder (BERT) or a translator has no text to continue
    model, tok = loaded.model, loaded.tokenizer
    if tok is None:
        raise checkpoint.CheckpointError(f"{path} holds no tokenizer")
    if args.start is None:                   # a genome model's genes each start after <|endoftext|>
        start = [tok_end_id(tok)] if is_genome_tokenizer(tok) else tok.encode("\n")
    else:
        start = tok.encode(args.start) if args.start else [0]
    ids = generate_ids(model, [start] * args.num_samples, args.max_new_tokens, temperature=args.temperature,
                       top_k=args.top_k, top_p=args.top_p, seed=args.seed)
    for row in ids:
        print(tok.decode(row.tolist()))
        print("---")


def translate(args):
    """One translation per source line (standard input, or --text); with --dataset, the exact match
    on its val split instead."""
    if args.beam < 1:
        raise ConfigError(f"--beam must be >= 1, got {args.beam}")
    path = pathlib.Path(args.checkpoint) if args.checkpoint else pathlib.Path(args.out_dir) / "best.npz"
    if not args.checkpoint and not path.exists():
        path = path.with_name("last.npz")
    loaded = load_model_source(path, what="--checkpoint")
    require("translate", loaded.family, path)
    model, tok = loaded.model, loaded.tokenizer
    if tok is None:
        raise CheckpointError(f"{path} holds no tokenizer to read the text with")
    if args.dataset is not None:
        score = exact_match(model, load_split(_not_empty(args.dataset, "--dataset"), "val"), beam=args.beam)
        print(f"exact match on {args.dataset} val: {score:.4f}")
        return score
    # bytes that are not UTF-8 become U+FFFD (outside the vocabulary, so left out): a line, not a crash
    # lines end at "\n" only (str.splitlines would also split at \x1c, \x85, U+2028...: extra output lines)
    if args.text is None:
        text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
        lines = [line.rstrip("\r") for line in (text[:-1] if text.endswith("\n") else text).split("\n")] if text else []
    else:
        lines = [args.text]
    for start in range(0, len(lines), 256):        # a long input prints as it goes
        for text in translate_lines(model, tok, lines[start:start + 256], beam=args.beam):
            print(text, flush=True)


def genome_report(args):
    if args.samples < 0:
        raise ConfigError(f"--samples must be >= 0, got {args.samples}")
    path = pathlib.Path(args.checkpoint or pathlib.Path(args.out_dir) / "last.npz")
    loaded = load_model_source(path, what="--checkpoint")              # the one read of the file
    require("genome-report", loaded.family, path)
    dataset = args.dataset or (loaded.checkpoint or {"meta": {}})["meta"].get("dataset")
    if not isinstance(dataset, str) or not (pathlib.Path(dataset) / "meta.json").exists():
        raise DataError(f"the dataset of {path} is not found ({dataset}); give --dataset, a folder prepared with "
                        "`python -m tinygrad_lm prepare --corpus sars-cov-2`")
    report = make_genome_report(path, dataset, data_dir=args.data_dir, samples=args.samples, seed=args.seed,
                                loaded=(loaded.model, loaded.tokenizer))
    out = path.parent / "genome_report.json"
    out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(format_genome_report(report))
    print(f"written to {out}")
    return report


def bench(args):
    if args.steps < 1 or args.warmup < 0 or args.rounds < 1:
        raise ConfigError(f"bench needs --steps >= 1, --warmup >= 0 and --rounds >= 1, got {args.steps}, "
                          f"{args.warmup} and {args.rounds}")
    backend.get_array_module(backend.normalize_device(args.device))   # DeviceError now, not in each worker
    run_bench(args.preset, steps=args.steps, device=args.device, warmup=args.warmup, rounds=args.rounds,
              compare_torch=not args.no_torch, model=_model_fields(args.preset, getattr(args, "model_fields", [])))


def _model_fields(preset, settings):
    """--set FIELD=VALUE flags as {field: value}, each value read as its field's declared kind."""
    model_config, _ = PRESETS[preset]()
    fields = {f.name: f for f in dataclasses.fields(model_config)}
    out = {}
    for setting in settings:
        name, sep, text = setting.partition("=")
        if not sep or name not in fields:
            raise ConfigError(f"--set {setting!r}: give FIELD=VALUE with a field of {type(model_config).__name__} "
                              f"({', '.join(fields)})")
        kind = field_kind(fields[name]) or str
        try:
            out[name] = {"true": True, "false": False}[text.lower()] if kind is bool else kind(text)
        except (KeyError, ValueError):
            raise ConfigError(f"--set {setting!r}: {name} takes {KIND_NAMES.get(kind, 'a text')}") from None
    check_field_types(type(model_config), out)
    return out or None


# ---------------------------------------------------------------------- GPT-2
def generate(args):
    """The tutorial's text-generation demo, with GPT-2's weights running in our own code."""
    _check_sampling_flags(args, args.num_return_sequences)
    if not args.prompt:
        raise ConfigError("--prompt is empty; generation continues a prompt of at least one token")
    loaded = load_model_source(args.model, device=args.device, data_dir=getattr(args, "data_dir", None))
    require("sample", loaded.family, args.model)
    model, tok = loaded.model, loaded.tokenizer
    if tok is None:
        raise CheckpointError(f"{args.model} holds no tokenizer")
    prompt = tok.encode(args.prompt)
    ids = generate_ids(model, [prompt] * args.num_return_sequences, args.max_new_tokens,
                       temperature=0.0 if args.greedy else args.temperature, top_k=None if args.greedy else args.top_k,
                       top_p=args.top_p, seed=args.seed, use_cache=not args.no_cache)
    for i, row in enumerate(ids):
        print(f"[{i}] {tok.decode(row.tolist())}")
    return ids


def chat(args):
    """A conversation: one message per line (typed at a prompt, or read from standard input), each
    reply printed as it is made; the history is kept for the next message."""
    check_sampling(args.temperature, args.top_k, args.top_p, args.max_new_tokens, args.seed)
    loaded = load_model_source(args.model, device=args.device, data_dir=getattr(args, "data_dir", None))
    require("chat", loaded.family, args.model)
    template = getattr(loaded.tokenizer, "chat_template", None)
    if template is None:
        raise ConfigError(f"{args.model} holds no chat template: it is not a chat model")
    session = ChatSession(loaded.model, loaded.tokenizer, ChatML.from_template(template), system=args.system)
    interactive = sys.stdin.isatty()
    while True:
        try:
            line = input("> ") if interactive else sys.stdin.readline()
        except EOFError:
            break
        if not interactive and not line:
            break
        if not line.strip():
            continue
        session.send(line.rstrip("\n"), max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                     top_k=args.top_k, top_p=args.top_p, seed=args.seed,
                     on_text=lambda piece: print(piece, end="", flush=True))
        print(flush=True)
    return session


def attention(args):
    if not args.prompt:
        raise ConfigError("--prompt is empty; the attention maps need at least one token")
    _not_empty(args.out, "--out")
    _not_empty(args.html, "--html")
    out = pathlib.Path(args.out)
    page = pathlib.Path(args.html) if args.html else None
    for flag, target, example in (("--out", out, "attention.png"), ("--html", page, "view.html")):
        if target is not None and target.is_dir():
            raise ConfigError(f"{flag} {target} is a folder; give the file's name, e.g. {target / example}")
    path = args.model
    loaded = load_model_source(path, data_dir=getattr(args, "data_dir", None))
    model, tok = loaded.model, loaded.tokenizer
    if tok is None:
        raise CheckpointError(f"{path} holds no tokenizer")
    require("attention", loaded.family, path)
    if "translate" in loaded.family.commands:   # its alignment: cross-attention of the decode, output x source
        a, source_tokens, output_tokens = text_alignment(model, tok, args.prompt)
        view = alignment_view(a, source_tokens, output_tokens)
        draw = lambda: plot_alignment(a.cross, source_tokens, output_tokens, out)     # noqa: E731
        print(f"{args.prompt!r} -> {''.join(output_tokens).replace('<eos>', '')!r}")
    else:
        view = attention_view(model, tok, args.prompt)          # a prompt longer than the context is refused
        draw = lambda: plot_attention(view.weights, view.sections[0]["query_tokens"], out)     # noqa: E731
    maps = view.weights        # (layer, head, T, T), or (layer, head, output, source): the .npy, PNG and page agree
    page_text = view.to_html(title=f"attention: {args.prompt[:60]}") if page else None   # too big: refused now
    try:
        np.save(out.with_suffix(".npy"), maps)
        draw()
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    try:
        if page is not None:
            page.write_text(page_text, encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"--html {page}: cannot write there ({e.strerror or e})") from None
    print(f"attention maps: {out} (raw array {out.with_suffix('.npy')}, shape {maps.shape})"
          + (f"; interactive view: {page}" if page else ""))


# ---------------------------------------------------------------------- BERT
def fill_mask(args):
    """transformers' fill-mask pipeline: each [MASK]'s top-k tokens with their probabilities."""
    if args.top_k < 1:
        raise ConfigError(f"--top-k must be >= 1, got {args.top_k}")
    model, tok = load_fill_mask(_not_empty(args.model, "--model"))
    results = fill_mask_text(model, tok, args.text, top_k=args.top_k)
    per_mask = results if isinstance(results[0], list) else [results]
    for i, answers in enumerate(per_mask):
        if len(per_mask) > 1:
            print(f"{tok.mask_token} {i + 1} of {len(per_mask)}:")
        width = max(len(a["token_str"]) for a in answers)
        for a in answers:
            print(f"{a['token_str']:<{width}}  {a['score']:.4f}  {a['sequence']}")
    return results


def embed(args):
    """Contextual token embeddings: one vector per token of [CLS] text [SEP]."""
    _not_empty(args.out, "--out")
    model, tok = load_fill_mask(_not_empty(args.model, "--model"))
    tokens, vectors = contextual_embeddings(model, tok, args.text)
    width = max(len(t) for t in tokens)
    print(f"{len(tokens)} tokens x {vectors.shape[1]} dimensions (the encoder's last hidden state)")
    for token, v in zip(tokens, vectors):
        print(f"{token:<{width}}  norm {np.linalg.norm(v):8.3f}  [{', '.join(f'{x:+.3f}' for x in v[:4])}, ...]")
    if args.out:
        try:
            np.save(args.out, vectors)
        except OSError as e:
            raise ConfigError(f"--out {args.out}: cannot write there ({e.strerror or e})") from None
        print(f"saved {args.out}")
    return tokens, vectors


def export(args):
    _not_empty(args.out, "--out")
    loaded = load_model_source(args.checkpoint, what="--checkpoint")
    require("export", loaded.family, args.checkpoint)
    model = loaded.model
    print(f"exported to {model.save_pretrained(args.out)}")
