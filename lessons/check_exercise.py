"""Check a fill-in exercise: your NumPy backward against autograd and finite differences.

    python lessons/check_exercise.py attention_backward             # your function in lessons/exercises.py
    python lessons/check_exercise.py --all                          # every exercise
    python lessons/check_exercise.py layer_norm_backward --file my_answers.py
    python lessons/check_exercise.py attention_backward --solution  # the reference, to compare after trying

Exit status 0 when every gradient is right, 1 otherwise (the report names the wrong ones).
"""
import argparse
import importlib.util
import pathlib
import sys

from tinygrad_lm.teaching.exercises import EXERCISES, check, reference_solution

HERE = pathlib.Path(__file__).resolve().parent


def load(path, name):
    spec = importlib.util.spec_from_file_location("learner_exercises", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, name):
        raise SystemExit(f"error: {path} defines no function {name}; write `def {name}(...)` there")
    return getattr(module, name)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("exercise", nargs="?", choices=list(EXERCISES))
    ap.add_argument("--all", action="store_true", help="check every exercise")
    ap.add_argument("--file", default=str(HERE / "exercises.py"), help="where your functions are")
    ap.add_argument("--solution", action="store_true", help="check (and so show working) the reference solution")
    args = ap.parse_args(argv)
    if not args.all and not args.exercise:
        ap.error("name an exercise or give --all")
    names = list(EXERCISES) if args.all else [args.exercise]
    passed = True
    for name in names:
        print("  " + EXERCISES[name].signature)
        fn = reference_solution(name) if args.solution else load(args.file, name)
        report = check(name, fn)
        print(report)
        passed &= report.passed
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
