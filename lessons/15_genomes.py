# %% [markdown]
# # Lesson 15 — Language models for science: genomes
#
# A genome is a text over four letters, A C G T, and a language model trained on genomes learns
# which sequences a virus "writes". GenSLM (2022) trained GPT-style models on 110 million gene
# sequences of bacteria and 1.5 million SARS-CoV-2 genomes, and used them to follow the virus's
# variants. Here is the same idea at a classroom's scale: the spike gene (S) of 418 real SARS-CoV-2
# genomes from the first months of 2020, a small GPT from this package, and honest baselines.
#
# The questions: how should DNA be cut into tokens? How do we compare models that cut it
# differently? Is the model better than simple statistics? And what has it learned: is it surprised
# where a new genome carries a mutation, do its embeddings know where a genome came from, and do
# the genes it writes still code for a protein?

# %%
import dataclasses
import tempfile

import numpy as np

from tinygrad_lm.data.text import load_split, load_tokenizer
from tinygrad_lm.genomes import read_dates, read_fasta, read_genbank, translate
from tinygrad_lm.genomes.baselines import ClosestGenomeModel, MarkovModel, differences, select_markov_order
from tinygrad_lm.genomes.probes import (base_surprisal, codon_frequencies, intact_fraction, majority_accuracy,
                                        nearest_neighbour_accuracy, pca, random_codon_intact_probability, roc_auc,
                                        sample_genes, sequence_embedding, split_genomes, tok_end_id)
from tinygrad_lm.genomes.report import read_metadata_column
from tinygrad_lm.genomes.sarscov2 import corpus_files, prepare_genomes, select_genomes, split_by_date
from tinygrad_lm.teaching.lesson_utils import QUICK, figure_path, pyplot, quick
from tinygrad_lm.training.presets import PRESETS
from tinygrad_lm.tokenizers import CodonTokenizer, NucleotideTokenizer, nucleotide_bpe
from tinygrad_lm.training.loop import train

paths = corpus_files()         # three public files, shipped in the package and sha256-checked (io/corpora.py)
records = read_fasta(paths["sequences"])
reference = read_genbank(paths["reference"])
dates = read_dates(paths["metadata"])
regions = read_metadata_column(paths["metadata"], "region")
kept, left_out = select_genomes(records, dates, reference, "S", max_unknown=0.01)
train_genomes, val_genomes = split_by_date(kept, val_fraction=0.1)
assert max(d for d, _, _ in train_genomes) < min(d for d, _, _ in val_genomes)   # validation is the future
print(f"{len(records)} genomes read, S found and clean in {len(kept)}; train {len(train_genomes)} "
      f"(to {train_genomes[-1][0]}), val {len(val_genomes)} (from {val_genomes[0][0]})")

# %% [markdown]
# ## Why codons
# A gene is read by the ribosome three bases at a time: each *codon* names one amino acid (or
# "stop"). The reference's spike gene translates to the spike protein, 1273 amino acids that start
# with MFVFLVLLPLV and end with a stop codon. Mutations that change the protein matter to the
# virus; many that change the third base of a codon do not (the code is redundant). A tokenizer
# that reads codons hands the model the unit that biology uses, and a third as many tokens.

# %%
spike = reference.coding_sequences()["S"].extract(reference.sequence)
protein = translate(spike)
print(f"S: {len(spike)} bases, {len(spike) // 3} codons -> {protein[:20]}...{protein[-10:]}")
assert protein.startswith("MFVFLVLLPLVSSQCVNL") and protein.endswith("*") and protein.count("*") == 1
assert len(protein) - 1 == 1273

# %% [markdown]
# ## Three tokenizations
# One id per nucleotide (A C G T N: vocabulary 6 with the separator), one per codon (64 codons,
# `<unk>` for a codon holding an unknown base N, and the separator: 66), and byte-level BPE trained
# on the training genomes (512): its tokens are whatever runs of bases recur, blind to the frame.

# %%
train_seqs = [s for _, _, s in train_genomes]
val_seqs = [s for _, _, s in val_genomes]
tokenizers = {"nucleotide": NucleotideTokenizer(), "codon": CodonTokenizer(),
              "bpe": nucleotide_bpe(train_seqs[::quick(1, 10)], 512)}
lengths = {name: len(tok.encode(spike)) for name, tok in tokenizers.items()}
for name, tok in tokenizers.items():
    print(f"{name:>10}: vocabulary {tok.vocab_size:3d}, {lengths[name]:5d} tokens for the spike gene, "
          f"{len(spike) / lengths[name]:.2f} bases per token")
assert lengths["nucleotide"] == len(spike) and lengths["codon"] == len(spike) // 3
assert lengths["codon"] < lengths["nucleotide"] and lengths["bpe"] < lengths["nucleotide"]
# trained on every training genome, 512 BPE tokens hold about 4 bases each: shorter than codons,
# but blind to the frame (quick mode trains BPE on a tenth of the genomes, too few to show it)
assert lengths["bpe"] < lengths["codon"] or QUICK

# %%
plt = pyplot()
fig, ax = plt.subplots(figsize=(10, 2.6))
shown = spike[:48]
for row, (name, tok) in enumerate(tokenizers.items()):
    at = 0
    for k, i in enumerate(tok.encode(shown)):
        piece = tok.decode([i])
        ax.add_patch(plt.Rectangle((at, -row - 0.4), len(piece), 0.8, color=f"C{k % 10}", alpha=0.35))
        ax.text(at + len(piece) / 2, -row, piece, ha="center", va="center", fontsize=7, family="monospace")
        at += len(piece)
ax.set(xlim=(0, len(shown)), ylim=(-2.6, 0.6), yticks=[0, -1, -2], yticklabels=list(tokenizers),
       xlabel="base", title="the first 48 bases of the spike gene, three ways")
fig.savefig(figure_path("15_tokenizations.png"), dpi=90, bbox_inches="tight")

# %% [markdown]
# ## One measure for all three: bits per nucleotide
# A model's loss is in nats per *token*, and a codon token carries three bases: losses per token
# cannot be compared. Sum the negative log-likelihood of the whole validation set, in bits, and
# divide by its number of bases; `genomes/probes.base_surprisal` also spreads each token's bits
# over its bases, which gives a per-base surprisal for any tokenizer.
#
# Two baselines set the bar (genomes/baselines.py). An order-k Markov model counts which base
# follows each k bases; k is chosen on the training split alone (its latest genomes held out). And
# "copy the closest training genome": align the new genome to the most similar training genome and
# predict each base to be the same, smoothed by how often training genomes differ from their own
# nearest neighbour. The genomes are 99.9% identical, so the bar is very low in bits.

# %%
baseline_train = train_seqs[-quick(len(train_seqs), 60):]      # quick mode: the latest 60 training genes
n_val = quick(len(val_seqs), 6)
val_subset = val_seqs[:n_val]
val_bases = sum(map(len, val_subset))
order, alpha, scores = select_markov_order(baseline_train, orders=quick((0, 1, 2, 4, 6, 8, 10, 12, 16, 20, 24),
                                                                        (0, 2, 4, 8, 12, 16)))
markov = MarkovModel(order, alpha).fit(baseline_train)
closest = ClosestGenomeModel().fit(baseline_train)
bpn = {"Markov": markov.total_bits(val_subset) / val_bases,
       "closest genome": closest.total_bits(val_subset) / val_bases}
print(f"Markov order {order} (alpha {alpha}): {bpn['Markov']:.4f} bits per nucleotide; closest genome "
      f"(eps {closest.eps:.1e}): {bpn['closest genome']:.4f}")
assert order >= 8                     # long contexts pay: the genomes are near copies of one sequence
assert bpn["closest genome"] < bpn["Markov"] < 2.0

# %% [markdown]
# ## Training
# The `genome-gpt` preset (training/presets.py): a GPT-2-style model, 4 layers, width 128, a context of 256
# tokens, trained through the same loop as every other model here. From the command line:
#
#     python -m tinygrad_lm prepare --corpus sars-cov-2 --tokenizer codon --gene S
#     python -m tinygrad_lm train --preset genome-gpt --dataset data/sars-cov-2_S_codon --out-dir out/genome-codon
#     python -m tinygrad_lm genome-report --out-dir out/genome-codon
#
# Below, each tokenizer's model is trained for fewer steps than the preset's (quick mode: a tiny
# model, a few steps, to show the mechanics). BENCHMARKS.md has the preset's full numbers.

# %%
work = tempfile.mkdtemp(prefix="lesson15_")
models, metas = {}, {}
for name in tokenizers:
    spec = "bpe" if name == "bpe" else name
    folder = f"{work}/S_{name}"
    metas[name] = prepare_genomes(folder, tokenizer=spec, gene="S")
    model_config, train_config = PRESETS["genome-gpt"](metas[name]["vocab_size"])
    if QUICK:
        model_config = dataclasses.replace(model_config, n_layer=1, n_head=2, n_embd=32, block_size=64)
    steps = quick(300, 20)
    train_config = dataclasses.replace(train_config.with_max_iters(steps), eval_interval=steps,
                                       eval_iters=quick(5, 1), log_interval=quick(100, 10),
                                       warmup_iters=quick(30, 2), out_dir=f"{work}/out_{name}")
    result = train(model_config, train_config, folder, log=lambda line: None)
    models[name] = result["model"]
    print(f"{name:>10}: {model_config.n_layer} layers, {steps} steps, val loss {result['best_val']:.3f} "
          f"nats per token")


def first_genomes(ids, tok, k):
    """The ids of the first k genomes of a split (with their separators)."""
    ends = np.flatnonzero(np.asarray(ids) == tok_end_id(tok))
    return np.asarray(ids)[:ends[k - 1] + 1]


surprisal = {}
for name in tokenizers:
    tok = load_tokenizer(metas[name])                # the tokenizer the data was prepared with
    ids = first_genomes(load_split(f"{work}/S_{name}", "val"), tok, n_val)
    surprisal[name] = base_surprisal(models[name], ids, tok)
    bpn[f"GPT ({name})"] = float(sum(b.sum() for b in surprisal[name])) / val_bases
    assert [len(b) for b in surprisal[name]] == [len(s) for s in val_subset]
    assert bpn[f"GPT ({name})"] < np.log2(tok.vocab_size)      # better than uniform over the vocabulary
for name, value in bpn.items():
    print(f"{name:>18}: {value:.4f} bits per nucleotide")
if not QUICK:
    assert min(bpn[f"GPT ({n})"] for n in tokenizers) < 1.0

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
orders = sorted({k for k, _ in scores})
left.plot(orders, [scores[k, alpha] for k in orders], "o-")
left.axvline(order, color="gray", ls=":")
left.set(yscale="log", xlabel="Markov order k", ylabel="held-out bits per nucleotide",
         title="choosing k on the training split")
right.barh(list(bpn), list(bpn.values()), color=["gray", "gray", "C0", "C1", "C2"])
right.set(xscale="log", xlabel="validation bits per nucleotide (log scale)", title="models and baselines")
fig.savefig(figure_path("15_bits_per_nucleotide.png"), dpi=90, bbox_inches="tight")

# %% [markdown]
# ## Probe 1: is the model surprised by mutations?
# For each validation genome, the bases where it differs from its closest training genome are its
# new mutations. If the model has learned the virus, its per-base surprisal should peak there. The
# area under the ROC curve measures how well surprisal ranks those bases above the others: 0.5 is
# chance, 1.0 a perfect detector. The Markov model is a strong detector too: a mutation creates
# k-mers it has never seen.

# %%
differs = [differences(s, baseline_train[closest.surprisal(s)[1]]) for s in val_subset]
labels = np.concatenate(differs)
auc = {"Markov": roc_auc(np.concatenate([markov.surprisal(s) for s in val_subset]), labels)}
for name in tokenizers:
    auc[f"GPT ({name})"] = roc_auc(np.concatenate(surprisal[name]), labels)
print(f"{labels.sum()} differing bases among {len(labels):,}; AUC: " +
      ", ".join(f"{k} {v:.3f}" for k, v in auc.items()))
assert auc["Markov"] > 0.9

# %%
g = int(np.argmax([d.sum() for d in differs]))
fig, ax = plt.subplots(figsize=(11, 3.2))
ax.plot(surprisal["codon"][g], lw=0.6, label="GPT (codon), bits per base")
ax.plot(markov.surprisal(val_subset[g]), lw=0.6, alpha=0.7, label=f"Markov order {order}")
for x in np.flatnonzero(differs[g]):
    ax.axvline(x, color="red", alpha=0.5, lw=1)
ax.set_yscale("symlog", linthresh=0.01)
ax.set(xlabel="position in the spike gene", ylabel="surprisal (bits)",
       title=f"{val_genomes[g][1]}: red lines = bases that differ from the closest training genome")
ax.legend(fontsize=8)
fig.savefig(figure_path("15_surprisal.png"), dpi=90, bbox_inches="tight")

# %% [markdown]
# ## Probe 2: what do the embeddings know?
# A genome's embedding: the mean of the model's last hidden states over its tokens. Projected on
# its first two principal components and coloured by sampling month and by region. Then a
# nearest-neighbour probe: each validation genome gets the region of the training genome whose
# embedding is nearest, against always answering the most common training region.

# %%
codon_tok = CodonTokenizer()
emb_train = train_genomes[-quick(len(train_genomes), 60):]
embed = lambda genomes: np.stack([sequence_embedding(models["codon"], codon_tok.encode(s)) for _, _, s in genomes])
x_train, x_val = embed(emb_train), embed(val_genomes[:n_val])
r_train = [regions.get(name, "?") for _, name, _ in emb_train]
r_val = [regions.get(name, "?") for _, name, _ in val_genomes[:n_val]]
nn_accuracy = nearest_neighbour_accuracy(x_train, r_train, x_val, r_val)
baseline_accuracy = majority_accuracy(r_train, r_val)
print(f"region of the nearest embedding: {nn_accuracy:.2f}; always the most common region: {baseline_accuracy:.2f}")
coords, explained = pca(np.concatenate([x_train, x_val]), 2)
assert 0 < explained[1] <= explained[0] <= 1

# %%
everything = emb_train + val_genomes[:n_val]
months = np.array([d.month + 12 * (d.year - 2019) for d, _, _ in everything])
region_names = sorted(set(r_train + r_val))
region_of = np.array([region_names.index(r) for r in r_train + r_val])
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
points = left.scatter(coords[:, 0], coords[:, 1], c=months, cmap="viridis", s=14)
fig.colorbar(points, ax=left, label="month (12 = Dec 2019)")
left.set(title="embeddings (PCA), by sampling month", xlabel="PC1", ylabel="PC2")
for k, name in enumerate(region_names):
    members = region_of == k
    right.scatter(coords[members, 0], coords[members, 1], s=14, label=name, color=f"C{k}")
right.set(title="by region", xlabel="PC1")
right.legend(fontsize=7)
fig.savefig(figure_path("15_embeddings.png"), dpi=90, bbox_inches="tight")

# %% [markdown]
# ## Probe 3: do the generated genes code for a spike protein?
# Sample genes from the codon model (each starts after `<|endoftext|>`, as every gene does in the
# training stream) and translate them: a gene is intact when it gives 1273 amino acids and then a
# stop, with no stop before. Random codons drawn with the training frequencies almost never are:
# among 1273 codons one is bound to be a stop.

# %%
n_samples = quick(8, 2)
genes = sample_genes(models["codon"], codon_tok, n_samples, len(spike) + 30, seed=0)
frequencies = codon_frequencies(train_seqs)
model_intact = intact_fraction(genes, 1273)
random_intact = random_codon_intact_probability(frequencies, 1273)
print(f"intact: model {model_intact:.2f} of {n_samples} samples (lengths {[len(g) for g in genes]}); "
      f"random codons {random_intact:.1e}")
assert all(len(g) % 3 == 0 for g in genes)        # a codon model cannot break the frame
assert random_intact < 1e-3

# %% [markdown]
# ## The limits, honestly
# These are 418 genomes of one virus sampled over five months, 99.9% identical: the model mostly
# memorizes one sequence, and "closest training genome" is a baseline it has trouble beating. GenSLM
# pre-trained on 110 million gene sequences from across bacteria before it saw 1.5 million
# SARS-CoV-2 genomes, with models up to 25 billion parameters and contexts of a whole genome (10,240
# codons); our context holds 256 tokens, a fifth of one gene in codons. A date split asks about the
# future, which is the right question and a hard one: regions sampled later (validation) are not
# those sampled early, so region probes can lose to the majority class. Treat every number here
# as a measurement of this small setup, not as biology.
#
# ## Exercises
# 1. Train the whole genome (`--gene genome`) with the nucleotide and BPE tokenizers: how do the
#    bits per nucleotide compare with the spike gene's? Why does the codon tokenizer refuse it?
# 2. Compute the AUC of probe 1 separately for mutations at the third base of a codon (often
#    silent) and at the first two. Which does the model find more surprising?
# 3. Replace the mean embedding by the last token's hidden state. Does the region probe change?
# 4. Sample with temperature 0.7 and 1.3: how does the intact fraction move, and how far from the
#    reference protein are the intact samples (count the amino acids that differ)?
