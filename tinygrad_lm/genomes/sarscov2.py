"""The SARS-CoV-2 corpus: real genomes, a gene (or the whole genome) per genome, tokenized, split
by sampling date.

    prepare_genomes("data/sars-cov-2_S_codon", tokenizer="codon", gene="S")
      -> train.bin, val.bin, meta.json   (the same files as data.prepare: CausalLMBatches reads them)

Three public files from Nextstrain's ncov repository (MIT; the sequences are GenBank records),
downloaded once into <data>/sars-cov-2/ with a sha256 check, or used as found there (as tiny
Shakespeare is): the genomes (FASTA, gzip), their metadata (TSV: strain, date, country, ...), and
the reference's GenBank record (MN908947, Wuhan-Hu-1), whose CDS features name the genes.

Policy, in order (every genome left out is named in meta.json with its reason):
  1. letters: genomes/fasta.py's clean_sequence (U -> T, ambiguity codes -> N, gaps removed);
  2. a genome with no metadata row, or a date that is not a whole day (2020-03, 2020-XX-XX), is
     left out: the split needs its day;
  3. the gene is located by genes.GeneLocator; a genome where it is not found is left out;
  4. a sequence with more than `max_unknown` (1%) N is left out: long N runs are gaps in the
     sequencing, and a model would spend its capacity predicting them;
  5. split by date: the latest genomes (at least `val_fraction` of them) are validation, and every
     validation genome was sampled on a later day than every training genome (all genomes of the
     boundary day go to validation), so validation asks the model about the virus's future;
  6. each split is its sequences in date order, each followed by <|endoftext|>.
"""
import datetime
import math
import pathlib
import re

from ..data.text import write_dataset
from ..io.corpora import CORPUS_FILES, corpus_file, read_bytes
from ..errors import ConfigError, DataError, SequenceFileError
from ..tokenizers.bpe import BPETokenizer
from ..tokenizers.dna import END_OF_TEXT, CodonTokenizer, NucleotideTokenizer, nucleotide_bpe
from .fasta import clean_sequence, read_fasta, unknown_fraction
from .genbank import read_genbank
from .genes import GeneLocator, GeneNotFound

CORPUS = "sars-cov-2"
FILES = {   # name -> (file name, public URL, sha256): io/corpora.py's CORPUS_FILES holds them
    key: (name, *CORPUS_FILES[CORPUS, name][:2])
    for key, name in (("sequences", "example_sequences.fasta.gz"), ("metadata", "example_metadata.tsv"),
                      ("reference", "reference_seq.gb"))
}
WHOLE_GENOME = "genome"
GENOME_TOKENIZERS = "nucleotide | codon | bpe | bpe:<vocab_size>"
DEFAULT_BPE_VOCAB = 512
# BPE is trained on at most this many bases of the training split (evenly spaced genomes): the
# engine's trainer is plain Python, about 40 s per million bases here, and the genomes are
# 99.9% alike, so more of them teach it little.
BPE_TRAIN_BASES = 2_000_000
_FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}$")


def corpus_files(data_dir=None, download=False):
    """{"sequences" | "metadata" | "reference": path}: each from <data_dir>/sars-cov-2/ (or
    $TINYGRAD_LM_DATA's) when it is there, used as it is so a user may bring their own; else the
    package's sha256-checked copy (download=True fetches a missing one there instead): io/corpora.py."""
    return {key: corpus_file(CORPUS, name, data_dir, download) for key, (name, _, _) in FILES.items()}


def read_dates(path):
    """{strain: datetime.date, or None for a date that is not a whole day} from the metadata TSV;
    a row whose column count differs from the header's is an error naming the line."""
    path = pathlib.Path(path)
    try:
        lines = read_bytes(path).decode("utf-8").splitlines()        # (a .gz file: decompressed)
    except (OSError, UnicodeDecodeError) as e:
        raise SequenceFileError(f"cannot read metadata {path}: {e}") from None
    header = lines[0].split("\t") if lines else []
    if "strain" not in header or "date" not in header:
        raise SequenceFileError(f"{path} line 1: the metadata header must name the columns 'strain' and 'date' "
                                "(tab-separated)")
    strain_at, date_at = header.index("strain"), header.index("date")
    dates = {}
    for number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise SequenceFileError(f"{path} line {number}: {len(fields)} tab-separated fields, the header has "
                                    f"{len(header)}")
        date = fields[date_at].strip()
        try:
            dates[fields[strain_at]] = datetime.date.fromisoformat(date) if _FULL_DATE.match(date) else None
        except ValueError:
            raise SequenceFileError(f"{path} line {number}: date {date!r} is not a calendar day") from None
    return dates


def check_genome_tokenizer(spec, gene):
    """Refuse a tokenizer spec that cannot work, before any file is read: -> the BPE vocabulary
    size for 'bpe[:N]', else None."""
    if spec == "codon" and gene == WHOLE_GENOME:
        raise ConfigError("the codon tokenizer reads a gene in its frame; a whole genome has no one frame: "
                          "give --gene (S, N, ORF1ab, ...) or use --tokenizer nucleotide or bpe")
    if spec in ("nucleotide", "codon"):
        return None
    if spec == "bpe" or spec.startswith("bpe:"):
        size = spec.partition(":")[2] or str(DEFAULT_BPE_VOCAB)
        if not size.isdigit() or int(size) < 257:
            raise ConfigError(f"tokenizer {spec!r}: write bpe:<vocab_size> with a whole number of at least 257 "
                              "(the 256 bytes and <|endoftext|>), e.g. bpe:512")
        return int(size)
    raise ConfigError(f"unknown genome tokenizer {spec!r}: use {GENOME_TOKENIZERS}")


def make_genome_tokenizer(spec, gene, train_sequences):
    """'nucleotide' | 'codon' | 'bpe' | 'bpe:<vocab_size>' (BPE trained on the training split)."""
    bpe_vocab = check_genome_tokenizer(spec, gene)
    if bpe_vocab is not None:
        total = sum(map(len, train_sequences))
        step = max(1, math.ceil(total / BPE_TRAIN_BASES))
        return nucleotide_bpe(train_sequences[::step], bpe_vocab)
    return NucleotideTokenizer() if spec == "nucleotide" else CodonTokenizer()


def select_genomes(records, dates, reference, gene, max_unknown):
    """[(date, strain, sequence)] of the genomes kept, and {strain: reason} of those left out
    (policy steps 1-4)."""
    cds = reference.coding_sequences()
    if gene != WHOLE_GENOME and gene not in cds:
        raise ConfigError(f"gene {gene!r} is not a CDS of the reference {reference.name}; choose one of "
                          f"{', '.join(sorted(cds))} or {WHOLE_GENOME!r}")
    locator = GeneLocator(reference.sequence, cds[gene]) if gene != WHOLE_GENOME else None
    kept, left_out = [], {}
    for record in records:
        if record.name not in dates:
            left_out[record.name] = "no row in the metadata"
            continue
        if dates[record.name] is None:
            left_out[record.name] = "its date is not a whole day"
            continue
        sequence = clean_sequence(record.sequence)
        if locator is not None:
            try:
                sequence = locator.extract(sequence)
            except GeneNotFound as e:
                left_out[record.name] = f"{gene} not found: {e}"
                continue
        unknown = unknown_fraction(sequence)
        if unknown > max_unknown:
            left_out[record.name] = f"{unknown:.1%} unknown bases (N), more than {max_unknown:.1%}"
            continue
        kept.append((dates[record.name], record.name, sequence))
    return sorted(kept), left_out


def split_by_date(kept, val_fraction):
    """(train, val): val is the genomes from the boundary day on, the boundary chosen so that val
    holds at least val_fraction of them; every val date is later than every train date."""
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    if len(kept) < 2:
        raise DataError(f"only {len(kept)} genome(s) kept: too few to split into training and validation")
    boundary = kept[len(kept) - max(1, math.ceil(val_fraction * len(kept)))][0]
    train = [g for g in kept if g[0] < boundary]
    val = [g for g in kept if g[0] >= boundary]
    if not train:
        raise DataError(f"every kept genome was sampled on or after {boundary}: no earlier ones to train on")
    return train, val


def _summary(genomes):
    return {"genomes": len(genomes), "bases": sum(len(s) for _, _, s in genomes),
            "first_date": genomes[0][0].isoformat(), "last_date": genomes[-1][0].isoformat(),
            "strains": [[strain, date.isoformat()] for date, strain, _ in genomes]}


def prepare_genomes(out_dir, tokenizer="nucleotide", gene=WHOLE_GENOME, data_dir=None, val_fraction=0.1,
                    max_unknown=0.01, download=False):
    """Prepare the corpus into out_dir (train.bin, val.bin, meta.json; see the module's policy).
    Returns the meta dict; meta["corpus"] records the gene, the split and every genome left out."""
    check_genome_tokenizer(tokenizer, gene)
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    paths = corpus_files(data_dir, download)
    records = read_fasta(paths["sequences"])
    reference = read_genbank(paths["reference"])
    dates = read_dates(paths["metadata"])
    kept, left_out = select_genomes(records, dates, reference, gene, max_unknown)
    train, val = split_by_date(kept, val_fraction)
    tok = make_genome_tokenizer(tokenizer, gene, [s for _, _, s in train])
    end = tok.encode(END_OF_TEXT, allowed_special="all") if isinstance(tok, BPETokenizer) else tok.encode(END_OF_TEXT)
    ids = {name: [i for _, _, s in split for i in tok.encode(s) + end] for name, split in (("train", train),
                                                                                         ("val", val))}
    location = reference.coding_sequences()[gene].parts if gene != WHOLE_GENOME else None
    corpus = {"name": CORPUS, "gene": gene, "reference": reference.name, "max_unknown": max_unknown,
              "location": [[s + 1, e, strand] for s, e, strand in location] if location else None,
              "split": "by sampling date: every val genome is later than every train genome",
              "genomes_read": len(records), "train": _summary(train), "val": _summary(val),
              "left_out": left_out}
    return write_dataset(out_dir, tok, ids["train"], ids["val"], source=str(paths["sequences"]), corpus=corpus)
