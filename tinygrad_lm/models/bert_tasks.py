"""BERT in the training loop: two families over models/bert.py's classes, with the loop's forward.

    FAMILIES["bert-mlm"]: BertMLM, BertMLMConfig                masked-LM pretraining
    FAMILIES["bert-cls"]: BertClassifier, BertClassifierConfig  sequence(-pair) classification

The loop calls ``model(*batch) -> (logits, loss)``; Hugging Face's classes return an output object
whose tuple order is (loss, logits). BertMLM and BertClassifier are BertForMaskedLM and
BertForSequenceClassification with only forward changed: same parameters, same state_dict names,
``save_pretrained`` still writes a folder transformers' class of the parent's name loads.

The configs add what training needs to BertConfig: the ids of [CLS], [SEP] and [MASK] ([PAD] is
BertConfig's pad_token_id), ``block_size`` (the training sequence length: max_position_embeddings),
the batch source (bert_data.py) and, for next-sentence pairs, the id that ends a line.
``BertMLMConfig.with_specials(V, ...)`` appends the four specials after a dataset's vocabulary
of V tokens: [PAD] = V, [CLS] = V + 1, [SEP] = V + 2, [MASK] = V + 3.

A classifier starts from a masked-LM checkpoint with ``BertClassifier.from_pretrained_model``
(runs.py calls it for ``--init-from CHECKPOINT``): the encoder's weights are copied, the pooler
and the classifier start fresh, as transformers' from_pretrained does with a pretraining file.
"""
import dataclasses
import functools
from dataclasses import dataclass

from ..io import hf
from ..data.masked_lm import MaskedLMBatches, NextSentenceBatches, SpecialTokens
from ..errors import CheckpointError, ConfigError
from .bert import BertConfig, BertForMaskedLM, BertForSequenceClassification
from .family import Family

SPECIALS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")
# what a fine-tuning run chooses; everything else describes the pretrained encoder
TASK_FIELDS = ("num_labels", "classifier_dropout", "hidden_dropout_prob", "attention_probs_dropout_prob",
               "line_break_id")


@dataclass
class BertTaskConfig(BertConfig):
    cls_token_id: int = None
    sep_token_id: int = None
    mask_token_id: int = None
    line_break_id: int = 0                    # the id that ends a line: '\n' is 0 in a sorted character vocabulary

    @classmethod
    def with_specials(cls, vocab_size, **fields):
        """A config whose vocabulary is a dataset's `vocab_size` tokens and then [PAD] [CLS] [SEP] [MASK]."""
        V = vocab_size
        return cls(vocab_size=V + len(SPECIALS), pad_token_id=V, cls_token_id=V + 1, sep_token_id=V + 2,
                   mask_token_id=V + 3, **fields)

    @property
    def block_size(self):
        """The training loop's sequence length: every position embedding is used."""
        return self.max_position_embeddings

    @property
    def specials(self):
        return SpecialTokens(pad=self.pad_token_id, cls=self.cls_token_id, sep=self.sep_token_id,
                             mask=self.mask_token_id)

    def validate(self):
        super().validate()
        ids = {"pad_token_id": self.pad_token_id, "cls_token_id": self.cls_token_id,
               "sep_token_id": self.sep_token_id, "mask_token_id": self.mask_token_id}
        problems = [f"{name}={value} is not an id of the vocabulary (0..{self.vocab_size - 1})"
                    for name, value in ids.items() if value is None or not 0 <= value < self.vocab_size]
        if not problems and len(set(ids.values())) < len(ids):
            problems.append(f"the special tokens need distinct ids, got {ids}")
        if not problems and min(ids.values()) < 1:
            problems.append(f"the special tokens need ids after the text's own (>= 1), got {ids}")
        if problems:
            raise ConfigError(f"{type(self).__name__}: " + "; ".join(problems))


@dataclass
class BertMLMConfig(BertTaskConfig):
    def batch_source(self):
        return functools.partial(MaskedLMBatches, specials=self.specials)


@dataclass
class BertClassifierConfig(BertTaskConfig):
    def batch_source(self):
        return functools.partial(NextSentenceBatches, specials=self.specials, line_break=self.line_break_id)


class BertMLM(BertForMaskedLM):
    """BertForMaskedLM for the training loop: forward(...) -> (logits (B, T, V), loss or None)."""

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        out = super().forward(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, labels=labels)
        return out.logits, out.loss

    def save_pretrained(self, out_dir):
        return _save_as(self, "BertForMaskedLM", out_dir)


class BertClassifier(BertForSequenceClassification):
    """BertForSequenceClassification for the loop: forward(...) -> (logits (B, num_labels), loss or None)."""

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        out = super().forward(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, labels=labels)
        return out.logits, out.loss

    def save_pretrained(self, out_dir):
        return _save_as(self, "BertForSequenceClassification", out_dir)

    @classmethod
    def from_pretrained_model(cls, source, config):
        """A classifier whose encoder is `source`'s (a BertMLM or any model with a ``.bert``): the
        encoder's shape and vocabulary come from source, the task's fields (TASK_FIELDS) from
        `config`; the pooler (when source has none) and the classifier start fresh."""
        if not hasattr(source, "bert") or not isinstance(getattr(source, "config", None), BertConfig):
            raise CheckpointError(f"a {type(source).__name__} has no BERT encoder to fine-tune as a classifier")
        fields = {f.name: getattr(source.config, f.name) for f in dataclasses.fields(BertConfig)}
        fields.update({f.name: getattr(source.config, f.name, None) for f in dataclasses.fields(BertTaskConfig)
                       if f.name not in fields})
        fields.update({name: getattr(config, name) for name in TASK_FIELDS})
        model = cls(BertClassifierConfig(**fields))
        state = model.state_dict()
        encoder = {name: array for name, array in source.state_dict().items() if name.startswith("bert.")}
        state.update({name: array for name, array in encoder.items() if name in state})
        model.load_state_dict(state)
        return model


def _save_as(model, architecture, out_dir):
    state = {name: t.numpy() for name, t in model.state_dict().items() if name not in model.tied}
    return hf.write_bert(model.config.to_dict(), architecture, state, out_dir)


def _text_ids(config, n, rng):
    """n random ids of the text's own vocabulary (below [PAD]), for the benchmark's batches."""
    return rng.integers(0, config.pad_token_id, n)


MLM_FAMILY = Family("bert-mlm", BertMLM, BertMLMConfig, batch_source=BertMLMConfig.batch_source,
                    commands=("fill-mask", "embed", "attention"), bench_tokens=_text_ids,
                    torch_twin="tinygrad_lm.crosscheck.torch_bert:masked_lm_twin",
                    bench_goal="goal <= 1.0, floor <= 1.25")
CLASSIFIER_FAMILY = Family("bert-cls", BertClassifier, BertClassifierConfig,
                           batch_source=BertClassifierConfig.batch_source, commands=("attention",),
                           bench_tokens=_text_ids, torch_twin="tinygrad_lm.crosscheck.torch_bert:classifier_twin",
                           bench_goal="goal <= 1.0, floor <= 1.25")
