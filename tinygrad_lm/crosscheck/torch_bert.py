"""BERT's PyTorch twins for the benchmark: transformers' BertForMaskedLM and
BertForSequenceClassification with our config (sdpa attention), their forward taking the batch
our batch sources make (input_ids, attention_mask, token_type_ids, labels) and returning
(logits, loss) as the training loop's BertMLM and BertClassifier do. Needs torch and transformers."""
import torch.nn as tnn

# fields of our task configs that transformers' BertConfig does not have
OURS_ONLY = ("cls_token_id", "sep_token_id", "mask_token_id", "line_break_id", "classifier_dropout")


class _LoopForward(tnn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                         labels=labels)
        return out.logits, out.loss


def _hf_config(config, **extra):
    import transformers
    return transformers.BertConfig(**{k: v for k, v in config.to_dict().items() if k not in OURS_ONLY}, **extra)


def masked_lm_twin(config, device):
    import transformers
    return _LoopForward(transformers.BertForMaskedLM(_hf_config(config))).to(device)


def classifier_twin(config, device):
    import transformers
    return _LoopForward(transformers.BertForSequenceClassification(
        _hf_config(config, classifier_dropout=config.classifier_dropout))).to(device)
