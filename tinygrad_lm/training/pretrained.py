"""Pretrained models by path: a model to fine-tune (a Hugging Face GPT-2 folder or a training
checkpoint, its tokenizer checked against the data's) and a masked-LM BERT for fill-mask and embed
(a Hugging Face BERT folder or a masked-LM checkpoint)."""
import pathlib

from . import checkpoint
from ..decoding.fill_mask import SpecialTokensTokenizer
from ..errors import CheckpointError, ConfigError
from ..models import FAMILIES, GPT, family_of
from ..models.bert import BertForMaskedLM
from ..tokenizers.wordpiece import WordPieceTokenizer


def check_same_tokenizer(path, stored, data_tokenizer, data_name, advice):
    """A checkpoint's ids mean text only through the tokenizer it was trained with: the same
    vocabulary size is not enough, the tokenizers must be equal."""
    if stored != data_tokenizer:
        kind = stored.get("type") if isinstance(stored, dict) else None
        raise CheckpointError(f"{path} was trained on text tokenized by another tokenizer ({kind}) than "
                              f"{data_name} ({data_tokenizer.get('type')}): {advice}")


def pretrained_model(source, model_config, data_tokenizer):
    """A model to fine-tune: a Hugging Face GPT-2 folder or a training checkpoint."""
    path = pathlib.Path(source)
    if path.is_dir() and (path / "config.json").exists():
        model = GPT.from_pretrained(path)
    elif path.is_file():
        model, _, ckpt = checkpoint.load_model(path)
        stored = ckpt["meta"].get("tokenizer")
        if stored:
            check_same_tokenizer(path, stored, data_tokenizer, "the data",
                                  "give --dataset a folder prepared with its tokenizer")
    else:
        raise CheckpointError(f"--init-from {source!r}: not 'scratch', 'resume', a checkpoint file or "
                              "a Hugging Face GPT-2 directory (config.json + model.safetensors)")
    wanted = FAMILIES[family_of(model_config)][0]
    adopt = getattr(wanted, "from_pretrained_model", None)     # a new head on a pretrained body (BERT)
    if adopt is not None and not isinstance(model, wanted):
        model = adopt(model, model_config)
    if model.config.vocab_size < model_config.vocab_size:
        raise CheckpointError(f"the pretrained model's vocabulary ({model.config.vocab_size}) is smaller than the data's")
    return model


def load_fill_mask(source):
    """(masked-LM model, tokenizer), in eval mode, from a Hugging Face BERT folder (config.json,
    model.safetensors, vocab.txt: BertForMaskedLM, WordPieceTokenizer) or a masked-LM training
    checkpoint (.npz: its model, its dataset's tokenizer with the special tokens)."""
    path = pathlib.Path(source)
    if not path.is_file():
        return BertForMaskedLM.from_pretrained(source).eval(), WordPieceTokenizer.from_pretrained(source)
    model, tok, _ = checkpoint.load_model(path)
    if not isinstance(model, BertForMaskedLM) or getattr(model.config, "mask_token_id", None) is None:
        raise ConfigError(f"{path} holds a {type(model).__name__} model, not a masked-LM BERT: fill-mask and "
                          "embed need one (a bert-mini checkpoint, or a Hugging Face BERT folder)")
    if tok is None:
        raise ConfigError(f"{path} holds no tokenizer to read the text with")
    return model.eval(), SpecialTokensTokenizer(tok, model.config)
