"""gradient_flow.py: dL/dx_t is what it says (finite differences through the model's own forward),
and the measured decay: a tanh RNN's gradient vanishes geometrically with the distance, attention's
does not; and the chain of ops that must run one after another grows with T for an RNN only."""
import dataclasses

import numpy as np
import pytest

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm.teaching.gradient_flow import (comparison_configs, comparison_models, gradient_by_distance,
    input_gradients, sequential_depth)
from tinygrad_lm.models import GPT, RNNLM, GPTConfig, RNNLMConfig

SMALL = {"tanh RNN": RNNLMConfig(vocab_size=12, block_size=7, cell="rnn_tanh", n_embd=4, n_hidden=6),
         "LSTM": RNNLMConfig(vocab_size=12, block_size=7, cell="lstm", n_embd=4, n_hidden=5, n_layer=2),
         "GPT": GPTConfig.seed_mini(vocab_size=12, block_size=7, n_layer=1, n_head=2, n_embd=4)}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_input_gradients_are_the_loss_derivative_through_the_models_own_forward(name):
    """With distinct tokens, x_t is row idx[t] of the embedding table: perturbing that row in
    float64 and running model.forward (not the seam gradient_flow uses) gives dL/dx_t."""
    tg.manual_seed(4)
    config = SMALL[name]
    model = (GPT if isinstance(config, GPTConfig) else RNNLM)(config).double()
    idx, targets = np.array([[3, 7, 1, 0, 9, 4, 11]]), np.array([[0, 0, 0, 0, 0, 0, 5]])
    table = (model.embedding if isinstance(model, RNNLM) else model.transformer.wte).weight.data

    def loss():
        with tg.no_grad():
            logits, _ = model(idx)
            return F.cross_entropy(logits[:, -1], targets[:, -1], reduction="sum").item()

    grads = input_gradients(model, idx, targets)[0]
    eps = 1e-6
    for t, token in enumerate(idx[0]):
        numeric = np.zeros(table.shape[1])
        for j in range(table.shape[1]):
            keep = table[token, j]
            table[token, j] = keep + eps
            up = loss()
            table[token, j] = keep - eps
            down = loss()
            table[token, j] = keep
            numeric[j] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grads[t], numeric, rtol=1e-5, atol=1e-9, err_msg=f"position {t}")
    assert all(p.grad is None for p in model.parameters())      # only dL/dx was computed


def _measure(name, seed, T=40, batch=8):
    tg.manual_seed(seed)
    model = comparison_models(vocab_size=65, block_size=T)[name]
    rng = np.random.default_rng(seed)
    idx, targets = rng.integers(0, 65, (batch, T)), rng.integers(0, 65, (batch, T))
    return gradient_by_distance(model, idx, targets)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_tanh_rnn_forgets_geometrically_and_attention_does_not(seed):
    """PyTorch's initialisation gives W_hh a spectral radius near 1/sqrt(3): each step back
    multiplies the gradient by at most about that, so 29 steps cost many orders of magnitude.
    Attention reaches position T-31 in one step: its gradient stays within a small factor."""
    g = _measure("tanh RNN", seed)
    assert g.shape == (40,) and np.all(g > 0)
    assert g[30] < 1e-4 * g[1]
    assert g[1] > g[10] > g[20] > g[30]                      # and it falls all the way
    a = _measure("attention (1 layer)", seed)
    assert a[30] > 0.05 * a[1]


def test_comparison_models_are_of_similar_size():
    sizes = {name: c.num_parameters_estimate() for name, c in comparison_configs(65, 64).items()}
    assert max(sizes.values()) < 1.02 * min(sizes.values()), sizes


def _depth(config, T):
    tg.manual_seed(0)
    config = dataclasses.replace(config, block_size=T)
    model = (GPT if isinstance(config, GPTConfig) else RNNLM)(config)
    x = np.arange(2 * T).reshape(2, T) % config.vocab_size
    _, loss = model(x, x)
    return sequential_depth(loss)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_sequential_chain_grows_with_T_for_an_rnn_only(name):
    """Built from composite ops, an RNN adds the same few ops per time step to the longest chain
    (T steps one after another); attention's chain does not depend on T; a fused RNN op is one."""
    config = SMALL[name]
    if isinstance(config, GPTConfig):
        assert _depth(config, 3) == _depth(config, 7) > 10
        return
    composite = dataclasses.replace(config, fused=False)
    d3, d5, d7 = (_depth(composite, T) for T in (3, 5, 7))
    assert d7 - d5 == d5 - d3 > 2 * config.n_layer            # linear in T, a few ops a step
    assert _depth(config, 7) < d3                              # fused: one op per layer
