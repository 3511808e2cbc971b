"""The docs stay in step with the code: every `python -m tinygrad_lm ...` command written in the
README, BENCHMARKS, data notes, lessons and job scripts parses with the real command line (a renamed
or removed flag fails here), and the README's Python tour runs."""
import pathlib
import re
import shlex

import pytest

from tinygrad_lm.__main__ import build_parser

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", ROOT / "data" / "README.md", ROOT / "lessons" / "README.md",
        *sorted((ROOT / "lessons").glob("[0-9]*.py")), *sorted((ROOT / "scripts" / "polaris").glob("*"))]
COMMAND = re.compile(r"python -m tinygrad_lm ([^`#\n]*)")
SHELL_DEFAULT = re.compile(r'^\s*(\w+)=(?:\$\{\w+:-([^}]*)\}|"([^"]*)"|(\S+))', flags=re.M)


def with_shell_values(args, text):
    """${NAME} -> the value a job script gives NAME first (NAME=${NAME:-baby}, NAME="out_${PRESET}")."""
    values = {}
    for name, default, quoted, bare in SHELL_DEFAULT.findall(text):
        values.setdefault(name, default or quoted or bare)
    for _ in range(3):                                    # values may name other variables
        args = re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), args)
    return args


def documented_commands():
    """(file name, line number, the arguments after `python -m tinygrad_lm`) for each command."""
    found = []
    for path in DOCS:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8").replace("\\\n", " ")        # join shell continuations
        for number, line in enumerate(text.splitlines(), 1):
            for match in COMMAND.finditer(line):
                args = with_shell_values(match.group(1).strip(), text)
                if args.endswith("..."):                  # "train ..." in a usage comment: no flags given
                    args = args[:-3]
                found.append((str(path.relative_to(ROOT)), number, args))
    return found


def test_the_docs_hold_commands_to_check():
    names = {name for name, _, _ in documented_commands()}
    assert {"README.md", "BENCHMARKS.md", "scripts/polaris/train_1gpu.pbs"} <= names and len(names) >= 6


@pytest.mark.parametrize("where, line, args", documented_commands(),
                         ids=lambda v: v if isinstance(v, str) else str(v))
def test_documented_command_parses(where, line, args):
    argv = shlex.split(args)
    if not argv:                                          # `python -m tinygrad_lm` alone, in prose
        return
    try:
        build_parser().parse_args(argv)
    except SystemExit as e:
        pytest.fail(f"{where}:{line}: `python -m tinygrad_lm {args}` does not parse (exit {e.code})")


def test_readme_python_tour_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README has no Python example"
    for block in blocks:
        namespace = {}
        exec(compile(block, "README.md (python block)", "exec"), namespace)
        assert "model" in namespace and "loss" in namespace        # the tour's last lines ran


def _pip_installs(text):
    """Each `pip install ...` line's arguments, without pip's own options (-q) and comments."""
    found = []
    for line in text.splitlines():
        match = re.search(r"\bpip install ([^#\n]*)", line)
        if match:
            found.append([a for a in shlex.split(match.group(1)) if not a.startswith("-") or a == "-e"])
    return found


def test_the_readme_test_install_is_what_ci_installs():
    """A user who follows the README's test set-up gets what CI has (mpi4py with an MPI library)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("Tests (", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_installs = [args for args in _pip_installs(ci) if args != ["pip"]]      # `--upgrade pip`
    assert ci_installs and _pip_installs(section) == ci_installs
    assert "python -m pytest -q" in section and "python -m pytest -q" in ci
