"""Measure how long each lesson takes to run as a script, in quick mode, full mode, or both.

    python lessons/time_lessons.py                       # quick mode, every lesson
    python lessons/time_lessons.py --mode full --timeout 180 05 09
    OPENBLAS_NUM_THREADS=1 python lessons/time_lessons.py --mode both

Each lesson runs in its own process from a temporary folder (figures go there too), as CI runs it;
the wall-clock time includes Python's start and imports. A lesson that fails or passes --timeout is
reported so, not timed. Prints one line per lesson and mode, then a summary to paste into
lessons/README.md. Timings depend on the machine and on what else runs on it: say where you measured.
"""
import argparse
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent


def run(script, quick, timeout):
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TINYGRAD_LM_FIGURES=tmp, MPLBACKEND="Agg", TINYGRAD_LM_QUICK="1" if quick else "0")
        t = time.perf_counter()
        try:
            out = subprocess.run([sys.executable, str(script)], cwd=tmp, env=env, capture_output=True,
                                 text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"over {timeout} s"
        seconds = time.perf_counter() - t
        if out.returncode != 0:
            return f"failed ({out.stderr.strip().splitlines()[-1][:80] if out.stderr.strip() else out.returncode})"
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lessons", nargs="*", help="lesson numbers or name prefixes (default: all)")
    ap.add_argument("--mode", choices=["quick", "full", "both"], default="quick")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per lesson and mode")
    args = ap.parse_args(argv)
    scripts = sorted(HERE.glob("[0-9][0-9]_*.py"))
    if args.lessons:
        scripts = [s for s in scripts if any(s.name.startswith(prefix) for prefix in args.lessons)]
    modes = {"quick": [True], "full": [False], "both": [False, True]}[args.mode]
    print(f"# {platform.node()} | {os.cpu_count()} CPUs | OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')} | data {os.environ.get('TINYGRAD_LM_DATA', 'unset')}")
    results = {}
    for script in scripts:
        for quick in modes:
            results[script.name, quick] = run(script, quick, args.timeout)
            print(f"{script.name:28s} {'quick' if quick else 'full ':5s} {results[script.name, quick]}", flush=True)
    print("\n| lesson | full | quick |")
    for script in scripts:
        print(f"| `{script.name}` | {results.get((script.name, False), '-')} | {results.get((script.name, True), '-')} |")
    return 0 if not any(r.startswith(("failed", "over")) for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
