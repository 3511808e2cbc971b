"""Vanishing gradients, measured: how much the loss at the last position feels each earlier input.

    x_t = the token embedding at position t,  L = cross-entropy of the prediction made at the last
    position T-1,  g(d) = ||dL/dx_t|| at distance d = T-1-t (d = 0: the token being read).

In a tanh RNN, dL/dx_t goes through d steps of h_{s+1} = tanh(W_hh h_s + ...), each multiplying it
by diag(1 - h^2) W_hh: with the spectral radius of W_hh below 1 (PyTorch's initialisation gives
about 1/sqrt(3)) g(d) shrinks geometrically, and the model cannot learn what lies far back. An
LSTM's cell state carries the gradient through the forget gate alone, which training can push
towards 1. Attention reaches every position in one step: g(d) does not decay with d.

    from tinygrad_lm.teaching.gradient_flow import gradient_by_distance, comparison_models
    models = comparison_models(vocab_size=65, block_size=64)      # tanh RNN, LSTM, 1-layer GPT
    g = gradient_by_distance(models["tanh RNN"], idx, targets)     # (T,), g[d] for d = 0..T-1
    sequential_depth(loss)                                         # ops one after another, to the loss
"""
import numpy as np

from .. import backend, optim
from ..data.text import CausalLMBatches
from ..models import GPT, RNNLM, GPTConfig, RNNLMConfig
from ..nn import eval_mode, functional as F
from ..tensor import Tensor, graph_inputs, topological_order


def _last_logits(model, x):
    """The logits at the last position (B, V), from token embeddings x (B, T, C) given directly
    (so that x can be a leaf whose gradient we read). The same computation as model.forward."""
    if isinstance(model, RNNLM):
        out, _ = model.rnn(model.drop(x))
        return model.head(model.drop(out[:, -1]))
    if isinstance(model, GPT):
        tr, T = model.transformer, x.shape[1]
        if model.config.pos_encoding != "rotary":
            x = x + tr.wpe(T, 0)
        x = tr.drop(x)
        for block in tr.h:
            x = block(x)
        return model.lm_head(tr.ln_f(x[:, -1:]))[:, 0]
    raise TypeError(f"gradient_by_distance: no embedding seam for {type(model).__name__} (RNNLM or GPT)")


def _embedding_table(model):
    return model.embedding.weight if isinstance(model, RNNLM) else model.transformer.wte.weight


def input_gradients(model, idx, targets):
    """dL/dx (B, T, C) as a NumPy array, for L = the summed cross-entropy of each row's last
    prediction against targets[:, -1] (summed, so each row's gradient is its own, not 1/B of it).
    The model runs in eval mode (no dropout) and its parameters' gradients are left untouched."""
    idx, targets = np.asarray(idx, dtype=np.int64), np.asarray(targets, dtype=np.int64)
    table = _embedding_table(model)
    x = Tensor(table.data[backend.to_device(idx, model.device)], requires_grad=True)
    saved = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in saved:                       # only dL/dx is wanted: no parameter gradients
            p.requires_grad = False
        with eval_mode(model):
            logits = _last_logits(model, x)
            loss = F.cross_entropy(logits, backend.to_device(targets[:, -1], model.device), reduction="sum")
            loss.backward()
    finally:
        for p, flag in saved:
            p.requires_grad = flag
    return backend.to_numpy(x.grad.data)


def gradient_by_distance(model, idx, targets):
    """g[d] = the mean over the batch of ||dL/dx_t||, t = T-1-d: (T,) NumPy array, g[0] the last
    token's own embedding, g[T-1] the first's."""
    grads = input_gradients(model, idx, targets)            # (B, T, C)
    norms = np.sqrt((grads.astype(np.float64) ** 2).sum(-1))  # (B, T)
    return norms.mean(0)[::-1].copy()


def sequential_depth(output):
    """The number of ops on the longest dependency chain of the graph that ends in `output`: work
    that must run one op after another, however many processors there are. Built from composite
    ops (RNNLMConfig(fused=False)), an RNN's chain grows by a few ops per time step; a GPT's does
    not grow with T at all (a fused op counts as one, whatever it loops over inside)."""
    depth = {}
    for node in topological_order(output):
        inputs = graph_inputs(node._ctx) if node._ctx is not None else []
        depth[id(node)] = 0 if node._ctx is None else 1 + max(
            (depth[id(i)] for i in inputs if i.requires_grad), default=0)
    return depth[id(output)]


def comparison_models(vocab_size=65, block_size=64):
    """Three models of about 62k parameters that read the same windows: a tanh RNN, an LSTM (both
    embedding 64 -> one recurrent layer -> head) and a one-layer GPT (the atpesc model with one
    block). Built in PyTorch's default initialisation; seed with tinygrad_lm.manual_seed first."""
    configs = comparison_configs(vocab_size, block_size)
    return {name: (GPT if isinstance(c, GPTConfig) else RNNLM)(c) for name, c in configs.items()}


def comparison_configs(vocab_size=65, block_size=64):
    return {"tanh RNN": RNNLMConfig(vocab_size=vocab_size, block_size=block_size, cell="rnn_tanh", n_embd=64,
                                    n_hidden=184),
            "LSTM": RNNLMConfig(vocab_size=vocab_size, block_size=block_size, cell="lstm", n_embd=64, n_hidden=86),
            "attention (1 layer)": GPTConfig.seed_mini(vocab_size=vocab_size, block_size=block_size, n_layer=1,
                                                       n_head=4, n_embd=64)}


def train_briefly(model, tokens, steps, batch_size=16, lr=1e-3, seed=0):
    """A short AdamW training on causal windows of `tokens` (the model's block_size): enough to
    see how training changes the gradient's reach. Returns the last loss."""
    batches = CausalLMBatches(tokens, model.config.block_size, batch_size, seed=seed)
    opt = optim.AdamW(model.parameters(), lr=lr)
    model.train()
    loss = None
    for _ in range(steps):
        x, y = batches.next()
        _, loss = model(backend.to_device(x, model.device), backend.to_device(y, model.device))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return None if loss is None else loss.item()
