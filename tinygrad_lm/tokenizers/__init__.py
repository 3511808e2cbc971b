"""Tokenizers: text -> ids -> text. Characters, words, byte-level BPE (train your own, or load
GPT-2's), BERT's WordPiece, and nucleotides or codons for genomes. All share one interface: encode, decode, tokenize,
vocab_size, save, Tokenizer.load."""
from .base import DecodeError, EncodeError, Tokenizer, TokenizerFileError, tokenizer_from_dict
from .byte_level import ByteLevelBPETokenizer
from .bpe import GPT2_PATTERN, GPT4_PATTERN, BPETokenizer, gpt2_tokenizer, reference_train_merges
from .char import CharTokenizer
from .dna import CodonTokenizer, NucleotideTokenizer, nucleotide_bpe
from .gpt2 import END_OF_TEXT, gpt2_files
from .word import WordTokenizer
from .wordpiece import WordPieceTokenizer

TOKENIZER_TYPES = Tokenizer.TYPES          # {"char": CharTokenizer, "word": WordTokenizer, "bpe": BPETokenizer, ...}

__all__ = ["Tokenizer", "TokenizerFileError", "EncodeError", "DecodeError", "CharTokenizer", "WordTokenizer", "BPETokenizer",
           "gpt2_tokenizer", "gpt2_files", "reference_train_merges", "GPT2_PATTERN", "GPT4_PATTERN",
           "END_OF_TEXT", "tokenizer_from_dict", "TOKENIZER_TYPES", "NucleotideTokenizer", "CodonTokenizer",
           "nucleotide_bpe", "WordPieceTokenizer"]
