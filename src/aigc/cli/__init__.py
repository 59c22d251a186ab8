"""`aigc`: the command line. Each subcommand lives in its own module: parse -> config -> one library call.

Our UserError becomes one line `error: ...` and exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from aigc import __version__
from aigc.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    from aigc.cli import data, eval, sample, train

    parser = Parser(prog="aigc", description="Train, sample and evaluate generative image models.")
    parser.add_argument("--version", action="version", version=f"aigc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (data, train, sample, eval):
        module.register(commands)
    return parser


class Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one `error:` line (through UserError) instead of usage text."""

    def error(self, message: str):
        raise UserError(f"{message}; see '{self.prog} --help'")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.run(args) or 0
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
