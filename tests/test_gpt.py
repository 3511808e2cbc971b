"""The GPT model: the seed's exact mini-LLM, GPT-2's layout, parity with PyTorch, causality, errors."""
import numpy as np
import pytest

import tinygrad_lm as tg
from tinygrad_lm import backend, nn
from tinygrad_lm.models.gpt import GPT, GPTConfig
from tinygrad_lm.gradcheck import gradcheck

try:
    import torch
except ImportError:
    torch = None


def small_configs():
    return {
        "seed_mini": GPTConfig.seed_mini(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8),
        "gpt2": GPTConfig.gpt2(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8),
        "sinusoidal": GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=8, pos_encoding="sinusoidal"),
        "rotary": GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=8, pos_encoding="rotary",
                            activation="gelu"),
        "composite": GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=8, fused=False),
    }


def test_seed_mini_has_exactly_209729_parameters():
    model = GPT(GPTConfig.seed_mini(vocab_size=65, block_size=32, n_layer=4, n_head=4, n_embd=64))
    assert model.num_parameters() == 209_729
    assert isinstance(model.transformer.h[0].attn, nn.MultiHeadAttention)
    assert model.lm_head.bias is not None and model.lm_head.weight is not model.transformer.wte.weight


def test_gpt2_small_shape_and_key_names():
    model = GPT(GPTConfig.gpt2(n_layer=2, block_size=16))
    keys = list(model.state_dict())
    assert keys[:2] == ["transformer.wte.weight", "transformer.wpe.weight"]
    for suffix in ["ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                   "ln_2.weight", "mlp.c_fc.weight", "mlp.c_proj.weight", "mlp.c_proj.bias"]:
        assert f"transformer.h.1.{suffix}" in keys
    assert keys[-3:] == ["transformer.ln_f.weight", "transformer.ln_f.bias", "lm_head.weight"]
    assert model.lm_head.weight is model.transformer.wte.weight       # tied: counted once
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())


def test_gpt2_init_statistics():
    tg.manual_seed(0)
    model = GPT(GPTConfig.gpt2(vocab_size=500, block_size=64, n_layer=4, n_head=4, n_embd=128))
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    assert sd["transformer.wte.weight"].std() == pytest.approx(0.02, rel=0.05)
    assert sd["transformer.h.0.mlp.c_fc.weight"].std() == pytest.approx(0.02, rel=0.05)
    assert sd["transformer.h.0.mlp.c_proj.weight"].std() == pytest.approx(0.02 / np.sqrt(8), rel=0.05)
    assert np.all(sd["transformer.h.0.attn.c_attn.bias"] == 0)


def test_same_seed_same_model():
    tg.manual_seed(5)
    a = GPT(small_configs()["gpt2"])
    tg.manual_seed(5)
    b = GPT(small_configs()["gpt2"])
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())


@pytest.mark.skipif(torch is None, reason="torch is not installed (optional cross-check)")
@pytest.mark.parametrize("name", ["seed_mini", "gpt2"])
def test_whole_model_parity_with_pytorch_float64(name, rng):
    from tinygrad_lm.crosscheck.torch_gpt import from_ours
    config = small_configs()[name]
    tg.manual_seed(2)
    model = GPT(config).double()
    ref = from_ours(model)
    idx = rng.integers(0, config.vocab_size, (3, config.block_size))
    targets = rng.integers(0, config.vocab_size, (3, config.block_size))
    logits, loss = model(idx, targets)
    loss.backward()
    t_logits, t_loss = ref(torch.tensor(idx), torch.tensor(targets))
    t_loss.backward()
    np.testing.assert_allclose(logits.numpy(), t_logits.detach().numpy(), rtol=1e-9, atol=1e-12)
    assert loss.item() == pytest.approx(t_loss.item(), rel=1e-12)
    t_params = dict(ref.named_parameters())
    for pname, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, t_params[pname].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=pname)


@pytest.mark.parametrize("name", sorted(small_configs()))
def test_future_tokens_never_change_earlier_logits(name, rng, device):
    tg.manual_seed(0)
    model = GPT(small_configs()[name]).double().to(device)
    idx = rng.integers(0, 13, (2, 8))
    base, _ = model(backend.to_device(idx, device))
    for t in range(7):
        changed = idx.copy()
        changed[:, t + 1:] = (changed[:, t + 1:] + 1 + rng.integers(0, 11, changed[:, t + 1:].shape)) % 13
        out, _ = model(backend.to_device(changed, device))
        np.testing.assert_array_equal(out.numpy()[:, :t + 1], base.numpy()[:, :t + 1])
        assert not np.allclose(out.numpy()[:, t + 1:], base.numpy()[:, t + 1:])


@pytest.mark.parametrize("name", sorted(small_configs()))
def test_whole_model_gradcheck(name, rng):
    tg.manual_seed(0)
    model = GPT(small_configs()[name]).double()
    idx = rng.integers(0, 13, (2, 5))
    targets = rng.integers(0, 13, (2, 5))
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach().requires_grad_() for _, p in model.named_parameters()]

    def loss_fn(*ps):
        return nn.functional_call(model, dict(zip(names, ps)), idx, targets)[1]
    report = gradcheck(loss_fn, params, n_directions=3)
    assert report["mode"] == "directions"


def test_bad_inputs_get_clear_errors():
    model = GPT(small_configs()["gpt2"])
    ok = np.zeros((2, 8), dtype=np.int64)
    with pytest.raises(ValueError, match="9 tokens is longer than block_size=8"):
        model(np.zeros((2, 9), dtype=np.int64))
    with pytest.raises(ValueError, match=r"targets of shape \(2, 7\) do not match idx of shape \(2, 8\)"):
        model(ok, np.zeros((2, 7), dtype=np.int64))
    with pytest.raises(IndexError, match=r"token ids, vocab_size=13\): index 13 is out of range for size 13"):
        model(np.full((1, 3), 13))
    with pytest.raises(IndexError, match=r"index -2 is out of range"):
        model(np.full((1, 3), -2))
    with pytest.raises(TypeError, match=r"idx \(token ids, vocab_size=13\) must hold integer ids, got dtype float64"):
        model(np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"shape \(batch, time\)"):
        model(np.zeros(3, dtype=np.int64))


def test_state_dict_from_another_config_is_refused():
    a = GPT(small_configs()["gpt2"])
    b = GPT(GPTConfig.gpt2(vocab_size=13, block_size=8, n_layer=3, n_head=2, n_embd=8))
    with pytest.raises(KeyError, match=r"unexpected keys: transformer.h.2"):
        a.load_state_dict(b.state_dict())
    c = GPT(GPTConfig.gpt2(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16))
    with pytest.raises(KeyError, match=r"shape mismatch: transformer.wte.weight: checkpoint \(13, 16\) vs model \(13, 8\)"):
        a.load_state_dict(c.state_dict())


def test_config_validation():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=10, n_head=3)
    with pytest.raises(ValueError, match="pos_encoding"):
        GPTConfig(pos_encoding="alibi")
    with pytest.raises(ValueError, match=r"dropout=1.0 must be in \[0, 1\)"):
        GPTConfig(dropout=1.0)


def test_attention_maps_shape():
    model = GPT(small_configs()["seed_mini"])
    maps = model.attention_maps(np.zeros((1, 5), dtype=np.int64))
    assert maps.shape == (2, 1, 2, 5, 5)
    np.testing.assert_allclose(maps.sum(-1), 1.0, rtol=1e-5)
