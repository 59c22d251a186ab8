"""The run config: the component dataclasses composed into one object, dumped to and loaded from JSON.

Each component lives next to its consumer (DataConfig in data/, ModelConfig in models/, LossConfig and
TrainConfig in training/, SampleConfig in sampling/); this module only composes and (de)serialises them.
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
from aigc.sampling.samplers import SampleConfig
from aigc.training.losses import LossConfig
from aigc.training.optim import TrainConfig

FORMAT_VERSION = 1


@dataclass(frozen=True)
class RunConfig:
    method: Literal["diffusion"] = "diffusion"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    train: TrainConfig = TrainConfig()
    sample: SampleConfig = SampleConfig()
    format_version: int = FORMAT_VERSION


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
    return from_dict(RunConfig, data, where)
