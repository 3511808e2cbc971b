"""PyTorch implementations of our models, written independently here for parity tests and
benchmarks. Parameter names match tinygrad_lm's, so a state_dict moves between them as is."""

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as TF


class Head(tnn.Module):
    def __init__(self, n_embd, head_size, scale, bias=False):
        super().__init__()
        self.key = tnn.Linear(n_embd, head_size, bias=bias)
        self.query = tnn.Linear(n_embd, head_size, bias=bias)
        self.value = tnn.Linear(n_embd, head_size, bias=bias)
        self.scale = scale

    def forward(self, x):
        T = x.shape[1]
        k, q, v = self.key(x), self.query(x), self.value(x)
        wei = q @ k.transpose(-2, -1) * self.scale
        wei = wei.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        return wei.softmax(-1) @ v


class MultiHeadAttention(tnn.Module):
    def __init__(self, n_embd, n_head, scale, qkv_bias=False, proj_bias=True):
        super().__init__()
        self.heads = tnn.ModuleList([Head(n_embd, n_embd // n_head, scale, qkv_bias) for _ in range(n_head)])
        self.c_proj = tnn.Linear(n_embd, n_embd, bias=proj_bias)

    def forward(self, x):
        return self.c_proj(torch.cat([h(x) for h in self.heads], dim=-1))


class CausalSelfAttention(tnn.Module):
    def __init__(self, n_embd, n_head, scale=None, bias=True):
        super().__init__()
        self.c_attn = tnn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = tnn.Linear(n_embd, n_embd, bias=bias)
        self.n_head = n_head
        self.scale = scale

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = TF.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(tnn.Module):
    def __init__(self, n_embd, activation, bias=True):
        super().__init__()
        self.c_fc = tnn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.c_proj = tnn.Linear(4 * n_embd, n_embd, bias=bias)
        self.activation = activation

    def forward(self, x):
        h = self.c_fc(x)
        h = TF.relu(h) if self.activation == "relu" else TF.gelu(h, approximate="tanh" if self.activation == "gelu_tanh" else "none")
        return self.c_proj(h)


class Block(tnn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1 = tnn.LayerNorm(c.n_embd, bias=c.bias)
        scale = c.n_embd ** -0.5 if c.attn_scale == "embd" else None
        qkv_bias = c.bias if c.qkv_bias is None else c.qkv_bias
        if c.attention == "heads":
            self.attn = MultiHeadAttention(c.n_embd, c.n_head, scale or (c.n_embd // c.n_head) ** -0.5, qkv_bias, c.bias)
        else:
            self.attn = CausalSelfAttention(c.n_embd, c.n_head, scale, c.bias)
        self.ln_2 = tnn.LayerNorm(c.n_embd, bias=c.bias)
        self.mlp = MLP(c.n_embd, c.activation, c.bias)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(tnn.Module):
    """Learned positions only (the two architectures the parity tests cover)."""

    def __init__(self, c):
        super().__init__()
        self.config = c
        self.transformer = tnn.ModuleDict(dict(
            wte=tnn.Embedding(c.vocab_size, c.n_embd), wpe=tnn.Embedding(c.block_size, c.n_embd),
            h=tnn.ModuleList([Block(c) for _ in range(c.n_layer)]), ln_f=tnn.LayerNorm(c.n_embd, bias=c.bias)))
        self.lm_head = tnn.Linear(c.n_embd, c.vocab_size, bias=c.lm_head_bias)
        if c.tie_weights:
            self.lm_head.weight = self.transformer.wte.weight

    def forward(self, idx, targets=None):
        T = idx.shape[1]
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(T))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None if targets is None else TF.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))
        return logits, loss


def from_ours(model, dtype=torch.float64):
    """A torch GPT holding the same weights as our GPT `model`."""
    ref = GPT(model.config).to(dtype)
    state = {k: torch.tensor(np.asarray(v.numpy()), dtype=dtype) for k, v in model.state_dict().items()}
    ref.load_state_dict(state, strict=True)
    return ref


def bench_twin(config, device):
    """The benchmark's PyTorch twin (models/family.py ``torch_twin``): forward(x, y) -> (logits, loss).
    The seed's per-head attention is the same function as batched heads: PyTorch runs it batched.
    With GPT-2's init (ours uses it; this file keeps PyTorch's defaults, whose N(0, 1) tied
    embedding starts the loss near 80) the step time is the same and the printed loss comparable."""
    import dataclasses
    model = GPT(dataclasses.replace(config, attention="batched")).to(device)
    if getattr(config, "init", None) == "gpt2":
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.dim() >= 2:
                    std = 0.02 / (2 * config.n_layer) ** 0.5 if name.endswith("c_proj.weight") else 0.02
                    p.normal_(0.0, std)
                elif name.endswith("bias"):
                    p.zero_()
    return model
