"""`aigc`: the command line. Each subcommand lives in its own module: parse -> config -> one library call.

Our UserError becomes one line `error: ...` and exit status 2; a process of a torchrun job that loses the others
exits 1 with one line; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from aigc import __version__
from aigc.core.errors import LostProcesses, UserError


def build_parser() -> argparse.ArgumentParser:
    from aigc.cli import (
        assistant,
        classify,
        compress,
        data,
        eval,
        export,
        index,
        keys,
        monitor,
        recommend,
        report,
        sample,
        serve,
        train,
    )

    description = (
        "Train, sample, evaluate, export and serve generative models: images and text, text classifiers and "
        "recommenders."
    )
    parser = Parser(prog="aigc", description=description)
    parser.add_argument("--version", action="version", version=f"aigc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (
        data,
        train,
        sample,
        classify,
        recommend,
        monitor,
        index,
        assistant,
        eval,
        report,
        export,
        compress,
        serve,
        keys,
    ):
        module.register(commands)
    return parser


class Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one `error:` line (through UserError) instead of usage text."""

    def error(self, message: str):
        raise UserError(f"{message}; see '{self.prog} --help'")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # Under torchrun every process runs this; each says which it is, since any one of them may fail alone.
    who = f"rank {os.environ['RANK']}: " if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
    try:
        args = parser.parse_args(argv)
        from aigc.core.distributed import process_group

        with process_group():
            return args.run(args) or 0
    except UserError as error:
        print(f"{who}error: {error}", file=sys.stderr)
        return 2
    except LostProcesses as error:
        print(f"{who}error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{who}interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of our output left (`aigc data list | head`): stop quietly, as a SIGPIPE'd tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13
