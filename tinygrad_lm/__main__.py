"""``python -m tinygrad_lm ...``: the command line (tinygrad_lm/cli)."""
from .cli import build_parser, main  # noqa: F401  (build_parser: tests parse the documented commands)

if __name__ == "__main__":
    main()
