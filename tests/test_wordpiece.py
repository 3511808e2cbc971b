"""WordPiece (BERT's tokenizer): the same ids as transformers' BertTokenizer on varied text, with a
vocabulary the test writes; pairs, truncation, padding; round trips; files; errors."""
import json
import urllib.request

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_lm.errors import TinygradLMError
from tinygrad_lm.tokenizers import DecodeError, Tokenizer, TokenizerFileError, WordPieceTokenizer

LETTERS = "abcdefghijklmnopqrstuvwxyz"
VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(LETTERS + LETTERS.upper() + "0123456789")
         + list(".,!?'-$%&()\"") + ["##" + c for c in LETTERS + "0123456789"]
         + ["the", "The", "cat", "sat", "on", "mat", "##s", "##ing", "run", "un", "##aff", "##able", "hello",
            "world", "caf", "##e", "é", "##é", "ñ", "中", "国", "人", "σ", "##σ", "ο", "##ο", "δ", "##δ", "##ς",
            "token", "##ization", "12", "##34", "don", "t"])

TEXTS = [
    "Hello, World! The cat sat on the mat.",
    "Café  naïve résumé Ångström ÉCOLE señor",          # accents: stripped when uncased only
    "e\u0301 and é",                                   # a combining accent, and the precomposed one
    "中国人 hello中国 日本語のテキスト 한국어",             # CJK ideographs become words; Hangul and kana do not
    "ΟΔΟΣ οδος Σ",                                      # Greek capitals, final sigma
    "unaffable running cats tokenization",              # ## continuations
    "digits 0 12 1234 3.14159 1,000,000 $5 50% 2024-11-28",
    "emoji 😀👍🏽 👨‍👩‍👧 ok",
    "whitespace runs:   \t\t tabs\n\n\nnewlines \r\n crlf \u00a0nbsp\u2028line\u3000ideographic",
    "control\x00chars\x07here\x1c\ufffd and zero\u200bwidth",
    "punctuation: @#^&*()_+-=[]{}|;':\",./<>?`~ — – … « » ¿¡",
    "the [MASK] sat, the [mask] sat, a[MASK]b [CLS][SEP]",
    "don't DON'T it's",
    "x" * 101 + " " + "y" * 100,                         # over the 100-character limit: [UNK]
    "İstanbul ﬁne ℌ",
    "",
]


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wordpiece")
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module", params=[True, False], ids=["uncased", "cased"])
def pair(request, vocab_dir):
    """(ours, transformers' BertTokenizer) on the same vocab.txt, lower-casing or not."""
    transformers = pytest.importorskip("transformers", reason="transformers is an optional test dependency")
    theirs = transformers.BertTokenizer.from_pretrained(str(vocab_dir), do_lower_case=request.param)
    return WordPieceTokenizer.from_pretrained(vocab_dir, do_lower_case=request.param), theirs


@pytest.mark.parametrize("text", TEXTS)
def test_ids_match_transformers(pair, text):
    ours, theirs = pair
    expected = theirs(text)["input_ids"]
    assert ours.encode(text) == expected
    assert ours.tokenize(text) == theirs.convert_ids_to_tokens(expected)[1:-1]
    assert ours.decode(expected) == theirs.decode(expected)
    assert ours.decode(expected, skip_special_tokens=True) == theirs.decode(expected, skip_special_tokens=True)


ALPHABET = LETTERS + "ABCÉéèñÑüÜ 0123456789 .,!?'-$()[] \t\n\r\x00\x07\u00a0\u3000中国人한😀ΣσςΔδ\u0301\u200b"


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=60))
def test_ids_match_transformers_on_arbitrary_text(pair, text):
    ours, theirs = pair
    assert ours.encode(text) == theirs(text)["input_ids"]


def test_pairs_truncation_and_padding_match_transformers(pair):
    ours, theirs = pair
    firsts = ["the cat sat on the mat", "hello", "a b c d e f g"]
    seconds = ["hello world", "the cats sat on the mats today", "x"]
    for max_length in (4, 6, 9, 12):
        for a in firsts:
            for b in seconds:
                expected = theirs(a, b, truncation=True, max_length=max_length)
                assert ours(a, b, truncation=True, max_length=max_length) == dict(expected)
    for padding in (True, "max_length"):
        expected = theirs(firsts, seconds, padding=padding, truncation=True, max_length=12)
        assert ours(firsts, seconds, padding=padding, truncation=True, max_length=12) == dict(expected)
    batch = ours(firsts, seconds, padding=True, return_tensors="np")
    assert batch["input_ids"].dtype == np.int64 and batch["input_ids"].shape == batch["attention_mask"].shape
    np.testing.assert_array_equal(batch["input_ids"], np.array(theirs(firsts, seconds, padding=True)["input_ids"]))


def test_wordpiece_rules(vocab_dir):
    tok = WordPieceTokenizer.from_pretrained(vocab_dir)
    assert tok.tokenize("Unaffable tokenization") == ["un", "##aff", "##able", "token", "##ization"]
    assert tok.tokenize("x" * 101) == ["[UNK]"] and tok.tokenize("x" * 100) == ["x"] + ["##x"] * 99
    assert tok.tokenize("cat😀 中国") == ["[UNK]", "中", "国"]         # one uncoverable piece: the whole word
    assert tok.tokenize("Café\x07!") == ["caf", "##e", "!"]
    cased = WordPieceTokenizer.from_pretrained(vocab_dir, do_lower_case=False)
    assert cased.tokenize("Café") == ["C", "##a", "##f", "##é"]
    ids = tok("the cat", "sat")
    assert ids["input_ids"] == [tok.cls_token_id, *tok.convert_tokens_to_ids(["the", "cat"]), tok.sep_token_id,
                                tok.convert_tokens_to_ids("sat"), tok.sep_token_id]
    assert ids["token_type_ids"] == [0, 0, 0, 0, 1, 1] and ids["attention_mask"] == [1] * 6


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["the", "cat", "sat", "on", "mat", "cats", "running", "unaffable", "hello",
                                 "world", ",", ".", "!", "?", "12", "1234", "-", "$"]), max_size=12))
def test_round_trip_where_wordpiece_allows_one(words):
    """Lower-case text whose words the vocabulary covers, written as decode writes it (single
    spaces, none before . , ! ?), decodes back to itself. (Not in general: "don't" comes back as
    "don ' t", "Hello" uncased as "hello", an uncoverable word as [UNK].)"""
    tok = _tokenizer()
    text = "".join(w if i == 0 or w in ".,!?" else " " + w for i, w in enumerate(words))
    assert tok.decode(tok.encode(text), skip_special_tokens=True) == text
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


_CACHE = {}


def _offline(*args, **kwargs):
    raise OSError("network is unreachable")


def _tokenizer():
    if "tok" not in _CACHE:
        _CACHE["tok"] = WordPieceTokenizer(list(VOCAB))
    return _CACHE["tok"]


def test_files_round_trip_and_transformers_reads_ours(vocab_dir, tmp_path):
    tok = WordPieceTokenizer.from_pretrained(vocab_dir, do_lower_case=False)
    loaded = Tokenizer.load(tok.save(tmp_path / "tok.json"))     # the project's common interface
    assert type(loaded) is WordPieceTokenizer and loaded.vocab_size == len(VOCAB)
    assert loaded.encode(TEXTS[0]) == tok.encode(TEXTS[0]) != _tokenizer().encode(TEXTS[0])
    tok.save_pretrained(tmp_path / "hf")
    again = WordPieceTokenizer.from_pretrained(tmp_path / "hf")                  # do_lower_case from its config
    assert not again.do_lower_case and again.encode(TEXTS[1]) == tok.encode(TEXTS[1])
    transformers = pytest.importorskip("transformers", reason="transformers is an optional test dependency")
    theirs = transformers.BertTokenizer.from_pretrained(str(tmp_path / "hf"))
    assert theirs(TEXTS[1])["input_ids"] == tok.encode(TEXTS[1])


def test_errors_explain(tmp_path, vocab_dir, monkeypatch):
    with pytest.raises(TokenizerFileError, match="vocab.txt not found"):
        WordPieceTokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.txt").write_text("a\nb\n")
    with pytest.raises(TokenizerFileError, match="unknown token '\\[UNK\\]' is not in the vocabulary"):
        WordPieceTokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": "no"}))
    with pytest.raises(TokenizerFileError, match="'do_lower_case' is 'no', not a usable value"):
        WordPieceTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"unk_token": {"content": "[MASK]"}}))
    assert WordPieceTokenizer.from_pretrained(tmp_path).tokenize("cat😀") == ["[MASK]"]   # the file's unknown token
    monkeypatch.setattr(urllib.request, "urlopen", _offline)
    monkeypatch.setenv("TINYGRAD_LM_DATA", str(tmp_path / "data"))
    with pytest.raises(TinygradLMError, match=r"Offline: copy vocab.txt of bert-base-cased into"):
        WordPieceTokenizer.from_pretrained("bert-base-cased")            # only vocab.txt, not the weights
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "wordpiece", "vocab": ["[UNK]"], "do_lower_case": "yes"}))
    with pytest.raises(TokenizerFileError, match="do_lower_case"):
        Tokenizer.load(bad)
    tok = WordPieceTokenizer.from_pretrained(vocab_dir)
    with pytest.raises(DecodeError, match="outside the vocabulary"):
        tok.decode([len(VOCAB)])
    with pytest.raises(ValueError, match="needs max_length"):
        tok("the cat", padding="max_length")
    with pytest.raises(ValueError, match="pass padding=True"):
        tok(["the", "the cat"], return_tensors="np")
