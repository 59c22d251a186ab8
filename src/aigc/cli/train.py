"""`aigc train diffusion`: train a model on a data set into a run directory, or resume one."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

EXAMPLES = """examples:
  aigc train diffusion --data digits --kimg 150 --out runs/digits
  aigc train diffusion --data mnist --data-dir DIR --minutes 10 --out runs/mnist
  aigc train diffusion --data folder:path/to/photos --image-size 64 --kimg 500
  aigc train diffusion --resume runs/mnist                # continue where it stopped
  aigc train diffusion --resume runs/mnist --kimg 100     # ... and train 100 kimg more
"""


def register(commands) -> None:
    from aigc.cli.options import add_command, add_options
    from aigc.data.datasets import DataConfig
    from aigc.models.diffusion import ModelConfig
    from aigc.models.precond import PrecondConfig
    from aigc.sampling.samplers import SampleConfig
    from aigc.training.losses import LossConfig
    from aigc.training.optim import TrainConfig

    parser = add_command(commands, "train", "train a model", EXAMPLES)
    parser.add_argument("method", choices=["diffusion"], help="what to train")
    parser.add_argument("--out", type=Path, help="run directory (default: runs/<data>)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    for cls, path in [
        (DataConfig, "data"),
        (ModelConfig, "model"),
        (PrecondConfig, "model.precond"),
        (LossConfig, "loss"),
        (TrainConfig, "train"),
        (SampleConfig, "sample"),
    ]:
        add_options(parser, cls, path)
    parser.set_defaults(run=run)


BUDGET = ("kimg", "minutes")
CHANGEABLE_ON_RESUME = {"data.data_dir", "train.kimg", "train.minutes", "train.threads"}


def run(args) -> int:
    from aigc.cli.options import apply, given
    from aigc.config import RunConfig, load_json
    from aigc.errors import UserError
    from aigc.training.loop import report, train
    from aigc.training.optim import DEFAULT_MINUTES

    budget = given(args, "train")
    if args.resume:
        run_dir = args.resume
        if args.out and args.out != run_dir:
            raise UserError("--out and --resume name different directories; a resumed run stays in its directory")
        if not (run_dir / "config.json").is_file():
            raise UserError(f"{run_dir} is not a run directory (no config.json); check the path")
        config = load_json(run_dir / "config.json")
        changed = sorted(
            flag_of(component(config, path), key)
            for path in ("data", "model", "model.precond", "loss", "train", "sample")
            for key, value in given(args, path).items()
            if f"{path}.{key}" not in CHANGEABLE_ON_RESUME and value != getattr(component(config, path), key)
        )
        if changed:
            flags = ", ".join(changed)
            raise UserError(f"{flags} cannot change on --resume (the run keeps its config); start a new run instead")
        config = dataclasses.replace(config, data=apply(config.data, args, "data"))
        config = dataclasses.replace(config, train=extend_budget(config, run_dir, budget))
    else:
        config = RunConfig()
        for path in ("data", "loss", "sample"):
            config = dataclasses.replace(config, **{path: apply(getattr(config, path), args, path)})
        model = apply(config.model, args, "model")
        config = dataclasses.replace(
            config, model=dataclasses.replace(model, precond=apply(model.precond, args, "model.precond"))
        )
        train_config = apply(config.train, args, "train")
        if train_config.kimg is None and train_config.minutes is None:
            train_config = dataclasses.replace(train_config, minutes=DEFAULT_MINUTES)
        config = dataclasses.replace(config, train=train_config)
        validate(config)
        run_dir = args.out or Path("runs") / re.sub(r"[^A-Za-z0-9_.-]+", "-", config.data.name.split("/")[-1] or "run")
        prepare_run_dir(run_dir, args.overwrite)
    outcome = train(config, run_dir, resume=bool(args.resume), progress=not args.no_progress)
    report(outcome)
    return 0


def component(config, path: str):
    """config.model.precond for path 'model.precond'."""
    for part in path.split("."):
        config = getattr(config, part)
    return config


def flag_of(config, key: str) -> str:
    """The command-line flag of a config field (see cli/options.py)."""
    field = next(f for f in dataclasses.fields(config) if f.name == key)
    return field.metadata.get("flag", "--" + key.replace("_", "-"))


def extend_budget(config, run_dir: Path, budget: dict):
    """With --resume, --kimg/--minutes add to what the run has already done; without them it finishes its budget."""
    from aigc.training.checkpoint import latest_checkpoint, load_checkpoint, load_state

    train_config = dataclasses.replace(config.train, threads=budget.get("threads", config.train.threads))
    if not any(k in budget for k in BUDGET):
        return train_config
    weights = latest_checkpoint(run_dir, need_state=True)
    done_kimg = load_checkpoint(weights).nimg / 1000
    done_minutes = load_state(weights)["train_seconds"] / 60
    return dataclasses.replace(
        train_config,
        kimg=done_kimg + budget["kimg"] if "kimg" in budget else None,
        minutes=done_minutes + budget["minutes"] if "minutes" in budget else None,
    )


def validate(config) -> None:
    from aigc.errors import UserError
    from aigc.sampling.samplers import SAMPLERS

    t = config.train
    if t.batch < 1:
        raise UserError(f"--batch {t.batch}: use a positive batch size")
    if (t.kimg is not None and t.kimg <= 0) or (t.minutes is not None and t.minutes <= 0):
        raise UserError("--kimg and --minutes must be positive")
    if t.lr <= 0:
        raise UserError(f"--lr {t.lr}: use a positive learning rate")
    if t.snapshot_kimg <= 0:
        raise UserError("--snapshot-kimg must be positive")
    if t.eval_every_kimg is not None and (t.eval_every_kimg <= 0 or t.eval_n < 2):
        raise UserError("--eval-every must be positive and --eval-n at least 2")
    if config.sample.sampler not in SAMPLERS:
        raise UserError(f"unknown sampler {config.sample.sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if not 0 <= config.loss.label_dropout < 1:
        raise UserError("--label-dropout must lie in [0, 1)")


def prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    from aigc.errors import UserError

    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise UserError(
                f"{run_dir} already holds a run; continue it with --resume {run_dir}, "
                "or pass --overwrite to start afresh, or choose another --out"
            )
        shutil.rmtree(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create run directory {run_dir} ({error.strerror}); choose a writable --out") from None
