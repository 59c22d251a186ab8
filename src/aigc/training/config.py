"""How a run trains, for every family: one `TrainConfig` whose amounts - the budget, the warm-up, the snapshot and
evaluation intervals, the EMA half-life, the size of an in-loop evaluation - count the family's unit
(`Family.unit`: images, tokens), and the units: how people write each amount (its flag, in how many units, read
how), and how formats 1 and 2 of a run config named and counted them (`FORMER`)."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from aigc.core.config import BOUNDS, Config, check_value, parse_count
from aigc.core.device import Precision
from aigc.core.errors import ConfigError

LRSchedule = Literal["constant", "wsd", "cosine"]
Optimizer = Literal["adamw", "muon"]
DEFAULT_MINUTES = 10.0  # the budget when the command line gives neither an amount nor --minutes


@dataclass(frozen=True)
class TrainConfig(Config):
    """The defaults are the image families'; another family's come from its run config (lm/config.py). The
    amounts - warmup, ema_halflife, budget, snapshot_every, eval_every, eval_n - count the family's unit, and
    their flags are the unit's (`UNITS`: --kimg, --tokens, ...)."""

    batch: int = field(
        default=64, metadata={"help": "examples per optimiser step (images, sequences), over all processes", "min": 1}
    )
    batch_per_device: int | None = field(
        default=None,
        metadata={
            "help": "examples per forward pass of each process; less than its share of --batch accumulates",
            "min": 1,
        },
    )
    optimizer: Optimizer = field(
        default="adamw", metadata={"help": "adamw, or muon for the 2-D hidden weights and AdamW for the rest (lm)"}
    )
    lr: float = field(default=2e-3, metadata={"help": "peak learning rate (a GAN: of G)", "above": 0.0})
    lr_schedule: LRSchedule = field(
        default="constant",
        metadata={"help": "after warm-up: constant, warm-up-stable-decay, or cosine"},
    )
    decay: float = field(
        default=0.2, metadata={"help": "wsd: the share of the run the rate decays over", "above": 0.0, "max": 1.0}
    )
    final_lr: float = field(
        default=0.0, metadata={"help": "the learning rate at the end, as a share of --lr", "min": 0.0, "max": 1.0}
    )
    warmup: float = field(default=5_000.0, metadata={"min": 0.0})  # linear, from 0 to --lr
    weight_decay: float = field(
        default=0.0, metadata={"help": "decoupled weight decay (lm: of the matrices)", "min": 0.0}
    )
    grad_clip: float = field(default=1.0, metadata={"help": "clip the gradient norm (0: off)", "min": 0.0})
    ema_halflife: float = field(default=50_000.0, metadata={"min": 0.0})  # of the EMA an image family keeps
    # early on, the EMA half-life is at most this share of what the run has seen
    ema_rampup: float = field(default=0.05, metadata={"min": 0.0})
    budget: float | None = field(default=None, metadata={"above": 0.0})  # stop at this amount (or --minutes)
    minutes: float | None = field(
        default=None, metadata={"help": "stop after this many minutes of training", "above": 0.0}
    )
    seed: int = field(default=0, metadata={"help": "seed of initialisation, data order and noise", "min": 0})
    precision: Precision = field(
        default="auto", metadata={"help": "fp32, bf16 (autocast), or auto: bf16 where the hardware has it natively"}
    )
    memory_format: Literal["contiguous", "channels_last"] = field(
        default="contiguous", metadata={"help": "contiguous or channels_last (convolutional models)"}
    )
    snapshot_every: float = field(default=20_000.0, metadata={"above": 0.0})  # a checkpoint and samples
    grid_size: int = field(default=64, metadata={"min": 1})  # outputs of each snapshot, of seeds 0..grid_size-1
    eval_every: float | None = field(default=None, metadata={"above": 0.0})  # the in-loop evaluation (None: none)
    eval_n: int = field(default=1000, metadata={"min": 2})  # what one in-loop evaluation covers
    threads: int | None = field(default=None, metadata={"help": "CPU threads (default: torch's choice)", "min": 1})

    # What a resumed run may be given more of (aigc train --resume): added to what it has done.
    budget_fields: ClassVar[tuple[str, ...]] = ("budget", "minutes")

    def extended(self, seen: int, seconds: float, more: dict) -> TrainConfig:
        """The budget of a resumed run that has seen `seen` units in `seconds`, given `more` of it."""
        budget = seen + more["budget"] if more.get("budget") is not None else None
        minutes = seconds / 60 + more["minutes"] if more.get("minutes") is not None else None
        return dataclasses.replace(self, budget=budget, minutes=minutes)

    def describe_budget(self, unit: str) -> str:
        return UNITS[unit].describe(self.budget) if self.budget is not None else f"{self.minutes:g} min"

    def check_optimizer(self, *supported: Optimizer) -> None:
        """ConfigError when the family trains with none of the `supported` optimisers."""
        if self.optimizer not in supported:
            raise ConfigError("optimizer", self.optimizer, f"this model trains with {' or '.join(supported)}")


@dataclass(frozen=True)
class Amount:
    """How people write an amount field of a TrainConfig in one unit: by `name` (its flag --name unless `flag`
    says otherwise, and its error messages), as values of `scale` units each, read
    by `parse`."""

    name: str
    help: str
    scale: int = 1
    parse: Callable[[str], float] = float
    flag: str = ""

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def written(self, units: float | None) -> float | None:
        """An amount in units as people write it."""
        return units if units is None or self.scale == 1 else units / self.scale

    def units(self, field_name: str, written: float) -> float:
        """An amount as people wrote it, in units; a value the field cannot take is a ConfigError naming it as
        written (`kimg = -1.0: must be greater than 0.0`)."""
        f = FIELDS[field_name]
        bounds = {key: f.metadata[key] / self.scale for key in BOUNDS if key in f.metadata and self.scale != 1}
        check_value(self.name, written, HINTS[field_name], {**f.metadata, **bounds})
        value = written * self.scale
        return float(value) if float in (HINTS[field_name], *typing.get_args(HINTS[field_name])) else value


@dataclass(frozen=True)
class Unit:
    """What a family's training counts (the loop's `seen`): each amount field as people write it, and a budget
    for people."""

    amounts: dict[str, Amount]  # TrainConfig field -> how it is written
    describe: Callable[[float], str]
    renamed: dict[str, str] = field(default_factory=dict)  # former flags of other fields, still read

    def units(self, written: dict[str, float]) -> dict[str, float]:
        """TrainConfig values from amounts as people wrote them ({field: written value})."""
        return {name: self.amounts[name].units(name, value) for name, value in written.items()}


UNITS: dict[str, Unit] = {
    "img": Unit(
        {
            "budget": Amount("kimg", "stop after this many thousand images", 1000),
            "warmup": Amount("warmup_kimg", "linear learning-rate warm-up, thousands of images", 1000),
            "snapshot_every": Amount("snapshot_kimg", "checkpoint and sample grid every N kimg", 1000),
            "eval_every": Amount(
                "eval_every_kimg", "FID (+ coverage) of the EMA model every N kimg", 1000, flag="--eval-every"
            ),
            "eval_n": Amount("eval_n", "images generated per in-loop evaluation", parse=int),
            "ema_halflife": Amount("ema_halflife_kimg", "EMA half-life in thousands of images", 1000),
        },
        lambda images: f"{images / 1000:g} kimg",
    ),
    "tok": Unit(
        {
            "budget": Amount("tokens", "stop after this many tokens (5M, 200k, ...)", parse=parse_count),
            "warmup": Amount("warmup_tokens", "linear learning-rate warm-up, in tokens", parse=parse_count),
            "snapshot_every": Amount(
                "snapshot_tokens", "checkpoint and sample texts every N tokens", parse=parse_count
            ),
            "eval_every": Amount(
                "eval_every", "validation loss every N tokens (keeps the best checkpoint)", parse=parse_count
            ),
            "eval_n": Amount("eval_tokens", "validation tokens scored per in-loop evaluation", parse=parse_count),
        },
        lambda tokens: f"{tokens:,.0f} tokens",
        renamed={"schedule": "lr_schedule", "samples": "grid_size"},
    ),
    "text": Unit(
        {
            "budget": Amount("texts", "stop after this many texts (20k: about 6 passes over 3.5k)", parse=parse_count),
            "warmup": Amount("warmup_texts", "linear learning-rate warm-up, in texts", parse=parse_count),
            "snapshot_every": Amount("snapshot_texts", "checkpoint and sample labels every N texts", parse=parse_count),
            "eval_every": Amount(
                "eval_every", "score the validation split every N texts (keeps the best checkpoint)", parse=parse_count
            ),
            "eval_n": Amount("eval_texts", "validation texts scored per in-loop evaluation", parse=parse_count),
        },
        lambda texts: f"{texts:,.0f} texts",
    ),
    "history": Unit(
        {
            "budget": Amount(
                "histories", "stop after this many histories (50k: about 80 passes over 610 users)", parse=parse_count
            ),
            "warmup": Amount("warmup_histories", "linear learning-rate warm-up, in histories", parse=parse_count),
            "snapshot_every": Amount(
                "snapshot_histories", "checkpoint and sample recommendations every N histories", parse=parse_count
            ),
            "eval_every": Amount(
                "eval_every",
                "score the validation targets every N histories (keeps the best checkpoint)",
                parse=parse_count,
            ),
            "eval_n": Amount("eval_users", "validation users scored per in-loop evaluation", parse=parse_count),
        },
        lambda histories: f"{histories:,.0f} histories",
    ),
}

FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
HINTS = typing.get_type_hints(TrainConfig)


# format 1 and 2's name of a field -> (its name today, units per value then). Written out, not derived from
# UNITS: a flag renamed today must not change how an old file reads.
FORMER = {
    "kimg": ("budget", 1000), "warmup_kimg": ("warmup", 1000), "snapshot_kimg": ("snapshot_every", 1000),
    "eval_every_kimg": ("eval_every", 1000), "ema_halflife_kimg": ("ema_halflife", 1000),
    "tokens": ("budget", 1), "warmup_tokens": ("warmup", 1), "snapshot_tokens": ("snapshot_every", 1),
    "eval_tokens": ("eval_n", 1), "schedule": ("lr_schedule", 1), "samples": ("grid_size", 1),
}  # fmt: skip


def upgrade_train(data: dict) -> dict:
    """A train config's JSON object of format 1 or 2 in today's form. Those named and counted each amount as its
    family's people write it (`kimg`: thousands of images; `tokens`) - names no two units share, so the object
    itself says which unit it counts - and the language model's `schedule` and `samples` otherwise."""
    upgraded = {}
    for key, value in data.items():
        name, scale = FORMER.get(key, (key, 1))
        if scale != 1 and value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(key, value, "must be a number")
            value = value * scale
        upgraded[name] = value
    return upgraded
