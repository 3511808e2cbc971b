"""The command line: python -m tinygrad_lm prepare | train | sample | bench | generate | attention | export

This package is the application: parser.py builds the flags (training flags from TrainConfig's
fields), commands.py holds one small function per command, and ``main`` below is the one place
that turns an error into a message. The library never imports it.
"""
import sys

from ..errors import TinygradLMError
from .parser import build_parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except TinygradLMError as e:
        # the user's files, text, flags, network or device: one line on stderr that says what to do,
        # exit status 1, no traceback
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:            # a second Ctrl-C, or one outside training: stop, quietly
        print("interrupted", file=sys.stderr)
        sys.exit(130)


__all__ = ["main", "build_parser"]
