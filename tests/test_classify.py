"""Sequence classification with a causal LM (#28 point 4): the speaker task of tiny Shakespeare
(balanced, held-out speeches), the head read at the last real token (right padding changes no
logit; left padding refused), its gradient checked by finite differences (float64, random
upstream gradient) and its logits and loss equal to transformers' LlamaForSequenceClassification
with the same weights; fine-tuning with LoRA trains the adapters and the new head only and
learns a task a bag of characters cannot."""
import importlib.util

import numpy as np
import pytest

import tinygrad_lm as tg
from tinygrad_lm.data.speakers import (ClassificationBatches, bag_of_characters_baseline, majority_baseline,
                                       speaker_task, speeches)
from tinygrad_lm.data.text import read_utf8, shakespeare
from tinygrad_lm.errors import ConfigError, DataError
from tinygrad_lm.gradcheck import gradcheck
from tinygrad_lm.models import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification
from tinygrad_lm.nn.lora import LoraConfig, get_peft_model, lora_layers
from tinygrad_lm.tensor import no_grad
from tinygrad_lm.training.config import TrainConfig, make_optimizer
from tinygrad_lm.training.loop import train_step

from .test_llama import _norms_in_the_models_dtype, _share_rope_tables

HAS_HF = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))
needs_hf = pytest.mark.skipif(not HAS_HF, reason="needs transformers: pip install torch==2.13.0 transformers")


def tiny_config(vocab_size=23):
    return LlamaConfig(vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)


def tiny_classifier(num_labels=3, seed=0):
    tg.manual_seed(seed)
    return LlamaForSequenceClassification(tiny_config(), num_labels)


def test_the_speaker_task_is_balanced_and_holds_speeches_out():
    text = "ROMEO:\nIs the day so young?\n\nJULIET:\nAy.\nGood night.\n\nnot a speech\n\nROMEO:\nFarewell.\n"
    assert speeches(text) == [("ROMEO", "Is the day so young?"), ("JULIET", "Ay. Good night."),
                              ("ROMEO", "Farewell.")]
    task = speaker_task(read_utf8(shakespeare()), n_speakers=4, max_chars=120)
    assert task.names == ["GLOUCESTER", "DUKE VINCENTIO", "MENENIUS", "ROMEO"]
    for split in (task.train, task.val):
        counts = np.bincount([label for _, label in split], minlength=4)
        assert (counts == counts[0]).all()                       # balanced in both splits
    assert len(task.val) == 4 * 32 and len(task.train) == 4 * 128
    assert not {t for t, _ in task.val} & {t for t, _ in task.train}
    assert max(len(t) for t, _ in task.train) <= 120
    assert majority_baseline(task.train, task.val) == 0.25
    with pytest.raises(DataError, match="fewer than the 3 asked"):
        speaker_task(text, n_speakers=3)
    with pytest.raises(ConfigError, match="JULIET has 1"):
        speaker_task(text, n_speakers=2, per_speaker=2)


def test_the_head_reads_the_last_real_token_and_padding_changes_nothing(rng):
    clf = tiny_classifier()
    rows = [rng.integers(1, 23, n).tolist() for n in (5, 9, 2)]
    batches = ClassificationBatches([(ids, i) for i, ids in enumerate(rows)], batch_size=3, pad_id=0)
    x, mask, labels = batches.rows([0, 1, 2])
    with no_grad():
        logits, loss = clf(x, mask, labels)
        for row, ids in enumerate(rows):
            alone, _ = clf(np.array([ids]))
            np.testing.assert_allclose(logits.numpy()[row], alone.numpy()[0], rtol=1e-5, atol=1e-6)
        changed = x.copy()
        changed[0, 5:] = 7                                       # the padding: nothing changes
        np.testing.assert_array_equal(clf(changed, mask)[0].numpy(), logits.numpy())
        changed[0, 4] = (changed[0, 4] % 22) + 1                 # the last real token: row 0 changes
        assert not np.allclose(clf(changed, mask)[0].numpy()[0], logits.numpy()[0])
        z = logits.numpy() - logits.numpy().max(-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
        np.testing.assert_allclose(loss.item(), -logp[np.arange(3), labels].mean(), rtol=1e-5)
    assert batches.accuracy((x, mask, labels), logits) == (int((logits.numpy().argmax(-1) == labels).sum()), 3)
    with pytest.raises(ValueError, match="right padding"):
        clf(x, mask[:, ::-1])                                     # left padding
    with pytest.raises(ValueError, match="right padding"):
        clf(x, np.zeros_like(mask))
    with pytest.raises(IndexError, match="labels: index 3 is out of range"):
        clf(x, mask, np.array([0, 1, 3]))                         # 3 labels: ids 0..2
    with pytest.raises(ConfigError, match="num_labels must be >= 2"):
        LlamaForSequenceClassification(tiny_config(), 1)


def test_the_classifier_s_gradient_equals_finite_differences(rng):
    clf = tiny_classifier(seed=1).double()
    x = rng.integers(1, 23, (3, 6))
    mask = (np.arange(6) < np.array([[6], [3], [1]])).astype(np.int64)
    labels = np.array([2, 0, 1])
    names = ("score.weight", "model.norm.weight", "model.layers.1.mlp.down_proj.weight")
    params = dict(clf.named_parameters())

    def f(*values):
        for name, value in zip(names, values):
            *path, last = name.split(".")
            owner = clf
            for part in path:
                owner = getattr(owner, part)
            setattr(owner, last, value)
        return clf(x, mask)[0]
    gradcheck(f, [tg.Tensor(params[n].numpy().copy(), requires_grad=True) for n in names])
    clf2 = tiny_classifier(seed=1).double()                      # the score's gradient, by hand
    out, loss = clf2(x, mask, labels)
    loss.backward()
    logits = out.numpy()
    z = logits - logits.max(-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    d_logits = (p - np.eye(3)[labels]) / 3                       # d mean CE / d logits, by hand
    with no_grad():
        hidden = clf2.model(x).numpy()[np.arange(3), mask.sum(-1) - 1]
    np.testing.assert_allclose(clf2.score.weight.grad.numpy(), d_logits.T @ hidden, rtol=1e-10, atol=1e-12)


@needs_hf
def test_logits_and_loss_equal_transformers_sequence_classification(rng):
    import torch
    import transformers
    from tinygrad_lm.crosscheck.torch_llama import hf_config
    clf = tiny_classifier(num_labels=4, seed=2).double()
    theirs = transformers.LlamaForSequenceClassification(hf_config(clf.config, num_labels=4, pad_token_id=0,
                                                                   attn_implementation="sdpa")).double().eval()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in clf.state_dict().items()})   # float64 into float64
    _share_rope_tables(clf, theirs)             # theirs are float32, and so are their norms (tests/test_llama.py)
    _norms_in_the_models_dtype(theirs)
    rows = [rng.integers(1, 23, n).tolist() for n in (7, 3, 5)]
    x, mask, _ = ClassificationBatches([(ids, 0) for ids in rows], 3, pad_id=0).rows([0, 1, 2])
    labels = np.array([3, 1, 0])
    with no_grad():
        logits, loss = clf(x, mask, labels)
    out = theirs(input_ids=torch.tensor(x), attention_mask=torch.tensor(mask), labels=torch.tensor(labels))
    np.testing.assert_allclose(logits.numpy(), out.logits.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(loss.item(), out.loss.item(), rtol=1e-10)


def test_lora_fine_tuning_trains_the_adapters_and_the_head_and_learns(rng):
    """A task of order, not of characters: label 1 when token 3 comes before token 4, else 0; a
    bag of characters (the same tokens either way) is at chance."""
    def example(label):
        ids = rng.integers(5, 23, 6).tolist()
        i, j = sorted(rng.choice(6, 2, replace=False))
        ids[i], ids[j] = (3, 4) if label else (4, 3)
        return ids, label
    train = [example(int(k % 2)) for k in range(128)]
    val = [example(int(k % 2)) for k in range(64)]
    as_text = lambda examples: [("".join(chr(65 + t) for t in ids), label) for ids, label in examples]
    assert bag_of_characters_baseline(as_text(train), as_text(val), steps=200) <= 0.65

    tg.manual_seed(3)
    lm = LlamaForCausalLM(tiny_config())
    clf = LlamaForSequenceClassification.from_causal_lm(lm, 2)
    assert clf.model is lm.model
    get_peft_model(clf, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="SEQ_CLS"))
    trainable = sorted(n for n, p in clf.named_parameters() if p.requires_grad)
    assert "score.weight" in trainable and all("lora_" in n for n in trainable if n != "score.weight")
    assert len(lora_layers(clf)) == 14                           # 7 Linears per layer, the head not adapted
    base = {n: p.numpy().copy() for n, p in clf.named_parameters() if not p.requires_grad}
    optimizer = make_optimizer(clf, TrainConfig(learning_rate=1e-2, weight_decay=0.0))
    batches = ClassificationBatches(train, batch_size=32, pad_id=0, seed=1)
    for _ in range(150):
        train_step(clf, optimizer, batches.next(), 1e-2, grad_clip=1.0)
    with no_grad():
        right, n = batches.accuracy(ClassificationBatches(val, 64).rows(range(64)),
                                    clf(*ClassificationBatches(val, 64).rows(range(64))[:2])[0])
    assert right / n >= 0.9
    for name, value in base.items():                             # the frozen weights never moved
        np.testing.assert_array_equal(dict(clf.named_parameters())[name].numpy(), value)
