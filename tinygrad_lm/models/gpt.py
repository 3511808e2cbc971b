"""GPT: the model in one file.

    idx (B, T) -> token embedding + position -> n_layer x Block -> LayerNorm -> head -> logits (B, T, V)
    Block:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))        (pre-LayerNorm, residual stream)

One ``GPTConfig`` expresses both models this project cares about:
- ``GPTConfig.seed_mini(vocab_size)``: the tutorial's small character-level GPT, exactly (per-head
  attention without qkv bias scaled by n_embd**-0.5, ReLU MLP, untied head with bias, learned
  positions, PyTorch default init; 209,729 parameters for vocab 65);
- ``GPTConfig.gpt2(...)``: GPT-2 (fused qkv with bias, tanh GELU, tied head, GPT-2 init), with
  state_dict keys named as GPT-2/nanoGPT (``transformer.h.0.attn.c_attn.weight``...).
"""
from dataclasses import dataclass

import numpy as np

from ..io import hf
from .. import nn
from ..errors import ConfigError, PretrainedError
from .generation import generate
from ..nn import functional as F
from ..nn.attention import cache_length
from ..tensor import no_grad
from .base import ModelConfig, check_token_ids
from .family import Family


@dataclass
class GPTConfig(ModelConfig):
    vocab_size: int = 50304
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True               # biases in Linear layers and LayerNorms
    # --- what the variants need
    attention: str = "batched"      # "batched" (CausalSelfAttention) or "heads" (MultiHeadAttention)
    attn_scale: str = "head"        # scores * head_size**-0.5 ("head") or n_embd**-0.5 ("embd", the seed's)
    qkv_bias: bool = None           # None: same as `bias`
    activation: str = "gelu_tanh"   # "gelu_tanh" (GPT-2), "gelu" (exact) or "relu" (the seed's)
    mlp_ratio: int = 4
    tie_weights: bool = True        # lm_head.weight is transformer.wte.weight (GPT-2)
    lm_head_bias: bool = False
    pos_encoding: str = "learned"   # "learned", "sinusoidal" or "rotary"
    init: str = "gpt2"              # "gpt2" (N(0, 0.02), scaled residual projections) or "pytorch"
    layer_norm_eps: float = 1e-5
    fused: bool = True              # fused attention op (False: the composite of primitives)

    def validate(self):
        """Raise ConfigError naming every setting that is out of range (also after fields were assigned)."""
        problems = []
        if self.n_head >= 1 and self.n_embd % self.n_head:              # (n_head 0: said below)
            problems.append(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        for name, allowed in (("attention", ("batched", "heads")), ("attn_scale", ("head", "embd")),
                              ("activation", ("gelu_tanh", "gelu", "relu")),
                              ("pos_encoding", ("learned", "sinusoidal", "rotary")), ("init", ("gpt2", "pytorch"))):
            if getattr(self, name) not in allowed:
                problems.append(f"{name}={getattr(self, name)!r} is not one of {allowed}")
        if min(self.vocab_size, self.block_size, self.n_layer, self.n_head, self.n_embd) < 1:
            problems.append("vocab_size, block_size, n_layer, n_head and n_embd must be positive")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout={self.dropout} must be in [0, 1)")
        if problems:
            raise ConfigError("GPTConfig: " + "; ".join(problems))

    @classmethod
    def seed_mini(cls, vocab_size=65, block_size=32, n_layer=4, n_head=4, n_embd=64, dropout=0.0, **kw):
        """The tutorial's character-level GPT, exactly."""
        fields = dict(bias=True, attention="heads", attn_scale="embd", qkv_bias=False, activation="relu",
                      tie_weights=False, lm_head_bias=True, pos_encoding="learned", init="pytorch")
        fields.update(kw)
        return cls(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                   n_embd=n_embd, dropout=dropout, **fields)

    @classmethod
    def gpt2(cls, vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768, dropout=0.0, bias=True, **kw):
        """GPT-2 (the defaults are GPT-2 small, 124M parameters)."""
        fields = dict(attention="batched", attn_scale="head", activation="gelu_tanh", tie_weights=True,
                      lm_head_bias=False, pos_encoding="learned", init="gpt2")
        fields.update(kw)
        return cls(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                   n_embd=n_embd, dropout=dropout, bias=bias, **fields)

    def iter_parameter_shapes(self):
        """(state_dict name, shape) of every parameter of GPT(self), without building it
        (tests/test_run_safety.py checks them against built models of every variant)."""
        V, T, C, L, H = self.vocab_size, self.block_size, self.n_embd, self.n_layer, self.n_head
        hidden, qkv_bias = self.mlp_ratio * C, self.bias if self.qkv_bias is None else self.qkv_bias

        def linear(name, n_in, n_out, bias):
            yield f"{name}.weight", (n_out, n_in)
            if bias:
                yield f"{name}.bias", (n_out,)

        def layer_norm(name):
            yield f"{name}.weight", (C,)
            if self.bias:
                yield f"{name}.bias", (C,)
        yield "transformer.wte.weight", (V, C)
        if self.pos_encoding == "learned":
            yield "transformer.wpe.weight", (T, C)
        for i in range(L):
            b = f"transformer.h.{i}"
            yield from layer_norm(f"{b}.ln_1")
            if self.attention == "heads":
                for h in range(H):
                    for part in ("key", "query", "value"):
                        yield from linear(f"{b}.attn.heads.{h}.{part}", C, C // H, qkv_bias)
            else:
                yield from linear(f"{b}.attn.c_attn", C, 3 * C, qkv_bias)
            yield from linear(f"{b}.attn.c_proj", C, C, self.bias)
            yield from layer_norm(f"{b}.ln_2")
            yield from linear(f"{b}.mlp.c_fc", C, hidden, self.bias)
            yield from linear(f"{b}.mlp.c_proj", hidden, C, self.bias)
        yield from layer_norm("transformer.ln_f")
        yield from linear("lm_head", C, V, self.lm_head_bias)

    def num_parameters_estimate(self):
        """GPT(self).num_parameters() by arithmetic (the tied head counted once): the same sum as
        iter_parameter_shapes, in O(1) for any n_layer."""
        V, T, C, L, H = self.vocab_size, self.block_size, self.n_embd, self.n_layer, self.n_head
        hidden, bias = self.mlp_ratio * C, int(self.bias)
        qkv_bias = int(self.bias if self.qkv_bias is None else self.qkv_bias)
        layer_norm = C * (1 + bias)
        qkv = H * 3 * (C * (C // H) + (C // H) * qkv_bias) if self.attention == "heads" else 3 * C * (C + qkv_bias)
        block = 2 * layer_norm + qkv + C * (C + bias) + C * hidden + hidden * bias + hidden * C + C * bias
        head = (0 if self.tie_weights else V * C) + (V if self.lm_head_bias else 0)
        return V * C + (T * C if self.pos_encoding == "learned" else 0) + L * block + layer_norm + head

    def buffer_numel(self):
        """The fixed position tables: sinusoidal (T, C), rotary cos and sin (T, head_size / 2) each."""
        if self.pos_encoding == "sinusoidal":
            return self.block_size * self.n_embd
        return self.block_size * (self.n_embd // self.n_head) if self.pos_encoding == "rotary" else 0



class MLP(nn.Module):
    """Position-wise feed-forward: Linear(C, 4C) -> activation -> Linear(4C, C) -> dropout."""

    def __init__(self, config):
        super().__init__()
        hidden = config.mlp_ratio * config.n_embd
        self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.act = nn.ReLU() if config.activation == "relu" else \
            nn.GELU("tanh" if config.activation == "gelu_tanh" else "none")
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class Block(nn.Module):
    """A transformer block: communication (attention) then computation (MLP), each pre-normed
    and added to the residual stream."""

    def __init__(self, config, rotary=None):
        super().__init__()
        c = config
        scale = c.n_embd ** -0.5 if c.attn_scale == "embd" else None
        qkv_bias = c.bias if c.qkv_bias is None else c.qkv_bias
        self.ln_1 = nn.LayerNorm(c.n_embd, eps=c.layer_norm_eps, bias=c.bias)
        if c.attention == "heads":
            self.attn = nn.MultiHeadAttention(c.n_embd, c.n_head, c.block_size, c.dropout, qkv_bias=qkv_bias,
                                              proj_bias=c.bias, scale=scale, rotary=rotary)
        else:
            self.attn = nn.CausalSelfAttention(c.n_embd, c.n_head, c.block_size, c.dropout, bias=c.bias,
                                               qkv_bias=qkv_bias, scale=scale, rotary=rotary, fused=c.fused)
        self.ln_2 = nn.LayerNorm(c.n_embd, eps=c.layer_norm_eps, bias=c.bias)
        self.mlp = MLP(c)

    def forward(self, x, kv_cache=None):
        x = x + self.attn(self.ln_1(x), kv_cache)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """The body: embeddings, blocks, final LayerNorm (GPT-2's ``transformer``)."""

    def __init__(self, config):
        super().__init__()
        c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        rotary = None
        if c.pos_encoding == "learned":
            self.wpe = nn.LearnedPositionalEmbedding(c.block_size, c.n_embd)
        elif c.pos_encoding == "sinusoidal":
            self.wpe = nn.SinusoidalPositionalEncoding(c.block_size, c.n_embd)
        else:
            rotary = nn.RotaryEmbedding(c.n_embd // c.n_head, c.block_size)
            self.rotary = rotary       # registered once here; shared by every attention layer
        self.drop = nn.Dropout(c.dropout)
        self.h = nn.ModuleList([Block(c, rotary) for _ in range(c.n_layer)])
        self.ln_f = nn.LayerNorm(c.n_embd, eps=c.layer_norm_eps, bias=c.bias)


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        config.validate()                    # fields may have been assigned since the config was made
        config.check_memory()                # a shape this machine cannot hold: refused before building
        self.config = config
        self.transformer = Transformer(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=config.lm_head_bias)
        if config.init == "gpt2":
            nn.init.gpt2_init_(self, config.n_layer)
        if config.tie_weights:
            self.lm_head.weight = self.transformer.wte.weight

    def forward(self, idx, targets=None, kv_caches=None, last_only=False):
        """idx: (B, T) token ids -> (logits (B, T, vocab_size), loss or None).

        last_only=True computes the logits of the last position only (B, 1, vocab_size), all that
        sampling needs: the output head is the largest matrix of GPT-2."""
        c = self.config
        idx_data = self._check_ids(idx, "idx")
        B, T = idx_data.shape
        start = 0 if kv_caches is None else cache_length(kv_caches[0])
        if start + T > c.block_size:
            raise ValueError(f"GPT: a sequence of {start + T} tokens is longer than block_size="
                             f"{c.block_size}; crop the context to the last {c.block_size} tokens")
        tr = self.transformer
        x = F.embedding(idx_data, tr.wte.weight, check_indices=False)     # checked by _check_ids
        if c.pos_encoding != "rotary":
            x = x + tr.wpe(T, start)
        x = tr.drop(x)
        for i, block in enumerate(tr.h):
            x = block(x, None if kv_caches is None else kv_caches[i])
        if last_only and targets is None:
            x = x[:, -1:]
        logits = self.lm_head(tr.ln_f(x))
        loss = None
        if targets is not None:
            target_data = self._check_ids(targets, "targets", ignore=-100)
            if target_data.shape != idx_data.shape:
                raise ValueError(f"GPT: targets of shape {tuple(target_data.shape)} do not match "
                                 f"idx of shape {tuple(idx_data.shape)}")
            loss = F.cross_entropy(logits.reshape(B * T, -1), target_data.reshape(-1), check_indices=False)
        return logits, loss

    def _check_ids(self, ids, what, ignore=None):
        """Token ids (B, T) in the vocabulary, checked before they are copied to the model's device."""
        return check_token_ids(ids, self.config.vocab_size, f"GPT: {what} (token ids, vocab_size="
                               f"{self.config.vocab_size})", self.device, ignore=ignore)

    @property
    def device(self):
        return self.lm_head.weight.device

    def new_kv_caches(self):
        return [block.attn.new_cache() for block in self.transformer.h]

    def num_parameters(self, non_embedding=False):
        n = super().num_parameters()
        if non_embedding and self.config.pos_encoding == "learned":
            n -= self.transformer.wpe.weight.numel()
        return n

    def flops_per_token(self, seq_len=None):
        """Forward + backward FLOPs per token (6N plus attention's 12 L T C), as nanoGPT's MFU; T the
        tokens of a row (default the whole context)."""
        c = self.config
        T = c.block_size if seq_len is None else seq_len
        return 6 * self.num_parameters(non_embedding=True) + 12 * c.n_layer * c.n_embd * T

    def attention_maps(self, idx):
        """Attention weights of every layer for a prompt: a NumPy array (n_layer, B, n_head, T, T)."""
        with nn.capture_attention(self) as maps, no_grad():
            self.forward(idx)
        return np.stack(list(maps.values()))

    # generation lives in generate.py; a method too, so it reads as model.generate(...)
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, seed=None,
                 use_cache=True):
        return generate(self, idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                        seed=seed, use_cache=use_cache)

    @classmethod
    def from_pretrained(cls, path, dtype=np.float32):
        """GPT-2 of any size from a Hugging Face folder (config.json + model.safetensors)."""
        kwargs, state = hf.read_gpt2(path, _gpt2_file_shapes)
        model = cls(GPTConfig.gpt2(**kwargs))
        model.load_state_dict(state)
        return model.to(dtype=dtype)

    def save_pretrained(self, out_dir):
        """Write this GPT-2-architecture model as a Hugging Face folder that transformers loads."""
        c = self.config
        if not (c.attention == "batched" and c.tie_weights and c.pos_encoding == "learned" and c.bias
                and c.activation in ("gelu_tanh", "gelu") and c.attn_scale == "head" and not c.lm_head_bias):
            raise PretrainedError("only GPT-2-architecture models can be exported (GPTConfig.gpt2(...))")
        return hf.write_gpt2(c, {name: t.numpy() for name, t in self.state_dict().items()}, out_dir)


def _gpt2_file_shapes(kwargs):
    """{name in a Hugging Face model.safetensors (without "transformer."): shape as stored} of the
    GPT-2 that GPTConfig.gpt2(**kwargs) describes: our parameter shapes, GPT-2's Conv1D weights
    transposed, the tied head left out (the file may omit it)."""
    shapes = {}
    for name, shape in GPTConfig.gpt2(**kwargs).iter_parameter_shapes():
        if name != "lm_head.weight":
            name = name[len("transformer."):]
            shapes[name] = tuple(reversed(shape)) if name.endswith(hf.CONV1D) else shape
    return shapes


FAMILY = Family("gpt", GPT, GPTConfig, commands=("sample", "attention", "export", "genome-report"),
                torch_twin="tinygrad_lm.crosscheck.torch_gpt:bench_twin", bench_goal="goal <= 0.8, done at <= 1.25")
