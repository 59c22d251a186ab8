"""Checkpoints: `NNNNNN.safetensors` (the weights of every named module of a run - e.g. diffusion: model and
EMA; GAN: generator, discriminator and EMA of the generator - with the resolved run config as JSON in its
metadata) and `NNNNNN.state.safetensors` (optimisers and counters) for exact resumption. No pickle anywhere.

Both are written atomically, the state file first: a weights file on disk therefore always has its state
beside it, and `latest_checkpoint` only picks a pair whose headers open cleanly. This layer keeps the config as
the JSON object it reads; the family registry turns it into the family's run config.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from aigc.core.config import to_json
from aigc.core.errors import UserError
from aigc.core.io import atomic_write

CHECKPOINT_NAME = re.compile(r"^(\d{6,})\.safetensors$")


@dataclass
class Checkpoint:
    config: Any  # the run config: its JSON object here, the family's dataclass once the registry has read it
    modules: dict[str, dict[str, torch.Tensor]]  # module name -> its state dict
    step: int
    seen: int  # images, or tokens: what the run's budget counts
    path: Path


def weights_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"{step:06d}.safetensors"


def state_path(weights: Path) -> Path:
    return weights.with_name(weights.name.replace(".safetensors", ".state.safetensors"))


def save_checkpoint(run_dir: Path, config, modules: dict, step: int, seen: int, state: dict) -> Path:
    """Write the train state, then the weights; returns the weights path."""
    path = weights_path(run_dir, step)
    meta, tensors = _flatten_state(state)
    atomic_write(state_path(path), lambda tmp: save_file(tensors, tmp, metadata={"state": json.dumps(meta)}))
    save_weights(path, config, modules, step, seen)
    return path


def save_weights(path: Path, config, modules: dict, step: int, seen: int, extra: dict | None = None) -> None:
    """The modules' weights ({name: nn.Module or its state dict}, stored as "name.param") with the run config (a
    config dataclass, and any `extra` string metadata), written atomically."""
    weights = {
        f"{name}.{key}": value.detach().cpu().contiguous()
        for name, module in modules.items()
        for key, value in (module if isinstance(module, dict) else module.state_dict()).items()
    }
    metadata = {"format": "aigc", "config": to_json(config), "step": str(step), "seen": str(seen), **(extra or {})}
    atomic_write(path, lambda tmp: save_file(weights, tmp, metadata=metadata))


def read_header(path: str | Path) -> dict:
    """The metadata of an aigc weights file, its "config" as a JSON object, reading only the file's header;
    UserError naming the file when it is missing, torn or not ours."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; pass a run directory or a .safetensors file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
    except (SafetensorError, OSError) as error:
        raise UserError(f"{path} is not a readable safetensors checkpoint (truncated or corrupt: {error})") from None
    if metadata.get("format") != "aigc":
        raise UserError(f"{path} is a safetensors file but not an aigc checkpoint")
    try:
        metadata["config"] = json.loads(metadata["config"])
    except (KeyError, json.JSONDecodeError):
        raise UserError(f"{path}: the checkpoint's config is missing or corrupt") from None
    return metadata


def read_checkpoint(path: str | Path, modules: Collection[str] | None = None, header: dict | None = None) -> Checkpoint:
    """Read a weights file (only the named `modules` when given; `header`: its `read_header`, when the caller
    has read it already), its config as a JSON object; any problem with it is a UserError naming the file."""
    path = Path(path)
    metadata = header if header is not None else read_header(path)
    weights: dict[str, dict[str, torch.Tensor]] = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                name, _, parameter = key.partition(".")
                if modules is None or name in modules:
                    weights.setdefault(name, {})[parameter] = f.get_tensor(key)
    except (SafetensorError, OSError) as error:
        raise UserError(f"{path} is not a readable safetensors checkpoint (truncated or corrupt: {error})") from None
    seen = int(metadata.get("seen", metadata.get("nimg", 0)))  # aigc 0.2 and before counted images as "nimg"
    return Checkpoint(metadata["config"], weights, int(metadata["step"]), seen, path)


def load_state(weights: Path) -> dict:
    path = state_path(weights)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["state"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: train state unreadable ({error})") from None
    return _unflatten_state(tensors, meta)


def _check_state_header(weights: Path) -> None:
    path = state_path(weights)
    try:
        with safe_open(str(path), framework="pt") as f:
            json.loads((f.metadata() or {})["state"])
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: train state unreadable ({error})") from None


def checkpoints_newest_first(run_dir: Path) -> list[Path]:
    directory = Path(run_dir) / "checkpoints"
    found = [p for p in directory.glob("*.safetensors") if CHECKPOINT_NAME.match(p.name)]
    return sorted(found, key=lambda p: int(CHECKPOINT_NAME.match(p.name).group(1)), reverse=True)


def latest_checkpoint(run_dir: str | Path, need_state: bool = False) -> Path:
    """The newest checkpoint whose files open cleanly; broken ones are reported and skipped. Only headers are
    read here (safetensors checks that a header's tensors fit the file, so a torn or truncated file fails): the
    caller then loads the one chosen, once."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist")
    for path in checkpoints_newest_first(run_dir):
        try:
            read_header(path)
            if need_state:
                _check_state_header(path)
            return path
        except UserError as error:
            print(f"warning: skipping {path.name}: {error}", file=sys.stderr)
    raise UserError(f"{run_dir} holds no complete checkpoint; train one first (aigc train ... --out {run_dir})")


# The train state mixes tensors (optimizer moments) and JSON scalars; nested dicts are flattened into "a.b.c"
# tensor names and a JSON tree with {"$tensor": name} placeholders.


def _flatten_state(state, prefix: str = "", tensors: dict | None = None):
    tensors = {} if tensors is None else tensors
    if isinstance(state, torch.Tensor):
        tensors[prefix] = state.detach().cpu().contiguous()
        return {"$tensor": prefix}, tensors
    if isinstance(state, dict):
        tree = {str(k): _flatten_state(v, f"{prefix}.{k}" if prefix else str(k), tensors)[0] for k, v in state.items()}
        return tree, tensors
    if isinstance(state, (list, tuple)):
        return [_flatten_state(v, f"{prefix}.{i}", tensors)[0] for i, v in enumerate(state)], tensors
    return state, tensors


def _unflatten_state(tensors: dict, tree):
    if isinstance(tree, dict):
        if set(tree) == {"$tensor"}:
            return tensors[tree["$tensor"]]
        return {k: _unflatten_state(tensors, v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_unflatten_state(tensors, v) for v in tree]
    return tree
