"""The run configs, one per method: the component dataclasses composed into one object, dumped to and loaded from
JSON; and the GAN recipes, which are named starting points for a GAN run's config.

Each component lives next to its consumer (DataConfig in data/, ModelConfig and GANModelConfig in models/,
LossConfig, AdversarialConfig and TrainConfig in training/, SampleConfig in sampling/, OptimizationConfig
in models/); this module only
composes and (de)serialises them.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from aigc.data.datasets import DataConfig
from aigc.errors import UserError
from aigc.models.diffusion import ModelConfig
from aigc.models.gan import GANModelConfig
from aigc.models.optimize import OptimizationConfig
from aigc.sampling.samplers import SampleConfig
from aigc.training.gan import AdversarialConfig
from aigc.training.losses import LossConfig
from aigc.training.optim import TrainConfig

FORMAT_VERSION = 1


@dataclass(frozen=True)
class DiffusionRunConfig:
    method: Literal["diffusion"] = "diffusion"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    train: TrainConfig = TrainConfig()
    sample: SampleConfig = SampleConfig()
    optimization: OptimizationConfig = OptimizationConfig()
    format_version: int = FORMAT_VERSION


@dataclass(frozen=True)
class GANRunConfig:
    method: Literal["gan"] = "gan"
    recipe: str = "stable"
    data: DataConfig = DataConfig()
    model: GANModelConfig = GANModelConfig()
    adversarial: AdversarialConfig = AdversarialConfig()
    train: TrainConfig = TrainConfig()
    sample: SampleConfig = SampleConfig()
    optimization: OptimizationConfig = OptimizationConfig()
    format_version: int = FORMAT_VERSION


RunConfig = DiffusionRunConfig | GANRunConfig
RUN_CONFIGS = {"diffusion": DiffusionRunConfig, "gan": GANRunConfig}

# GAN training outside these recipes is a matter of flags: each recipe only sets the starting values.
# seed: the tutorial's MLP GAN as described (Adam 2e-4 with torch's default betas, BCE, no EMA or augmentation).
# dcgan: Radford et al. (2016): Adam 2e-4, beta1 0.5, batch 128, BCE.
# stable: the GANModelConfig and AdversarialConfig defaults (spectral norm, R1, hinge loss, DiffAugment), EMA of G.
# The recipes keep the precision and memory format their benchmark runs used: seed and dcgan fp32, stable bf16
# where the hardware has it natively, all channels-last.
_GAN_TRAIN = dict(warmup_kimg=0.0, grad_clip=0.0, memory_format="channels_last")
GAN_RECIPES = {
    "seed": dict(
        model=dict(generator="mlp", discriminator="mlp", z_dim=100, width=256, spectral_norm=False),
        adversarial=dict(loss="bce", lr_d=2e-4, beta1=0.9, beta2=0.999, r1_gamma=0.0, augment="none"),
        train=dict(_GAN_TRAIN, lr=2e-4, batch=64, ema_halflife_kimg=0.0, precision="fp32"),
    ),
    "dcgan": dict(
        model=dict(generator="dcgan", discriminator="dcgan", z_dim=100, width=64, spectral_norm=False),
        adversarial=dict(loss="bce", lr_d=2e-4, beta1=0.5, beta2=0.999, r1_gamma=0.0, augment="none"),
        train=dict(_GAN_TRAIN, lr=2e-4, batch=128, ema_halflife_kimg=0.0, precision="fp32"),
    ),
    "stable": dict(train=dict(_GAN_TRAIN, lr=4e-4, batch=32, ema_halflife_kimg=10.0, precision="auto")),
}


def gan_recipe(name: str) -> GANRunConfig:
    if name not in GAN_RECIPES:
        raise UserError(f"unknown recipe {name!r}; choose one of {', '.join(GAN_RECIPES)}")
    base = GANRunConfig(recipe=name)
    parts = {part: dataclasses.replace(getattr(base, part), **values) for part, values in GAN_RECIPES[name].items()}
    return dataclasses.replace(base, **parts)


def to_dict(config) -> dict[str, Any]:
    return dataclasses.asdict(config)


def to_json(config) -> str:
    return json.dumps(to_dict(config), indent=2, sort_keys=True)


def from_dict(cls, data: dict[str, Any], where: str = "config"):
    """Rebuild a (nested) config dataclass, refusing unknown keys so an incompatible file is caught early."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise UserError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; written by another aigc version?")
    values = {name: _convert(hints[name], value, f"{where}.{name}") for name, value in data.items()}
    return cls(**values)


def _convert(hint, value, where: str):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else _convert(options[0], value, where)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin is tuple:
        return tuple(value)
    return value


def load_json(path) -> RunConfig:
    try:
        data = json.loads(open(path).read())
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: unreadable config ({error})") from None
    return from_json_dict(data, str(path))


def from_json_dict(data: dict, where: str) -> RunConfig:
    if data.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"{where}: config format {data.get('format_version')!r} is not {FORMAT_VERSION}; "
            "it was written by an incompatible aigc version"
        )
    if data.get("method") not in RUN_CONFIGS:
        raise UserError(f"{where}: unknown method {data.get('method')!r}; expected one of {', '.join(RUN_CONFIGS)}")
    return from_dict(RUN_CONFIGS[data["method"]], data, where)
