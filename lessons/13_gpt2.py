# %% [markdown]
# # Lesson 13 — GPT-2 in our engine
#
# The tutorial used GPT-2 through a high-level library, as a black box. Here GPT-2's real weights
# (a Hugging Face directory: `config.json` + `model.safetensors`) run in our own NumPy code. The
# safetensors file is read by our own validating reader; GPT-2's "Conv1D" weights are transposed
# into our Linear layout. Without weights at hand (no internet), the lesson explains where to get
# them and uses a small random GPT-2 instead.

# %%
import os
import pathlib

import numpy as np

import tinygrad_lm as tg
from tinygrad_lm.models.gpt import GPT, GPTConfig
from tinygrad_lm.errors import PretrainedError
from tinygrad_lm.io.hf import download_gpt2
from tinygrad_lm.teaching.lesson_utils import figure_path
from tinygrad_lm.tokenizers import gpt2_tokenizer
from tinygrad_lm.viz.plots import plot_attention

# TINYGRAD_LM_GPT2_MODEL: a folder with config.json + model.safetensors, or a size name
# ("gpt2", "gpt2-medium", ...) to download it from the Hugging Face hub (needs the internet).
choice = os.environ.get("TINYGRAD_LM_GPT2_MODEL")
model = None
if choice:
    try:
        model = GPT.from_pretrained(choice if pathlib.Path(choice).exists() else download_gpt2(choice))
    except PretrainedError as e:
        print(f"Could not load GPT-2 weights: {e}")
else:
    print("No GPT-2 weights requested: set TINYGRAD_LM_GPT2_MODEL=gpt2 to download GPT-2 small "
          "(https://huggingface.co/gpt2), or to a folder holding config.json and model.safetensors. "
          "Using a small random GPT-2 with the real vocabulary instead.")
random_weights = model is None
if random_weights:
    tg.manual_seed(0)
    model = GPT(GPTConfig.gpt2(vocab_size=50257, block_size=64, n_layer=2, n_head=4, n_embd=64))
print(model.config)
print(f"{model.num_parameters() / 1e6:.1f}M parameters")

# %% [markdown]
# ## print(model): the box, opened

# %%
print(model.transformer.h[0])

# %% [markdown]
# ## Generate like the tutorial's pipeline

# %%
tok = gpt2_tokenizer()                   # GPT-2's BPE files ship inside the package
prompt = "My dog really wanted to eat icecream because"
ids = model.generate([tok.encode(prompt)] * 3, 20, temperature=1.0, top_k=50, seed=0)
for row in ids:
    print(repr(tok.decode(row.tolist())))
greedy = model.generate([tok.encode(prompt)], 10, temperature=0)
assert np.array_equal(greedy, model.generate([tok.encode(prompt)], 10, temperature=0, use_cache=False))

# %% [markdown]
# ## Look at its attention
# One small map per layer and head: rows are query tokens, columns the key tokens each attends to.
# With GPT-2's real weights, look for heads that attend to the previous token, or to the first one.
# With the random stand-in the maps are close to uniform (every query spreads its attention evenly
# over the tokens it may see): there is nothing learned to look at, and the title says so. Lesson 9
# shows a model trained here, offline, that does attend selectively.

# %%
from tinygrad_lm.teaching.lesson_utils import distance_from_uniform

text = "The man ate the sandwich because he was hungry"
ids = tok.encode(text)
maps = model.attention_maps(np.array([ids]))[:, 0]
gap = distance_from_uniform(maps)
what = "RANDOM weights (not trained): near-uniform, nothing learned" if random_weights else "GPT-2's weights"
print(f"{what}; distance from uniform attention {gap:.3f} nats")
fig = plot_attention(maps, [tok.decode([i]) for i in ids] if tok else None, figure_path("13_attention.png"),
                     max_layers=4, max_heads=6, title=f"{what}\nrows: query token, columns: key token")
assert np.allclose(maps.sum(-1), 1, atol=1e-4) and np.all(np.triu(maps[0, 0], 1) == 0)
if random_weights:
    assert gap < 0.05                     # small random weights: scores near 0, softmax near uniform
print("attention maps:", maps.shape, "(layer, head, query, key)")

# %% [markdown]
# ## Explore it interactively
# The same weights as the grid above, drawn the way the tutorial's bertviz draws them: choose a
# layer and heads, hover over a token (or Tab to it) to keep only its lines, click it or press Enter
# to pin it; "Model view" holds every layer x head, and clicking one opens it in the head view.
# From the command line,
# `python -m tinygrad_lm attention --model DIR --prompt "The man ate the sandwich" --html view.html`
# writes the page to a file that works offline (and keeps the PNG grid for printing).

# %%
from tinygrad_lm.viz.attention_view import attention_view

view = attention_view(model, tok, text)
assert np.allclose(view.weights, maps)
view

# %% [markdown]
# ## Export back to the Hugging Face layout

# %%
import tempfile

out = model.save_pretrained(pathlib.Path(tempfile.mkdtemp()) / "export")
again = GPT.from_pretrained(out)
x = np.array([ids[:8]])
assert np.allclose(again(x)[0].numpy(), model(x)[0].numpy(), atol=1e-5)
print("exported and reloaded:", sorted(p.name for p in out.iterdir()))

# %% [markdown]
# ## Exercises
# 1. Fine-tune GPT-2 on tiny Shakespeare: `python -m tinygrad_lm train --init-from DIR --tokenizer gpt2 --max-iters 200`.
# 2. Find a head in layer 0 that attends to the previous token. Plot it alone.
# 3. Load gpt2-medium. How does generation speed scale with the number of parameters?
