"""fill-mask and contextual embeddings (issue #16, point 7): the library functions on a tiny random
BERT written to a Hugging Face folder, against transformers' own fill-mask pipeline when it is
installed; the `fill-mask`, `embed` and `attention` commands on that folder, and their errors."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_lm import nn
from tinygrad_lm.viz.attention_view import BIDIRECTIONAL, attention_view
from tinygrad_lm.cli import main
from tinygrad_lm.errors import ConfigError, EncodeError
from tinygrad_lm.decoding.fill_mask import contextual_embeddings, fill_mask
from tinygrad_lm.training.pretrained import load_fill_mask
from tinygrad_lm.models.bert import BertConfig, BertForMaskedLM
from tinygrad_lm.random import manual_seed
from tinygrad_lm.tokenizers.wordpiece import WordPieceTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz.,!?") + \
    ["the", "cat", "sat", "on", "mat", "##s", "##ing", "dog", "run", "capital", "of", "france", "is", "paris"]
TINY = dict(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=24, initializer_range=0.3)    # wide weights: far from uniform predictions


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    """A random tiny BertForMaskedLM with its vocabulary, saved as a Hugging Face folder."""
    manual_seed(0)
    model = BertForMaskedLM(BertConfig(**TINY))
    folder = tmp_path_factory.mktemp("fill") / "tiny-bert"
    model.save_pretrained(folder)
    WordPieceTokenizer(VOCAB).save_pretrained(folder)
    return folder


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_fill_mask_is_the_softmax_at_the_mask_best_first(bert_dir):
    model, tok = load_fill_mask(bert_dir)
    answers = fill_mask(model, tok, "The cat sat on the [MASK].", top_k=4)
    ids = tok("The cat sat on the [MASK].")["input_ids"]
    probs = softmax(model(np.array([ids])).logits.numpy()[0, ids.index(tok.mask_token_id)].astype(np.float64))
    expected = np.argsort(-probs)[:4]
    assert [a["token"] for a in answers] == expected.tolist()
    np.testing.assert_allclose([a["score"] for a in answers], probs[expected], rtol=1e-6)
    first = answers[0]
    assert first["token_str"] == VOCAB[first["token"]]
    assert first["sequence"] == tok.decode([t if t != tok.mask_token_id else first["token"] for t in ids],
                                           skip_special_tokens=True)
    # top_k past the vocabulary: every token once, probabilities summing to 1
    everything = fill_mask(model, tok, "the [MASK] sat", top_k=10_000)
    assert len(everything) == len(VOCAB) and abs(sum(a["score"] for a in everything) - 1) < 1e-6


def test_several_masks_get_one_list_each_and_the_model_mode_is_kept(bert_dir):
    model, tok = load_fill_mask(bert_dir)
    model.train()
    lists = fill_mask(model, tok, "[MASK] cat sat on the [MASK]", top_k=3)
    assert model.training                            # predicted with dropout off, then left as it was
    assert len(lists) == 2 and all(len(answers) == 3 for answers in lists)
    assert "[MASK]" not in lists[0][0]["sequence"]                   # special tokens are left out
    assert lists[0] != lists[1]


def test_fill_mask_refuses_what_it_cannot_fill(bert_dir):
    model, tok = load_fill_mask(bert_dir)
    with pytest.raises(ConfigError, match=r"no \[MASK\] token"):
        fill_mask(model, tok, "the cat sat")
    with pytest.raises(ConfigError, match="top_k must be an integer >= 1"):
        fill_mask(model, tok, "the [MASK]", top_k=0)
    with pytest.raises(ConfigError, match="more than this model's 24 positions"):
        fill_mask(model, tok, "the cat " * 20 + "[MASK]")
    with pytest.raises(ConfigError, match="empty"):
        fill_mask(model, tok, "  ")
    with pytest.raises(EncodeError, match="mask_token"):
        fill_mask(model, WordPieceTokenizer([t for t in VOCAB if t != "[MASK]"]), "the cat")


def test_contextual_embeddings_depend_on_the_context(bert_dir):
    model, tok = load_fill_mask(bert_dir)
    tokens_a, a = contextual_embeddings(model, tok, "the cat sat on the mat")
    tokens_b, b = contextual_embeddings(model, tok, "the dog run on the mat")
    assert tokens_a == ["[CLS]", "the", "cat", "sat", "on", "the", "mat", "[SEP]"] and a.shape == (8, 32)
    np.testing.assert_allclose(a, model.bert(np.array([tok.encode("the cat sat on the mat")])).last_hidden_state
                               .numpy()[0], rtol=1e-6)
    # "the" at positions 1 and 5, and "mat" in two sentences: same token, different vectors
    assert not np.allclose(a[1], a[5]) and not np.allclose(a[6], b[6])


def test_agrees_with_transformers_fill_mask_pipeline(bert_dir):
    transformers = pytest.importorskip("transformers", reason="transformers is an optional test dependency")
    pytest.importorskip("torch")
    model, tok = load_fill_mask(bert_dir)
    pipe = transformers.pipeline("fill-mask", model=str(bert_dir), tokenizer=str(bert_dir))
    for text in ("The cat sat on the [MASK].", "[MASK] cat sat on the [MASK]"):
        theirs, ours = pipe(text, top_k=5), fill_mask(model, tok, text, top_k=5)
        theirs, ours = (theirs, ours) if isinstance(ours[0], list) else ([theirs], [ours])
        for t, o in zip(theirs, ours):
            assert [a["token"] for a in o] == [a["token"] for a in t]
            assert [a["token_str"] for a in o] == [a["token_str"] for a in t]
            np.testing.assert_allclose([a["score"] for a in o], [a["score"] for a in t], rtol=1e-4)
            if len(theirs) == 1:            # with several masks transformers' sequence fills every mask at once
                assert [a["sequence"] for a in o] == [a["sequence"] for a in t]
    hf_model = transformers.AutoModel.from_pretrained(str(bert_dir))
    import torch
    ids = tok("the cat sat on the mat")["input_ids"]
    with torch.no_grad():
        expected = hf_model(torch.tensor([ids])).last_hidden_state.numpy()[0]
    np.testing.assert_allclose(contextual_embeddings(model, tok, "the cat sat on the mat")[1], expected,
                               rtol=1e-4, atol=1e-5)


def test_bert_attention_maps_are_bidirectional_and_match_the_view(bert_dir):
    model, tok = load_fill_mask(bert_dir)
    ids = np.array([tok.encode("the cat sat on the mat")])
    maps = model.attention_maps(ids)
    assert maps.shape == (2, 1, 4, 8, 8)
    np.testing.assert_allclose(maps.sum(-1), 1.0, rtol=1e-5)
    assert (np.triu(maps[..., :, :], 1) > 0).any()                 # queries see later keys too
    padded = model.attention_maps(np.array([ids[0].tolist() + [0, 0]]), attention_mask=np.array([[1] * 8 + [0, 0]]))
    assert not padded[..., 8:].any()                                # padding gets no attention
    view = attention_view(model, tok, "the cat sat on the mat")
    assert view.sections[0]["kind"] == BIDIRECTIONAL
    np.testing.assert_allclose(view.weights, maps[:, 0], rtol=1e-6)


def run(*args, capsys):
    result = main([*map(str, args)])
    return result, capsys.readouterr().out


def test_fill_mask_and_embed_commands(bert_dir, tmp_path, capsys):
    results, out = run("fill-mask", "--model", bert_dir, "--top-k", 3, "The cat sat on the [MASK].", capsys=capsys)
    lines = out.strip().splitlines()
    assert len(lines) == 3
    for line, answer in zip(lines, results):
        assert line.split()[:2] == [answer["token_str"], f"{answer['score']:.4f}"]
    (tokens, vectors), out = run("embed", "--model", bert_dir, "--out", tmp_path / "v.npy", "the cat sat",
                                 capsys=capsys)
    assert "5 tokens x 32 dimensions" in out and out.count("norm") == 5
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), vectors)
    _, out = run("attention", "--model", bert_dir, "--prompt", "the cat sat", "--out", tmp_path / "a.png",
                 "--html", tmp_path / "view.html", capsys=capsys)
    assert (tmp_path / "a.png").exists() and BIDIRECTIONAL in (tmp_path / "view.html").read_text(encoding="utf-8")
    assert np.load(tmp_path / "a.npy").shape == (2, 4, 5, 5)


@pytest.mark.parametrize("args, message", [
    (["fill-mask", "--model", "{dir}", "the cat sat"], r"no [MASK] token"),
    (["fill-mask", "--model", "{dir}", "--top-k", "0", "the [MASK]"], "--top-k must be >= 1"),
    (["fill-mask", "--model", "no_such_folder", "the [MASK]"], "no such file or folder"),
    (["fill-mask", "--model", "{empty}", "the [MASK]"], "config.json not found"),
    (["embed", "--model", "{novocab}", "the cat"], "vocab.txt not found"),
])
def test_command_errors_are_one_line(bert_dir, tmp_path, args, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    novocab = tmp_path / "novocab"
    novocab.mkdir()
    for name in ("config.json", "model.safetensors"):
        (novocab / name).write_bytes((bert_dir / name).read_bytes())
    args = [a.format(dir=bert_dir, empty=empty, novocab=novocab) for a in args]
    with pytest.raises(SystemExit) as e:
        main(args)
    assert str(e.value.code).startswith("error:") and message in str(e.value.code)


def test_a_masked_lm_training_checkpoint_fills_masks_with_its_own_tokenizer(tmp_path, capsys):
    """A bert-mini-style checkpoint: a character vocabulary, then [PAD] [CLS] [SEP] [MASK]."""
    from tinygrad_lm.training import checkpoint
    from tinygrad_lm import models
    from tinygrad_lm.models.bert_tasks import BertMLM, BertMLMConfig
    from tinygrad_lm.tokenizers import CharTokenizer
    chars = CharTokenizer.from_text("to be or not to be, that is the question\n")
    config = BertMLMConfig.with_specials(chars.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=32, max_position_embeddings=32, initializer_range=0.3)
    manual_seed(0)
    model = BertMLM(config)
    path = checkpoint.save(tmp_path / "mlm.npz", model, meta={"model_family": models.family_of(config),
                                                              "model_config": config.to_dict(),
                                                              "tokenizer": {"type": chars.kind, **chars.to_dict()}})
    loaded, tok = load_fill_mask(path)
    text = "to be or not to b[MASK]"
    ids = [config.cls_token_id] + chars.encode("to be or not to b") + [config.mask_token_id, config.sep_token_id]
    assert tok(text)["input_ids"] == ids
    answers = fill_mask(loaded, tok, text, top_k=3)
    logits = model.eval()(np.array([ids]))[0].numpy()[0, -2].astype(np.float64)     # dropout off
    best = np.argsort(-logits)[:3]
    assert [a["token"] for a in answers] == best.tolist()
    np.testing.assert_allclose([a["score"] for a in answers], softmax(logits)[best], rtol=1e-6)
    first = answers[0]
    expected_str = tok.names.get(int(best[0])) or chars.decode([int(best[0])])
    assert first["token_str"] == expected_str
    if int(best[0]) not in tok.names:
        assert first["sequence"] == "to be or not to b" + expected_str
    tokens, vectors = contextual_embeddings(loaded, tok, "to be")
    assert tokens == ["[CLS]", "t", "o", " ", "b", "e", "[SEP]"] and vectors.shape == (7, 16)
    results, out = run("fill-mask", "--model", path, "--top-k", 3, text, capsys=capsys)
    assert [a["token"] for a in results] == best.tolist() and len(out.strip().splitlines()) == 3
    # a checkpoint of another family is refused by name
    gpt_config = models.GPTConfig(vocab_size=chars.vocab_size, block_size=8, n_layer=1, n_head=1, n_embd=8)
    gpt = checkpoint.save(tmp_path / "gpt.npz", models.GPT(gpt_config),
                          meta={"model_family": models.family_of(gpt_config), "model_config": gpt_config.to_dict(),
                                "tokenizer": {"type": chars.kind, **chars.to_dict()}})
    with pytest.raises(ConfigError, match=r"fill-mask does not apply to .*: it holds a gpt model \(GPT\); "
                                          "fill-mask takes bert-mlm"):
        load_fill_mask(gpt)


def test_fill_mask_in_a_real_process(bert_dir):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ok = subprocess.run([sys.executable, "-m", "tinygrad_lm", "fill-mask", "--model", str(bert_dir), "the [MASK]"],
                        capture_output=True, text=True, timeout=120, env=env)
    assert ok.returncode == 0 and len(ok.stdout.strip().splitlines()) == 5, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "tinygrad_lm", "fill-mask", "--model", str(bert_dir), "the cat"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert [line for line in bad.stderr.splitlines() if line.startswith("error:")] == [bad.stderr.strip()]
