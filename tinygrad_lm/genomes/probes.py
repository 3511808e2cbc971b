"""What a genome language model has learned, measured (lesson 15, `python -m tinygrad_lm genome-report`).

  per-base surprisal: each token's negative log-likelihood (every token scored with at least half
      a block of context) shared equally among the bases it spells, so nucleotide, codon and BPE
      models give the same per-base measure; summed and divided by the bases: bits per nucleotide;
  roc_auc: how well a score ranks positives above negatives (Mann-Whitney, ties counted half);
      here: does surprisal find the bases where a genome differs from its closest training genome?
  sequence embeddings: the mean of the last hidden states (after the final LayerNorm) over a
      sequence, read a block at a time; nearest_neighbour_accuracy and majority_accuracy compare a
      label (region) predicted from them with always guessing the most common one;
  intact_fraction: of sampled genes, the fraction that translate (standard code) to a protein of
      the reference's length with no stop codon before its end; random_codon_intact_probability:
      the same for codons drawn independently with the training frequencies.
"""
import math

import numpy as np

from ..models.generation import sample_next
from ..nn.attention import cache_length
from ..nn import eval_mode, functional as F
from ..tensor import Tensor, no_grad
from ..tokenizers.dna import END_OF_TEXT, NUCLEOTIDE_BPE_PATTERN
from .genes import GENETIC_CODE, translate


def roc_auc(scores, labels):
    """Area under the ROC curve: the probability that a random positive scores above a random
    negative (a tie counts half). 0.5 = chance, 1 = a perfect ranking."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"roc_auc needs two 1-d arrays of one length, got {scores.shape} and {labels.shape}")
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"roc_auc needs positives and negatives, got {n_pos} and {n_neg}")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average rank of each run of tied scores (1-based)
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# ---------------------------------------------------------------------- the model's surprisal
@no_grad()
def token_surprisal(model, ids, start_id, batch_size=16):
    """-log p (nats) of every token of `ids` under a causal model, the stream preceded by
    `start_id` (so its first token is predicted too). Windows of block_size tokens, stepping by
    half a block: each token is scored in the window where it has the most context."""
    ids = np.asarray(ids, dtype=np.int64)
    stream = np.r_[start_id, ids]
    block = model.config.block_size
    half = max(1, block // 2)
    out = np.full(len(ids), np.nan)
    windows = []                            # (first input position, first scored target offset)
    start = 0
    while True:
        end = min(start + block, len(stream) - 1)
        windows.append((start, end, 0 if start == 0 else half))
        if end >= len(stream) - 1:
            break
        start += half
    with eval_mode(model):
        for i in range(0, len(windows), batch_size):
            group = windows[i:i + batch_size]
            width = max(e - s for s, e, _ in group)
            x = np.zeros((len(group), width), dtype=np.int64)
            for row, (s, e, _) in enumerate(group):
                x[row, :e - s] = stream[s:e]
            logits, _ = model(x)
            logp = F.log_softmax(logits, -1).numpy()
            for row, (s, e, skip) in enumerate(group):
                targets = stream[s + 1:e + 1]
                nll = -logp[row, np.arange(e - s), targets]
                out[s + skip:e] = nll[skip:]      # target stream[j + 1] is ids[j]
    return out


def split_genomes(ids, tok):
    """A prepared split's token ids -> [(token ids, bases per token)] per genome (the
    <|endoftext|> separators dropped). Codon tokens spell 3 bases (<unk> 3 N), BPE tokens their
    own length."""
    end = tok_end_id(tok)
    lengths = np.array([len(tok.decode([i])) if i != end else 0 for i in range(tok.vocab_size)])
    genomes, current = [], []
    for i in np.asarray(ids).tolist():
        if i == end:
            if current:
                genomes.append(np.array(current))
            current = []
        else:
            current.append(i)
    if current:
        genomes.append(np.array(current))
    return [(g, lengths[g]) for g in genomes]


def tok_end_id(tok):
    """The id of <|endoftext|>, which separates (and so starts) the genes of a prepared split."""
    return tok.stoi[END_OF_TEXT] if hasattr(tok, "stoi") and END_OF_TEXT in tok.stoi else \
        tok.encode(END_OF_TEXT, allowed_special="all")[0]


def is_genome_tokenizer(tok):
    """True for the tokenizers of tokenizers/dna.py (nucleotides, codons, BPE trained on nucleotides)."""
    return getattr(tok, "kind", None) in ("nucleotide", "codon") or getattr(tok, "pattern", None) == \
        NUCLEOTIDE_BPE_PATTERN


def base_surprisal(model, ids, tok):
    """Per genome of a split: -log2 p of each base (its token's bits shared equally among the
    token's bases). The end-of-text tokens' bits are left out: the baselines do not model lengths."""
    end = tok_end_id(tok)
    nll = token_surprisal(model, ids, end) / math.log(2)
    ids = np.asarray(ids)
    out, at = [], 0
    for genome, bases in split_genomes(ids, tok):
        while ids[at] == end:
            at += 1
        bits = nll[at:at + len(genome)]
        out.append(np.repeat(bits / bases, bases))
        at += len(genome)
    return out


# ---------------------------------------------------------------------- embeddings
@no_grad()
def last_hidden_states(model, idx):
    """(B, T, n_embd) NumPy array: a GPT's hidden states after its final LayerNorm (the input of
    its output head), the forward pass of models/gpt.py without the head."""
    tr, c = model.transformer, model.config
    idx = np.asarray(idx, dtype=np.int64)
    x = F.embedding(Tensor(idx), tr.wte.weight)
    if c.pos_encoding != "rotary":
        x = x + tr.wpe(idx.shape[1], 0)
    for block in tr.h:
        x = block(x)
    return tr.ln_f(x).numpy()


def sequence_embedding(model, genome_ids):
    """The mean of the last hidden states over a genome's tokens, read in consecutive blocks of
    block_size tokens (each block on its own: the model's context)."""
    with eval_mode(model):
        ids, block = np.asarray(genome_ids, dtype=np.int64), model.config.block_size
        whole = len(ids) // block * block
        total = 0.0
        if whole:                                   # the whole blocks as one batch
            total = last_hidden_states(model, ids[:whole].reshape(-1, block)).sum((0, 1))
        if whole < len(ids):
            total = total + last_hidden_states(model, ids[whole:][None])[0].sum(0)
        return total / len(ids)


def pca(x, k=2):
    """The data's coordinates on its first k principal axes (centred, by SVD), and the fraction
    of the variance each explains."""
    x = np.asarray(x, dtype=np.float64)
    centred = x - x.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:k].T, (s[:k] ** 2) / max((s ** 2).sum(), 1e-300)


def nearest_neighbour_accuracy(train_x, train_labels, test_x, test_labels):
    """Label each test point as its nearest training point (cosine similarity): the accuracy."""
    a = np.asarray(train_x, np.float64)
    b = np.asarray(test_x, np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    nearest = np.argmax(b @ a.T, axis=1)
    return float(np.mean(np.asarray(train_labels)[nearest] == np.asarray(test_labels)))


def majority_accuracy(train_labels, test_labels):
    """The accuracy of always answering the training split's most common label."""
    values, counts = np.unique(np.asarray(train_labels), return_counts=True)
    return float(np.mean(np.asarray(test_labels) == values[np.argmax(counts)]))


# ---------------------------------------------------------------------- generation
def is_intact_gene(bases, protein_length):
    """True if the bases translate to exactly protein_length amino acids then a stop codon, with
    no stop before (a length that breaks the frame is not intact)."""
    if len(bases) != 3 * (protein_length + 1):
        return False
    protein = translate(bases)
    return protein.find("*") == protein_length


@no_grad()
def sample_genes(model, tok, n, max_bases, seed=0, temperature=1.0, batch_size=8):
    """n sequences sampled after <|endoftext|> (how every gene starts in the training stream), each
    cut at the next <|endoftext|>; at most max_bases bases (rounded up to whole tokens).

    A gene is longer than the model's context. generate() then recomputes the whole window at every
    step; here, once the KV cache is full it is refilled from the last half block, so a full forward
    happens every block/2 tokens and each token is still sampled with at least half a block of
    context (as token_surprisal scores it). A batch stops when every row has ended its gene."""
    end = tok_end_id(tok)
    shortest = min(len(tok.decode([i])) for i in range(tok.vocab_size) if i != end and len(tok.decode([i])))
    new_tokens = math.ceil(max_bases / shortest)
    block, half = model.config.block_size, max(1, model.config.block_size // 2)
    rng = np.random.default_rng(seed)
    genes = []
    with eval_mode(model):
        for i in range(0, n, batch_size):
            out = np.full((min(batch_size, n - i), 1), end, dtype=np.int64)
            caches, step_input = None, out
            for _ in range(new_tokens):
                if caches is None or cache_length(caches[0]) >= block:
                    caches, step_input = model.new_kv_caches(), out[:, -half:]
                logits, _ = model(step_input, kv_caches=caches, last_only=True)
                nxt = sample_next(logits.numpy()[:, -1], temperature, None, None, rng)[:, None].astype(np.int64)
                out, step_input = np.concatenate([out, nxt], 1), nxt
                if (out[:, 1:] == end).any(1).all():
                    break
            for row in out[:, 1:].tolist():
                cut = row.index(end) if end in row else len(row)
                genes.append(tok.decode(row[:cut]))
    return genes


def intact_fraction(genes, protein_length):
    return float(np.mean([is_intact_gene(g, protein_length) for g in genes]))


def codon_frequencies(sequences):
    """{codon: frequency} over in-frame codons of coding sequences (codons holding N skipped)."""
    counts = {c: 0 for c in GENETIC_CODE}
    for s in sequences:
        for i in range(0, len(s) - 2, 3):
            if s[i:i + 3] in counts:
                counts[s[i:i + 3]] += 1
    total = sum(counts.values())
    return {c: n / total for c, n in counts.items()}


def random_codon_intact_probability(frequencies, protein_length):
    """The chance that protein_length + 1 codons drawn independently with these frequencies
    form an intact gene: no stop among the first protein_length, a stop last."""
    p_stop = sum(f for c, f in frequencies.items() if GENETIC_CODE[c] == "*")
    return (1 - p_stop) ** protein_length * p_stop


def random_codon_genes(frequencies, n, protein_length, seed=0):
    """n random genes of protein_length + 1 codons drawn with these frequencies (the empirical
    side of random_codon_intact_probability)."""
    rng = np.random.default_rng(seed)
    codons = list(frequencies)
    draws = rng.choice(len(codons), size=(n, protein_length + 1), p=np.array([frequencies[c] for c in codons]))
    return ["".join(codons[j] for j in row) for row in draws]
