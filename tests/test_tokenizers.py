"""Tokenizers: exact GPT-2 parity with tiktoken, round trips, training == the textbook loop, files."""
import json
import re

import numpy as np
import pytest
import regex
from tinygrad_lm.data.text import read_utf8
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_lm.tokenizers import (GPT2_PATTERN, BPETokenizer, CharTokenizer, Tokenizer,
                                    TokenizerFileError, WordTokenizer, gpt2_tokenizer,
                                    reference_train_merges)
from tinygrad_lm.tokenizers.bpe import GPT2_PATTERN_ASCII

EDGE_CASES = (
    "Héllo wörld! Ça va? naïve café, Ångström, résumé\n"
    "Emoji: 🙂😀👍🏽 👨‍👩‍👧‍👦 and flags 🇫🇷🇯🇵\n"
    "CJK: 日本語のテキスト、中文文本，한국어 텍스트\n"
    "Mixed scripts: Привет мир, Γειά σου, مرحبا, שלום, नमस्ते, abcПривет123\n"
    "Whitespace runs:     four spaces,\t\ttabs,\n\n\nthree newlines,   \n trailing   \n"
    "Contractions: I'm, you're, he's, we've, they'll, I'd, can't, DON'T, O'Neil's\n"
    "Digits: 0 1 12 123 1234 12345 3.14159 1,000,000 2024-11-28 v2.0 0x1F\n"
    "Specials: before<|endoftext|>after <|endoftext|> and <|endoftext|><|endoftext|>\n"
    "Symbols: @#$%^&*()_+-=[]{}|;':\",./<>?`~ — – … « » ¿¡ ™ © ½\n"
    "Control: \x00\x01\x1c\x1d bell\x07 \r\n crlf\r\n"
)


@pytest.fixture(scope="module")
def gpt2(request):
    return gpt2_tokenizer()             # the user's copy in $TINYGRAD_LM_DATA/gpt2, else the package's


@pytest.fixture(scope="module")
def tiktoken_gpt2(gpt2_dir):
    tiktoken = pytest.importorskip("tiktoken", reason="tiktoken is an optional test dependency")
    import tiktoken.load
    ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(gpt2_dir / "vocab.bpe"), encoder_json_file=str(gpt2_dir / "encoder.json"))
    return tiktoken.Encoding(name="gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})


# ---------------------------------------------------------------- GPT-2
def test_gpt2_known_ids(gpt2):
    assert gpt2.encode("Hello world, this is a test.") == [15496, 995, 11, 428, 318, 257, 1332, 13]
    assert gpt2.special_tokens == {"<|endoftext|>": 50256} and gpt2.vocab_size == 50257


def test_gpt2_matches_tiktoken_on_tiny_shakespeare(gpt2, tiktoken_gpt2, shakespeare_path):
    text = read_utf8(shakespeare_path)
    ours = gpt2.encode(text)
    assert len(ours) == 338_025
    assert ours == tiktoken_gpt2.encode(text)
    assert gpt2.decode(ours) == text


def test_gpt2_matches_tiktoken_on_edge_cases(gpt2, tiktoken_gpt2):
    assert gpt2.encode(EDGE_CASES, allowed_special="all") == tiktoken_gpt2.encode(EDGE_CASES, allowed_special="all")
    assert 50256 in gpt2.encode(EDGE_CASES, allowed_special={"<|endoftext|>"})
    plain = gpt2.encode(EDGE_CASES, disallowed_special=())
    assert plain == tiktoken_gpt2.encode(EDGE_CASES, disallowed_special=())
    assert 50256 not in plain
    for line in EDGE_CASES.splitlines(keepends=True):   # also chunk by chunk (the cache must not matter)
        assert gpt2.encode(line, disallowed_special=()) == tiktoken_gpt2.encode(line, disallowed_special=())
    with pytest.raises(ValueError, match="special token '<\\|endoftext\\|>'"):
        gpt2.encode(EDGE_CASES)
    with pytest.raises(ValueError):
        tiktoken_gpt2.encode(EDGE_CASES)        # tiktoken refuses too
    assert gpt2.decode(gpt2.encode(EDGE_CASES, allowed_special="all")) == EDGE_CASES


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_gpt2_matches_tiktoken_on_arbitrary_text(gpt2, tiktoken_gpt2, text):
    assert gpt2.encode(text, disallowed_special=()) == tiktoken_gpt2.encode(text, disallowed_special=())


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_fast_split_equals_the_regex_split(text):
    if re.search("[\x1c-\x1f]", text):
        return          # the fast path is not used for these (see bpe.py)
    assert re.findall(GPT2_PATTERN_ASCII, text) == regex.findall(GPT2_PATTERN, text)


def test_decode_replaces_invalid_utf8(gpt2):
    ids = gpt2.encode("é🙂")
    cut = ids[:-1]                                  # cut mid-character
    text = gpt2.decode(cut)
    assert "\ufffd" in text
    assert BPETokenizer().decode([0xC3, 0x28]) == "\ufffd("


# ---------------------------------------------------------------- round trips
@settings(max_examples=100, deadline=None)
@given(st.text())
def test_roundtrip_every_tokenizer(text):
    assert CharTokenizer.from_text(text).decode(CharTokenizer.from_text(text).encode(text)) == text
    assert WordTokenizer.from_text(text).decode(WordTokenizer.from_text(text).encode(text)) == text
    small = _small_bpe()
    assert small.decode(small.encode(text)) == text
    assert BPETokenizer(pattern=None).decode(BPETokenizer(pattern=None).encode(text)) == text


_SMALL = {}


def _small_bpe():
    if "bpe" not in _SMALL:
        _SMALL["bpe"] = BPETokenizer.train("the cat sat on the mat. " * 20 + "Ünïcödé 🙂 日本", 300, pattern="gpt4")
    return _SMALL["bpe"]


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_gpt2_roundtrip(gpt2, text):
    assert gpt2.decode(gpt2.encode(text, disallowed_special=())) == text


# ---------------------------------------------------------------- char / word
def test_char_tokenizer_unknown_character():
    tok = CharTokenizer.from_text("hello")
    assert tok.vocab_size == 4 and tok.encode("hell") == [1, 0, 2, 2]
    with pytest.raises(ValueError, match=r"'z' \(U\+007A\) at position 3"):
        tok.encode("helzo")
    tok_unk = CharTokenizer.from_text("hello", unk_token="<unk>")
    assert tok_unk.encode("hez") == [1, 0, 4]
    assert tok_unk.decode(tok_unk.encode("hez")) == "he<unk>"


def test_word_tokenizer_shows_the_vocabulary_problem():
    tok = WordTokenizer.from_text("the cat sat on the mat")
    ids = tok.encode("the dog sat")
    assert tok.itos[ids[2]] == "<unk>"          # 'dog' was never seen
    assert tok.decode(ids) == "the <unk> sat"


# ---------------------------------------------------------------- training
TRAIN_TEXTS = [
    "aaabdaaabac",
    "the cat sat on the mat; the cat ate the rat. " * 3,
    "Hello world! hello World? HELLO 123 4567 don't you're  \n\n tabs\t\there " * 2,
    "日本語 日本 語 🙂🙂 🙂 ééé e é",
]


@pytest.mark.parametrize("pattern", ["gpt2", "gpt4", None])
@pytest.mark.parametrize("text", TRAIN_TEXTS)
def test_training_matches_the_reference_loop(text, pattern):
    n = 40
    tok = BPETokenizer.train(text, 256 + n, pattern=pattern)
    assert tok.merges == reference_train_merges(text, n, pattern=pattern)
    assert tok.decode(tok.encode(text)) == text


def test_training_matches_reference_on_shakespeare_prefix(shakespeare_path):
    text = read_utf8(shakespeare_path)[:20_000]
    assert BPETokenizer.train(text, 256 + 60).merges == reference_train_merges(text, 60)


def test_training_is_deterministic_with_documented_tie_break():
    # "cd" and "ab" both occur twice: the tie goes to the smaller pair (97, 98) first
    tok = BPETokenizer.train("cd ab cd ab", 258, pattern=r"\w+")
    assert tok.merges == [(ord("a"), ord("b")), (ord("c"), ord("d"))]
    assert BPETokenizer.train(TRAIN_TEXTS[1], 300).merges == BPETokenizer.train(TRAIN_TEXTS[1], 300).merges


def test_training_compresses_and_specials_get_ids():
    text = TRAIN_TEXTS[1] * 5
    tok = BPETokenizer.train(text, 300, special_tokens=["<|endoftext|>"])
    assert len(tok.encode(text)) < len(text.encode()) / 2
    assert tok.special_tokens == {"<|endoftext|>": 256 + len(tok.merges)}
    assert tok.encode("x<|endoftext|>", allowed_special="all")[-1] == tok.special_tokens["<|endoftext|>"]


def test_vocab_size_below_256_is_refused():
    with pytest.raises(ValueError, match="vocab_size=200 is below 256"):
        BPETokenizer.train("some text", 200)


# ---------------------------------------------------------------- files
@pytest.mark.parametrize("make", [
    lambda: CharTokenizer.from_text("hello world", unk_token="<unk>"),
    lambda: WordTokenizer.from_text("hello world, hello you"),
    lambda: BPETokenizer.train(TRAIN_TEXTS[2], 300, special_tokens=["<|endoftext|>"]),
    lambda: BPETokenizer.train(TRAIN_TEXTS[3], 270, pattern=r"\w+|\W+"),
])
def test_save_load_roundtrip(make, tmp_path):
    tok = make()
    path = tok.save(tmp_path / "tok.json")
    json.loads(path.read_text())            # readable JSON
    loaded = Tokenizer.load(path)
    assert type(loaded) is type(tok) and loaded.vocab_size == tok.vocab_size
    for text in TRAIN_TEXTS + ["hello world zzz"]:
        try:
            expected = tok.encode(text)
        except ValueError:
            continue
        assert loaded.encode(text) == expected


def test_gpt2_save_load_keeps_byte_order(gpt2, tmp_path):
    loaded = Tokenizer.load(gpt2.save(tmp_path / "gpt2.json"))
    assert loaded.encode(EDGE_CASES, allowed_special="all") == gpt2.encode(EDGE_CASES, allowed_special="all")


def test_corrupt_or_truncated_files_give_clear_errors(tmp_path):
    good = BPETokenizer.train(TRAIN_TEXTS[1], 280).save(tmp_path / "good.json").read_text()
    cases = {
        "truncated": good[: len(good) // 2],
        "not json": "this is not json",
        "wrong type": json.dumps({"type": "sentencepiece"}),
        "bad merges": json.dumps({"type": "bpe", "pattern": "gpt2", "merges": [[1, 99999]]}),
        "missing merges": json.dumps({"type": "bpe", "pattern": "gpt2"}),
        "bad byte ids": json.dumps({"type": "bpe", "pattern": "gpt2", "merges": [], "byte_ids": [0] * 256}),
        "binary": "\udcff",
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.json"
        if name == "binary":
            path.write_bytes(b"\xff\xfe\x00garbage")
        else:
            path.write_text(content)
        with pytest.raises(TokenizerFileError, match=re.escape(str(path))):
            Tokenizer.load(path)
    with pytest.raises(TokenizerFileError, match="does not exist"):
        Tokenizer.load(tmp_path / "missing.json")


def test_encode_returns_python_ints_usable_as_numpy():
    tok = _small_bpe()
    ids = np.array(tok.encode("the cat"), dtype=np.uint16)
    assert tok.decode(ids.tolist()) == "the cat"


def test_gpt2_files_download_with_checksum_or_explain_offline(tmp_path, monkeypatch):
    import io
    import urllib.request

    from tinygrad_lm.io.download import DownloadError
    from tinygrad_lm.tokenizers import gpt2_files
    monkeypatch.setenv("TINYGRAD_LM_DATA", str(tmp_path))

    def offline(*a, **k):
        raise OSError("network is unreachable")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    from tinygrad_lm.io.corpora import PACKAGE_CORPORA
    assert [p.parent for p in gpt2_files()] == [PACKAGE_CORPORA / "gpt2"] * 2     # no network: the package's copy
    with pytest.raises(DownloadError, match=r"Offline: leave out --download to use the package's own copy, "
                                            r"or copy encoder.json to .*gpt2"):
        gpt2_files(download=True)

    class Response(io.BytesIO):                 # a server that sends the wrong bytes
        headers = {}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Response(b"not the real file"))
    with pytest.raises(DownloadError, match="checksum mismatch"):
        gpt2_files(download=True)
    assert not (tmp_path / "gpt2" / "encoder.json").exists()       # nothing half-written is kept
