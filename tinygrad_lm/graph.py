"""Look at a computation graph: which ops made a tensor, their shapes, and (after backward) the size
of the gradient that flowed through each node. Text for a terminal, a matplotlib figure for a
notebook; no graphviz needed.

    g = Graph(loss)          # before backward: remembers the nodes and keeps their gradients
    loss.backward()
    print(g.text())
    g.draw("graph.png")
"""
import numpy as np

from . import backend
from .tensor import _topological_order


class Graph:
    def __init__(self, output, retain_grads=True):
        self.output = output
        self.nodes = _topological_order(output)          # inputs before outputs
        if retain_grads:
            for t in self.nodes:
                if not t.is_leaf:
                    t.retain_grad()
        self.index = {id(t): i for i, t in enumerate(self.nodes)}

    def label(self, t):
        op = t._ctx.name if t._ctx is not None else (t.name or "leaf")
        return f"{op} {tuple(t.shape)}"

    def grad_norm(self, t):
        if t.grad is None:
            return None
        return float(np.linalg.norm(backend.to_numpy(t.grad.data).ravel()))

    def edges(self):
        for t in self.nodes:
            if t._ctx is not None:
                for inp in t._ctx.inputs:
                    if id(inp) in self.index:
                        yield self.index[id(inp)], self.index[id(t)]

    def text(self):
        """One line per node, output first: '[i] Op (shape) <- [inputs]  |grad| = ...'."""
        lines = []
        for i in reversed(range(len(self.nodes))):
            t = self.nodes[i]
            inputs = [self.index[id(x)] for x in (t._ctx.inputs if t._ctx else ()) if id(x) in self.index]
            norm = self.grad_norm(t)
            grad = f"  |grad| = {norm:.4g}" if norm is not None else ""
            source = f" <- {inputs}" if inputs else ""
            lines.append(f"[{i}] {self.label(t)}{source}{grad}")
        return "\n".join(lines)

    def draw(self, path=None, ax=None):
        """Draw the graph left (leaves) to right (output) with matplotlib; save to `path` if given."""
        import matplotlib
        if path is not None and ax is None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        depth = {}
        for i, t in enumerate(self.nodes):
            parents = [self.index[id(x)] for x in (t._ctx.inputs if t._ctx else ()) if id(x) in self.index]
            depth[i] = 1 + max((depth[p] for p in parents), default=-1)
        columns = {}
        for i, d in depth.items():
            columns.setdefault(d, []).append(i)
        pos = {i: (d, -row) for d, members in columns.items() for row, i in enumerate(members)}
        if ax is None:
            height = max(len(m) for m in columns.values())
            fig, ax = plt.subplots(figsize=(2.6 * (len(columns) + 1), 1.2 * height + 1))
        for a, b in self.edges():
            (x0, y0), (x1, y1) = pos[a], pos[b]
            ax.annotate("", xy=(x1 - 0.28, y1), xytext=(x0 + 0.28, y0),
                        arrowprops=dict(arrowstyle="->", color="0.5"))
        for i, (x, y) in pos.items():
            t = self.nodes[i]
            norm = self.grad_norm(t)
            text = self.label(t) + (f"\n|grad|={norm:.3g}" if norm is not None else "")
            color = "#cfe8ff" if t._ctx is None else "#ffe6c7"
            ax.text(x, y, text, ha="center", va="center", fontsize=8,
                    bbox=dict(boxstyle="round", fc=color, ec="0.4"))
        ax.set_xlim(-0.7, len(columns) - 0.3)
        ax.set_ylim(min(y for _, y in pos.values()) - 0.7, 0.7)
        ax.axis("off")
        ax.set_title("computation graph (leaves blue, ops orange)")
        if path is not None:
            ax.figure.savefig(path, dpi=100, bbox_inches="tight")
        return ax
