"""Forward hooks (Module.register_forward_hook, as PyTorch's) and the attention capture built on
them (nn.capture_attention): every attention module hands its weights to a hook on its
``attn_probs`` child, and computes them only while someone looks."""
import numpy as np
import pytest

import tinygrad_lm as tg
from tinygrad_lm import nn
from tinygrad_lm.models import GPT, GPTConfig
from tinygrad_lm.tensor import no_grad


def test_a_hook_sees_module_inputs_and_output_and_can_be_removed(rng):
    layer = nn.Linear(3, 2)
    seen = []
    handle = layer.register_forward_hook(lambda m, args, out: seen.append((m, args, out)))
    x = tg.Tensor(rng.standard_normal((4, 3)))
    y = layer(x)
    assert len(seen) == 1 and seen[0][0] is layer and seen[0][1][0] is x and seen[0][2] is y
    handle.remove()
    layer(x)
    assert len(seen) == 1                      # removed: not called again
    handle.remove()                            # removing twice is harmless, as PyTorch's


def test_a_hook_that_returns_a_value_replaces_the_output(rng):
    layer = nn.Linear(3, 2)
    x = tg.Tensor(rng.standard_normal((4, 3)))
    plain = layer(x).numpy()
    with layer.register_forward_hook(lambda m, args, out: out * 2):
        np.testing.assert_allclose(layer(x).numpy(), 2 * plain)
    np.testing.assert_allclose(layer(x).numpy(), plain)     # the handle's block ended: the hook is off


def test_hooks_run_in_registration_order_and_a_non_callable_is_refused():
    layer, order = nn.ReLU(), []
    layer.register_forward_hook(lambda m, a, o: order.append(1))
    layer.register_forward_hook(lambda m, a, o: order.append(2))
    layer(tg.Tensor(np.ones(2)))
    assert order == [1, 2]
    with pytest.raises(TypeError, match="callable"):
        layer.register_forward_hook("not a function")


def _copy_heads(mha, csa):
    """Put the per-head modules' weights into the packed CausalSelfAttention (q|k|v rows)."""
    w = np.concatenate([np.concatenate([getattr(h, part).weight.numpy() for h in mha.heads])
                        for part in ("query", "key", "value")])
    csa.c_attn.weight.data[...] = w
    csa.c_attn.bias.data[...] = 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_causal_attention_hands_the_same_weights_to_a_hook(seed):
    """The seed's per-head modules (one by one and batched) and GPT-2's packed attention, with the
    same weights: the weights captured agree, each row sums to 1 and none looks ahead."""
    rng = np.random.default_rng(seed)
    mha = nn.MultiHeadAttention(8, 2, block_size=6, batched=True)
    csa = nn.CausalSelfAttention(8, 2, block_size=6)
    _copy_heads(mha, csa)
    x = tg.Tensor(rng.standard_normal((2, 5, 8)))
    mha.double(), csa.double()
    got = []
    for module, run in ((mha, mha.forward), (mha, mha.forward_per_head), (csa, csa.forward)):
        with nn.capture_attention(module) as maps, no_grad():
            run(x)
        got.append(maps[""])
    for w in got[1:]:
        np.testing.assert_allclose(w, got[0], rtol=1e-12, atol=1e-14)
    w = got[0]
    assert w.shape == (2, 2, 5, 5)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-12)
    assert np.all(np.triu(w, 1) == 0)


def test_looking_changes_nothing_and_costs_nothing_after_the_block(rng):
    """With the capture the attention takes its explicit path; its output is the fused path's.
    After the block no hook is left, so the fused op runs again."""
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8)).double().eval()
    idx = rng.integers(0, 11, (2, 6))
    with no_grad():
        plain = model(idx)[0].numpy()
        with nn.capture_attention(model) as maps:
            looked = model(idx)[0].numpy()
    np.testing.assert_allclose(looked, plain, rtol=1e-10, atol=1e-12)
    assert list(maps) == ["transformer.h.0.attn", "transformer.h.1.attn"]
    assert all(w.shape == (2, 2, 6, 6) for w in maps.values())
    assert not any(m.wanted for m in model.modules() if isinstance(m, nn.AttentionProbs))
    np.testing.assert_array_equal(model.attention_maps(idx), np.stack(list(maps.values())))


def test_the_capture_is_what_multihead_attention_returns_per_head(rng):
    """torch.nn.MultiheadAttention's own answer (need_weights=True, average_attn_weights=False)
    equals what the hook receives, also when the caller asks for no weights."""
    mha = nn.MultiheadAttention(8, 2, batch_first=True).double()
    q, kv = tg.Tensor(rng.standard_normal((2, 3, 8))), tg.Tensor(rng.standard_normal((2, 5, 8)))
    with no_grad():
        _, asked = mha(q, kv, kv, need_weights=True, average_attn_weights=False)
        with nn.capture_attention(mha) as maps:
            out, none = mha(q, kv, kv, need_weights=False)
    assert none is None
    np.testing.assert_allclose(maps[""], asked.numpy(), rtol=1e-12)


def test_the_hooks_are_removed_when_the_block_raises(rng):
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
    with pytest.raises(RuntimeError):
        with nn.capture_attention(model):
            raise RuntimeError("stop")
    assert not any(m.wanted for m in model.modules() if isinstance(m, nn.AttentionProbs))
