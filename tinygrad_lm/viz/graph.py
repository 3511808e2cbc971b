"""Look at a computation graph: which ops made a tensor, the value each one computed, and (after
backward) the gradient that flowed into it, with its sign. Text for a terminal, a matplotlib
figure for a notebook; no graphviz needed. Made for checking a hand-traced backward pass node by
node (as micrograd draws value and gradient on every node).

    g = Graph(loss)          # before backward: remembers the nodes and keeps their gradients
    loss.backward()
    print(g.text())          # [2] Mul () <- [0, 1]  value = -0.91  grad = 0.3
    g.draw("graph.png")      # the same, drawn; returns the Figure (shown inline in a notebook)

A scalar shows its value and signed gradient; an array shows its shape and a summary (mean, min,
max) of its value, and of its gradient the norm |grad| and the sum, whose sign says which way the
loss moves if every element grows a little.
"""
import numpy as np

from .. import backend
from ..tensor import topological_order
from .plots import pyplot, save


def _summary(a):
    return f"mean {a.mean():.3g} in [{a.min():.3g}, {a.max():.3g}]"


class Graph:
    def __init__(self, output, retain_grads=True):
        self.output = output
        self.nodes = topological_order(output)          # inputs before outputs
        if retain_grads:
            for t in self.nodes:
                if not t.is_leaf:
                    t.retain_grad()
        self.index = {id(t): i for i, t in enumerate(self.nodes)}

    def label(self, t):
        op = t._ctx.name if t._ctx is not None else (t.name or "leaf")
        return f"{op} {tuple(t.shape)}"

    def value(self, t):
        """The forward value: the number itself for a scalar, else a summary."""
        a = backend.to_numpy(t.data)
        return f"value = {a.item():.4g}" if a.size == 1 else f"value: {_summary(a.astype(np.float64))}"

    def grad(self, t):
        """The gradient with its sign: the number for a scalar, else |grad| (norm) and its sum.
        None before backward (or where no gradient flowed)."""
        if t.grad is None:
            return None
        g = backend.to_numpy(t.grad.data).astype(np.float64)
        if g.size == 1:
            return f"grad = {g.item():+.4g}"
        return f"|grad| = {np.linalg.norm(g.ravel()):.4g}, sum {g.sum():+.3g}"

    def grad_norm(self, t):
        if t.grad is None:
            return None
        return float(np.linalg.norm(backend.to_numpy(t.grad.data).ravel()))

    def _inputs(self, t):
        return [self.index[id(x)] for x in (t._ctx.inputs if t._ctx else ()) if id(x) in self.index]

    def edges(self):
        for t in self.nodes:
            for i in self._inputs(t):
                yield i, self.index[id(t)]

    def text(self):
        """One line per node, output first: '[i] Op (shape) <- [inputs]  value ...  grad ...'."""
        lines = []
        for i in reversed(range(len(self.nodes))):
            t = self.nodes[i]
            inputs = self._inputs(t)
            grad = self.grad(t)
            source = f" <- {inputs}" if inputs else ""
            lines.append(f"[{i}] {self.label(t)}{source}  {self.value(t)}" + (f"  {grad}" if grad else ""))
        return "\n".join(lines)

    def draw(self, path=None, ax=None):
        """Draw the graph left (leaves) to right (output): each box holds the op and shape, the
        forward value and the signed gradient. Saves to `path` if given; returns the Figure."""
        plt = pyplot()
        depth = {}
        for i, t in enumerate(self.nodes):
            depth[i] = 1 + max((depth[p] for p in self._inputs(t)), default=-1)
        columns = {}
        for i, d in depth.items():
            columns.setdefault(d, []).append(i)
        pos = {i: (d, -row) for d, members in columns.items() for row, i in enumerate(members)}
        own_figure = ax is None
        if own_figure:
            height = max(len(m) for m in columns.values())
            _, ax = plt.subplots(figsize=(3.0 * (len(columns) + 1), 1.4 * height + 1))
        for a, b in self.edges():
            (x0, y0), (x1, y1) = pos[a], pos[b]
            ax.annotate("", xy=(x1 - 0.3, y1), xytext=(x0 + 0.3, y0),
                        arrowprops=dict(arrowstyle="->", color="0.5"))
        for i, (x, y) in pos.items():
            t = self.nodes[i]
            grad = self.grad(t)
            text = f"[{i}] {self.label(t)}\n{self.value(t)}" + (f"\n{grad}" if grad else "")
            color = "#cfe8ff" if t._ctx is None else "#ffe6c7"
            ax.text(x, y, text, ha="center", va="center", fontsize=8,
                    bbox=dict(boxstyle="round", fc=color, ec="0.4"))
        ax.set_xlim(-0.7, len(columns) - 0.3)
        ax.set_ylim(min(y for _, y in pos.values()) - 0.7, 0.7)
        ax.axis("off")
        ax.set_title("computation graph: forward value and gradient at each node (leaves blue, ops orange)")
        if own_figure:
            return save(ax.figure, path)
        if path is not None:                        # the caller's figure: saved, never closed here
            ax.figure.savefig(path, dpi=100, bbox_inches="tight")
        return ax.figure
