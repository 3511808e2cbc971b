"""The genome language model's measures (genomes/baselines.py, genomes/probes.py): AUC, the
Markov baseline and its order selection, the closest-genome baseline, bits per nucleotide across
tokenizers, embeddings, and the generation probe. Small hand-made cases; the real corpus is
lesson 15's and `genome-report`'s."""
import itertools
import math
import random

import numpy as np
import pytest

from tinygrad_lm.genomes.baselines import (ClosestGenomeModel, MarkovModel, align_to, bits_per_nucleotide,
                                           closest_genome, differences, select_markov_order)
from tinygrad_lm.genomes.probes import (base_surprisal, codon_frequencies, is_genome_tokenizer, is_intact_gene,
                                        last_hidden_states, majority_accuracy, nearest_neighbour_accuracy, pca,
                                        random_codon_genes, random_codon_intact_probability, roc_auc,
                                        sequence_embedding, split_genomes, tok_end_id, token_surprisal)
from tinygrad_lm import nn
from tinygrad_lm.models import GPT, GPTConfig
from tinygrad_lm.nn import functional as F
from tinygrad_lm.tensor import Tensor
from tinygrad_lm.tokenizers import CodonTokenizer, NucleotideTokenizer, nucleotide_bpe
from tinygrad_lm.tokenizers.dna import END_OF_TEXT


def random_bases(n, seed=0, letters="ACGT"):
    rng = random.Random(seed)
    return "".join(rng.choice(letters) for _ in range(n))


# ---------------------------------------------------------------------- AUC
def test_roc_auc_on_a_hand_example_and_against_counting_pairs():
    # negatives 0.1, 0.4; positives 0.35, 0.8: 3 of the 4 pairs ranked right
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert roc_auc([1, 2, 3], [0, 1, 1]) == 1.0 and roc_auc([3, 2, 1], [0, 1, 1]) == 0.0
    assert roc_auc([5, 5, 5, 5], [0, 1, 0, 1]) == 0.5                    # ties count half
    rng = np.random.default_rng(0)
    scores, labels = rng.integers(0, 6, 200).astype(float), rng.random(200) < 0.3
    pos, neg = scores[labels], scores[~labels]
    pairs = (pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()
    assert roc_auc(scores, labels) == pytest.approx(pairs / (len(pos) * len(neg)), abs=1e-12)
    with pytest.raises(ValueError, match="positives and negatives"):
        roc_auc([1, 2], [1, 1])


# ---------------------------------------------------------------------- Markov baseline
def test_markov_model_probabilities_by_hand():
    model = MarkovModel(order=1, alpha=0.5).fit(["ACAC"])
    # counts after A: C twice; after C: A once. p(C | A) = (2 + .5) / (2 + 5 * .5); the first base
    # uses order 0: p(A) = (2 + .5) / (4 + 2.5)
    bits = model.surprisal("ACG")
    assert bits[0] == pytest.approx(-math.log2(2.5 / 6.5))
    assert bits[1] == pytest.approx(-math.log2(2.5 / 4.5))
    assert bits[2] == pytest.approx(-math.log2(0.5 / 3.5))               # G never followed C (seen once)
    for seq in ["A", "ACGTN", random_bases(50, 1)]:                      # a distribution for every context
        per_context = [2 ** -model.surprisal(seq[:-1] + b)[-1] for b in "ACGTN"] if len(seq) > 1 else None
        if per_context:
            assert sum(per_context) == pytest.approx(1.0)


def markov_source(order, n_sequences, length, seed):
    """Sequences from an order-`order` Markov chain with random (peaked) transitions."""
    rng = np.random.default_rng(seed)
    table = {ctx: rng.dirichlet([0.3] * 4) for ctx in itertools.product("ACGT", repeat=order)}
    out = []
    for _ in range(n_sequences):
        s = list(rng.choice(list("ACGT"), order))
        while len(s) < length:
            s.append("ACGT"[rng.choice(4, p=table[tuple(s[-order:])])])
        out.append("".join(s))
    return out


@pytest.mark.parametrize("true_order", [1, 3])
def test_order_selection_finds_the_order_of_the_source(true_order):
    sequences = markov_source(true_order, 30, 2000, seed=true_order)
    order, alpha, scores = select_markov_order(sequences, orders=range(0, 6), alphas=(0.1, 1.0))
    assert order == true_order, scores
    assert set(scores) == {(k, a) for k in range(6) for a in (0.1, 1.0)}


# ---------------------------------------------------------------------- closest genome baseline
def test_closest_genome_on_a_toy_set():
    refs = ["ACGTACGTAC", "ACGAACGTTC", "TTTTTTTTTT", "ACGTCGTAC"]
    assert closest_genome("ACGAACGTTA", refs) == (1, 1)                 # one substitution (3 from refs[0])
    assert closest_genome("ACGTACGTAC", refs, skip=0) == (3, 1)          # one deletion (the gap's length), not 2 subs
    # a query with a deletion against a longer reference: the gap goes where it costs least
    assert align_to("ACGTCGTAC", "ACGTACGTAC").tolist() == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    # a query with an insertion (a T in a TT run, either one): the inserted base faces nothing
    assert align_to("ACGTTACGTAC", "ACGTACGTAC").tolist() in ([0, 1, 2, -1, 3, 4, 5, 6, 7, 8, 9],
                                                              [0, 1, 2, 3, -1, 4, 5, 6, 7, 8, 9])
    assert differences("ACGTTACGTAC", "ACGTACGTAC").sum() == 1
    assert differences("ACGAACGTAA", "ACGTACGTAC").tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 1]


def test_closest_genome_model_eps_and_bits():
    train = ["ACGTACGTAC", "ACGTACGTAA", "ACGTACGTAC", "TCGTACGTAC"]
    model = ClosestGenomeModel().fit(train)
    # leave one out: 0 -> 2 (0 diffs), 1 -> 0 (1), 2 -> 0 (0), 3 -> 0 (1): eps = (2 + 1) / (40 + 2)
    assert model.eps == pytest.approx(3 / 42)
    bits, index = model.surprisal("ACGTACGTCC")
    assert train[index] == "ACGTACGTAC"
    expected = [-math.log2(1 - model.eps)] * 10
    expected[8] = -math.log2(model.eps / 4)
    np.testing.assert_allclose(bits, expected)
    # the smoothed copy model is a distribution over the 5 symbols at every position
    assert (1 - model.eps) + 4 * (model.eps / 4) == pytest.approx(1.0)


def test_bits_per_nucleotide_is_nats_over_bases_in_bits():
    assert bits_per_nucleotide(100 * math.log(2), 50) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        bits_per_nucleotide(1.0, 0)


# ---------------------------------------------------------------------- the model's surprisal
class UniformModel(nn.Module):
    """Equal logits for every token: each token costs log(vocab_size) nats whatever the context."""

    def __init__(self, vocab_size, block_size):
        super().__init__()
        self.config = GPTConfig.seed_mini(vocab_size=vocab_size, block_size=block_size)

    def forward(self, x):
        return Tensor(np.zeros((*np.shape(x), self.config.vocab_size), np.float32)), None


@pytest.mark.parametrize("kind", ["nucleotide", "codon", "bpe"])
def test_bits_per_nucleotide_across_tokenizers(kind):
    genomes = [random_bases(300, seed) for seed in range(3)]
    tok = {"nucleotide": NucleotideTokenizer, "codon": CodonTokenizer}.get(kind, lambda: nucleotide_bpe(genomes, 300))()
    end = tok_end_id(tok)
    ids = [i for g in genomes for i in tok.encode(g) + [end]]
    per_genome = base_surprisal(UniformModel(tok.vocab_size, 16), ids, tok)
    assert [len(b) for b in per_genome] == [300, 300, 300]              # one value per base, whatever the tokens
    # the bits of each genome's tokens (not the end-of-text ones) are all there, spread over the bases
    tokens = sum(len(tok.encode(g)) for g in genomes)
    assert sum(b.sum() for b in per_genome) == pytest.approx(tokens * math.log2(tok.vocab_size))
    assert [tok.decode(g.tolist()) for g, _ in split_genomes(ids, tok)] == genomes
    assert is_genome_tokenizer(tok)


def test_token_surprisal_matches_full_forward_and_gives_each_token_half_a_block_of_context():
    from tinygrad_lm.random import manual_seed
    manual_seed(0)
    model = GPT(GPTConfig.gpt2(vocab_size=6, block_size=8, n_layer=1, n_head=2, n_embd=16, bias=False))
    ids = np.random.default_rng(0).integers(0, 5, 30)
    got = token_surprisal(model, ids, start_id=5, batch_size=3)
    stream = np.r_[5, ids]

    def nll_with_context(j, first):          # -log p(ids[j]) given stream[first : j + 1]
        logits, _ = model(stream[None, first:j + 1])
        return -F.log_softmax(logits, -1).numpy()[0, -1, ids[j]]

    for j in range(30):   # windows start at 0, 4, 8, ...: token j is scored in the last one holding >= 4 before it
        first = 0 if j < 8 else (j - 4) // 4 * 4
        assert got[j] == pytest.approx(nll_with_context(j, first), rel=1e-5, abs=1e-6), j


# ---------------------------------------------------------------------- embeddings
def test_last_hidden_states_are_what_the_output_head_reads():
    model = GPT(GPTConfig.gpt2(vocab_size=6, block_size=8, n_layer=2, n_head=2, n_embd=16, bias=False))
    model.eval()
    idx = np.random.default_rng(1).integers(0, 6, (2, 8))
    h = last_hidden_states(model, idx)
    logits, _ = model(idx)
    np.testing.assert_allclose(model.lm_head(Tensor(h)).numpy(), logits.numpy(), rtol=1e-5, atol=1e-6)
    ids = np.random.default_rng(2).integers(0, 6, 19)                    # 2 whole blocks and 3 tokens
    parts = [last_hidden_states(model, ids[s:s + 8][None])[0] for s in (0, 8, 16)]
    np.testing.assert_allclose(sequence_embedding(model, ids), np.concatenate(parts).mean(0), rtol=1e-5, atol=1e-6)


def test_nearest_neighbour_and_majority_and_pca():
    train_x = [[1, 0], [0.9, 0.1], [0, 1]]
    assert nearest_neighbour_accuracy(train_x, ["a", "a", "b"], [[0.1, 1], [1, 0.2]], ["b", "a"]) == 1.0
    assert nearest_neighbour_accuracy(train_x, ["a", "a", "b"], [[0.1, 1]], ["a"]) == 0.0
    assert majority_accuracy(["a", "a", "b"], ["a", "b", "b", "b"]) == 0.25
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 1)) * [3, 0, 0] + rng.normal(size=(200, 3)) * 0.1
    coords, explained = pca(x, 2)
    assert explained[0] > 0.99 and abs(np.corrcoef(coords[:, 0], x[:, 0])[0, 1]) > 0.999


# ---------------------------------------------------------------------- generation probe
def test_intact_gene_and_the_random_codon_baseline():
    assert is_intact_gene("ATGAAATAA", 2)
    assert not is_intact_gene("ATGTAATAA", 2)                            # a premature stop
    assert not is_intact_gene("ATGAAAGGGTAA", 2) and not is_intact_gene("ATGAAATA", 2)   # wrong length
    assert not is_intact_gene("ATGAAACCC", 2)                            # no stop at the end
    freqs = codon_frequencies(["ATGTTTGTTTAA", "ATGNNNTAA"])             # NNN skipped: 6 codons
    assert freqs["ATG"] == pytest.approx(2 / 6) and freqs["TAA"] == pytest.approx(2 / 6)
    p = random_codon_intact_probability(freqs, 3)
    assert p == pytest.approx((4 / 6) ** 3 * (2 / 6))
    genes = random_codon_genes(freqs, 20000, 3, seed=0)
    observed = np.mean([is_intact_gene(g, 3) for g in genes])
    assert abs(observed - p) < 4 * math.sqrt(p * (1 - p) / 20000)


def test_sample_genes_equals_greedy_generation_within_the_context_and_refills_beyond_it():
    from tinygrad_lm.models.generation import generate
    from tinygrad_lm.genomes.probes import sample_genes
    from tinygrad_lm.random import manual_seed
    manual_seed(3)
    tok = NucleotideTokenizer()
    end = tok_end_id(tok)
    model = GPT(GPTConfig.gpt2(vocab_size=6, block_size=8, n_layer=1, n_head=2, n_embd=16, bias=False))
    genes = sample_genes(model, tok, 2, 20, temperature=0.0)
    assert all(len(g) <= 20 for g in genes) and genes[0] == genes[1]          # greedy: the same twice
    ids = generate(model, [[end]], 6, temperature=0.0)[0, 1:].tolist()       # within the context: the same
    cut = ids.index(end) if end in ids else len(ids)
    assert genes[0][:min(cut, 6)] == tok.decode(ids[:min(cut, 6)])
    # beyond the context: each token greedy given the window refilled from the last half block
    model.eval()
    out, start = [end], 0
    for _ in range(20):
        if len(out) - 1 - start >= 8:            # the cache holds out[start:-1]: full, keep the last 4
            start = len(out) - 4
        logits, _ = model(np.array([out[start:]]))
        nxt = int(np.argmax(logits.numpy()[0, -1]))
        out.append(nxt)
        if nxt == end:
            break
    expected = out[1:-1] if out[-1] == end else out[1:]
    assert genes[0] == tok.decode(expected)


def test_train_sample_and_genome_report_through_the_command_line(tmp_path):
    import json
    from .test_cli import run_cli
    from .test_genomes import write_toy_corpus
    write_toy_corpus(tmp_path, n_genomes=20)
    metadata = tmp_path / "sars-cov-2" / "example_metadata.tsv"
    rows = metadata.read_text().splitlines()
    metadata.write_text("\n".join([rows[0] + "\tregion"] + [r + "\t" + ("Asia" if i % 3 else "Europe")
                                                            for i, r in enumerate(rows[1:])]) + "\n")
    run_cli("prepare", "--corpus", "sars-cov-2", "--tokenizer", "codon", "--gene", "G", "--data-dir", tmp_path,
            "--dataset", tmp_path / "g", cwd=tmp_path)
    run_cli("train", "--preset", "genome-gpt", "--dataset", tmp_path / "g", "--out-dir", tmp_path / "run",
            "--max-iters", "3", "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--block-size", "32",
            "--eval-iters", "1", "--samples", "0", cwd=tmp_path)
    # a genome model's samples start at <|endoftext|> (no newline in its vocabulary), or at --start
    out = run_cli("sample", "--out-dir", tmp_path / "run", "--max-new-tokens", "5", "--seed", "1", cwd=tmp_path)
    first = out.stdout.splitlines()[0]
    assert first.startswith(END_OF_TEXT)
    out = run_cli("sample", "--out-dir", tmp_path / "run", "--max-new-tokens", "4", "--start", "ATG", cwd=tmp_path)
    assert out.stdout.startswith("ATG")
    out = run_cli("genome-report", "--out-dir", tmp_path / "run", "--samples", "2", "--data-dir", tmp_path,
                  cwd=tmp_path)
    report = json.loads((tmp_path / "run" / "genome_report.json").read_text())
    assert "bits per nucleotide: model" in out.stdout and report["val_genomes"] == 2
    assert report["tokenizer"] == "codon" and report["samples"] == 2 and report["protein_length"] == 99
    assert 0 < report["closest_bpn"] < report["model_bpn"] and report["region_majority"] in (0.0, 0.5, 1.0)
