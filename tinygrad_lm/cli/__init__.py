"""The command line: python -m tinygrad_lm prepare | train | sample | bench | generate | attention | fill-mask | embed | export

This package is the application: parser.py builds the flags (training flags from TrainConfig's
fields), commands.py holds one small function per command, and ``main`` below is the one place
that turns an error into a message. The library never imports it.

Exit status: 0 done; 1 an error (one ``error:`` line); 2 a flag argparse refuses; 130 stopped by
Ctrl-C (SIGINT) and 143 by SIGTERM, after saving last.npz when the signal came during training
(``train --init-from resume`` continues; the Polaris job scripts resubmit themselves on 143).
"""
import sys

from ..training.distributed import abort_other_ranks
from ..errors import TinygradLMError
from .parser import build_parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except TinygradLMError as e:
        # the user's files, text, flags, network or device: one line on stderr that says what to do,
        # exit status 1, no traceback; under MPI the other ranks are ended too, never left waiting
        abort_other_ranks(f"error: {e}", 1)
        sys.exit(f"error: {e}")
    except KeyboardInterrupt as e:       # a second Ctrl-C or SIGTERM, or one outside training: stop, quietly
        print("interrupted", file=sys.stderr)
        sys.exit(getattr(e, "exit_status", 130))    # the shell's 128 + signal: 130 SIGINT, 143 SIGTERM


__all__ = ["main", "build_parser"]
