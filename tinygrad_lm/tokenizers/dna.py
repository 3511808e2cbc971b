"""Tokenizers for genomes: one id per nucleotide, one per codon (GenSLM's choice), and byte-level
BPE trained on nucleotides.

Text here is a nucleotide sequence in IUPAC letters (genomes/fasta.py). Both tokenizers apply the
reader's policy: lower case is upper case, U is T, and every ambiguity code (R Y S W K M B D H V)
counts as N, an unknown base. Special tokens may appear in the text as themselves:
"<|endoftext|>" separates sequences in a prepared corpus, as it separates documents for GPT-2.

    NucleotideTokenizer: A C G T N, then <|endoftext|>                        (6 ids)
    CodonTokenizer:      the 64 codons AAA AAC ... TTT, then <unk> and <|endoftext|>   (66 ids)
        It reads the text in frame, three bases at a time from its first base, so give it a coding
        sequence that starts at its start codon; a length that is not a multiple of 3 is refused. A
        codon holding N is <unk>, which decodes as NNN (the length is kept, the bases are unknown).
    nucleotide_bpe(sequences, vocab_size): the engine's BPETokenizer trained on the sequences with
        no text pre-split of its own; it cuts a sequence only into pieces of at most
        BPE_PIECE_BASES bases, because its encoder is quadratic in a piece's length (a 30,000-base
        genome as one piece would take minutes). A token never spans such a cut.
"""
import itertools

from .base import EncodeError, Tokenizer, check_ids
from .bpe import BPETokenizer

END_OF_TEXT = "<|endoftext|>"
UNKNOWN = "<unk>"
NUCLEOTIDES = "ACGTN"
CODONS = ["".join(c) for c in itertools.product("ACGT", repeat=3)]
BPE_PIECE_BASES = 128
NUCLEOTIDE_BPE_PATTERN = rf"[ACGTN]{{1,{BPE_PIECE_BASES}}}|[^ACGTN]+"
_NORMALIZE = str.maketrans({**{c: c.upper() for c in "acgtn"}, "U": "T", "u": "T",
                            **{c: "N" for c in "RYSWKMBDHVryswkmbdhv"}})


class _SequenceTokenizer(Tokenizer):
    """What both share: the normalization, special tokens in the text, decode through a table."""

    specials = ()

    def __init__(self):
        self.itos = list(self.symbols) + list(self.specials)
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    @property
    def vocab_size(self):
        return len(self.itos)

    def encode(self, text):
        ids, position = [], 0
        for piece, is_special in _split_specials(text, self.specials):
            if is_special:
                ids.append(self.stoi[piece])
            else:
                ids.extend(self._encode_bases(piece.translate(_NORMALIZE), position))
            position += len(piece)
        return ids

    def _bad_letter(self, text, position):
        at = next(i for i, c in enumerate(text) if c not in NUCLEOTIDES)
        return EncodeError(f"{type(self).__name__}: {text[at]!r} at position {position + at} is not a nucleotide "
                           "(IUPAC codes A C G T U R Y S W K M B D H V N)")

    def decode(self, ids):
        itos = self.itos
        return "".join([itos[i] for i in check_ids(ids, len(itos), type(self).__name__)])

    def to_dict(self):
        return {"symbols": list(self.symbols), "specials": list(self.specials)}

    @classmethod
    def from_dict(cls, d):
        tok = cls()
        if d.get("symbols") != list(tok.symbols) or d.get("specials") != list(tok.specials):
            raise ValueError(f"'symbols' and 'specials' must be this version's: {tok.to_dict()}")
        return tok


def _split_specials(text, specials):
    """[(piece, is_special)]: the text cut at each special token it holds."""
    out, start = [], 0
    while specials:
        hits = [(text.find(s, start), s) for s in specials]
        hits = [(i, s) for i, s in hits if i >= 0]
        if not hits:
            break
        i, s = min(hits)
        out += [(text[start:i], False), (s, True)]
        start = i + len(s)
    out.append((text[start:], False))
    return [(p, special) for p, special in out if p]


class NucleotideTokenizer(_SequenceTokenizer):
    kind = "nucleotide"
    symbols = NUCLEOTIDES
    specials = (END_OF_TEXT,)

    def _encode_bases(self, bases, position):
        stoi = self.stoi
        try:
            return [stoi[c] for c in bases]
        except KeyError:
            raise self._bad_letter(bases, position) from None


class CodonTokenizer(_SequenceTokenizer):
    kind = "codon"
    symbols = CODONS
    specials = (UNKNOWN, END_OF_TEXT)

    def _encode_bases(self, bases, position):
        if len(bases) % 3:
            raise EncodeError(f"CodonTokenizer: a sequence of {len(bases):,} bases (at position {position}) is not "
                              "a whole number of codons; give a coding sequence read in its frame (its length a "
                              "multiple of 3)")
        stoi, unknown = self.stoi, self.stoi[UNKNOWN]
        ids = [stoi.get(bases[i:i + 3], unknown) for i in range(0, len(bases), 3)]
        if unknown in ids and set(bases) - set(NUCLEOTIDES):  # letters that are not even N: refuse, not <unk>
            raise self._bad_letter(bases, position)
        return ids

    def decode(self, ids):
        return super().decode(ids).replace(UNKNOWN, "NNN")


def nucleotide_bpe(sequences, vocab_size, special_tokens=(END_OF_TEXT,)):
    """The engine's byte-level BPE trained on nucleotide sequences (normalized as above); its
    vocabulary counts the 256 bytes, as every byte-level BPE here, so vocab_size >= 256 + specials."""
    text = "\n".join(s.translate(_NORMALIZE) for s in sequences)
    return BPETokenizer.train(text, vocab_size - len(special_tokens), pattern=NUCLEOTIDE_BPE_PATTERN,
                              special_tokens=special_tokens)
