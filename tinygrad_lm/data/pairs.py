"""The batch source of encoder-decoder training: (source, target) pairs with teacher forcing.

A dataset of pairs is one token stream, ``source BOS target EOS source BOS target EOS ...``
(dates.py writes one), so it is prepared, stored and checked as any other (data.py). PairBatches
reads the stream back into pairs and follows data.CausalLMBatches's protocol (built as
``cls(tokens, block_size, batch_size, seed=...)``, then ``next()``, ``get_state()``,
``set_state()``), so the training loop, checkpoints and exact resume take it unchanged.
``next()`` returns Seq2Seq.forward's arguments:

    src     (B, S)  the sources, padded with PAD
    tgt_in  (B, T)  BOS + target          (what the decoder reads: teacher forcing)
    tgt_out (B, T)  target + EOS, padded  (what it must predict; PAD is left out of the loss)

S and T are the longest source and target of the batch (not of the dataset): no step computes
on columns that are padding in every row. The ids of PAD, BOS and EOS are the model config's, so
the family binds them: ``Seq2SeqConfig.batch_source()`` is ``partial(PairBatches, pad_id=...)``.

``accuracy(batch, logits)`` counts the sequences whose every target position (EOS included) is
predicted right. With teacher forcing the decoder reads the true prefix, so this is exactly the
exact-match of greedy decoding: greedy decoding follows the true prefix for as long as its argmax
is right, and a sequence it gets right is one whose argmax is right at every position
(tests/test_seq2seq_training.py checks the two agree).
"""
import numpy as np

from ..errors import ConfigError, DataError


def split_pairs(tokens, bos_id, eos_id):
    """(source starts, source lengths, target starts, target lengths) of the pairs of a stream
    ``source BOS target EOS ...``: one array each, found in whole-array passes."""
    tokens = np.asarray(tokens)
    ends = np.flatnonzero(tokens == eos_id)
    separators = np.flatnonzero(tokens == bos_id)
    if len(tokens) and (not len(ends) or ends[-1] != len(tokens) - 1):
        raise DataError("the pair stream does not end with EOS: it is not a dataset of (source, target) pairs")
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    # as many separators as pairs, each inside its own pair: exactly one BOS per pair
    if len(separators) != len(ends) or not ((starts <= separators) & (separators < ends)).all():
        raise DataError("the data is not a dataset of (source, target) pairs: each pair must hold one BOS "
                        "between its source and its target, and end with EOS")
    return starts, separators - starts, separators + 1, ends - separators - 1


def gather_rows(tokens, starts, lengths, width, pad_id, first=None, last=None):
    """(n, width) int64: row i is [first] + tokens[starts[i] : starts[i] + lengths[i]] + [last]
    (first / last when given), then pad_id."""
    lead = 0 if first is None else 1
    total = lengths + lead + (0 if last is None else 1)
    column = np.arange(width)
    index = np.clip(starts[:, None] + column - lead, 0, max(len(tokens) - 1, 0))
    out = np.where(column < total[:, None], np.asarray(tokens)[index], pad_id).astype(np.int64)
    if first is not None:
        out[:, 0] = first
    if last is not None:
        out[np.arange(len(out)), total - 1] = last
    return out


class PairBatches:
    def __init__(self, data, block_size, batch_size, seed=0, pad_id=0, bos_id=1, eos_id=2):
        if batch_size < 1:
            raise ConfigError(f"PairBatches: batch_size must be >= 1, got {batch_size}")
        self.data, self.block_size, self.batch_size = data, block_size, batch_size
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        src_start, src_len, tgt_start, tgt_len = split_pairs(data, bos_id, eos_id)
        if not len(src_len):
            raise DataError("the data holds no (source, target) pair")
        too_long = np.flatnonzero((src_len > block_size) | (tgt_len + 1 > block_size))
        if len(too_long):
            raise DataError(f"{len(too_long)} pairs (the first is pair {too_long[0]}) have a source longer than "
                            f"block_size={block_size} or a target longer than block_size - 1: raise block_size")
        # every pair padded once to the longest; a batch is then rows of these, cut to its own longest
        self.src_len, self.tgt_len = src_len, tgt_len + 1
        self.src = gather_rows(data, src_start, src_len, max(int(src_len.max()), 1), pad_id)
        width = int(self.tgt_len.max())
        self.tgt_in = gather_rows(data, tgt_start, tgt_len, width, pad_id, first=bos_id)
        self.tgt_out = gather_rows(data, tgt_start, tgt_len, width, pad_id, last=eos_id)
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def __len__(self):
        return len(self.src)

    def rows(self, index):
        """The batch of the pairs at `index` (an array of pair numbers)."""
        s, t = max(int(self.src_len[index].max()), 1), int(self.tgt_len[index].max())
        return self.src[index, :s], self.tgt_in[index, :t], self.tgt_out[index, :t]

    def next(self):
        return self.rows(self.rng.integers(0, len(self.src), size=self.batch_size))

    def get_state(self):
        return self.rng.bit_generator.state

    def set_state(self, state):
        self.rng.bit_generator.state = state

    def accuracy(self, batch, logits):
        """(sequences predicted right at every target position, sequences): greedy exact match."""
        tgt_out = np.asarray(batch[2])
        predicted = np.asarray(logits.numpy() if hasattr(logits, "numpy") else logits).argmax(-1)
        right = (predicted == tgt_out) | (tgt_out == self.pad_id)
        return int(right.all(axis=1).sum()), len(tgt_out)
