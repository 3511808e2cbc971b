"""models/rnnlm.py written with torch.nn (embedding -> nn.LSTM / nn.GRU / nn.RNN -> Linear), for
the parity test and the step-time benchmark. Parameter names match, so a state_dict moves as is."""

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as TF


class RNNLM(tnn.Module):
    def __init__(self, config):
        super().__init__()
        c = self.config = config
        self.embedding = tnn.Embedding(c.vocab_size, c.n_embd)
        self.drop = tnn.Dropout(c.dropout)
        kwargs = dict(num_layers=c.n_layer, batch_first=True, dropout=c.dropout if c.n_layer > 1 else 0.0)
        if c.cell == "lstm":
            self.rnn = tnn.LSTM(c.n_embd, c.n_hidden, **kwargs)
        elif c.cell == "gru":
            self.rnn = tnn.GRU(c.n_embd, c.n_hidden, **kwargs)
        else:
            self.rnn = tnn.RNN(c.n_embd, c.n_hidden, nonlinearity=c.cell[4:], **kwargs)
        self.head = tnn.Linear(c.n_hidden, c.vocab_size)

    def forward(self, idx, targets=None, state=None):
        out, _ = self.rnn(self.drop(self.embedding(idx)), state)
        logits = self.head(self.drop(out))
        loss = None if targets is None else TF.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss


def from_ours(model):
    """A torch RNNLM holding a copy of our RNNLM's weights (float64 when ours is)."""
    state = {k: torch.tensor(np.array(v.numpy())) for k, v in model.state_dict().items()}
    theirs = RNNLM(model.config).to(next(iter(state.values())).dtype)
    theirs.load_state_dict(state)
    return theirs


def bench_twin(config, device):
    """The benchmark's PyTorch twin (models/family.py ``torch_twin``): forward(x, y) -> (logits, loss)."""
    return RNNLM(config).to(device)
