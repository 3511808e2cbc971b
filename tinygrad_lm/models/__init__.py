"""Model families, one readable file each, and the registry that rebuilds them from checkpoints.

A family is a model class whose ``forward(x, targets)`` returns ``(logits, loss)`` and a config
dataclass with ``to_dict`` / ``from_dict``. The training loop, the checkpoints and the command line
take any family registered here without change:

    FAMILIES["gpt"]    = (GPT, GPTConfig)        models/gpt.py: the tutorial's GPT and GPT-2
    FAMILIES["bigram"] = (Bigram, BigramConfig)  models/bigram.py: one table of next-token logits
    FAMILIES["rnnlm"]  = (RNNLM, RNNLMConfig)    models/rnnlm.py: embedding -> LSTM / GRU / RNN -> head

    FAMILIES["bert-mlm"] = (BertMLM, BertMLMConfig)                models/bert_tasks.py: masked-LM BERT
    FAMILIES["bert-cls"] = (BertClassifier, BertClassifierConfig)  models/bert_tasks.py: sentence-pair BERT

models/bert.py holds BertModel, BertForMaskedLM and BertForSequenceClassification with Hugging Face's
names and outputs; bert_tasks.py gives them the loop's forward and their batch sources (bert_data.py).
A family whose config has ``batch_source()`` trains on what it returns (others on CausalLMBatches).
    FAMILIES["seq2seq"] = (Seq2Seq, Seq2SeqConfig)  models/seq2seq.py: an encoder-decoder Transformer,
        forward(src, tgt_in, tgt_out) -> (logits, loss), trained on (source, target) pairs
        (seq2seq_data.py); decoding (greedy, beam search) in seq2seq_decode.py
"""
from .bert import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel
from .bert_tasks import BertClassifier, BertClassifierConfig, BertMLM, BertMLMConfig
from .bigram import Bigram, BigramConfig
from .gpt import GPT, GPTConfig
from .rnnlm import RNNLM, RNNLMConfig
from .seq2seq import Seq2Seq, Seq2SeqConfig

FAMILIES = {"gpt": (GPT, GPTConfig), "bigram": (Bigram, BigramConfig), "rnnlm": (RNNLM, RNNLMConfig),
            "bert-mlm": (BertMLM, BertMLMConfig), "bert-cls": (BertClassifier, BertClassifierConfig),
            "seq2seq": (Seq2Seq, Seq2SeqConfig)}


def family_of(model_or_config):
    """The registered family name of a model or a config."""
    for name, (model_cls, config_cls) in FAMILIES.items():
        if isinstance(model_or_config, (model_cls, config_cls)):
            return name
    raise TypeError(f"{type(model_or_config).__name__} is not a registered model family ({sorted(FAMILIES)})")


def build(config):
    """A fresh model of the family `config` belongs to (GPTConfig -> GPT, BigramConfig -> Bigram)."""
    return FAMILIES[family_of(config)][0](config)


__all__ = ["FAMILIES", "GPT", "GPTConfig", "Bigram", "BigramConfig", "RNNLM", "RNNLMConfig", "family_of", "build",
           "BertConfig", "BertModel", "BertForMaskedLM", "BertForSequenceClassification",
           "BertMLM", "BertMLMConfig", "BertClassifier", "BertClassifierConfig", "Seq2Seq", "Seq2SeqConfig"]
