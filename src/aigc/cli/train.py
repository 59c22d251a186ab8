"""`aigc train diffusion|gan`: train a model on a data set into a run directory, or resume one."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

EXAMPLES = {
    "diffusion": """examples:
  aigc train diffusion --data digits --kimg 150 --out runs/digits
  aigc train diffusion --data mnist --data-dir DIR --minutes 10 --out runs/mnist
  aigc train diffusion --data folder:path/to/photos --image-size 64 --kimg 500
  aigc train diffusion --resume runs/mnist                # continue where it stopped
  aigc train diffusion --resume runs/mnist --kimg 100     # ... and train 100 kimg more
""",
    "gan": """examples:
  aigc train gan --recipe seed --data mnist --minutes 5 --out runs/gan-seed    # the tutorial's MLP GAN
  aigc train gan --recipe dcgan --data mnist --minutes 5
  aigc train gan --data mnist --minutes 5 --eval-every 50     # stable recipe; FID + class coverage in the log
  aigc train gan --data fashion-mnist --conditional --loss hinge
  aigc train gan --data folder:path/to/photos --image-size 64
  aigc train gan --resume runs/mnist-gan --minutes 5
""",
}
# Components of each method's run config that take flags, by their path in the config.
COMPONENTS = {
    "diffusion": ("data", "model", "model.precond", "loss", "train", "sample"),
    "gan": ("data", "model", "adversarial", "train", "sample"),
}


def register(commands) -> None:
    from aigc.cli.options import add_command

    parser = add_command(commands, "train", "train a model", "methods: diffusion, gan (see aigc train METHOD --help)")
    methods = parser.add_subparsers(dest="method", required=True, metavar="METHOD")
    for method in COMPONENTS:
        add_method(methods, method)


def add_method(methods, method: str) -> None:
    from aigc.cli.options import add_command, add_options
    from aigc.config import GAN_RECIPES, RUN_CONFIGS, gan_recipe
    from aigc.sampling.pipeline import sample_fields

    help = {"diffusion": "a diffusion model (EDM or DDPM)", "gan": "a GAN (recipes: seed, dcgan, stable)"}[method]
    parser = add_command(methods, method, help, EXAMPLES[method])
    parser.add_argument("--out", type=Path, help="run directory (default: runs/<data> or runs/<data>-gan)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    if method == "gan":
        recipes = ", ".join(GAN_RECIPES)
        help = f"starting config: {recipes}; the defaults shown below are stable's (default: stable)"
        parser.add_argument("--recipe", choices=list(GAN_RECIPES), help=help)
    base = gan_recipe("stable") if method == "gan" else RUN_CONFIGS[method]()
    for path in COMPONENTS[method]:
        only = sample_fields(method) if path == "sample" else None
        defaults = component(base, path)
        add_options(parser, type(defaults), path, only, defaults)
    parser.set_defaults(run=run)


BUDGET = ("kimg", "minutes")
CHANGEABLE_ON_RESUME = {"data.data_dir", "train.kimg", "train.minutes", "train.threads", "train.batch_per_device"}


def run(args) -> int:
    from aigc.cli.options import apply, given
    from aigc.config import load_json
    from aigc.errors import UserError
    from aigc.training.distributed import is_main
    from aigc.training.loop import report, train

    if args.resume:
        run_dir = args.resume
        if args.out and args.out != run_dir:
            raise UserError("--out and --resume name different directories; a resumed run stays in its directory")
        if not (run_dir / "config.json").is_file():
            raise UserError(f"{run_dir} is not a run directory (no config.json); check the path")
        config = load_json(run_dir / "config.json")
        if config.method != args.method:
            raise UserError(f"{run_dir} is a {config.method} run; resume it with aigc train {config.method} --resume")
        check_unchanged(config, args)
        config = replace_at(config, "data", apply(config.data, args, "data"))
        config = dataclasses.replace(config, train=extend_budget(config, run_dir, given(args, "train")))
    else:
        config = new_config(args)
        suffix = "-gan" if config.method == "gan" else ""
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.data.name.split("/")[-1] or "run") + suffix
        run_dir = args.out or Path("runs") / name
        prepare_run_dir(run_dir, args.overwrite)
    outcome = train(config, run_dir, resume=bool(args.resume), progress=not args.no_progress)
    if is_main():
        report(outcome)
    return 0


def new_config(args):
    """The method's default (or recipe) config with every flag the user gave applied, validated."""
    from aigc.cli.options import apply
    from aigc.config import DiffusionRunConfig, gan_recipe
    from aigc.training.optim import DEFAULT_MINUTES

    config = gan_recipe(args.recipe or "stable") if args.method == "gan" else DiffusionRunConfig()
    for path in COMPONENTS[args.method]:
        config = replace_at(config, path, apply(component(config, path), args, path))
    if config.train.kimg is None and config.train.minutes is None:
        config = replace_at(config, "train.minutes", DEFAULT_MINUTES)
    validate(config)
    return config


def replace_at(config, path: str, value):
    """`config` with the field at `path` ('model.precond') replaced by `value`."""
    head, _, rest = path.partition(".")
    return dataclasses.replace(config, **{head: replace_at(getattr(config, head), rest, value) if rest else value})


def check_unchanged(config, args) -> None:
    """On --resume, flags may only repeat the run's own values (except the budget, threads and data location)."""
    from aigc.cli.options import given
    from aigc.errors import UserError

    changed = sorted(
        flag_of(component(config, path), key)
        for path in COMPONENTS[config.method]
        for key, value in given(args, path).items()
        if f"{path}.{key}" not in CHANGEABLE_ON_RESUME and value != getattr(component(config, path), key)
    )
    if getattr(args, "recipe", None) and args.recipe != config.recipe:
        changed.append("--recipe")
    if changed:
        flags = ", ".join(changed)
        raise UserError(f"{flags} cannot change on --resume (the run keeps its config); start a new run instead")


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
    """With --resume, --kimg/--minutes add to what the run has already done; without them it finishes its budget.
    --threads and --batch-per-device (how the same run is spread over this machine) may change too."""
    from aigc.training.checkpoint import latest_checkpoint, load_checkpoint, load_state

    train_config = dataclasses.replace(
        config.train,
        threads=budget.get("threads", config.train.threads),
        batch_per_device=budget.get("batch_per_device", config.train.batch_per_device),
    )
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
    if t.batch_per_device is not None and t.batch_per_device < 1:
        raise UserError(f"--batch-per-device {t.batch_per_device}: use a positive batch size")
    if (t.kimg is not None and t.kimg <= 0) or (t.minutes is not None and t.minutes <= 0):
        raise UserError("--kimg and --minutes must be positive")
    if t.lr <= 0:
        raise UserError(f"--lr {t.lr}: use a positive learning rate")
    if t.snapshot_kimg <= 0:
        raise UserError("--snapshot-kimg must be positive")
    if t.eval_every_kimg is not None and (t.eval_every_kimg <= 0 or t.eval_n < 2):
        raise UserError("--eval-every must be positive and --eval-n at least 2")
    if config.method == "gan":
        validate_gan(config)
        return
    if config.sample.sampler not in SAMPLERS:
        raise UserError(f"unknown sampler {config.sample.sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if not 0 <= config.loss.label_dropout < 1:
        raise UserError("--label-dropout must lie in [0, 1)")


def validate_gan(config) -> None:
    from aigc.data.augment import parse_policy
    from aigc.errors import UserError
    from aigc.sampling.pipeline import MIN_TRUNCATION

    a = config.adversarial
    if a.lr_d <= 0:
        raise UserError(f"--lr-d {a.lr_d}: use a positive learning rate")
    if not (0 <= a.beta1 < 1 and 0 <= a.beta2 < 1):
        raise UserError("--beta1 and --beta2 must lie in [0, 1)")
    if a.r1_gamma < 0 or a.r1_every < 1:
        raise UserError("--r1-gamma must be >= 0 and --r1-every >= 1")
    if a.collapse_steps < 0:
        raise UserError("--collapse-steps must be >= 0 (0: never stop)")
    parse_policy(a.augment)
    if config.sample.truncation is not None and config.sample.truncation < MIN_TRUNCATION:
        raise UserError(f"--truncation {config.sample.truncation}: use {MIN_TRUNCATION} or more")


def prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    from aigc.errors import UserError
    from aigc.training import distributed

    occupied = run_dir.exists() and any(run_dir.iterdir())
    if occupied and not overwrite:
        raise UserError(
            f"{run_dir} already holds a run; continue it with --resume {run_dir}, "
            "or pass --overwrite to start afresh, or choose another --out"
        )
    distributed.barrier()  # every rank has looked before rank 0 changes anything
    if not distributed.is_main():
        return
    if occupied:
        shutil.rmtree(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create run directory {run_dir} ({error.strerror}); choose a writable --out") from None
