"""What a genome language model must beat, in bits per nucleotide.

Bits per nucleotide = the total negative log-likelihood of the validation genomes' bases, in
bits, divided by their number of bases. It is the one measure that compares models with
different tokenizers: a codon model spends its bits on a third as many tokens, a BPE model on
tokens of varying length, but each spells the same bases.

Two baselines, both fitted on the training genomes only:

  MarkovModel(order k): p(base | the k bases before it), counted on the training genomes with
      add-alpha smoothing. k and alpha are chosen on a held-out part of the training split (its
      latest genomes: validation is later than training too), then the model is refitted on all of it.
  ClosestGenomeModel: "copy the closest training genome", smoothed. Each validation genome is
      aligned to the training genome with the fewest differing bases; a base is predicted to be
      the aligned one with probability 1 - eps, the others sharing eps. eps is the rate at which a
      training genome differs from its own closest other training genome (leave one out).

Sequences here are strings over A C G T N (genomes/fasta.py's policy); N is a fifth symbol that
both baselines and the language model must predict, so the comparison is fair.
"""
import math

import numpy as np

ALPHABET = "ACGTN"
_CODE = np.full(256, -1, dtype=np.int64)
for _i, _c in enumerate(ALPHABET):
    _CODE[ord(_c)] = _i


def encode_bases(sequence):
    """A string over A C G T N as int64 codes 0..4 (ValueError names a letter outside them)."""
    codes = _CODE[np.frombuffer(sequence.encode("ascii"), dtype=np.uint8)]
    if (codes < 0).any():
        bad = sequence[int(np.argmax(codes < 0))]
        raise ValueError(f"{bad!r} is not one of {ALPHABET}")
    return codes


def bits_per_nucleotide(total_nll_nats, n_bases):
    """Total negative log-likelihood in nats -> bits per base (the tokenizer-free measure)."""
    if n_bases <= 0:
        raise ValueError(f"bits per nucleotide needs at least one base, got {n_bases}")
    return float(total_nll_nats) / math.log(2) / n_bases


# ---------------------------------------------------------------------- order-k Markov model
class MarkovModel:
    """p(base | the `order` bases before it), add-alpha smoothed over the 5 symbols. The first
    bases of a sequence, which have fewer than `order` before them, use the longest context they
    have (so every base of every sequence is predicted)."""

    def __init__(self, order, alpha=0.5):
        if order < 0 or alpha <= 0:
            raise ValueError(f"MarkovModel needs order >= 0 and alpha > 0, got {order} and {alpha}")
        self.order, self.alpha = order, alpha
        self.tables = []                  # per context length j <= order: (sorted keys, counts)

    @staticmethod
    def _keys(codes, j):
        """For every position i >= j: the context codes[i-j:i] and the base codes[i], as one
        base-5 number (context digits, then the base)."""
        key = np.zeros(len(codes) - j, dtype=np.int64)
        for d in range(j + 1):
            key = key * 5 + codes[d:len(codes) - j + d]
        return key

    def fit(self, sequences):
        encoded = [encode_bases(s) for s in sequences]
        self.tables = []
        for j in range(self.order + 1):
            keys = np.concatenate([self._keys(c, j) for c in encoded if len(c) > j] or [np.zeros(0, np.int64)])
            uniq, counts = np.unique(keys, return_counts=True)        # (context, base) -> count
            contexts = np.unique(uniq // 5)                             # context -> how often seen
            totals = np.zeros(len(contexts), dtype=np.int64)
            np.add.at(totals, np.searchsorted(contexts, uniq // 5), counts)
            self.tables.append((uniq, counts, contexts, totals))
        return self

    @staticmethod
    def _lookup(sorted_keys, values, keys):
        at = np.minimum(np.searchsorted(sorted_keys, keys), max(len(sorted_keys) - 1, 0))
        found = (sorted_keys[at] == keys) if len(sorted_keys) else np.zeros(len(keys), bool)
        return np.where(found, values[at] if len(values) else 0, 0)

    def surprisal(self, sequence):
        """-log2 p of each base of the sequence (an array as long as it)."""
        if not self.tables:
            raise ValueError("MarkovModel: fit it before asking for probabilities")
        codes = encode_bases(sequence)
        out = np.empty(len(codes))
        for j in range(min(self.order, len(codes) - 1) + 1):
            uniq, counts, contexts, totals = self.tables[j]
            keys = self._keys(codes, j)
            if j < self.order:                 # the first bases: only the position with exactly j before it
                keys, at = keys[:1], slice(j, j + 1)
            else:
                at = slice(j, None)
            n = self._lookup(uniq, counts, keys)
            total = self._lookup(contexts, totals, keys // 5)
            out[at] = -np.log2((n + self.alpha) / (total + 5 * self.alpha))
        return out

    def total_bits(self, sequences):
        return float(sum(self.surprisal(s).sum() for s in sequences))


def select_markov_order(train_sequences, orders=(0, 1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24), alphas=(0.001, 0.01, 0.1),
                        held_out=0.1):
    """Choose (order, alpha) on the training split alone: fit on its first (earliest) genomes,
    score its last `held_out` fraction; the held-out bits per base of every pair is returned too.
    -> (best order, best alpha, {(order, alpha): bits per base})"""
    n_held = max(1, math.ceil(held_out * len(train_sequences)))
    if len(train_sequences) - n_held < 1:
        raise ValueError("select_markov_order needs at least two training sequences")
    fit_part, held = train_sequences[:-n_held], train_sequences[-n_held:]
    n_bases = sum(map(len, held))
    scores = {}
    for order in orders:
        model = MarkovModel(order).fit(fit_part)
        for alpha in alphas:
            model.alpha = alpha
            scores[order, alpha] = model.total_bits(held) / n_bases
    order, alpha = min(scores, key=scores.get)
    return order, alpha, scores


# ---------------------------------------------------------------------- copy the closest genome
# Genes of one virus differ by substitutions and now and then one in-frame deletion: a pair of
# sequences is aligned with at most one gap, placed where it leaves the fewest mismatches. That is
# exact for such pairs, computed for many references at once, and an upper bound otherwise (a
# whole genome, with its ends sequenced to different lengths, would need a real aligner).
def _one_gap(q, block):
    """q: (n,) codes; block: (R, m) codes of references of one length m. -> (cut (R,), cost (R,)):
    the query's bases before `cut` face the reference's first bases, those after it the
    reference's last ones; cost = mismatches + the gap's length."""
    n, m = len(q), block.shape[1]
    shift = abs(m - n)
    if m >= n:         # the reference is longer: skip `shift` of its bases at the cut
        head = np.concatenate([np.zeros((len(block), 1), np.int64), np.cumsum(block[:, :n] != q, 1)], 1)
        tail_mis = block[:, shift:] != q
        tail = np.concatenate([np.cumsum(tail_mis[:, ::-1], 1)[:, ::-1], np.zeros((len(block), 1), np.int64)], 1)
        costs = head + tail                                             # cut c in 0..n
    else:              # the query is longer: `shift` of its bases at the cut face nothing
        head = np.concatenate([np.zeros((len(block), 1), np.int64), np.cumsum(block != q[:m], 1)], 1)
        tail_mis = block != q[shift:]
        tail = np.concatenate([np.cumsum(tail_mis[:, ::-1], 1)[:, ::-1], np.zeros((len(block), 1), np.int64)], 1)
        costs = head + tail                                             # cut c in 0..m
    cut = np.argmin(costs, 1)
    return cut, costs[np.arange(len(block)), cut] + shift


def align_to(query, target):
    """For each position of `query`, the index of the base of `target` aligned to it, or -1 where
    the query has an insertion (one gap at most, see above)."""
    n, m = len(query), len(target)
    if n == m:
        return np.arange(n)
    cut = int(_one_gap(encode_bases(query), encode_bases(target)[None])[0][0])
    index = np.arange(n)
    if m > n:
        return np.where(index < cut, index, index + (m - n))
    return np.where(index < cut, index, np.where(index < cut + n - m, -1, index - (n - m)))


def differences(query, target):
    """A boolean array over the query's bases: True where the aligned target base differs (or
    none is aligned)."""
    aligned = align_to(query, target)
    q, t = encode_bases(query), encode_bases(target)
    return (aligned < 0) | (t[np.maximum(aligned, 0)] != q)


def closest_genome(query, references, skip=None):
    """(index, distance) of the reference closest to the query: differing bases plus the gap's
    length. References are compared a length at a time, all at once. `skip`: an index left out."""
    q = encode_bases(query)
    by_length = {}
    for i, r in enumerate(references):
        if i != skip:
            by_length.setdefault(len(r), []).append(i)
    best, best_distance = None, math.inf
    for length, indices in by_length.items():
        block = np.stack([encode_bases(references[i]) for i in indices])
        distance = (block != q).sum(1) if length == len(q) else _one_gap(q, block)[1]
        k = int(np.argmin(distance))
        if distance[k] < best_distance:
            best, best_distance = indices[k], int(distance[k])
    if best is None:
        raise ValueError("closest_genome needs at least one reference to compare with")
    return best, best_distance


class ClosestGenomeModel:
    """Predict each base as the aligned base of the closest training genome, with probability
    1 - eps; the other 4 symbols share eps (an unaligned base: all 5 equally likely)."""

    def __init__(self, eps=None):
        self.eps, self.references = eps, []

    def fit(self, sequences):
        """Keep the training genomes; eps, unless given, from leave-one-out on them: the rate
        (add-one smoothed) at which a genome differs from its closest other training genome."""
        self.references = list(sequences)
        if self.eps is None:
            if len(self.references) < 2:
                raise ValueError("ClosestGenomeModel needs two training genomes to choose eps (or give eps)")
            diff = sum(closest_genome(s, self.references, skip=i)[1] for i, s in enumerate(self.references))
            self.eps = (diff + 1) / (sum(map(len, self.references)) + 2)
        return self

    def surprisal(self, sequence):
        """-log2 p of each base, and the index of the training genome copied."""
        index, _ = closest_genome(sequence, self.references)
        aligned = align_to(sequence, self.references[index])
        differ = differences(sequence, self.references[index])
        bits = np.where(differ, -math.log2(self.eps / 4), -math.log2(1 - self.eps))
        return np.where(aligned < 0, math.log2(5), bits), index

    def total_bits(self, sequences):
        return float(sum(self.surprisal(s)[0].sum() for s in sequences))
