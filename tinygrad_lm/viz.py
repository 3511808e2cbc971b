"""Figures (matplotlib, PNG): loss and perplexity curves, a hyperparameter sweep, attention maps."""
import math


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_losses(history, evals, path, title="training"):
    """Left: training loss per step and train/val loss at each evaluation. Right: val perplexity."""
    plt = _pyplot()
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
    """Grid and legend on every panel, then save the PNG and free the figure."""
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path


def plot_sweep(results, name, path):
    """results: {value: evals list} from train.sweep(); val perplexity curves on one figure."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for value, evals in results.items():
        ax.plot([e["step"] for e in evals], [math.exp(min(e["val"], 50)) for e in evals], "o-", label=f"{name}={value}")
    ax.set(xlabel="step", ylabel="val perplexity", title=f"sweep over {name}", yscale="log")
    return _finish(fig, (ax,), path)


def plot_attention(maps, tokens, path, max_layers=None, max_heads=None):
    """A grid of attention maps, layers down and heads across. maps: (n_layer, n_head, T, T)."""
    plt = _pyplot()
    n_layer, n_head = maps.shape[0], maps.shape[1]
    n_layer, n_head = min(n_layer, max_layers or n_layer), min(n_head, max_heads or n_head)
    fig, axes = plt.subplots(n_layer, n_head, figsize=(1.9 * n_head + 1, 1.9 * n_layer + 1), squeeze=False)
    for i in range(n_layer):
        for j in range(n_head):
            ax = axes[i][j]
            ax.imshow(maps[i, j], cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"head {j}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"layer {i}", fontsize=8)
    if tokens is not None and len(tokens) <= 24:
        ax = axes[-1][0]
        ax.set_xticks(range(len(tokens)))
        ax.set_xticklabels(tokens, rotation=90, fontsize=6)
    fig.suptitle("attention weights (rows: query position, columns: key position)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
