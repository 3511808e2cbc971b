"""Model families, one readable file each, and the registry that rebuilds them from checkpoints.

A family is a model class whose ``forward(*batch)`` returns ``(logits, loss)``, a config dataclass
with ``to_dict`` / ``from_dict``, and one record beside them (models/family.py: ``Family``) that
says what it trains on and which commands take it. The training loop, the checkpoints, the command
line and the benchmark take any registered family without change:

    FAMILIES["gpt"]      gpt.py: the tutorial's GPT and GPT-2            sample, attention, export
    FAMILIES["bigram"]   bigram.py: one table of next-token logits       sample
    FAMILIES["rnnlm"]    rnnlm.py: embedding -> LSTM / GRU / RNN -> head  sample
    FAMILIES["bert-mlm"] bert_tasks.py: masked-LM BERT                   fill-mask, embed, attention
    FAMILIES["bert-cls"] bert_tasks.py: sentence-pair BERT               attention
    FAMILIES["seq2seq"]  seq2seq.py: an encoder-decoder Transformer      translate, attention
    FAMILIES["llama"]    llama.py: RMSNorm, rotary, SwiGLU, grouped-query  sample, attention (GGUF, HF folders)

models/bert.py holds BertModel, BertForMaskedLM and BertForSequenceClassification with Hugging Face's
names and outputs; bert_tasks.py gives them the loop's forward and their batch sources
(data/masked_lm.py). The encoder-decoder trains on (source, target) pairs (data/pairs.py) and
decodes with decoding/beam_search.py.
"""
from . import bert_tasks, bigram, gpt, llama, rnnlm, seq2seq
from .bert import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel
from .bert_tasks import BertClassifier, BertClassifierConfig, BertMLM, BertMLMConfig
from .bigram import Bigram, BigramConfig
from .family import FAMILIES, Family, build, family_of, family_record, register, require
from .gpt import GPT, GPTConfig
from .llama import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification, Qwen2Config, Qwen2ForCausalLM
from .rnnlm import RNNLM, RNNLMConfig
from .seq2seq import Seq2Seq, Seq2SeqConfig

for _family in (gpt.FAMILY, bigram.FAMILY, rnnlm.FAMILY, bert_tasks.MLM_FAMILY, bert_tasks.CLASSIFIER_FAMILY,
                seq2seq.FAMILY, llama.FAMILY):
    register(_family)

__all__ = ["FAMILIES", "Family", "register", "require", "family_of", "family_record", "build",
           "GPT", "GPTConfig", "Bigram", "BigramConfig", "RNNLM", "RNNLMConfig",
           "BertConfig", "BertModel", "BertForMaskedLM", "BertForSequenceClassification",
           "BertMLM", "BertMLMConfig", "BertClassifier", "BertClassifierConfig", "Seq2Seq", "Seq2SeqConfig", "LlamaConfig", "LlamaForCausalLM", "LlamaForSequenceClassification",
           "Qwen2Config", "Qwen2ForCausalLM"]
