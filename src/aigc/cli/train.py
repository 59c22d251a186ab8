"""`aigc train FAMILY`: train a model on a data set into a run directory, or resume one. One subcommand per
registered family, its flags derived from the family's run config."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

# How a resumed run may differ from its config: its budget (more of it: the train config's `budget_fields`),
# the threads and micro-batches it is spread over, and where its data lies.
CHANGEABLE_ON_RESUME = {"data.data_dir", "train.threads", "train.batch_per_device"}
AMOUNTS = "amounts"  # where the train config's amounts land in the parsed arguments, as written (see add_amounts)


def register(commands) -> None:
    from aigc.cli.options import add_command
    from aigc.families.registry import FAMILIES

    names = ", ".join(FAMILIES)
    parser = add_command(commands, "train", "train a model", f"families: {names} (see aigc train FAMILY --help)")
    families = parser.add_subparsers(dest="family", required=True, metavar="FAMILY")
    for family in FAMILIES.values():
        add_family(families, family)


def add_family(families, family) -> None:
    from aigc.cli.options import add_command, add_options
    from aigc.core.config import component

    parser = add_command(families, family.name, family.help, family.examples)
    parser.add_argument("--out", type=Path, help=f"run directory (default: runs/<data>{family.run_suffix})")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    if family.recipes:
        recipes = list(family.recipes)
        help = f"starting config: {', '.join(recipes)}; the defaults shown below are {recipes[0]}'s"
        parser.add_argument("--recipe", choices=recipes, help=f"{help} (default: {recipes[0]})")
    base = family.new_config()
    for path in family.flag_components:
        defaults = component(base, path)
        add_options(parser, type(defaults), path, defaults=defaults, unlisted=family.unused_flags)
    if "train" in family.flag_components:
        add_amounts(parser, family, base.train)
    parser.set_defaults(run=run)


def add_amounts(parser, family, defaults) -> None:
    """The train config's amounts as flags in the family's unit, as its people write them (--kimg, --tokens
    5M, ...; training/config.py, `UNITS`), and the flags its unit knew by another name before."""
    from aigc.cli.options import argparse_type
    from aigc.training.config import FIELDS, UNITS

    unit = UNITS[family.unit]
    group = parser.add_argument_group("train amounts")
    for name, amount in unit.amounts.items():
        kind = amount.parse if amount.parse in (float, int) else argparse_type(amount.parse)
        default = amount.written(getattr(defaults, name))
        text = f"{amount.help} (default: {int(default) if default is not None and default % 1 == 0 else default})"
        group.add_argument(amount.option, dest=f"{AMOUNTS}.{name}", type=kind, metavar=amount.name.upper(), help=text)
    for old, new in unit.renamed.items():  # still read (the help shows today's name)
        if "help" in FIELDS[new].metadata:
            group.add_argument("--" + old, dest=f"train.{new}", help=argparse.SUPPRESS)


def amounts(family, args) -> dict:
    """The amounts the user gave, as train config values in the family's unit (checked as written)."""
    from aigc.cli.options import given
    from aigc.training.config import UNITS

    return UNITS[family.unit].units(given(args, AMOUNTS))


def run(args) -> int:
    from aigc.core.distributed import is_main
    from aigc.families.registry import family
    from aigc.runs import train
    from aigc.training.loop import report

    entry = family(args.family)
    if args.resume:
        run_dir, config, more = resumed(entry, args)
    else:
        config, more = new_config(entry, args), None
        data_name = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.data.name.split("/")[-1] or "run")
        run_dir = args.out or Path("runs") / f"{data_name}{entry.run_suffix}"
        check_run_dir(run_dir, args.overwrite)
    progress = not args.no_progress
    outcome = train(config, run_dir, resume=bool(args.resume), more=more, progress=progress, replace=args.overwrite)
    if is_main():
        report(entry, outcome)
    return 0


def new_config(family, args):
    """The family's default (or recipe) config with every flag the user gave applied; the config checks
    itself as it is built, so a bad value stops here, before any work."""
    import dataclasses

    from aigc.cli.options import apply
    from aigc.core.config import component, replace_at
    from aigc.training.config import DEFAULT_MINUTES

    config = family.new_config(getattr(args, "recipe", None))
    for path in family.flag_components:
        config = replace_at(config, path, apply(component(config, path), args, path))
    written = amounts(family, args)
    if written:
        config = replace_at(config, "train", dataclasses.replace(config.train, **written))
    if config.train.budget is None and config.train.minutes is None:
        config = replace_at(config, "train.minutes", DEFAULT_MINUTES)
    return config


def resumed(family, args):
    """(run directory, config, more budget) of `--resume RUN_DIR`: the run's own config with the flags that may
    change applied. The budget flags (--kimg/--tokens, --minutes) add to what the run has done (the loop reads
    how much, with the checkpoint); without them it finishes its budget."""
    import dataclasses

    from aigc.cli.options import apply, given
    from aigc.core.errors import UserError
    from aigc.families.registry import load_json

    run_dir = args.resume
    if args.out and args.out != run_dir:
        raise UserError("--out and --resume name different directories; a resumed run stays in its directory")
    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir} is not a run directory (no config.json); check the path")
    config = load_json(run_dir / "config.json")
    if config.family != family.name:
        raise UserError(f"{run_dir} is a {config.family} run; resume it with aigc train {config.family} --resume")
    check_unchanged(family, config, args)
    budget = given(args, "train") | amounts(family, args)
    spread = {k: v for k, v in budget.items() if k in ("threads", "batch_per_device")}
    config = dataclasses.replace(
        config, data=apply(config.data, args, "data"), train=dataclasses.replace(config.train, **spread)
    )
    more = {k: v for k, v in budget.items() if k in config.train.budget_fields} or None
    if more:
        dataclasses.replace(config.train, **more)  # the train config checks the values (more of nothing: refused)
    return run_dir, config, more


def check_unchanged(family, config, args) -> None:
    """On --resume, flags may only repeat the run's own values (except the budget, threads and data location)."""
    from aigc.cli.options import given
    from aigc.core.config import component
    from aigc.core.errors import UserError
    from aigc.training.config import UNITS

    changed = [
        flag_of(component(config, path), key)
        for path in family.flag_components
        for key, value in given(args, path).items()
        if not changeable(config, f"{path}.{key}") and value != getattr(component(config, path), key)
    ]
    changed = sorted(changed + [
        UNITS[family.unit].amounts[key].option
        for key, value in amounts(family, args).items()
        if not changeable(config, f"train.{key}") and value != getattr(config.train, key)
    ])  # fmt: skip
    if getattr(args, "recipe", None) and args.recipe != config.recipe:
        changed.append("--recipe")
    if changed:
        flags = ", ".join(changed)
        raise UserError(f"{flags} cannot change on --resume (the run keeps its config); start a new run instead")


def changeable(config, path: str) -> bool:
    return path in CHANGEABLE_ON_RESUME or path in {f"train.{name}" for name in config.train.budget_fields}


def flag_of(config, key: str) -> str:
    """The command-line flag of a config field (see cli/options.py)."""
    import dataclasses

    field = next(f for f in dataclasses.fields(config) if f.name == key)
    return field.metadata.get("flag", "--" + key.replace("_", "-"))


def check_run_dir(run_dir: Path, overwrite: bool) -> None:
    """UserError when `run_dir` holds a run and --overwrite was not given, or cannot be written. Nothing is
    deleted or created here: an old run is replaced only once the new one's data and model are ready (the
    training loop), so a refused data set loses nothing."""
    import os

    from aigc.core.errors import UserError

    if run_dir.exists() and any(run_dir.iterdir()) and not overwrite:
        raise UserError(
            f"{run_dir} already holds a run; continue it with --resume {run_dir}, "
            "or pass --overwrite to start afresh, or choose another --out"
        )
    existing = next(parent for parent in (run_dir, *run_dir.absolute().parents) if parent.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise UserError(
            f"cannot create run directory {run_dir} (no writable folder at {existing}); choose another --out"
        )
