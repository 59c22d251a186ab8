"""Command-line flags derived from the config dataclasses, so defaults and help live in one place.

A field becomes a flag when its metadata has "help"; `--field-name` unless metadata names another flag, plus any
"aliases"; its value is read by the field's type, or by the metadata's "parse" function.
Flags default to "not given", so only what the user typed overrides a config.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing


def _plain_type(hint):
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def add_options(
    parser: argparse.ArgumentParser,
    cls,
    path: str,
    only: set[str] | None = None,
    defaults=None,
    repeat: bool = False,
    unlisted: frozenset[str] = frozenset(),
) -> None:
    """Add a flag per documented field of `cls` (or of those named in `only`); values land in args as
    '<path>.<field>'. The help shows the values of `defaults` (an instance of `cls`) when given, and leaves out the
    flags whose '<path>.<field>' is `unlisted`. `repeat`: a flag other than a switch may be given several times,
    and its values land as a list."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(path)
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata or (only is not None and f.name not in only):
            continue
        flags = (f.metadata.get("flag", "--" + f.name.replace("_", "-")), *f.metadata.get("aliases", ()))
        kind = _plain_type(hints[f.name])
        default = getattr(defaults, f.name) if defaults is not None else f.default
        dest = f"{path}.{f.name}"
        text = argparse.SUPPRESS if dest in unlisted else f"{f.metadata['help']} (default: {default})"
        action = "append" if repeat else "store"
        if kind is bool:
            group.add_argument(*flags, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif typing.get_origin(kind) is typing.Literal:
            # the choices are shown, and checked by the config itself, so a wrong one gets the config's message
            choices = typing.get_args(kind)
            metavar = "{" + ",".join(map(str, choices)) + "}"
            group.add_argument(
                *flags, dest=dest, action=action, type=type(choices[0]), default=None, help=text, metavar=metavar
            )
        else:
            parse = f.metadata.get("parse")  # a field may read its flag its own way (5M tokens)
            kind = kind if parse is None else argparse_type(parse)
            group.add_argument(
                *flags, dest=dest, action=action, type=kind, default=None, help=text, metavar=f.name.upper()
            )


def argparse_type(parse):
    """`parse` as argparse wants a type: its UserError becomes argparse's message for the flag."""
    from aigc.core.errors import UserError

    def read(text: str):
        try:
            return parse(text)
        except UserError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return read


def add_sample_options(parser: argparse.ArgumentParser, repeat: bool = False) -> None:
    """The sample settings of every family as flags (a setting another family's model has no use for is
    refused once the model is loaded); `repeat`: each may be given several times (see add_options)."""
    from aigc.families.registry import FAMILIES

    added: set[str] = set()
    for family in FAMILIES.values():
        names = {f.name for f in dataclasses.fields(family.sample_config)} - added
        add_options(parser, family.sample_config, "sample", only=names, repeat=repeat)
        added |= names


def given(args: argparse.Namespace, path: str) -> dict:
    """The fields of component `path` that the user set on the command line."""
    prefix = path + "."
    return {
        key.removeprefix(prefix): value
        for key, value in vars(args).items()
        if key.startswith(prefix) and "." not in key.removeprefix(prefix) and value is not None
    }


def apply(config, args: argparse.Namespace, path: str):
    """`config` with the fields of component `path` replaced by the flags the user gave (checked by the config
    itself: a bad value is its ConfigError)."""
    values = given(args, path)
    return dataclasses.replace(config, **values) if values else config


def add_command(commands, name: str, help: str, examples: str) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with its copy-pasteable examples."""
    return commands.add_parser(name, help=help, epilog=examples, formatter_class=argparse.RawDescriptionHelpFormatter)
