"""Tokenizers: text -> ids -> text. Characters, words, and byte-level BPE (train your own, or load
GPT-2's). All share one interface: encode, decode, tokenize, vocab_size, save, Tokenizer.load."""
from .base import DecodeError, EncodeError, Tokenizer, TokenizerFileError, tokenizer_from_dict
from .bpe import GPT2_PATTERN, GPT4_PATTERN, BPETokenizer, gpt2_tokenizer, reference_train_merges
from .char import CharTokenizer
from .gpt2 import END_OF_TEXT, gpt2_files
from .word import WordTokenizer

TOKENIZER_TYPES = Tokenizer.TYPES          # {"char": CharTokenizer, "word": WordTokenizer, "bpe": BPETokenizer}

__all__ = ["Tokenizer", "TokenizerFileError", "EncodeError", "DecodeError", "CharTokenizer", "WordTokenizer", "BPETokenizer",
           "gpt2_tokenizer", "gpt2_files", "reference_train_merges", "GPT2_PATTERN", "GPT4_PATTERN",
           "END_OF_TEXT", "tokenizer_from_dict", "TOKENIZER_TYPES"]
