"""BERT: an encoder-only transformer, in one file, named as Hugging Face's ``modeling_bert.py``.

    input_ids (B, T) -> word + position + token-type embeddings -> LayerNorm -> dropout
                     -> num_hidden_layers x BertLayer -> last_hidden_state (B, T, C)
    BertLayer:  x = LayerNorm(x + attention(x));  x = LayerNorm(x + output(gelu(intermediate(x))))
                (post-LayerNorm, GPT's is pre-LayerNorm; attention sees every position, not only
                earlier ones, except padding: attention_mask 0 hides a key from every query)
    pooler:     tanh(dense(last_hidden_state[:, 0]))        the [CLS] position, for sentence tasks
    heads:      BertForMaskedLM  -> cls.predictions: dense, gelu, LayerNorm, decoder tied to the
                                    word embedding (+ its own bias) -> logits (B, T, vocab_size)
                BertForSequenceClassification -> dropout, classifier on the pooled [CLS] -> (B, num_labels)

Every parameter has Hugging Face's state_dict name (``bert.encoder.layer.0.attention.self.query.weight``),
so weights move both ways: ``from_pretrained`` reads a Hugging Face folder (or, online, a hub name
such as "bert-base-uncased"), ``save_pretrained`` writes one that ``transformers`` loads. The file
format itself (config.json fields, safetensors checks) is hf.py's.
"""
import warnings
from dataclasses import dataclass

import numpy as np

from .. import backend
from ..io import hf
from .. import nn
from ..errors import ConfigError, PretrainedError
from ..nn import functional as F
from ..nn.attention import BIDIRECTIONAL
from ..tensor import Tensor, no_grad
from .base import ModelConfig, check_token_ids, check_field_types

ACTIVATIONS = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}   # -> F.gelu(approximate=)


@dataclass
class BertConfig(ModelConfig):
    """Hugging Face's BertConfig fields and defaults (BERT-base, uncased vocabulary)."""
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"                    # exact (erf) GELU
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2                    # segments: sentence A = 0, sentence B = 1
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0                       # its embedding row starts at zero and is not trained
    classifier_dropout: float = None            # None: hidden_dropout_prob
    num_labels: int = 2                         # BertForSequenceClassification's classes (1: regression)

    def validate(self):
        problems = []
        sizes = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "max_position_embeddings", "type_vocab_size", "num_labels")
        problems += [f"{name}={getattr(self, name)} must be >= 1" for name in sizes if getattr(self, name) < 1]
        if self.num_attention_heads >= 1 and self.hidden_size % self.num_attention_heads:
            problems.append(f"hidden_size={self.hidden_size} must be divisible by "
                            f"num_attention_heads={self.num_attention_heads}")
        if self.hidden_act not in ACTIVATIONS:
            problems.append(f"hidden_act={self.hidden_act!r} is not one of {sorted(ACTIVATIONS)}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
            p = getattr(self, name)
            if p is not None and not 0 <= p < 1:
                problems.append(f"{name}={p} must be in [0, 1)")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            problems.append(f"pad_token_id={self.pad_token_id} is not an id of the vocabulary "
                            f"(0..{self.vocab_size - 1})")
        if not self.layer_norm_eps > 0:
            problems.append(f"layer_norm_eps={self.layer_norm_eps} must be positive")
        if problems:
            raise ConfigError("BertConfig: " + "; ".join(problems))

    def num_parameters_estimate(self):
        """BertForPreTraining's parameters (the largest of the classes here), by arithmetic: enough
        for check_memory to refuse an absurd shape before anything is built."""
        V, C, L, I = self.vocab_size, self.hidden_size, self.num_hidden_layers, self.intermediate_size
        embeddings = (V + self.max_position_embeddings + self.type_vocab_size) * C + 2 * C
        layer = 4 * (C * C + C) + 2 * C + (C * I + I) + (I * C + C) + 2 * C
        pooler, masked_lm, next_sentence = C * C + C, C * C + C + 2 * C + V, 2 * C + 2
        return embeddings + L * layer + pooler + masked_lm + next_sentence


# ---------------------------------------------------------------------------- outputs (HF's names)
@dataclass
class BaseModelOutputWithPooling:
    last_hidden_state: Tensor                   # (B, T, hidden_size)
    pooler_output: Tensor = None                # (B, hidden_size), tanh(dense([CLS]))


@dataclass
class MaskedLMOutput:
    loss: Tensor = None                         # mean cross-entropy over labels != -100
    logits: Tensor = None                       # (B, T, vocab_size)


@dataclass
class SequenceClassifierOutput:
    loss: Tensor = None
    logits: Tensor = None                       # (B, num_labels)


# ---------------------------------------------------------------------------- the encoder
class BertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids, position_ids):
        x = self.word_embeddings(input_ids) + self.position_embeddings(position_ids) + \
            self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Multi-head attention over every position (no causal mask); `padding` (B, T), True at
    padding, hides those keys from every query (the attention op's key_padding_mask)."""

    def __init__(self, c):
        super().__init__()
        self.num_attention_heads = c.num_attention_heads
        self.attention_head_size = c.hidden_size // c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.dropout_p = c.attention_probs_dropout_prob
        self.attn_probs = nn.AttentionProbs()   # (B, H, T, T) to a forward hook (nn.capture_attention)

    def forward(self, x, padding=None):
        B, T, C = x.shape
        H, D = self.num_attention_heads, self.attention_head_size

        def heads(t):                           # (B, T, C) -> (B, H, T, D)
            return t.reshape(B, T, H, D).transpose(1, 2)
        y = F.scaled_dot_product_attention(heads(self.query(x)), heads(self.key(x)), heads(self.value(x)),
                                           key_padding_mask=padding, dropout_p=self.dropout_p if self.training else 0.0,
                                           return_weights=self.attn_probs.wanted)
        if self.attn_probs.wanted:
            y, weights = y
            self.attn_probs(weights)
        return y.transpose(1, 2).reshape(B, T, C)


class BertSelfOutput(nn.Module):
    """Projection, dropout, then the residual and LayerNorm (post-norm)."""

    def __init__(self, c, in_features=None):
        super().__init__()
        self.dense = nn.Linear(in_features or c.hidden_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = BertSelfAttention(c)        # Hugging Face's name: attention.self.query...
        self.output = BertSelfOutput(c)

    def forward(self, x, padding=None):
        return self.output(self.self(x, padding), x)


class BertIntermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)
        self.approximate = ACTIVATIONS[c.hidden_act]

    def forward(self, x):
        return F.gelu(self.dense(x), self.approximate)


class BertOutput(BertSelfOutput):
    """The MLP's second Linear (intermediate_size -> hidden_size), dropout, residual, LayerNorm."""

    def __init__(self, c):
        super().__init__(c, in_features=c.intermediate_size)


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertOutput(c)

    def forward(self, x, padding=None):
        x = self.attention(x, padding)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(c) for _ in range(c.num_hidden_layers)])

    def forward(self, x, padding=None):
        for layer in self.layer:
            x = layer(x, padding)
        return x


class BertPooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, hidden_states):
        return self.dense(hidden_states[:, 0]).tanh()


class BertPreTrainedModel(nn.Module):
    """What every BERT class shares: the config, Hugging Face's initialisation, input checks,
    and from_pretrained / save_pretrained."""

    # tied names: not stored in a file (Hugging Face leaves them out), filled from their source
    tied = {}
    attention_kind = BIDIRECTIONAL              # for attention_view: every token attends to every token

    def __init__(self, config):
        super().__init__()
        config.validate()                       # fields may have been assigned since the config was made
        config.check_memory()
        self.config = config

    def init_weights(self):
        """Hugging Face's BERT initialisation: weight matrices N(0, initializer_range), biases 0,
        LayerNorm gains 1, the padding token's embedding row 0. By name and shape, in registration order."""
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.ndim == 1:
                nn.init.ones_(p)
            else:
                nn.init.normal_(p, 0.0, self.config.initializer_range)
        pad = self.config.pad_token_id
        if pad is not None:
            self.base_model.embeddings.word_embeddings.weight.data[pad] = 0

    @property
    def base_model(self):
        return self if isinstance(self, BertModel) else self.bert

    def attention_maps(self, input_ids, attention_mask=None):
        """Attention weights of every layer: a NumPy array (num_hidden_layers, B, heads, T, T)."""
        with nn.capture_attention(self.base_model) as maps, no_grad():
            self.base_model(input_ids, attention_mask)
        return np.stack(list(maps.values()))

    def _inputs(self, input_ids, attention_mask, token_type_ids, position_ids):
        """(ids, token types, positions on the model's device; padding (B, T), True at padding, or None), checked."""
        c = self.config
        ids = _ids(input_ids, c.vocab_size, "input_ids")
        B, T = ids.shape
        if T > c.max_position_embeddings:
            raise ValueError(f"{type(self).__name__}: a sequence of {T} tokens is longer than "
                             f"max_position_embeddings={c.max_position_embeddings}; truncate it")
        types = np.zeros((B, T), np.int64) if token_type_ids is None else \
            _ids(token_type_ids, c.type_vocab_size, "token_type_ids", (B, T))
        positions = np.arange(T)[None] if position_ids is None else \
            _ids(position_ids, c.max_position_embeddings, "position_ids")
        padding = None
        if attention_mask is not None:
            mask = _ids(attention_mask, 2, "attention_mask (1 = a token, 0 = padding)", (B, T))
            padding = mask == 0
        return [None if a is None else backend.to_device(a, self.device) for a in (ids, types, positions, padding)]

    # -------------------------------------------------------------------- Hugging Face folders
    @classmethod
    def from_pretrained(cls, name_or_path, dtype=np.float32, **config_overrides):
        """A model from a Hugging Face BERT folder (config.json + model.safetensors), or a hub name
        ("bert-base-uncased"...) downloaded once when online. A file with more than this class uses
        (BERT's pretraining heads, a pooler) is fine; a head the file lacks (a classifier for
        fine-tuning) starts from fresh random weights, with a warning naming it, as in transformers.
        config_overrides replace config.json's fields (num_labels=3, hidden_dropout_prob=0.0).
        The model comes in eval mode, as transformers' does."""
        folder = hf.resolve_bert_dir(name_or_path)
        kwargs = {**hf.read_bert_config(folder), **config_overrides}
        try:
            check_field_types(BertConfig, {k: v for k, v in kwargs.items() if v is not None})
            config = BertConfig(**kwargs)
        except (ConfigError, TypeError) as e:
            raise PretrainedError(f"{folder / 'config.json'} does not describe a usable BERT: {e}") from None
        model = cls(config)
        prefix = "bert." if isinstance(model, BertModel) else ""      # file names are the head models' form
        ours = {prefix + name: p.shape for name, p in model.state_dict().items() if name not in cls.tied}
        state, fresh = hf.read_bert_weights(folder, ours)
        if any(not name.startswith(hf.BERT_HEADS) for name in fresh):
            raise PretrainedError(f"{folder / 'model.safetensors'} lacks {len(fresh)} of the encoder's "
                                  f"tensors (e.g. {', '.join(fresh[:3])}): it is not a BERT of this config")
        state = {name[len(prefix):]: array for name, array in state.items()}
        fresh = [name[len(prefix):] for name in fresh]
        if fresh:
            warnings.warn(f"{cls.__name__}.from_pretrained: {folder} has no {', '.join(fresh)}; "
                          "these start from random weights (train them before use)", stacklevel=2)
        own = model.state_dict()
        state.update({name: own[name] for name in fresh})              # the fresh head keeps its init
        state.update({name: state[source] for name, source in cls.tied.items()})
        model.load_state_dict(state)
        return model.to(dtype=dtype).eval()      # as transformers: dropout off until model.train()

    def save_pretrained(self, out_dir):
        """Write config.json and model.safetensors (float32) that transformers' class of the same
        name loads; tied weights are stored once, as transformers stores them."""
        state = {name: t.numpy() for name, t in self.state_dict().items() if name not in self.tied}
        return hf.write_bert(self.config.to_dict(), type(self).__name__, state, out_dir)


def _host(x):
    """A batch input (NumPy, a list, a Tensor on any device) as a NumPy array: checked on the host."""
    data = x.data if isinstance(x, Tensor) else x
    return backend.to_numpy(data) if hasattr(data, "dtype") else np.asarray(data)


def _ids(ids, size, what, shape=None, ignore=None):
    """Integer ids (B, T), or of `shape`, on the host, each in [0, size) (or equal to `ignore`)."""
    data = _host(ids)
    return check_token_ids(data.astype(np.int64) if data.dtype == bool else data, size, f"BERT: {what}",
                           ignore=ignore, shape=shape)

class BertModel(BertPreTrainedModel):
    """The encoder: embeddings, layers and (add_pooling_layer=True) the pooler on [CLS]."""

    def __init__(self, config, add_pooling_layer=True):
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None):
        """-> BaseModelOutputWithPooling(last_hidden_state (B, T, C), pooler_output (B, C) or None).
        attention_mask (B, T): 1 for tokens, 0 for padding; token_type_ids (B, T): the segment of
        each token (default 0); position_ids (B, T) or (1, T): default 0..T-1."""
        ids, types, positions, padding = self._inputs(input_ids, attention_mask, token_type_ids, position_ids)
        x = self.encoder(self.embeddings(ids, types, positions), padding)
        return BaseModelOutputWithPooling(x, None if self.pooler is None else self.pooler(x))


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.approximate = ACTIVATIONS[c.hidden_act]
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x):
        return self.LayerNorm(F.gelu(self.dense(x), self.approximate))


class BertLMPredictionHead(nn.Module):
    """transform, then the decoder: a Linear whose weight is the word embedding (tied by the
    model) and whose bias is this head's own ``bias`` (one Parameter under both names, as HF's)."""

    def __init__(self, c):
        super().__init__()
        self.transform = BertPredictionHeadTransform(c)
        self.decoder = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.bias = nn.Parameter(np.zeros(c.vocab_size, np.float32))
        self.decoder.bias = self.bias

    def forward(self, x):
        return self.decoder(self.transform(x))


class BertOnlyMLMHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.predictions = BertLMPredictionHead(c)

    def forward(self, x):
        return self.predictions(x)


class BertForMaskedLM(BertPreTrainedModel):
    """The encoder (no pooler) and the masked-LM head: a vocabulary distribution at every position."""

    tied = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
            "cls.predictions.decoder.bias": "cls.predictions.bias"}

    def __init__(self, config):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.init_weights()
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None):
        """-> MaskedLMOutput(loss, logits (B, T, vocab_size)). labels (B, T): the original token
        at each masked position, -100 elsewhere (those positions do not count in the loss)."""
        x = self.bert(input_ids, attention_mask, token_type_ids, position_ids).last_hidden_state
        logits = self.cls(x)
        loss = None
        if labels is not None:
            B, T = x.shape[:2]
            target = backend.to_device(_ids(labels, self.config.vocab_size, "labels", (B, T), -100), self.device)
            loss = F.cross_entropy(logits.reshape(B * T, -1), target.reshape(-1), check_indices=False)
        return MaskedLMOutput(loss, logits)


class BertForSequenceClassification(BertPreTrainedModel):
    """The pooled [CLS] vector -> dropout -> classifier: one prediction per sequence."""

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config)
        p = config.hidden_dropout_prob if config.classifier_dropout is None else config.classifier_dropout
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None):
        """-> SequenceClassifierOutput(loss, logits (B, num_labels)). labels (B,): class ids
        (cross-entropy), or with num_labels == 1 real targets (mean squared error, regression)."""
        pooled = self.bert(input_ids, attention_mask, token_type_ids, position_ids).pooler_output
        logits = self.classifier(self.dropout(pooled))
        loss = None
        if labels is not None:
            B = logits.shape[0]
            if self.num_labels == 1:
                target = Tensor(_host(labels).astype(logits.dtype).reshape(B), device=self.device)
                loss = F.mse_loss(logits.reshape(B), target)
            else:
                target = _ids(labels, self.num_labels, "labels (class ids)", (B,), -100)
                loss = F.cross_entropy(logits, backend.to_device(target, self.device), check_indices=False)
        return SequenceClassifierOutput(loss, logits)
