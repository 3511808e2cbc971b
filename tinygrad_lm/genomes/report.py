"""The numbers of a trained genome model, beside its baselines (`python -m tinygrad_lm genome-report`,
BENCHMARKS.md "Genome language model", lesson 15).

    report = genome_report("out/genome/last.npz", "data/sars-cov-2_S_codon")

Everything is computed from the prepared dataset (its genomes decoded from train.bin and val.bin,
so every model and baseline sees the same bases) and the corpus metadata (regions):
  bits per nucleotide on the validation genomes: the model, the Markov baseline (order chosen on
      the training split) and the closest-training-genome baseline;
  AUC of per-base surprisal for the bases where a validation genome differs from its closest
      training genome (the model's, and the Markov model's for comparison);
  region from sequence embeddings: nearest training genome's region (val), against always
      guessing the most common region, and against the closest genome by sequence;
  generation: the fraction of sampled genes that are intact (probes.is_intact_gene), against
      random codons with the training frequencies.
"""

import numpy as np

from ..training import checkpoint
from ..data.text import load_meta, load_split
from ..errors import DataError, SequenceFileError
from ..io.corpora import read_bytes
from .baselines import ClosestGenomeModel, MarkovModel, bits_per_nucleotide, differences, select_markov_order
from .probes import (base_surprisal, codon_frequencies, intact_fraction, majority_accuracy,
                     nearest_neighbour_accuracy, random_codon_intact_probability, roc_auc, sample_genes,
                     sequence_embedding, split_genomes)
from .sarscov2 import corpus_files


def read_metadata_column(path, column):
    """{strain: value} of one column of the corpus metadata TSV."""
    lines = read_bytes(path).decode("utf-8").splitlines()            # (a .gz file: decompressed)
    header = lines[0].split("\t")
    if "strain" not in header or column not in header:
        raise SequenceFileError(f"{path} line 1: the metadata header must name the columns 'strain' and {column!r}")
    s, c = header.index("strain"), header.index(column)
    return {f[s]: f[c] for f in (line.split("\t") for line in lines[1:] if line.strip()) if len(f) == len(header)}


def dataset_genomes(dataset, split, tok, meta):
    """[(strain, date, bases, token ids)] of a prepared split, in the order written."""
    genomes = split_genomes(np.asarray(load_split(dataset, split, meta)), tok)
    strains = meta.get("corpus", {}).get(split, {}).get("strains")
    if not isinstance(strains, list) or len(strains) != len(genomes):
        raise DataError(f"{dataset}/meta.json does not list the {len(genomes)} genomes of {split}.bin: prepare it "
                        "with `python -m tinygrad_lm prepare --corpus sars-cov-2`")
    return [(name, date, tok.decode(ids.tolist()), ids) for (name, date), (ids, _) in zip(strains, genomes)]


def baseline_report(train_seqs, val_seqs):
    """Both baselines fitted on train_seqs, scored on val_seqs: bits per nucleotide, the Markov
    order chosen, and per val genome its closest training genome and the bases that differ."""
    n_bases = sum(map(len, val_seqs))
    order, alpha, _ = select_markov_order(train_seqs)
    markov = MarkovModel(order, alpha).fit(train_seqs)
    closest = ClosestGenomeModel().fit(train_seqs)
    copied = [closest.surprisal(s) for s in val_seqs]
    return {"bases": n_bases, "markov_order": order, "markov_alpha": alpha,
            "markov_bpn": markov.total_bits(val_seqs) / n_bases,
            "closest_bpn": float(sum(bits.sum() for bits, _ in copied)) / n_bases, "closest_eps": closest.eps,
            "closest_index": [i for _, i in copied],
            "differs": [differences(s, train_seqs[i]) for s, (_, i) in zip(val_seqs, copied)],
            "markov_surprisal": [markov.surprisal(s) for s in val_seqs]}


def surprisal_auc(surprisals, differs, sequences):
    """AUC of per-base surprisal for the differing bases (bases that are N in the genome skipped)."""
    known = np.concatenate([np.frombuffer(s.encode(), np.uint8) != ord("N") for s in sequences])
    scores, labels = np.concatenate(surprisals), np.concatenate(differs)
    return roc_auc(scores[known], labels[known])


def genome_report(checkpoint_path, dataset, data_dir=None, samples=16, seed=0, log=print, loaded=None):
    """`loaded`: (model, tokenizer) when the caller has read the checkpoint already."""
    model, tok = loaded if loaded is not None else checkpoint.load_model(checkpoint_path)[:2]
    meta = load_meta(dataset)
    train = dataset_genomes(dataset, "train", tok, meta)
    val = dataset_genomes(dataset, "val", tok, meta)
    train_seqs, val_seqs = [g[2] for g in train], [g[2] for g in val]
    log(f"{len(train)} train and {len(val)} val genomes; scoring the model")
    model_bits = base_surprisal(model, load_split(dataset, "val", meta), tok)
    log("baselines: Markov order selection, closest genomes")
    base = baseline_report(train_seqs, val_seqs)
    report = {"checkpoint": str(checkpoint_path), "dataset": str(dataset), "tokenizer": meta["tokenizer"]["type"],
              "vocab_size": meta["vocab_size"], "val_genomes": len(val), "val_bases": base["bases"],
              "val_tokens": meta["val_tokens"], "model_bpn": bits_per_nucleotide(
                  sum(b.sum() for b in model_bits) * np.log(2), base["bases"]),
              **{k: base[k] for k in ("markov_order", "markov_alpha", "markov_bpn", "closest_bpn", "closest_eps")},
              "differing_bases": int(sum(d.sum() for d in base["differs"])),
              "auc_model": surprisal_auc(model_bits, base["differs"], val_seqs),
              "auc_markov": surprisal_auc(base["markov_surprisal"], base["differs"], val_seqs)}
    log("embeddings and the region probe")
    regions = read_metadata_column(corpus_files(data_dir, download=False)["metadata"], "region")
    train_x = np.stack([sequence_embedding(model, g[3]) for g in train])
    val_x = np.stack([sequence_embedding(model, g[3]) for g in val])
    train_r, val_r = [regions.get(g[0], "?") for g in train], [regions.get(g[0], "?") for g in val]
    report.update(region_nn=nearest_neighbour_accuracy(train_x, train_r, val_x, val_r),
                  region_majority=majority_accuracy(train_r, val_r),
                  region_closest_genome=float(np.mean([train_r[i] == r for i, r in zip(base["closest_index"], val_r)])))
    if samples:
        lengths, counts = np.unique([len(s) for s in train_seqs], return_counts=True)
        gene_bases = int(lengths[np.argmax(counts)])
        protein_length = gene_bases // 3 - 1
        log(f"sampling {samples} genes (protein length {protein_length})")
        genes = sample_genes(model, tok, samples, gene_bases + 30, seed=seed)
        frequencies = codon_frequencies([s for s in train_seqs if len(s) % 3 == 0])
        report.update(protein_length=protein_length, samples=samples,
                      intact_model=intact_fraction(genes, protein_length),
                      intact_random=random_codon_intact_probability(frequencies, protein_length),
                      sample_length_median=float(np.median([len(g) for g in genes])))
    return report


def format_report(r):
    lines = [f"{r['tokenizer']} tokenizer (vocab {r['vocab_size']}): {r['val_genomes']} val genomes, "
             f"{r['val_bases']:,} bases, {r['val_tokens']:,} tokens",
             f"bits per nucleotide: model {r['model_bpn']:.4f} | Markov order {r['markov_order']} "
             f"{r['markov_bpn']:.4f} | closest training genome {r['closest_bpn']:.4f}",
             f"surprisal finds the {r['differing_bases']} bases that differ from the closest training genome: "
             f"AUC model {r['auc_model']:.3f} | Markov {r['auc_markov']:.3f}",
             f"region from embeddings (nearest neighbour): {r['region_nn']:.3f} | majority class "
             f"{r['region_majority']:.3f} | closest genome by sequence {r['region_closest_genome']:.3f}"]
    if "intact_model" in r:
        lines.append(f"intact genes ({r['protein_length']} amino acids, no early stop): model "
                     f"{r['intact_model']:.3f} of {r['samples']} (median length {r['sample_length_median']:.0f}) | "
                     f"random codons {r['intact_random']:.2e}")
    return "\n".join(lines)
