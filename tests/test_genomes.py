"""Genomes: FASTA and GenBank readers (every malformed input named by its line), genes found in
unaligned genomes, the date split, and the SARS-CoV-2 corpus prepared into token files that the
training loop's batch source reads; on the real files when the shared data folder holds them."""
import datetime
import gzip
import pathlib
import random

import numpy as np
import pytest

from tinygrad_lm.data.text import CausalLMBatches, load_meta, load_split, load_tokenizer
from tinygrad_lm.errors import ConfigError, DataError, SequenceFileError
from tinygrad_lm.genomes import (GeneLocator, GeneNotFound, Location, clean_sequence, parse_location, prepare_genomes,
                                 read_dates, read_fasta, read_genbank, split_by_date, translate, unknown_fraction)
from tinygrad_lm.genomes.sarscov2 import FILES, corpus_files
from tinygrad_lm.io.corpora import published_sha256

from .test_cli import run_cli

ROOT = pathlib.Path(__file__).resolve().parent.parent


def random_bases(n, rng):
    return "".join(rng.choice("ACGT") for _ in range(n))


# ---------------------------------------------------------------- a small synthetic corpus
def genbank_text(sequence, features):
    """A GenBank record: features as (key, location, {qualifier: value}); ORIGIN in 60-base lines."""
    lines = [f"LOCUS       TOY{len(sequence):>17} bp    RNA     linear   VRL 01-JAN-2020",
             "DEFINITION  a toy genome.", "FEATURES             Location/Qualifiers"]
    for key, location, qualifiers in features:
        lines.append(f"     {key:<16}{location}")
        lines += [f'                     /{name}="{value}"' for name, value in qualifiers.items()]
    lines.append("ORIGIN")
    for i in range(0, len(sequence), 60):
        chunk = sequence[i:i + 60].lower()
        lines.append(f"{i + 1:>9} " + " ".join(chunk[j:j + 10] for j in range(0, len(chunk), 10)))
    return "\n".join(lines + ["//", ""])


def write_toy_corpus(folder, n_genomes=12, seed=0):
    """<folder>/sars-cov-2/ with a reference holding gene G (101..400, ATG ... TAA) and P (a join of
    two parts that overlap by one base, as ORF1ab's frameshift), and genomes: the reference with a
    few substitutions and ends trimmed by different lengths, one a day from 2020-01-01. Returns the
    reference sequence."""
    rng = random.Random(seed)
    ref = list(random_bases(900, rng))
    ref[100:103], ref[397:400] = "ATG", "TAA"
    ref = "".join(ref)
    features = [("gene", "101..400", {"gene": "G"}), ("CDS", "101..400", {"gene": "G", "protein_id": "g.1"}),
                ("gene", "501..800", {"gene": "P"}),
                ("CDS", "501..650", {"gene": "Pa", "protein_id": "p.1"}),
                ("CDS", "650..800", {"gene": "Pb", "protein_id": "p.1"})]
    corpus = pathlib.Path(folder) / "sars-cov-2"
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / "reference_seq.gb").write_text(genbank_text(ref, features))
    records, rows = [], ["strain\tvirus\tdate\tcountry"]
    for i in range(n_genomes):
        genome = list(ref)
        for _ in range(3):
            at = rng.randrange(len(genome))
            genome[at] = rng.choice("ACGT".replace(genome[at], ""))
        genome = "".join(genome)[rng.randrange(0, 30):len(ref) - rng.randrange(0, 30)]
        name = f"toy/{i}/2020"
        records.append(f">{name}\n" + "\n".join(genome[j:j + 70] for j in range(0, len(genome), 70)))
        rows.append(f"{name}\tncov\t2020-01-{i + 1:02d}\tNowhere")
    (corpus / "example_sequences.fasta.gz").write_bytes(gzip.compress(("\n".join(records) + "\n").encode()))
    (corpus / "example_metadata.tsv").write_text("\n".join(rows) + "\n")
    return ref


# ---------------------------------------------------------------- FASTA
def test_fasta_plain_and_gzip_read_the_same_records(tmp_path):
    text = ">one first genome\nACGTN\nacgu\n\n>two\r\nRYKM-\r\n"
    (tmp_path / "a.fasta").write_text(text)
    (tmp_path / "a.fasta.gz").write_bytes(gzip.compress(text.encode()))
    for name in ("a.fasta", "a.fasta.gz"):
        records = read_fasta(tmp_path / name)
        assert [(r.name, r.description, r.sequence, r.line) for r in records] == [
            ("one", "first genome", "ACGTNacgu", 1), ("two", "", "RYKM-", 5)]


def test_the_letter_policy():
    assert clean_sequence("acgu-RYSWKMBDHVN") == "ACGT" + "N" * 11
    assert unknown_fraction("ACGTNNNN") == 0.5 and unknown_fraction("") == 0.0


@pytest.mark.parametrize("content, message", [
    ("ACGT\n>a\nACGT\n", "line 1: sequence letters before the first '>' header"),
    (">a\nACGT\nACXT\n", "line 3 column 3: 'X' is not a nucleotide"),
    (">a\nACGT\n> \nACGT\n", "line 3: a header ('>') with no name"),
    (">a\n>b\nACGT\n", "line 1: record 'a' has no sequence"),
    (">a\nAC\n>b\nGT\n>a\nTT\n", "line 5: record 'a' appears twice (first at line 1)"),
    ("\n\n", "holds no FASTA records"),
    (">a\nAC\xe9T\n", "line 2 column 3: byte 0xc3 is not a nucleotide"),
])
def test_malformed_fasta_is_refused_naming_the_line(tmp_path, content, message):
    path = tmp_path / "bad.fasta"
    path.write_bytes(content.encode("utf-8"))
    with pytest.raises(SequenceFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_fasta(path)


def test_a_truncated_gzip_is_refused(tmp_path):
    path = tmp_path / "cut.fasta.gz"
    whole = gzip.compress((">a\n" + random_bases(4000, random.Random(0))).encode())
    path.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(SequenceFileError, match="may be truncated"):
        read_fasta(path)


# ---------------------------------------------------------------- GenBank
@pytest.mark.parametrize("text, parts", [
    ("21563..25384", [(21562, 25384, 1)]),
    ("join(266..13468,13468..21555)", [(265, 13468, 1), (13467, 21555, 1)]),
    ("complement(5..9)", [(4, 9, -1)]),
    ("complement(join(1..3, 7..9))", [(6, 9, -1), (0, 3, -1)]),
    ("join(complement(7..9),complement(1..3))", [(6, 9, -1), (0, 3, -1)]),
    ("<1..>20", [(0, 20, 1)]),
    ("467", [(466, 467, 1)]),
])
def test_locations_parse(text, parts):
    assert parse_location(text).parts == parts


@pytest.mark.parametrize("text, message", [
    ("order(1..3,7..9)", "order"), ("AB123.1:1..30", "another record"), ("join(1..3,5..9))", "unbalanced"),
    ("5..2", "start before its end"), ("join(1..3,,5..9)", "empty part"), ("spike", "not a location"),
])
def test_locations_that_cannot_be_read_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_location(text)


def test_join_and_complement_extract_the_right_bases():
    seq = "AAACCCGGGTTT"
    assert Location([(0, 3, 1), (2, 6, 1)]).extract(seq) == "AAA" + "ACCC"      # one base read twice
    assert parse_location("complement(join(1..3,7..9))").extract(seq) == "CCCTTT"
    assert translate("ATGGCTTAANNN") == "MA*X"


def test_genbank_record_and_its_coding_sequences(tmp_path):
    ref = write_toy_corpus(tmp_path)
    record = read_genbank(tmp_path / "sars-cov-2" / "reference_seq.gb")
    assert record.name == "TOY" and record.sequence == ref
    cds = record.coding_sequences()
    assert sorted(cds) == ["G", "P", "Pa", "Pb"]              # Pa + Pb share a protein_id: joined as P
    assert cds["P"].parts == [(500, 650, 1), (649, 800, 1)] and len(cds["P"]) == 301
    assert cds["G"].extract(ref).startswith("ATG") and cds["G"].extract(ref).endswith("TAA")


def test_a_location_over_several_lines_is_read(tmp_path):
    text = genbank_text("ACGT" * 30, [("CDS", "join(1..30,", {"gene": "X"})])
    text = text.replace('join(1..30,\n', 'join(1..30,\n                     61..90)\n')
    (tmp_path / "x.gb").write_text(text)
    assert read_genbank(tmp_path / "x.gb").coding_sequences()["X"].parts == [(0, 30, 1), (60, 90, 1)]


@pytest.mark.parametrize("change, message", [
    (lambda t: t.replace("101..400", "101..4x0", 2), r"line \d+: gene location '101..4x0'"),
    (lambda t: t.replace("      121 ", "      121 12! "), r"line \d+: a sequence line is a position and bases"),
    (lambda t: t.replace(" 900 bp", " 950 bp"), "declares 950 bp but ORIGIN holds 900"),
    (lambda t: t.replace("501..800", "501..990"), "runs past the sequence's 900 bases"),
    (lambda t: t.replace("LOCUS", "LOCAL"), "line 1: a GenBank record starts with 'LOCUS'"),
    (lambda t: t.replace("ORIGIN", "ORIGINAL").split("ORIGINAL")[0], "no sequence"),
])
def test_malformed_genbank_is_refused_naming_the_line(tmp_path, change, message):
    write_toy_corpus(tmp_path)
    path = tmp_path / "sars-cov-2" / "reference_seq.gb"
    path.write_text(change(path.read_text()))
    with pytest.raises(SequenceFileError, match=message):
        read_genbank(path)


# ---------------------------------------------------------------- genes in unaligned genomes
def test_a_gene_is_found_through_insertions_and_mutated_anchors():
    rng = random.Random(3)
    ref = random_bases(3000, rng)
    gene = Location([(1000, 1300, 1)])
    locator = GeneLocator(ref, gene)
    shifted = random_bases(57, rng) + ref[:1000] + ref[1000:1300] + random_bases(11, rng) + ref[1300:]
    assert locator.locate(shifted).parts == [(1057, 1357, 1)]
    # a substitution in the first anchor (the gene's first 20 bases): another anchor places the start
    mutated = ref[:1005] + ("A" if ref[1005] != "A" else "C") + ref[1006:]
    assert locator.extract(mutated) == mutated[1000:1300]
    # an N run over every anchor of the start
    with pytest.raises(GeneNotFound, match="no anchor for the start at reference position 1,001"):
        locator.locate(ref[:850] + "N" * 300 + ref[1150:])
    # a one-base deletion inside the gene breaks its frame
    with pytest.raises(GeneNotFound, match="299 bases .* not a multiple of 3"):
        locator.locate(ref[:1150] + ref[1151:])


def test_a_joined_gene_is_found_part_by_part():
    rng = random.Random(4)
    ref = random_bases(2000, rng)
    frameshift = Location([(500, 800, 1), (799, 1100, 1)])      # 601 bases: no frame to keep
    genome = random_bases(25, rng) + ref
    assert GeneLocator(ref, frameshift).extract(genome) == frameshift.extract(ref)


# ---------------------------------------------------------------- metadata and the date split
def test_dates_and_the_split(tmp_path):
    path = tmp_path / "meta.tsv"
    path.write_text("strain\tdate\nA\t2020-01-03\nB\t2020-02\nC\t2020-XX-XX\nD\t2020-01-01\n")
    assert read_dates(path) == {"A": datetime.date(2020, 1, 3), "B": None, "C": None, "D": datetime.date(2020, 1, 1)}
    path.write_text("strain\tdate\nA\t2020-01-03\textra\n")
    with pytest.raises(SequenceFileError, match="line 2: 3 tab-separated fields, the header has 2"):
        read_dates(path)
    path.write_text("name\twhen\n")
    with pytest.raises(SequenceFileError, match="must name the columns 'strain' and 'date'"):
        read_dates(path)
    day = datetime.date.fromordinal
    kept = sorted((day(737000 + d), f"g{i}", "ACGT") for i, d in enumerate([0, 1, 1, 2, 3, 3, 3, 4, 5, 5]))
    train, val = split_by_date(kept, 0.35)                     # the boundary day (3) goes to val whole
    assert [g[0] for g in val] == [day(737003)] * 3 + [day(737004)] + [day(737005)] * 2
    assert max(g[0] for g in train) < min(g[0] for g in val) and len(train) + len(val) == 10
    with pytest.raises(DataError, match="no earlier ones to train on"):
        split_by_date([(day(737000), "a", "A"), (day(737000), "b", "A")], 0.5)


# ---------------------------------------------------------------- the corpus, synthetic
@pytest.mark.parametrize("tokenizer, gene, per_genome", [("codon", "G", 101), ("nucleotide", "G", 301),
                                                          ("nucleotide", "P", 302), ("bpe:270", "G", None)])
def test_prepare_genomes_writes_what_the_batch_source_reads(tmp_path, tokenizer, gene, per_genome):
    ref = write_toy_corpus(tmp_path)
    meta = prepare_genomes(tmp_path / "out", tokenizer=tokenizer, gene=gene, data_dir=tmp_path, val_fraction=0.25,
                           download=False)
    assert load_meta(tmp_path / "out") == meta
    corpus = meta["corpus"]
    assert corpus["train"]["genomes"] == 9 and corpus["val"]["genomes"] == 3 and corpus["left_out"] == {}
    assert corpus["train"]["last_date"] == "2020-01-09" < corpus["val"]["first_date"] == "2020-01-10"
    train = load_split(tmp_path / "out", "train")
    if per_genome:
        assert len(train) == 9 * per_genome and meta["val_tokens"] == 3 * per_genome
    tok = load_tokenizer(meta)
    first = tok.decode(train.tolist()).split("<|endoftext|>")[0]
    assert len(first) == len(read_genbank(tmp_path / "sars-cov-2" / "reference_seq.gb").coding_sequences()[gene])
    if gene == "G":
        assert first[:3] == "ATG" and first[-3:] == "TAA" and first[3:60] == ref[103:160]
    x, y = CausalLMBatches(train, block_size=16, batch_size=4, seed=0).next()
    assert x.shape == (4, 16) and (x[:, 1:] == y[:, :-1]).all()


def test_prepare_genomes_reports_the_genomes_it_leaves_out(tmp_path):
    write_toy_corpus(tmp_path)
    corpus = tmp_path / "sars-cov-2"
    rows = (corpus / "example_metadata.tsv").read_text().replace("2020-01-02", "2020-01")
    (corpus / "example_metadata.tsv").write_text(rows.replace("toy/3/2020\t", "renamed\t"))
    records = gzip.decompress((corpus / "example_sequences.fasta.gz").read_bytes()).decode().split(">")[1:]
    name, _, seq = records[4].partition("\n")
    records[4] = f"{name}\n" + "N" * 20 + seq.replace("\n", "")[20:] + "\n"   # N at its 5' end, before gene G
    records[5] = records[5][:200] + "\n"                                          # cut before gene G ends
    (corpus / "example_sequences.fasta.gz").write_bytes(gzip.compress((">" + ">".join(records)).encode()))
    meta = prepare_genomes(tmp_path / "out", tokenizer="codon", gene="G", data_dir=tmp_path, download=False)
    left_out = meta["corpus"]["left_out"]
    assert left_out["toy/1/2020"] == "its date is not a whole day"
    assert left_out["toy/3/2020"] == "no row in the metadata"
    assert left_out["toy/5/2020"].startswith("G not found: ")
    assert "toy/4/2020" not in left_out                       # N's outside the gene do not count
    kept = meta["corpus"]["train"]["genomes"] + meta["corpus"]["val"]["genomes"]
    assert kept + len(left_out) == 12


def test_bad_tokenizer_or_gene_is_refused_before_files_are_read(tmp_path):
    with pytest.raises(ConfigError, match="a whole genome has no one frame"):
        prepare_genomes(tmp_path / "out", tokenizer="codon", gene="genome", data_dir=tmp_path / "none")
    with pytest.raises(ConfigError, match="unknown genome tokenizer 'char'"):
        prepare_genomes(tmp_path / "out", tokenizer="char", data_dir=tmp_path / "none")
    write_toy_corpus(tmp_path)
    with pytest.raises(ConfigError, match="gene 'Q' is not a CDS of the reference TOY; choose one of G, P, Pa, Pb"):
        prepare_genomes(tmp_path / "out", tokenizer="codon", gene="Q", data_dir=tmp_path)


# ---------------------------------------------------------------- the command line
def test_prepare_through_the_command_line(tmp_path):
    write_toy_corpus(tmp_path)
    out = run_cli("prepare", "--corpus", "sars-cov-2", "--tokenizer", "codon", "--gene", "G", "--data-dir", tmp_path,
                  cwd=tmp_path)
    assert "train: 10 genomes sampled 2020-01-01 .. 2020-01-10, 1,010 tokens" in out.stdout
    assert load_meta(tmp_path / "data" / "sars-cov-2_G_codon")["vocab_size"] == 66


@pytest.mark.parametrize("name, change, message", [
    ("example_sequences.fasta.gz", lambda b: gzip.compress(gzip.decompress(b).replace(b"A", b"J", 1)),
     "example_sequences.fasta.gz line 2 column"),
    ("reference_seq.gb", lambda b: b.replace(b"101..400", b"join(101..400", 1), "line 4: gene location"),
])
def test_malformed_files_end_the_command_with_one_error_line(tmp_path, name, change, message):
    write_toy_corpus(tmp_path)
    path = tmp_path / "sars-cov-2" / name
    path.write_bytes(change(path.read_bytes()))
    out = run_cli("prepare", "--corpus", "sars-cov-2", "--gene", "G", "--data-dir", tmp_path, cwd=tmp_path,
                  check=False)
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert len(errors) == 1 and message in errors[0], out.stderr


# ---------------------------------------------------------------- the real files
REAL = corpus_files()       # the user's copies in $TINYGRAD_LM_DATA/sars-cov-2/, else the package's own


def test_the_real_files_have_the_checksums_the_download_expects():
    for key, (name, _, sha256) in FILES.items():
        assert published_sha256(REAL[key], REAL[key].name, name) == sha256


def test_real_reference_genes_translate_and_are_found_in_nearly_every_genome():
    reference = read_genbank(REAL["reference"])
    records = read_fasta(REAL["sequences"])
    assert len(records) == 418 and records[0].name == "Wuhan/Hu-1/2019"
    assert clean_sequence(records[0].sequence) == reference.sequence     # the first genome is MN908947
    cds = reference.coding_sequences()
    spike = cds["S"].extract(reference.sequence)
    assert len(spike) == 3822 and len(spike) % 3 == 0
    protein = translate(spike)
    assert protein[0] == "M" and protein[-1] == "*" and protein.count("*") == 1 and len(protein) == 1274
    # ORF1ab read through its -1 frameshift: one protein of 7,096 amino acids, no stop before its end
    orf1ab = translate(cds["ORF1ab"].extract(reference.sequence))
    assert orf1ab[0] == "M" and orf1ab.index("*") == len(orf1ab) - 1 == 7096
    for name in ("S", "N", "ORF1ab"):
        locator = GeneLocator(reference.sequence, cds[name])
        found = []
        for r in records:
            try:
                found.append(locator.extract(clean_sequence(r.sequence)))
            except GeneNotFound:
                pass
        assert len(found) >= 0.98 * len(records), name
        assert sum(translate(g)[0] == "M" for g in found) >= 0.98 * len(found), name


def test_real_spike_codons_prepared_and_split_by_date(tmp_path):
    meta = prepare_genomes(tmp_path / "s", tokenizer="codon", gene="S")
    corpus = meta["corpus"]
    train_dates = [d for _, d in corpus["train"]["strains"]]
    val_dates = [d for _, d in corpus["val"]["strains"]]
    assert max(train_dates) < min(val_dates) and train_dates == sorted(train_dates)
    train_names = {s for s, _ in corpus["train"]["strains"]}
    val_names = {s for s, _ in corpus["val"]["strains"]}
    assert not train_names & val_names and not (train_names | val_names) & set(corpus["left_out"])
    assert len(train_names) + len(val_names) + len(corpus["left_out"]) == 418
    assert len(val_names) >= 0.1 * (len(train_names) + len(val_names))
    assert meta["train_tokens"] == corpus["train"]["bases"] // 3 + len(train_names)   # codons + <|endoftext|>
    tokens = load_split(tmp_path / "s", "train")
    genes = load_tokenizer(meta).decode(np.asarray(tokens[:3 * 1275]).tolist()).split("<|endoftext|>")
    assert all(translate(g).startswith("MFVFLV") for g in genes[:3])
