"""Figures (matplotlib): loss and perplexity curves, a hyperparameter sweep, attention maps, an
encoder-decoder's alignment (cross-attention).

Every function returns its Figure, so a notebook shows it inline where the call is made; `path`,
when given, also saves a PNG (what the command line wants). Outside a Jupyter kernel the backend
is Agg (files only) and a figure is closed once saved, to free its memory; inside a kernel the
backend is left alone and figures stay open, because the kernel shows, then closes, each open
figure at the end of the cell.
"""
import math
import sys


def in_notebook():
    """True inside a Jupyter (IPython) kernel, where figures are shown inline. Asked of the running
    IPython shell: merely importing ipykernel (as a test runner may) does not make a kernel."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def pyplot():
    """matplotlib.pyplot; the Agg backend is chosen only outside a kernel (a kernel has its own)."""
    import matplotlib
    if not in_notebook():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, path, dpi=100):
    """Save `fig` to `path` (when given) and return it. Outside a kernel the figure is closed: it is
    drawn once, to the file. Inside one it stays open for the notebook to show."""
    if path is not None:
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    if not in_notebook():
        pyplot().close(fig)
    return fig


def visible(token):
    """A token as a label that can be seen: space as '␣', newline as '⏎', other control characters escaped."""
    shown = token.replace(" ", "\u2423").replace("\n", "\u23ce")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown) or "''"


def plot_losses(history, evals, path=None, title="training"):
    """Left: training loss per step and train/val loss at each evaluation. Right: val perplexity."""
    plt = pyplot()
    fig, (ax_loss, ax_ppl) = plt.subplots(1, 2, figsize=(11, 4))
    if history:
        steps, losses = zip(*history)
        ax_loss.plot(steps, losses, color="0.75", lw=0.8, label="train (per step)")
    if evals:
        s = [e["step"] for e in evals]
        ax_loss.plot(s, [e["train"] for e in evals], "o-", label="train (eval)")
        ax_loss.plot(s, [e["val"] for e in evals], "o-", label="val (eval)")
        ax_ppl.plot(s, [math.exp(min(e["train"], 50)) for e in evals], "o-", label="train")
        ax_ppl.plot(s, [math.exp(min(e["val"], 50)) for e in evals], "o-", label="val")
    ax_loss.set(xlabel="step", ylabel="cross-entropy loss", title=f"{title}: loss")
    ax_ppl.set(xlabel="step", ylabel="perplexity = exp(loss)", title=f"{title}: perplexity", yscale="log")
    return _finish(fig, (ax_loss, ax_ppl), path)


def _finish(fig, axes, path):
    """Grid and legend on every panel, then save (see `save`)."""
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    return save(fig, path)


def plot_sweep(results, name, path=None):
    """results: {value: evals list} from train.sweep(); val perplexity curves on one figure."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for value, evals in results.items():
        ax.plot([e["step"] for e in evals], [math.exp(min(e["val"], 50)) for e in evals], "o-", label=f"{name}={value}")
    ax.set(xlabel="step", ylabel="val perplexity", title=f"sweep over {name}", yscale="log")
    return _finish(fig, (ax,), path)


def plot_attention(maps, tokens, path=None, max_layers=None, max_heads=None, title=None):
    """A grid of attention maps, layers down and heads across. maps: (n_layer, n_head, T, T).
    With up to 24 tokens, the left column names the query tokens and the bottom row the key tokens."""
    plt = pyplot()
    n_layer, n_head = maps.shape[0], maps.shape[1]
    n_layer, n_head = min(n_layer, max_layers or n_layer), min(n_head, max_heads or n_head)
    fig, axes = plt.subplots(n_layer, n_head, figsize=(1.9 * n_head + 1.5, 1.9 * n_layer + 1.5), squeeze=False)
    labelled = tokens is not None and len(tokens) <= 24
    shown = [visible(t) for t in tokens] if labelled else None
    for i in range(n_layer):
        for j in range(n_head):
            ax = axes[i][j]
            ax.imshow(maps[i, j], cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"head {j}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"layer {i}\nquery", fontsize=8)
                if labelled:
                    ax.set_yticks(range(len(shown)))
                    ax.set_yticklabels(shown, fontsize=8 if max(len(t) for t in shown) <= 2 else 6)
            if i == n_layer - 1:
                ax.set_xlabel("key", fontsize=8)
                if labelled:
                    ax.set_xticks(range(len(shown)))
                    short = max(len(t) for t in shown) <= 2          # single characters stay upright
                    ax.set_xticklabels(shown, rotation=0 if short else 90, fontsize=8 if short else 6)
    fig.suptitle(title or "attention weights (rows: query position, columns: key position)", fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def plot_alignment(cross, source_tokens, output_tokens, path=None, title=None):
    """An encoder-decoder's alignment: cross-attention weights (layers, heads, T_out, S) as a grid
    of panels, layers down and heads across, plus the average over all of them, large, on the
    right. Rows: the output characters (each the one produced there), columns: the source's. The
    panels' colours run from 0 to 1, the average's from 0 to its largest weight."""
    plt = pyplot()
    n_layer, n_head = cross.shape[:2]
    src = [visible(t) for t in source_tokens]
    out = [visible(t) for t in output_tokens]
    fig = plt.figure(figsize=(2.2 * n_head + 0.3 * len(src) + 2, max(2.2 * n_layer, 0.3 * len(out)) + 1.5))
    grid = fig.add_gridspec(n_layer, n_head + 2, width_ratios=[1] * n_head + [0.15, 0.16 * len(src)])
    for i in range(n_layer):
        for j in range(n_head):
            ax = fig.add_subplot(grid[i, j])
            ax.imshow(cross[i, j], cmap="viridis", vmin=0, vmax=1, aspect="auto")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"head {j}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"layer {i}", fontsize=8)
    ax = fig.add_subplot(grid[:, n_head + 1])
    mean = cross.mean(axis=(0, 1))          # its own scale: an average is flatter than any one head
    ax.imshow(mean, cmap="viridis", vmin=0, vmax=max(float(mean.max()), 1e-9), aspect="auto")
    ax.set_xticks(range(len(src)))
    ax.set_xticklabels(src, fontsize=8)
    ax.set_yticks(range(len(out)))
    ax.set_yticklabels(out, fontsize=8)
    ax.set(xlabel="source character (key)", ylabel="output character (query that produced it)")
    ax.set_title(f"average over layers and heads (brightest = {mean.max():.2f})", fontsize=9)
    fig.suptitle(title or "cross-attention: where the decoder looks in the source for each output character",
                 fontsize=10)
    return save(fig, path)
