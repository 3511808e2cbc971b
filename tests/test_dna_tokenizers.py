"""The genome tokenizers: nucleotides, codons read in frame, and BPE trained on nucleotides, through
the common tokenizer interface (encode, decode, vocab_size, save, Tokenizer.load)."""
import json
import random

import pytest

from tinygrad_lm.tokenizers import CodonTokenizer, NucleotideTokenizer, Tokenizer, nucleotide_bpe
from tinygrad_lm.tokenizers.base import DecodeError, EncodeError, TokenizerFileError
from tinygrad_lm.tokenizers.dna import BPE_PIECE_BASES, CODONS, END_OF_TEXT, UNKNOWN


def random_bases(n, seed=0):
    rng = random.Random(seed)
    return "".join(rng.choice("ACGT") for _ in range(n))


def test_nucleotides_round_trip_and_the_ambiguity_policy():
    tok = NucleotideTokenizer()
    assert tok.vocab_size == 6
    text = random_bases(200)
    ids = tok.encode(text)
    assert len(ids) == 200 and tok.decode(ids) == text
    # lower case, U (RNA) and every ambiguity code: A C G T T N N N N ...
    assert tok.decode(tok.encode("acgUuRYSWKMBDHVN")) == "ACGTT" + "N" * 11
    assert tok.encode("AC" + END_OF_TEXT + "G") == [0, 1, tok.stoi[END_OF_TEXT], 2]


@pytest.mark.parametrize("make", [NucleotideTokenizer, CodonTokenizer])
def test_a_letter_that_is_no_nucleotide_is_refused_with_its_position(make):
    with pytest.raises(EncodeError, match=r"'X' at position 4 is not a nucleotide"):
        make().encode("ATGAXG")


def test_codons_are_read_in_frame_from_the_first_base():
    tok = CodonTokenizer()
    assert tok.vocab_size == 66 and len(set(CODONS)) == 64
    assert [tok.decode([tok.encode(c)[0]]) for c in CODONS] == CODONS
    cds = "ATGGCTTAA"
    assert tok.encode(cds) == [CODONS.index("ATG"), CODONS.index("GCT"), CODONS.index("TAA")]
    assert tok.tokenize(cds) == ["ATG", "GCT", "TAA"]
    with pytest.raises(EncodeError, match="not a whole number of codons"):
        tok.encode(cds[1:])                                     # out of frame: 8 bases


def test_a_codon_with_an_unknown_base_is_unk_and_decodes_as_nnn():
    tok = CodonTokenizer()
    ids = tok.encode("ATGRCTNNN" + END_OF_TEXT)
    assert ids[1:] == [tok.stoi[UNKNOWN], tok.stoi[UNKNOWN], tok.stoi[END_OF_TEXT]]
    assert tok.decode(ids) == "ATGNNNNNN" + END_OF_TEXT


@pytest.mark.parametrize("make", [NucleotideTokenizer, CodonTokenizer])
def test_save_load_and_bad_ids(make, tmp_path):
    tok = make()
    loaded = Tokenizer.load(tok.save(tmp_path / "tok.json"))
    assert type(loaded) is make and loaded.encode("ATGCCA") == tok.encode("ATGCCA")
    with pytest.raises(DecodeError, match="outside the vocabulary"):
        tok.decode([tok.vocab_size])
    changed = json.loads((tmp_path / "tok.json").read_text())
    changed["symbols"] = changed["symbols"][::-1]               # another alphabet order: other ids
    (tmp_path / "bad.json").write_text(json.dumps(changed))
    with pytest.raises(TokenizerFileError, match="'symbols' and 'specials'"):
        Tokenizer.load(tmp_path / "bad.json")


def test_nucleotide_bpe_learns_repeats_round_trips_and_saves(tmp_path):
    motif = "ATGGCTAAC"
    sequences = [random_bases(30, seed) + motif * 20 + random_bases(30, seed + 100) for seed in range(20)]
    tok = nucleotide_bpe(sequences, 300)
    assert tok.vocab_size == 300 and tok.special_tokens == {END_OF_TEXT: 299}
    for s in sequences:
        ids = tok.encode(s)
        assert tok.decode(ids) == s
        assert len(ids) < len(s) / 3                            # the repeat became long tokens
    assert any(motif in tok.vocab[i].decode() for i in range(256, len(tok.vocab)))
    loaded = Tokenizer.load(tok.save(tmp_path / "bpe.json"))
    assert loaded.encode(sequences[0]) == tok.encode(sequences[0])


def test_nucleotide_bpe_cuts_only_into_pieces_of_its_piece_length():
    tok = nucleotide_bpe([("ACGT" * 100)] * 5, 270)
    s = "ACGT" * 100                                            # 400 bases: pieces 128, 128, 128, 16
    pieces = [s[i:i + BPE_PIECE_BASES] for i in range(0, len(s), BPE_PIECE_BASES)]
    assert tok.encode(s) == [i for p in pieces for i in tok.encode(p)]
    assert max(len(tok.vocab[i]) for i in tok.encode(s)) <= BPE_PIECE_BASES
