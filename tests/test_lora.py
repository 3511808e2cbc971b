"""LoRA (nn/lora.py, ops/lora.py, io/peft.py): the fused op == composite == finite differences
(float64, random upstream gradients, cpu and strict) with no gradient for the frozen weight;
get_peft_model leaves only the adapters trainable; merge == unmerged; peft's LoRA layer gives the
same outputs and gradients, and adapters load both ways in peft's format."""
import importlib.util

import numpy as np
import pytest

import tinygrad_lm as tg
from tinygrad_lm import backend, nn
from tinygrad_lm.errors import ConfigError, PretrainedError
from tinygrad_lm.gradcheck import gradcheck
from tinygrad_lm.io.peft import load_adapter, save_adapter
from tinygrad_lm.models import LlamaConfig, LlamaForCausalLM
from tinygrad_lm.tensor import no_grad

HAS_PEFT = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "peft"))
needs_peft = pytest.mark.skipif(not HAS_PEFT, reason="needs peft: pip install torch==2.13.0 transformers peft")


def _layer(rng, bias=True, device="cpu"):
    tg.manual_seed(0)
    layer = nn.LoraLinear(nn.Linear(5, 4, bias=bias, dtype=np.float64), r=3, lora_alpha=6).to(device)
    layer.lora_B.weight.data[...] = backend.to_device(rng.standard_normal((4, 3)), device)   # B = 0 hides dA
    return layer


@pytest.mark.parametrize("bias", [True, False])
def test_fused_equals_composite_equals_finite_differences(rng, device, bias):
    layer = _layer(rng, bias, device)
    x = rng.standard_normal((2, 3, 5))
    grads = []
    for fused in (True, False):
        layer.fused = fused
        for p in layer.parameters():
            p.grad = None
        xt = tg.Tensor(backend.to_device(x, device), requires_grad=True)
        y = layer(xt)
        y.backward(backend.to_device(np.random.default_rng(5).standard_normal(y.shape), device))
        grads.append([y.numpy(), xt.grad.numpy(), layer.lora_A.weight.grad.numpy(), layer.lora_B.weight.grad.numpy()])
        assert layer.base_layer.weight.grad is None                 # frozen: no gradient made
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    layer.fused = True

    def f(x, A, B):
        layer.lora_A.weight, layer.lora_B.weight = A, B
        return layer(x)
    gradcheck(f, [tg.Tensor(backend.to_device(v, device), requires_grad=True)
                  for v in (x, layer.lora_A.weight.numpy(), layer.lora_B.weight.numpy())])


def test_only_the_adapters_train_and_merging_changes_nothing(rng):
    tg.manual_seed(1)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=31, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=12)).double()
    ids = rng.integers(0, 31, (2, 7))
    with no_grad():
        before = model(ids)[0].numpy()
    nn.get_peft_model(model, nn.LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj", "down_proj"]))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert len(trainable) == 2 * 3 * 2 and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    with no_grad():
        np.testing.assert_allclose(model(ids)[0].numpy(), before, rtol=1e-12, atol=1e-12)   # B = 0: unchanged
    for _, layer in nn.lora.lora_layers(model):
        layer.lora_B.weight.data[...] = rng.standard_normal(layer.lora_B.weight.shape) * 0.1
    with no_grad():
        adapted = model(ids)[0].numpy()
        assert not np.allclose(adapted, before)
        for _, layer in nn.lora.lora_layers(model):
            layer.merge()
        np.testing.assert_allclose(model(ids)[0].numpy(), adapted, rtol=1e-10, atol=1e-12)
        for _, layer in nn.lora.lora_layers(model):
            layer.unmerge()
        np.testing.assert_allclose(model(ids)[0].numpy(), adapted, rtol=1e-10, atol=1e-12)
        nn.merge_and_unload(model)
        assert not nn.lora.lora_layers(model)
        np.testing.assert_allclose(model(ids)[0].numpy(), adapted, rtol=1e-10, atol=1e-12)


def test_bad_configs_and_foreign_adapters_are_refused(tmp_path):
    with pytest.raises(ValueError, match="r=0 must be an integer >= 1"):
        nn.LoraConfig(r=0)
    small = dict(vocab_size=31, hidden_size=16, intermediate_size=24, num_hidden_layers=1, num_attention_heads=4,
                 max_position_embeddings=12)
    with pytest.raises(ValueError, match="no Linear named"):
        nn.get_peft_model(LlamaForCausalLM(LlamaConfig(**small)), nn.LoraConfig(target_modules=["c_attn"]))
    model = nn.get_peft_model(LlamaForCausalLM(LlamaConfig(**small)), nn.LoraConfig(r=2))
    save_adapter(model, tmp_path / "a")
    other = LlamaForCausalLM(LlamaConfig(**{**small, "hidden_size": 32}))
    names_before = [n for n, _ in other.named_parameters()]
    with pytest.raises(PretrainedError, match="has shape"):
        load_adapter(other, tmp_path / "a")
    # refused part-way (after the wrapping): the model is left as it came, plain and trainable
    assert not nn.lora_layers(other) and [n for n, _ in other.named_parameters()] == names_before
    assert all(p.requires_grad for p in other.parameters()) and not hasattr(other, "peft_config")
    with pytest.raises(PretrainedError, match="not a readable adapter config"):
        load_adapter(LlamaForCausalLM(LlamaConfig(**small)), tmp_path / "missing")


@needs_peft
def test_peft_loads_our_adapter_and_we_load_peft_s(tmp_path):
    import peft
    import torch
    from tests.test_llama import _norms_in_the_models_dtype, _share_rope_tables
    from tinygrad_lm.crosscheck.torch_llama import hf_model
    config = LlamaConfig(vocab_size=31, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=12)
    tg.manual_seed(2)
    ours = LlamaForCausalLM(config).double()
    theirs = hf_model(config, attn_implementation="sdpa").double().eval()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    _norms_in_the_models_dtype(theirs)
    nn.get_peft_model(ours, nn.LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    rng = np.random.default_rng(3)
    for _, layer in nn.lora.lora_layers(ours):                  # float32 values: the file's precision
        layer.lora_B.weight.data[...] = (rng.standard_normal(layer.lora_B.weight.shape) * 0.1).astype(np.float32)
        layer.lora_A.weight.data[...] = layer.lora_A.weight.numpy().astype(np.float32)
    save_adapter(ours, tmp_path / "ours")
    wrapped = peft.PeftModel.from_pretrained(theirs, tmp_path / "ours").double().eval()
    ids = rng.integers(0, 31, (1, 6))
    _share_rope_tables(ours, theirs)                 # float32 tables in both (test_llama.py says why)
    with no_grad(), torch.no_grad():
        np.testing.assert_allclose(ours(ids)[0].numpy(), wrapped(torch.tensor(ids)).logits.numpy(), rtol=1e-10,
                                   atol=1e-12)
    wrapped.save_pretrained(tmp_path / "theirs")
    tg.manual_seed(2)
    again = load_adapter(LlamaForCausalLM(config).double(), tmp_path / "theirs")
    _share_rope_tables(again, theirs)
    with no_grad():
        np.testing.assert_allclose(again(ids)[0].numpy(), ours(ids)[0].numpy(), rtol=1e-12, atol=1e-12)


def test_the_training_optimizer_holds_and_moves_only_the_adapters(rng):
    from tinygrad_lm.training.config import TrainConfig, make_optimizer
    tg.manual_seed(4)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=31, hidden_size=16, intermediate_size=24, num_hidden_layers=1,
                                         num_attention_heads=4, max_position_embeddings=12))
    nn.get_peft_model(model, nn.LoraConfig(r=2, target_modules="all-linear"))
    adapters = {id(p) for n, p in model.named_parameters() if ".lora_" in n}
    before = {n: p.numpy().copy() for n, p in model.named_parameters()}
    assert not any(n.startswith("lm_head.lora") for n in before)      # all-linear spares the head, as peft
    opt = make_optimizer(model, TrainConfig(learning_rate=1e-2, weight_decay=0.0))   # decay would move A
    held = [p for g in opt.param_groups for p in g["params"]]
    assert held and {id(p) for p in held} == adapters            # the flat buffer: the adapters alone
    assert sum(f.data.size for f in opt.flat) == sum(f.grad.size for f in opt.flat) == sum(p.numel() for p in held)
    ids = rng.integers(0, 31, (2, 6))
    _, loss = model(ids, ids)
    loss.backward()
    opt.step()
    moved = {n for n, p in model.named_parameters() if not np.array_equal(p.numpy(), before[n])}
    assert moved and all(".lora_B." in n for n in moved)         # B = 0 at the start: the first step moves B only
    for p in model.parameters():
        p.requires_grad = False
    with pytest.raises(ConfigError, match="nothing to train"):
        make_optimizer(model, TrainConfig())


def test_a_frozen_weight_s_gradient_is_never_computed(rng):
    """needs_input_grad (PyTorch's name): Linear and the LoRA op skip the products nobody asked
    for (a LoRA model's frozen head: a (vocab, N) @ (N, hidden) product per step); the gradients
    that are asked for are unchanged."""
    import tinygrad_lm.nn.functional as F
    w = rng.standard_normal((7, 5))
    x = tg.Tensor(rng.standard_normal((2, 3, 5)), requires_grad=True)
    frozen = tg.Tensor(w)
    y = F.linear(x, frozen)
    assert y._ctx.needs_input_grad == (True, False)
    g = rng.standard_normal(y.shape)
    g_x, g_w = y._ctx.backward(g)
    assert g_w is None
    np.testing.assert_allclose(g_x, g @ w, rtol=1e-12)
    trainable = tg.Tensor(w, requires_grad=True)
    both = F.linear(tg.Tensor(x.numpy()), trainable, tg.Tensor(np.ones(7), requires_grad=True))
    g_x, g_w, g_b = both._ctx.backward(g)
    assert g_x is None and np.allclose(g_w, g.reshape(-1, 7).T @ x.numpy().reshape(-1, 5)) and np.allclose(
        g_b, g.reshape(-1, 7).sum(0))
    layer = _layer(rng)
    out = layer(tg.Tensor(x.numpy()))                         # an input that needs no gradient
    grads = out._ctx.backward(g[..., :4])
    assert grads[0] is None and grads[1] is None and grads[2] is not None and grads[3] is not None
