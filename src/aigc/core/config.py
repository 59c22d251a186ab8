"""Config dataclasses that check themselves, and their JSON form.

Every config of aigc derives from `Config`: construction checks each field against its type hint (`Literal`
choices, ints that are ints, finite floats) and its metadata bounds (`min`/`max` inclusive, `above`/`below`
exclusive),
then the class's own cross-field rules (`check`). Whatever builds a config - CLI flags, an HTTP request, a
checkpoint's JSON, a test - therefore gets the same one-line `ConfigError` before any work starts.

    steps: int = field(default=10, metadata={"help": "number of sampling steps", "min": 1, "max": 1000})
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any

from aigc.core.errors import ConfigError, UserError


class Config:
    """Base of the frozen config dataclasses: validated at construction (see the module docstring)."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            check_value(f.name, getattr(self, f.name), hints[f.name], f.metadata)
        self.check()

    def check(self) -> None:
        """Cross-field rules; raise ConfigError naming the field."""


def check_value(name: str, value, hint, metadata) -> None:
    """ConfigError when `value` does not fit the type `hint` or the bounds in `metadata`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(name, value, f"choose one of {', '.join(map(str, args))}")
        return
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(name, value, "must be true or false")
        return
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(name, value, "must be a whole number")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(name, value, "must be a number")
        if not math.isfinite(value):
            raise ConfigError(name, value, "must be a finite number")
    else:
        return
    low, high = metadata.get("min"), metadata.get("max")
    above, below = metadata.get("above"), metadata.get("below")
    if above is not None and not value > above:
        raise ConfigError(name, value, f"must be greater than {above}")
    if below is not None and not value < below:
        raise ConfigError(name, value, f"must be less than {below}")
    if low is not None and high is not None and not low <= value <= high:
        raise ConfigError(name, value, f"must lie in {low}..{high}")
    if low is not None and value < low:
        raise ConfigError(name, value, f"must be at least {low}")
    if high is not None and value > high:
        raise ConfigError(name, value, f"must be at most {high}")


SUFFIXES = {"k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9}


def parse_count(text: str) -> int:
    """A count written as people write it: 5000, 5k, 5M, 1.5G (for --tokens)."""
    cleaned = str(text).strip().replace("_", "").replace(",", "")
    scale = SUFFIXES.get(cleaned[-1:].lower(), 1)
    try:
        value = float(cleaned[:-1] if scale != 1 else cleaned) * scale
    except ValueError:
        raise UserError(f"{text!r} is not a count; write it as 5000, 200k, 5M or 1.5G") from None
    if not math.isfinite(value) or value != int(value):
        raise UserError(f"{text!r} is not a whole count; write it as 5000, 200k, 5M or 1.5G")
    return int(value)


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
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # JSON writes 2.0 as 2
    return value


def component(config, path: str):
    """config.model.precond for path 'model.precond'."""
    for part in path.split("."):
        config = getattr(config, part)
    return config


def replace_at(config, path: str, value):
    """`config` with the field at `path` ('model.precond') replaced by `value`."""
    head, _, rest = path.partition(".")
    return dataclasses.replace(config, **{head: replace_at(getattr(config, head), rest, value) if rest else value})


BOUNDS = ("min", "max", "above", "below")


def describe_fields(cls) -> list[dict[str, Any]]:
    """The documented fields of a config class as plain data - name, kind (choice | int | float | bool | text),
    choices, default, bounds, whether it may be null, help - for clients that build a form or a schema."""
    hints = typing.get_type_hints(cls)
    described = []
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata:
            continue
        hint, optional = hints[f.name], False
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            optional = type(None) in typing.get_args(hint)
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        entry = {"name": f.name, "help": f.metadata["help"], "default": f.default, "optional": optional}
        if typing.get_origin(hint) is typing.Literal:
            entry |= {"kind": "choice", "choices": list(typing.get_args(hint))}
        else:
            entry["kind"] = {int: "int", float: "float", bool: "bool"}.get(hint, "text")
        entry |= {bound: f.metadata[bound] for bound in BOUNDS if bound in f.metadata}
        described.append(entry)
    return described
