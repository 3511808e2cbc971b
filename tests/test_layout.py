"""The package's layers import only downward: its folders stand in one declared order (LAYERS, the
README's map) and a module imports only its own layer and those below; no import cycle among
tinygrad_lm's modules; the library never imports the command line; no module imports another of
the package inside a function (the way to dodge a cycle); functions import only optional heavy
dependencies (cupy, torch, mpi4py, matplotlib...). Read from the source with `ast`, so nothing is
imported to check it."""
import ast
import os
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tinygrad_lm"

# The layers, lowest first: a module may import its own layer and the layers before it. The engine
# is the package's top-level modules (and ops/); every other layer is one folder (optim: one module).
LAYERS = [
    ("engine", ["errors", "backend", "function", "tensor", "creation", "random", "gradcheck", "ops"]),
    ("nn", ["nn"]),
    ("optim", ["optim"]),
    ("io", ["io"]),
    ("tokenizers", ["tokenizers"]),
    ("data", ["data"]),
    ("models", ["models"]),
    ("crosscheck", ["crosscheck"]),
    ("decoding", ["decoding"]),
    ("training", ["training"]),
    ("viz", ["viz"]),
    ("teaching", ["teaching"]),
    ("genomes", ["genomes"]),
    ("cli", ["cli", "__main__"]),
]


def module_name(path, root):
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(node, module, is_package):
    """The absolute names an import node refers to (for `from . import x`, both the package and
    package.x, since x may be a submodule)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level == 0:
        base = node.module or ""
    else:
        parts = module.split(".")
        keep = len(parts) - node.level + (1 if is_package else 0)
        base = ".".join(parts[:keep] + ([node.module] if node.module else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def import_graph(root):
    """{module: set of tinygrad_lm modules it imports}, and the list of function-level imports."""
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    graph, lazy = {}, []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        graph[name] = set()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            targets = _resolve(node, name, path.name == "__init__.py")
            inside_function = False
            up = parents.get(node)
            while up is not None:
                if isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    inside_function = True
                up = parents.get(up)
            # crosscheck/ is the torch-only subpackage: importing it lazily is importing torch lazily
            if inside_function and any(t.split(".")[0] == "tinygrad_lm" and not t.startswith("tinygrad_lm.crosscheck")
                                       for t in targets):
                lazy.append(f"{name}:{node.lineno} imports {targets[0]}")
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph, lazy


def find_cycle(graph):
    """One import cycle as a list of modules, or None (depth-first search, colouring nodes)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def without_package_parents(graph):
    """A package's __init__ re-exports its modules, so a module importing `tinygrad_lm.nn.layers`
    also runs `tinygrad_lm.nn`; that edge from child to parent is how Python works, not a layer
    violation. Only explicit imports count here."""
    return {m: {t for t in targets if not m.startswith(t + ".")} for m, targets in graph.items()}


def layer_of(module, layers=LAYERS):
    """The index in `layers` of a module's layer (the package itself is the engine's)."""
    parts = module.split(".")
    if len(parts) == 1:
        return 0
    for i, (_, tops) in enumerate(layers):
        if parts[1] in tops:
            return i
    raise AssertionError(f"{module} is in no layer: add its folder to LAYERS (and to the README's map)")


def upward_imports(graph, layers=LAYERS):
    """'a (layer) imports b (higher layer)' for each import that runs up the declared order."""
    found = []
    for module, targets in sorted(graph.items()):
        # `from ..training import runs` names the package and its module: report the module
        targets = {t for t in targets if not any(u.startswith(t + ".") for u in targets)}
        for target in sorted(targets):
            if layer_of(target, layers) > layer_of(module, layers):
                found.append(f"{module} ({layers[layer_of(module, layers)][0]}) imports "
                             f"{target} ({layers[layer_of(target, layers)][0]})")
    return found


def test_every_module_sits_in_a_declared_layer():
    graph, _ = import_graph(PACKAGE)
    tops = {m.split(".")[1] for m in graph if "." in m}
    declared = {t for _, names in LAYERS for t in names}
    assert tops == declared, f"undeclared: {sorted(tops - declared)}; declared but absent: {sorted(declared - tops)}"


def test_folders_import_only_their_own_layer_and_those_below():
    graph, _ = import_graph(PACKAGE)
    assert upward_imports(without_package_parents(graph)) == []


def test_the_layer_check_finds_a_planted_upward_import(tmp_path):
    root = tmp_path / "tinygrad_lm"
    for folder in ("models", "training"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "tensor.py").write_text("")
    (root / "training" / "runs.py").write_text("from ..models.gpt import GPT\n")     # down: fine
    (root / "models" / "gpt.py").write_text("from ..tensor import Tensor\n")
    graph, _ = import_graph(root)
    assert upward_imports(without_package_parents(graph)) == []
    (root / "models" / "gpt.py").write_text("from ..tensor import Tensor\nfrom ..training import runs\n")
    graph, _ = import_graph(root)
    assert upward_imports(without_package_parents(graph)) == [
        "tinygrad_lm.models.gpt (models) imports tinygrad_lm.training.runs (training)"]


def test_the_readme_map_lists_the_layers_in_order():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Map of the code", 1)[1].split("\n## ", 1)[0]
    lines = [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.split()]
    positions = [lines.index(f"{folder}/") if f"{folder}/" in lines else -1 for folder in
                 ("ops", "nn", "io", "tokenizers", "data", "models", "crosscheck", "decoding", "training",
                  "viz", "teaching", "genomes", "cli")]
    assert -1 not in positions and positions == sorted(positions), positions


def test_no_import_cycle_in_the_package():
    graph, _ = import_graph(PACKAGE)
    assert len(graph) > 30
    cycle = find_cycle(without_package_parents(graph))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_library_never_imports_the_command_line():
    graph, _ = import_graph(PACKAGE)
    offenders = [m for m, targets in graph.items() if not m.startswith(("tinygrad_lm.cli", "tinygrad_lm.__main__"))
                 and any(t.startswith("tinygrad_lm.cli") for t in targets)]
    assert offenders == []
    argparse_users = [m for m, p in {module_name(p, PACKAGE): p for p in PACKAGE.rglob("*.py")}.items()
                      if "import argparse" in p.read_text(encoding="utf-8") and not m.startswith("tinygrad_lm.cli")]
    assert argparse_users == [], "argparse belongs to the command line"


def test_function_level_imports_only_for_optional_dependencies():
    _, lazy = import_graph(PACKAGE)
    assert lazy == []


def test_the_cycle_check_finds_a_planted_cycle(tmp_path):
    root = tmp_path / "tinygrad_lm"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text("from . import b\n")
    (root / "b.py").write_text("from .sub.c import f\n")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "c.py").write_text("def f():\n    from ..a import g\n")     # lazy, still a cycle
    graph, lazy = import_graph(root)
    assert find_cycle(without_package_parents(graph)) == ["tinygrad_lm.a", "tinygrad_lm.b", "tinygrad_lm.sub.c",
                                                          "tinygrad_lm.a"]
    assert lazy == ["tinygrad_lm.sub.c:2 imports tinygrad_lm.a"]
    (root / "sub" / "c.py").write_text("def f():\n    import numpy\n")      # an outside package: fine
    graph, lazy = import_graph(root)
    assert find_cycle(without_package_parents(graph)) is None and lazy == []


@pytest.mark.parametrize("source, expected", [
    ("from .x import y", {"tinygrad_lm.x", "tinygrad_lm.x.y"}),
    ("from . import x", {"tinygrad_lm", "tinygrad_lm.x"}),
    ("import tinygrad_lm.x", {"tinygrad_lm.x"}),
])
def test_imports_are_resolved_as_python_does(source, expected):
    node = ast.parse(source).body[0]
    assert set(_resolve(node, "tinygrad_lm.m", is_package=False)) == expected


def test_importing_the_package_changes_nothing_outside_it():
    """No allocator tuning (or any other C call into libc) on import: it is an explicit call where
    training and benchmarks start."""
    code = ("import ctypes, pkgutil, importlib\n"
            "calls = []\n"
            "real = ctypes.CDLL\n"
            "ctypes.CDLL = lambda *a, **k: calls.append(a) or real(*a, **k)\n"
            "import tinygrad_lm\n"
            "for m in pkgutil.walk_packages(tinygrad_lm.__path__, 'tinygrad_lm.'):\n"
            "    if not m.name.startswith(('tinygrad_lm.crosscheck', 'tinygrad_lm.__main__')):\n"
            "        importlib.import_module(m.name)\n"
            "print(calls)\n"
            "from tinygrad_lm import backend\n"
            "backend.keep_freed_memory_in_the_heap()\n"
            "print(len(calls))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent,
                         env={**os.environ, "TINYGRAD_LM_MALLOC_TUNING": "1"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[0] == "[]"
    if sys.platform.startswith("linux"):
        assert lines[-1] == "1"              # the explicit call does reach libc: the probe can see it
