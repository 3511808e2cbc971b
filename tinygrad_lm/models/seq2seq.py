"""Seq2Seq: an encoder-decoder Transformer that maps a source sequence to a target sequence.

    src (B, S) -> source embedding * sqrt(d) + position -> Transformer encoder -> memory (B, S, d)
    tgt_in (B, T) -> target embedding * sqrt(d) + position -> Transformer decoder (causal, attends
                     to memory) -> head -> logits (B, T, tgt_vocab_size)

Teacher forcing: the decoder reads tgt_in = [BOS, y1, ..., yn] and predicts tgt_out = [y1, ..., yn,
EOS], every position at once. Padding (pad_id) is masked as a key in every attention and ignored in
the loss, so sequences of different lengths share a batch.

Embeddings start at N(0, 1/d) and are multiplied by sqrt(d) (the paper's scaling), so a token
vector starts with unit variance, on the scale of the sinusoidal positions. Decoding (greedy, beam
search, with caches) is in seq2seq_decode.py.
"""
from dataclasses import dataclass
from functools import partial

import numpy as np

from .. import backend
from .. import nn
from ..errors import ConfigError
from ..nn import functional as F
from ..data.pairs import PairBatches
from ..tensor import Tensor
from .base import ModelConfig, check_token_ids
from .family import Family


@dataclass
class Seq2SeqConfig(ModelConfig):
    src_vocab_size: int = 64
    tgt_vocab_size: int = 64
    block_size: int = 64             # the longest source and the longest target (positions)
    d_model: int = 64
    nhead: int = 4
    num_encoder_layers: int = 2
    num_decoder_layers: int = 2
    dim_feedforward: int = 256
    dropout: float = 0.1
    activation: str = "relu"         # "relu" or "gelu"
    norm_first: bool = True          # pre-LayerNorm (trains without warm-up) or the paper's post-LN
    layer_norm_eps: float = 1e-5
    pos_encoding: str = "sinusoidal"  # "sinusoidal" (fixed) or "learned" (one table per side)
    share_embeddings: bool = False   # one table for source and target (needs one vocabulary)
    tie_weights: bool = True         # output head = target embedding
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    @property
    def vocab_size(self):
        """The vocabulary a prepared dataset's ids must fit (the training loop checks it): both sides'."""
        return min(self.src_vocab_size, self.tgt_vocab_size)

    def batch_source(self):
        """The training batches: (source, target) pairs with teacher forcing (seq2seq_data.py)."""
        return partial(PairBatches, pad_id=self.pad_id, bos_id=self.bos_id, eos_id=self.eos_id)

    def validate(self):
        problems = []
        if min(self.src_vocab_size, self.tgt_vocab_size, self.block_size, self.d_model, self.nhead,
               self.num_encoder_layers, self.num_decoder_layers, self.dim_feedforward) < 1:
            problems.append("sizes (vocab sizes, block_size, d_model, nhead, layer counts, dim_feedforward) "
                            "must be >= 1")
        elif self.d_model % self.nhead:
            problems.append(f"d_model={self.d_model} must be divisible by nhead={self.nhead}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout={self.dropout} must be in [0, 1)")
        for name, allowed in (("activation", ("relu", "gelu")), ("pos_encoding", ("sinusoidal", "learned"))):
            if getattr(self, name) not in allowed:
                problems.append(f"{name}={getattr(self, name)!r} is not one of {allowed}")
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            problems.append(f"share_embeddings needs src_vocab_size == tgt_vocab_size, got {self.src_vocab_size} "
                            f"and {self.tgt_vocab_size}")
        for name in ("pad_id", "bos_id", "eos_id"):
            if not 0 <= getattr(self, name) < min(self.src_vocab_size, self.tgt_vocab_size):
                problems.append(f"{name}={getattr(self, name)} is not a token id of both vocabularies")
        if problems:
            raise ConfigError("Seq2SeqConfig: " + "; ".join(problems))


class Seq2Seq(nn.Module):
    def __init__(self, config):
        super().__init__()
        config.validate()
        self.config = c = config
        d = c.d_model
        self.src_embed = nn.Embedding(c.src_vocab_size, d, padding_idx=c.pad_id)
        self.tgt_embed = self.src_embed if c.share_embeddings else nn.Embedding(c.tgt_vocab_size, d,
                                                                                padding_idx=c.pad_id)
        for emb in {id(self.src_embed): self.src_embed, id(self.tgt_embed): self.tgt_embed}.values():
            nn.init.normal_(emb.weight, std=d ** -0.5)
            emb.weight.data[c.pad_id] = 0
        if c.pos_encoding == "learned":
            self.src_pos = nn.LearnedPositionalEmbedding(c.block_size, d)
            self.tgt_pos = nn.LearnedPositionalEmbedding(c.block_size, d)
        else:
            self.src_pos = self.tgt_pos = nn.SinusoidalPositionalEncoding(c.block_size, d)
        self.drop = nn.Dropout(c.dropout)
        self.transformer = nn.Transformer(d, c.nhead, c.num_encoder_layers, c.num_decoder_layers, c.dim_feedforward,
                                          c.dropout, c.activation, layer_norm_eps=c.layer_norm_eps, batch_first=True,
                                          norm_first=c.norm_first)
        self.lm_head = nn.Linear(d, c.tgt_vocab_size, bias=False)
        if c.tie_weights:
            self.lm_head.weight = self.tgt_embed.weight

    @property
    def device(self):
        return self.lm_head.weight.device

    def _ids(self, ids, what, vocab_size, ignore=None):
        """Token ids (B, L), at most block_size of them, checked, moved to the model's device."""
        return check_token_ids(ids, vocab_size, f"Seq2Seq: {what} (vocab_size={vocab_size})", self.device,
                               ignore=ignore, max_length=self.config.block_size)

    def _padding(self, ids):
        """True where `ids` holds pad_id: the key padding mask of PyTorch's convention."""
        return Tensor._from_array(ids == self.config.pad_id, self.device)

    def _embed(self, emb, pos, ids, start=0):
        x = F.embedding(ids, emb.weight, check_indices=False) * (self.config.d_model ** 0.5)
        return self.drop(x + pos(ids.shape[1], start))

    def encode(self, src):
        """src ids (B, S) -> (memory (B, S, d), source padding mask (B, S), True at padding)."""
        src = self._ids(src, "src", self.config.src_vocab_size)
        pad = self._padding(src)
        memory = self.transformer.encoder(self._embed(self.src_embed, self.src_pos, src), src_key_padding_mask=pad)
        return memory, pad

    def decode(self, tgt_in, memory, memory_key_padding_mask, caches=None):
        """Logits (B, T, tgt_vocab_size) of the next token after each position of tgt_in.

        Without caches tgt_in is the whole target so far (causal mask, padding masked). With caches
        (``new_decoder_caches``) it is only the new positions: the cached ones are not recomputed."""
        tgt_in = self._ids(tgt_in, "tgt_in", self.config.tgt_vocab_size)
        start = 0 if caches is None else caches[0][0].length
        if start + tgt_in.shape[1] > self.config.block_size:
            raise ValueError(f"Seq2Seq: target position {start + tgt_in.shape[1] - 1} is beyond block_size="
                             f"{self.config.block_size}")
        x = self._embed(self.tgt_embed, self.tgt_pos, tgt_in, start)
        if caches is None:                  # is_causal without a mask: the attention builds the causal one
            x = self.transformer.decoder(x, memory, tgt_is_causal=True,
                                         tgt_key_padding_mask=self._padding(tgt_in),
                                         memory_key_padding_mask=memory_key_padding_mask)
        else:
            x = self.transformer.decoder(x, memory, memory_key_padding_mask=memory_key_padding_mask, caches=caches)
        return self.lm_head(x)

    def new_decoder_caches(self, memory):
        """Per decoder layer: (KVCache of the self-attention, StaticKV of the memory): the
        cross-attention's keys and values are projected here, once per source."""
        return self.transformer.decoder.new_caches(memory)

    def forward(self, src, tgt_in, tgt_out=None):
        """(logits (B, T, tgt_vocab_size), loss or None). tgt_out positions holding pad_id (or -100)
        are left out of the loss."""
        memory, src_pad = self.encode(src)
        logits = self.decode(tgt_in, memory, src_pad)
        loss = None
        if tgt_out is not None:
            c = self.config
            target = self._ids(tgt_out, "tgt_out", c.tgt_vocab_size, ignore=-100)
            if tuple(target.shape) != tuple(logits.shape[:2]):
                raise ValueError(f"Seq2Seq: tgt_out of shape {tuple(target.shape)} does not match tgt_in of shape "
                                 f"{tuple(logits.shape[:2])}")
            xp = backend.get_array_module(self.device)
            target = xp.where(target == -100, c.pad_id, target)
            B, T, V = logits.shape
            loss = F.cross_entropy(logits.reshape(B * T, V), target.reshape(-1), ignore_index=c.pad_id,
                                   check_indices=False)
        return logits, loss


def _random_pairs(config, n, rng):
    """About n ids of random (source, target) pairs, ``source BOS target EOS``, for the benchmark:
    sources of 8 to 29 tokens and targets of 10 (as the dates'), none of them PAD, BOS or EOS."""
    c = config
    ordinary = np.setdiff1d(np.arange(min(c.src_vocab_size, c.tgt_vocab_size)), [c.pad_id, c.bos_id, c.eos_id])
    source_max, target = min(29, c.block_size), min(10, c.block_size - 1)
    pairs = []
    while sum(map(len, pairs)) < n:
        source = rng.choice(ordinary, rng.integers(min(8, source_max), source_max + 1))
        pairs.append(np.concatenate([source, [c.bos_id], rng.choice(ordinary, target), [c.eos_id]]))
    return np.concatenate(pairs)


FAMILY = Family("seq2seq", Seq2Seq, Seq2SeqConfig, batch_source=Seq2SeqConfig.batch_source,
                commands=("translate", "attention"), bench_tokens=_random_pairs,
                torch_twin="tinygrad_lm.crosscheck.torch_seq2seq:bench_twin", bench_goal="goal <= 1.0, floor <= 1.25")
