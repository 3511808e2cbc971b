"""The batch sources of encoder-only (BERT) training: masked-LM pretraining and next-sentence pairs.

Both follow data.CausalLMBatches's protocol (built as ``cls(tokens, block_size, batch_size, seed=...)``,
then ``next()``, ``get_state()``, ``set_state()``) so the training loop, checkpoints and exact resume
take them unchanged; ``next()`` returns the arguments of the BERT families' forward,
``(input_ids, attention_mask, token_type_ids, labels)``. The ids of [PAD], [CLS], [SEP] and [MASK]
come from the model config (models/bert_tasks.py appends them after the dataset's vocabulary), so
a family binds them: ``config.batch_source()`` is ``functools.partial(MaskedLMBatches, specials=...)``.

    MaskedLMBatches      [CLS] window of block_size - 2 tokens [SEP]; 15% of the window's positions
                         are picked (never a special): 80% of them become [MASK], 10% a random
                         token, 10% stay; labels hold the original token there and -100 elsewhere,
                         so the loss (cross_entropy's ignore_index) counts only the picked ones.
                         (Hugging Face's DataCollatorForLanguageModeling, mlm_probability=0.15.)
    NextSentenceBatches  [CLS] A [SEP] B [SEP] [PAD]...: A a line of the text, B the line that
                         follows it (label 0, "is next", as Hugging Face's next_sentence_label) or,
                         half of the time, a random other line (label 1); token_type_ids 0 over
                         [CLS] A [SEP] and 1 over B [SEP]; attention_mask 0 at the padding.

Each source can also score predictions: ``accuracy(batch, logits) -> (correct, counted)`` over
the positions (or sequences) whose label is not -100; evaluation reports it beside the loss.
"""
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError

IGNORE_INDEX = -100                       # cross_entropy's ignore_index: a position without a label


@dataclass(frozen=True)
class SpecialTokens:
    """The ids of BERT's special tokens in a vocabulary. Ids below `first` are the text's own tokens
    (what a random replacement draws from); the specials are never picked for masking."""
    pad: int
    cls: int
    sep: int
    mask: int

    @property
    def first(self):
        return min(self.pad, self.cls, self.sep, self.mask)


class _BertBatches:
    """What both sources share: the generator (seeded, the source's own) and the scoring."""

    def __init__(self, data, block_size, batch_size, seed, specials):
        if batch_size < 1:
            raise ConfigError(f"{type(self).__name__}: batch_size must be >= 1, got {batch_size}")
        if block_size < 4:
            raise ConfigError(f"{type(self).__name__}: block_size must be >= 4 ([CLS], [SEP] and text), "
                              f"got {block_size}")
        if specials.first < 1:
            raise ConfigError(f"{type(self).__name__}: the special tokens need ids after the text's own, "
                              f"got {specials}")
        self.data, self.block_size, self.batch_size, self.specials = data, block_size, batch_size, specials
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def get_state(self):
        return self.rng.bit_generator.state

    def set_state(self, state):
        self.rng.bit_generator.state = state

    @staticmethod
    def accuracy(batch, logits):
        """(correct, counted): argmax predictions against the labels (the batch's last item),
        where the label is not -100."""
        labels = np.asarray(batch[-1])
        predicted = np.asarray(logits.numpy() if hasattr(logits, "numpy") else logits).argmax(-1)
        counted = labels != IGNORE_INDEX
        return int((predicted == labels)[counted].sum()), int(counted.sum())


def mask_tokens(input_ids, rng, specials, mlm_probability=0.15):
    """BERT's masking of a (B, T) batch -> (inputs, labels): each non-special position is picked
    with probability mlm_probability; a picked one becomes [MASK] (80%), a random text token (10%)
    or stays (10%); labels hold the original id where picked and -100 elsewhere."""
    inputs = np.array(input_ids, dtype=np.int64)
    picked = (rng.random(inputs.shape) < mlm_probability) & (inputs < specials.first)
    labels = np.where(picked, inputs, IGNORE_INDEX)
    how = rng.random(inputs.shape)                            # one draw decides between the three
    inputs[picked & (how < 0.8)] = specials.mask
    randomized = picked & (how >= 0.8) & (how < 0.9)
    inputs[randomized] = rng.integers(0, specials.first, size=int(randomized.sum()))
    return inputs, labels


class MaskedLMBatches(_BertBatches):
    """[CLS] + a random window of block_size - 2 tokens + [SEP], masked by mask_tokens; no padding,
    so attention_mask is None (every position is a token) and token_type_ids None (all segment 0)."""

    def __init__(self, data, block_size, batch_size, seed=0, specials=None, mlm_probability=0.15):
        super().__init__(data, block_size, batch_size, seed, specials)
        if len(data) < block_size - 2:
            raise DataError(f"the data holds {len(data)} tokens, fewer than one window of {block_size - 2} "
                            "(block_size - 2: [CLS] and [SEP] take two places)")
        self.mlm_probability = mlm_probability
        self._offsets = np.arange(block_size - 2)

    def next(self):
        B, s = self.batch_size, self.specials
        starts = self.rng.integers(0, len(self.data) - self.block_size + 3, size=B)
        windows = np.asarray(self.data[starts[:, None] + self._offsets], dtype=np.int64)
        ids = np.concatenate([np.full((B, 1), s.cls), windows, np.full((B, 1), s.sep)], axis=1)
        inputs, labels = mask_tokens(ids, self.rng, s, self.mlm_probability)
        return inputs, None, None, labels


class NextSentenceBatches(_BertBatches):
    """Pairs of lines of the text (lines end at `line_break` ids; empty lines are skipped): A, and as
    B its true next line (label 0) or a random other line (label 1), each half of the time. A pair
    longer than block_size - 3 is cut as Hugging Face's longest_first truncation, taking tokens from
    the longer part: A keeps its end, B its start (what touches the junction)."""

    def __init__(self, data, block_size, batch_size, seed=0, specials=None, line_break=0):
        super().__init__(data, block_size, batch_size, seed, specials)
        tokens = np.asarray(data)
        breaks = np.concatenate([[-1], np.flatnonzero(tokens == line_break), [len(tokens)]])
        starts, ends = breaks[:-1] + 1, breaks[1:]                # line k: tokens[starts[k]:ends[k]]
        keep = ends > starts
        self.starts, self.ends = starts[keep], ends[keep]
        index = np.flatnonzero(keep)
        # a true pair: line k and line k + 1 both non-empty (one break between them, no blank line)
        self.firsts = np.flatnonzero(np.diff(index) == 1)         # positions in the kept lines
        if len(self.firsts) < 1 or len(self.starts) < 3:
            raise DataError(f"the data holds {len(self.starts)} lines ({len(self.firsts)} pairs of consecutive "
                            f"ones) separated by token {line_break}: next-sentence pairs need lines of text")

    def _line(self, k):
        return np.asarray(self.data[self.starts[k]:self.ends[k]], dtype=np.int64)

    def next(self):
        B, T, s = self.batch_size, self.block_size, self.specials
        ids = np.full((B, T), s.pad, dtype=np.int64)
        types = np.zeros((B, T), dtype=np.int64)
        mask = np.zeros((B, T), dtype=np.int64)
        firsts = self.firsts[self.rng.integers(0, len(self.firsts), size=B)]
        labels = (self.rng.random(B) < 0.5).astype(np.int64)      # 1: B is a random line
        others = self.rng.integers(0, len(self.starts) - 1, size=B)
        budget = T - 3
        for i in range(B):
            k = firsts[i]
            j = k + 1
            if labels[i]:                                         # any line but the true next one
                j = others[i] + (others[i] >= k + 1)
            a, b = self._line(k), self._line(j)
            na = min(len(a), max(budget - len(b), (budget + 1) // 2))
            nb = min(len(b), budget - na)
            a, b = a[len(a) - na:], b[:nb]
            row = np.concatenate([[s.cls], a, [s.sep], b, [s.sep]])
            ids[i, :len(row)] = row
            types[i, na + 2:len(row)] = 1
            mask[i, :len(row)] = 1
        return ids, mask, types, labels
