"""A recurrent language model: what language models were before attention.

    idx (B, T) -> embedding (B, T, n_embd) -> n_layer x LSTM / GRU / RNN (B, T, n_hidden) -> head -> logits (B, T, V)

Each position sees the past only through a fixed-size state (h, and the LSTM's cell c) that the
recurrent layer carries from token to token: no window to crop, no cache that grows, but also T
steps that must run one after another (attention runs all T positions at once). The layers are
``nn.LSTM``, ``nn.GRU`` and ``nn.RNN`` with PyTorch's API and parameter names, so this model's
state_dict loads into the same model written with torch.nn (``rnn.weight_ih_l0`` ...).

It trains, resumes and samples through the same loop and commands as the GPT
(``python -m tinygrad_lm train --preset char-lstm``); sampling carries the state one token at a
time (``forward_with_state``) instead of running the whole text again for every new token.
"""
from dataclasses import dataclass

from .. import nn
from ..errors import ConfigError
from .generation import generate
from ..nn import functional as F
from .base import ModelConfig, check_token_ids
from .family import Family

# how many gate blocks each cell stacks in its weight matrices (PyTorch's layout: rows gate by gate)
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


@dataclass
class RNNLMConfig(ModelConfig):
    vocab_size: int = 65
    block_size: int = 32       # the training windows' length; sampling carries the state past it
    cell: str = "lstm"         # "lstm", "gru", "rnn_tanh" or "rnn_relu"
    n_embd: int = 64           # width of the token embedding (the recurrent layer's input)
    n_hidden: int = 189        # hidden_size of the recurrent layer
    n_layer: int = 1           # stacked recurrent layers (num_layers)
    dropout: float = 0.0       # on the embedding, between stacked layers and before the head
    fused: bool = True         # one hand-derived BPTT op per layer (False: autograd through the unrolled steps)

    def validate(self):
        problems = []
        if self.cell not in GATES:
            problems.append(f"cell={self.cell!r} is not one of {tuple(GATES)}")
        if min(self.vocab_size, self.block_size, self.n_embd, self.n_hidden, self.n_layer) < 1:
            problems.append("vocab_size, block_size, n_embd, n_hidden and n_layer must be positive")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout={self.dropout} must be in [0, 1)")
        if problems:
            raise ConfigError("RNNLMConfig: " + "; ".join(problems))

    def iter_parameter_shapes(self):
        """(state_dict name, shape) of each parameter of RNNLM(self), without building it."""
        rows = GATES[self.cell] * self.n_hidden
        yield "embedding.weight", (self.vocab_size, self.n_embd)
        for layer in range(self.n_layer):
            yield f"rnn.weight_ih_l{layer}", (rows, self.n_embd if layer == 0 else self.n_hidden)
            yield f"rnn.weight_hh_l{layer}", (rows, self.n_hidden)
            yield f"rnn.bias_ih_l{layer}", (rows,)
            yield f"rnn.bias_hh_l{layer}", (rows,)
        yield "head.weight", (self.vocab_size, self.n_hidden)
        yield "head.bias", (self.vocab_size,)

    def num_parameters_estimate(self):
        g, E, H, V, L = GATES[self.cell], self.n_embd, self.n_hidden, self.vocab_size, self.n_layer
        recurrent = g * H * (E + H + 2) + (L - 1) * g * H * (2 * H + 2)
        return V * E + recurrent + H * V + V


class RNNLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        config.validate()                    # fields may have been assigned since the config was made
        config.check_memory()
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        kwargs = dict(num_layers=c.n_layer, batch_first=True, dropout=c.dropout if c.n_layer > 1 else 0.0,
                      fused=c.fused)
        if c.cell == "lstm":
            self.rnn = nn.LSTM(c.n_embd, c.n_hidden, **kwargs)
        elif c.cell == "gru":
            self.rnn = nn.GRU(c.n_embd, c.n_hidden, **kwargs)
        else:
            self.rnn = nn.RNN(c.n_embd, c.n_hidden, nonlinearity=c.cell[4:], **kwargs)
        self.head = nn.Linear(c.n_hidden, c.vocab_size)

    def forward(self, idx, targets=None):
        """idx: (B, T) token ids -> (logits (B, T, vocab_size), loss or None). Every window starts
        from a zero state, as the training batches are independent windows."""
        logits, _ = self.forward_with_state(idx)
        loss = None
        if targets is not None:
            target_data = self._check_ids(targets, "targets", ignore=-100)
            if tuple(target_data.shape) != tuple(logits.shape[:2]):
                raise ValueError(f"RNNLM: targets of shape {tuple(target_data.shape)} do not match "
                                 f"idx of shape {tuple(logits.shape[:2])}")
            B, T = target_data.shape
            loss = F.cross_entropy(logits.reshape(B * T, -1), target_data.reshape(-1), check_indices=False)
        return logits, loss

    def forward_with_state(self, idx, state=None):
        """Run idx (B, T) on from `state` (None: zeros): (logits (B, T, V), the state after the
        last token). The state is the recurrent layer's h_n, or (h_n, c_n) for an LSTM, each
        (n_layer, B, n_hidden): feeding a text in two pieces, the second from the first's state,
        gives the same logits as feeding it whole. Generation steps one token at a time this way."""
        x = self.drop(self.embedding(self._check_ids(idx, "idx")))
        out, state = self.rnn(x, state)
        return self.head(self.drop(out)), state

    def _check_ids(self, ids, what, ignore=None):
        """Token ids (B, T) in the vocabulary, checked before they are copied to the model's device."""
        return check_token_ids(ids, self.config.vocab_size, f"RNNLM: {what} (token ids, vocab_size="
                               f"{self.config.vocab_size})", self.device, ignore=ignore)

    @property
    def device(self):
        return self.head.weight.device

    def flops_per_token(self):
        """Forward + backward FLOPs per token: 6 per weight of the matrices every token meets (the
        recurrent layers and the head; the embedding is a lookup)."""
        return 6 * (self.num_parameters() - self.embedding.weight.numel())

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, seed=None, use_cache=True):
        """Continue `idx`; use_cache=False re-runs the whole text for every token (same tokens, slower)."""
        return generate(self, idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                        seed=seed, use_cache=use_cache)


FAMILY = Family("rnnlm", RNNLM, RNNLMConfig, commands=("sample", "genome-report"),
                torch_twin="tinygrad_lm.crosscheck.torch_rnnlm:bench_twin", bench_goal="goal <= 1.5, done at <= 2")
