"""BERT in the engine: our BertModel / BertForMaskedLM / BertForSequenceClassification against
transformers' (random tiny models written by the test), both ways through Hugging Face folders,
gradients in float64, padding that must not leak, and the errors a bad folder gets."""
import json
import urllib.request

import numpy as np
import pytest

import tinygrad_lm as tg
from tinygrad_lm.errors import PretrainedError
from tinygrad_lm.models.bert import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel
from tinygrad_lm.io.safetensors import load_file, save_file

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz.,!?") + \
    ["the", "cat", "sat", "on", "mat", "##s", "##ing", "dog", "run"]
TINY = dict(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=37, max_position_embeddings=16)


def _batch(seed=0, B=3, T=9):
    """ids, an attention mask with padding at the end of two rows, and two segments."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, len(VOCAB), (B, T))
    ids[:, 0] = 2                                       # [CLS]
    mask = np.ones((B, T), np.int64)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 0                                  # [PAD]
    types = np.zeros((B, T), np.int64)
    types[:, 4:] = 1
    return ids, mask, types


def _transformers():
    transformers = pytest.importorskip("transformers", reason="transformers is an optional test dependency")
    torch = pytest.importorskip("torch")
    return transformers, torch


def _save_hf(model, path):
    model.save_pretrained(path, safe_serialization=True)
    (path / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def hf_masked_lm(tmp_path_factory):
    transformers, torch = _transformers()
    torch.manual_seed(0)
    model = transformers.BertForMaskedLM(transformers.BertConfig(**TINY)).eval()
    return model, _save_hf(model, tmp_path_factory.mktemp("hf") / "tiny-bert-mlm")


@pytest.fixture(scope="module")
def hf_pretraining(tmp_path_factory):
    """The layout of the published checkpoints: encoder with pooler, masked-LM and next-sentence heads."""
    transformers, torch = _transformers()
    torch.manual_seed(1)
    model = transformers.BertForPreTraining(transformers.BertConfig(**TINY)).eval()
    return model, _save_hf(model, tmp_path_factory.mktemp("hf") / "tiny-bert-pretraining")


def _close(ours, theirs):
    """float32 agreement: 1e-5 relative to the largest value."""
    theirs = theirs.detach().numpy()
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())


def _torch_inputs(torch, ids, mask, types):
    return dict(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(types))


def test_masked_lm_matches_transformers(hf_masked_lm):
    _, torch = _transformers()
    ref, path = hf_masked_lm
    ours = BertForMaskedLM.from_pretrained(path)
    assert ours.config.hidden_size == 32 and ours.config.vocab_size == len(VOCAB) and not ours.training
    ids, mask, types = _batch()
    with torch.no_grad():
        expected = ref(**_torch_inputs(torch, ids, mask, types), output_hidden_states=True)
    out = ours(ids, mask, types)
    _close(out.logits, expected.logits)
    _close(ours.bert(ids, mask, types).last_hidden_state, expected.hidden_states[-1])
    assert ours.cls.predictions.decoder.weight is ours.bert.embeddings.word_embeddings.weight


def test_pretraining_checkpoint_gives_pooled_output_and_logits(hf_pretraining):
    _, torch = _transformers()
    ref, path = hf_pretraining
    ids, mask, types = _batch(1)
    with torch.no_grad():
        hidden, pooled = ref.bert(**_torch_inputs(torch, ids, mask, types))[:2]
        logits = ref(**_torch_inputs(torch, ids, mask, types)).prediction_logits
    encoder = BertModel.from_pretrained(path)         # the next-sentence head is not BertModel's: skipped
    out = encoder(ids, mask, types)
    _close(out.last_hidden_state, hidden)
    _close(out.pooler_output, pooled)
    _close(BertForMaskedLM.from_pretrained(path)(ids, mask, types).logits, logits)


def test_original_checkpoint_names_load(hf_pretraining, tmp_path):
    """The first published files call LayerNorm's parameters gamma and beta and store position_ids;
    a BertModel's own file has no "bert." prefix. Both load to the same model."""
    ref, path = hf_pretraining
    tensors, _ = load_file(path / "model.safetensors")
    renamed = {name.removeprefix("bert.").replace("LayerNorm.weight", "LayerNorm.gamma")
               .replace("LayerNorm.bias", "LayerNorm.beta"): a for name, a in tensors.items()}
    renamed["embeddings.position_ids"] = np.arange(TINY["max_position_embeddings"])[None]
    folder = tmp_path / "old"
    folder.mkdir()
    save_file(renamed, folder / "model.safetensors")
    (folder / "config.json").write_text((path / "config.json").read_text())
    ids, mask, types = _batch(2)
    a, b = BertModel.from_pretrained(path)(ids, mask, types), BertModel.from_pretrained(folder)(ids, mask, types)
    np.testing.assert_array_equal(a.last_hidden_state.numpy(), b.last_hidden_state.numpy())
    np.testing.assert_array_equal(a.pooler_output.numpy(), b.pooler_output.numpy())


@pytest.mark.parametrize("name", ["BertForMaskedLM", "BertForSequenceClassification", "BertModel"])
def test_export_loads_in_transformers_with_same_outputs(name, tmp_path):
    transformers, torch = _transformers()
    ours_cls = {"BertForMaskedLM": BertForMaskedLM, "BertForSequenceClassification": BertForSequenceClassification,
                "BertModel": BertModel}[name]
    tg.manual_seed(4)
    ours = ours_cls(BertConfig(**TINY, num_labels=3)).eval()
    ours.save_pretrained(tmp_path / "export")
    theirs = getattr(transformers, name).from_pretrained(tmp_path / "export").eval()
    ids, mask, types = _batch(3)
    with torch.no_grad():
        expected = theirs(**_torch_inputs(torch, ids, mask, types))
    got = ours(ids, mask, types)
    if name == "BertModel":
        _close(got.last_hidden_state, expected.last_hidden_state)
        _close(got.pooler_output, expected.pooler_output)
    else:
        _close(got.logits, expected.logits)
    again = ours_cls.from_pretrained(tmp_path / "export")
    first = got.logits if name != "BertModel" else got.last_hidden_state
    second = again(ids, mask, types)
    np.testing.assert_array_equal((second.logits if name != "BertModel" else second.last_hidden_state).numpy(),
                                  first.numpy())


def test_gradients_match_transformers_in_float64(hf_masked_lm):
    """Loss with labels (-100 ignored) and every parameter's gradient, the tied embedding included."""
    _, torch = _transformers()
    ref, path = hf_masked_lm
    ref = type(ref).from_pretrained(path, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).double().train()
    ours = BertForMaskedLM.from_pretrained(path, dtype=np.float64, hidden_dropout_prob=0.0,
                                           attention_probs_dropout_prob=0.0).train()
    ids, mask, types = _batch(4)
    labels = np.full(ids.shape, -100)
    labels[0, 1:4] = ids[0, 1:4]
    labels[1, 5] = 7
    out = ours(ids, mask, types, labels=labels)
    out.loss.backward()
    expected = ref(**_torch_inputs(torch, ids, mask, types), labels=torch.tensor(labels))
    expected.loss.backward()
    np.testing.assert_allclose(out.loss.item(), expected.loss.item(), rtol=1e-12)
    theirs = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("num_labels, labels", [(3, [2, 0, 1]), (1, [0.5, -1.0, 2.0])],
                         ids=["classes", "regression"])
def test_sequence_classification_loss_matches_transformers(num_labels, labels, tmp_path):
    transformers, torch = _transformers()
    tg.manual_seed(5)
    ours = BertForSequenceClassification(BertConfig(**TINY, num_labels=num_labels)).eval()
    ours.save_pretrained(tmp_path / "cls")
    theirs = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "cls").eval()
    assert theirs.config.num_labels == num_labels
    ids, mask, types = _batch(5)
    with torch.no_grad():
        expected = theirs(**_torch_inputs(torch, ids, mask, types), labels=torch.tensor(labels)).loss.item()
    assert ours(ids, mask, types, labels=np.array(labels)).loss.item() == pytest.approx(expected, rel=1e-5)


def test_padding_does_not_leak(device):
    """Whatever stands at padded positions (ids, segments), real positions' outputs are identical."""
    tg.manual_seed(6)
    model = BertModel(BertConfig(**TINY)).to(device).eval()
    ids, mask, types = _batch(6)
    other_ids, other_types = ids.copy(), types.copy()
    rng = np.random.default_rng(7)
    other_ids[mask == 0] = rng.integers(5, len(VOCAB), int((mask == 0).sum()))
    other_types[mask == 0] = 1 - other_types[mask == 0]
    a, b = model(ids, mask, types), model(other_ids, mask, other_types)
    real = mask.astype(bool)
    np.testing.assert_array_equal(a.last_hidden_state.numpy()[real], b.last_hidden_state.numpy()[real])
    np.testing.assert_array_equal(a.pooler_output.numpy(), b.pooler_output.numpy())
    unmasked = model(other_ids, None, other_types).last_hidden_state.numpy()[real]
    assert not np.allclose(unmasked, a.last_hidden_state.numpy()[real])     # the mask is what hides them


def test_training_step_on_every_device(device):
    """Forward and backward on a device give the CPU's loss and gradients."""
    losses, grads = {}, {}
    ids, mask, types = _batch(8)
    labels = np.where(np.random.default_rng(9).random(ids.shape) < 0.3, ids, -100)
    labels[0, 1] = ids[0, 1]
    for dev in ("cpu", device):
        tg.manual_seed(10)
        model = BertForMaskedLM(BertConfig(**TINY, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
        model.to(dev)
        out = model(ids, mask, types, labels=labels)
        out.loss.backward()
        losses[dev] = out.loss.item()
        grads[dev] = {name: p.grad.numpy() for name, p in model.named_parameters()}
        assert out.logits.device == model.device
    assert losses[device] == pytest.approx(losses["cpu"], rel=1e-5)
    for name, g in grads["cpu"].items():
        np.testing.assert_allclose(grads[device][name], g, rtol=1e-4, atol=1e-6, err_msg=name)


def test_new_head_starts_fresh_with_a_warning(hf_masked_lm):
    """A classifier fine-tuned from a masked-LM checkpoint: the encoder is loaded, the pooler and
    classifier the file lacks start from random weights, and the warning names them."""
    ref, path = hf_masked_lm
    with pytest.warns(UserWarning, match=r"classifier\.weight.*start from random weights"):
        model = BertForSequenceClassification.from_pretrained(path, num_labels=4)
    assert model.classifier.weight.shape == (4, 32)
    np.testing.assert_array_equal(model.bert.embeddings.word_embeddings.weight.numpy(),
                                  ref.bert.embeddings.word_embeddings.weight.detach().numpy())


def test_bad_folders_explain(hf_masked_lm, tmp_path, monkeypatch):
    _, path = hf_masked_lm
    with pytest.raises(PretrainedError, match="is not a folder: give a Hugging Face BERT folder"):
        BertModel.from_pretrained(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PretrainedError, match="config.json not found"):
        BertModel.from_pretrained(tmp_path / "empty")
    deeper = tmp_path / "deeper"
    deeper.mkdir()
    (deeper / "model.safetensors").write_bytes((path / "model.safetensors").read_bytes())
    cfg = json.loads((path / "config.json").read_text())
    (deeper / "config.json").write_text(json.dumps({**cfg, "num_hidden_layers": 3}))
    with pytest.raises(PretrainedError, match="lacks .* encoder's tensors"):
        BertForMaskedLM.from_pretrained(deeper)
    (deeper / "config.json").write_text(json.dumps({**cfg, "hidden_size": 64, "intermediate_size": 37}))
    with pytest.raises(PretrainedError, match=r"does not match .*position_embeddings.weight is \[16, 32\], "
                                              r"config.json implies \[16, 64\]"):
        BertForMaskedLM.from_pretrained(deeper)
    (deeper / "config.json").write_text(json.dumps({**cfg, "hidden_size": "32"}))
    with pytest.raises(PretrainedError, match="hidden_size='32' must be an integer"):
        BertForMaskedLM.from_pretrained(deeper)
    (deeper / "config.json").write_text(json.dumps({**cfg, "model_type": "gpt2"}))
    with pytest.raises(PretrainedError, match="not BERT"):
        BertForMaskedLM.from_pretrained(deeper)

    def offline(*a, **k):
        raise OSError("network is unreachable")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setenv("TINYGRAD_LM_DATA", str(tmp_path / "data"))
    with pytest.raises(PretrainedError, match=r"Offline: copy config.json, model.safetensors and vocab.txt of "
                                              r"bert-base-uncased into"):
        BertForMaskedLM.from_pretrained("bert-base-uncased")


def test_parameter_estimate_counts_the_pretraining_model():
    """check_memory's arithmetic == BertForMaskedLM's parameters + pooler + next-sentence head."""
    c = BertConfig(**TINY)
    C = c.hidden_size
    assert c.num_parameters_estimate() == BertForMaskedLM(c).num_parameters() + (C * C + C) + (2 * C + 2)
    assert BertModel(c).num_parameters() == BertForMaskedLM(c).num_parameters() - (C * C + C + 2 * C + len(VOCAB)) \
        + (C * C + C)


def test_config_refuses_what_it_cannot_build():
    with pytest.raises(tg.errors.ConfigError, match="hidden_size=30 must be divisible by num_attention_heads=4"):
        BertConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(tg.errors.ConfigError, match="hidden_act='swish'"):
        BertConfig(hidden_act="swish")
    model = BertModel(BertConfig(**TINY))
    with pytest.raises(ValueError, match="longer than max_position_embeddings=16"):
        model(np.zeros((1, 17), np.int64))
    with pytest.raises(IndexError, match="input_ids"):
        model(np.full((1, 3), len(VOCAB)))
    with pytest.raises(ValueError, match="attention_mask .* must have shape"):
        model(np.zeros((2, 3), np.int64), np.ones((2, 4), np.int64))
