"""Genomes for language models: FASTA and GenBank readers, genes found in unaligned genomes, and
the SARS-CoV-2 corpus prepared into token files (the tokenizers are in tokenizers/dna.py)."""
from .fasta import FastaRecord, clean_sequence, read_fasta, unknown_fraction
from .genbank import GenBankRecord, Location, coding_sequences, parse_location, read_genbank, reverse_complement
from .genes import GENETIC_CODE, GeneLocator, GeneNotFound, translate
from .sarscov2 import corpus_files, prepare_genomes, read_dates, split_by_date

__all__ = ["FastaRecord", "clean_sequence", "read_fasta", "unknown_fraction", "GenBankRecord", "Location",
           "coding_sequences", "parse_location", "read_genbank", "reverse_complement", "GENETIC_CODE",
           "GeneLocator", "GeneNotFound", "translate", "corpus_files", "prepare_genomes", "read_dates",
           "split_by_date"]
