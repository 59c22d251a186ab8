"""Checkpoints: `NNNNNN.safetensors` (the weights of every module of a run - diffusion: model and EMA; GAN:
generator, discriminator and EMA of the generator - with the resolved run config in its metadata) and
`NNNNNN.state.safetensors` (optimizer, counters, RNG states) for exact resumption. No pickle anywhere.

Both are written atomically, the state file first: a weights file on disk therefore always has its state
beside it, and `latest_checkpoint` only picks a pair that both open cleanly.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from aigc.config import RunConfig, from_json_dict, to_json
from aigc.errors import UserError
from aigc.utils.io import atomic_write

CHECKPOINT_NAME = re.compile(r"^(\d{6,})\.safetensors$")


@dataclass
class Checkpoint:
    config: RunConfig
    modules: dict[str, dict[str, torch.Tensor]]  # module name -> its state dict; "ema" is the one to sample
    step: int
    nimg: int
    path: Path


def weights_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"{step:06d}.safetensors"


def state_path(weights: Path) -> Path:
    return weights.with_name(weights.name.replace(".safetensors", ".state.safetensors"))


def save_checkpoint(run_dir: Path, config: RunConfig, modules: dict, step: int, nimg: int, state: dict) -> Path:
    """Write the train state, then the weights; returns the weights path."""
    path = weights_path(run_dir, step)
    meta, tensors = _flatten_state(state)
    atomic_write(state_path(path), lambda tmp: save_file(tensors, tmp, metadata={"state": json.dumps(meta)}))
    save_weights(path, config, modules, step, nimg)
    return path


def save_weights(path: Path, config: RunConfig, modules: dict, step: int, nimg: int, extra: dict | None = None) -> None:
    """The modules' weights ({name: nn.Module or its state dict}, stored as "name.param") with the run config (and
    any `extra` string metadata), written atomically."""
    weights = {
        f"{name}.{key}": value.detach().cpu().contiguous()
        for name, module in modules.items()
        for key, value in (module if isinstance(module, dict) else module.state_dict()).items()
    }
    metadata = {"format": "aigc", "config": to_json(config), "step": str(step), "nimg": str(nimg), **(extra or {})}
    atomic_write(path, lambda tmp: save_file(weights, tmp, metadata=metadata))


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a weights file; any problem with it is a UserError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; pass a run directory or a .safetensors file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("format") != "aigc":
                raise UserError(f"{path} is a safetensors file but not an aigc checkpoint")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        if isinstance(error, UserError):
            raise
        raise UserError(f"{path} is not a readable safetensors checkpoint (truncated or corrupt: {error})") from None
    try:
        config = from_json_dict(json.loads(metadata["config"]), str(path))
    except (KeyError, json.JSONDecodeError):
        raise UserError(f"{path}: the checkpoint's config is missing or corrupt") from None
    modules: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        name, _, parameter = key.partition(".")
        modules.setdefault(name, {})[parameter] = value
    if "ema" not in modules:
        raise UserError(f"{path}: the checkpoint holds no EMA weights (not written by aigc train)")
    return Checkpoint(config, modules, int(metadata["step"]), int(metadata["nimg"]), path)


def load_state(weights: Path) -> dict:
    path = state_path(weights)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["state"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: train state unreadable ({error})") from None
    return _unflatten_state(tensors, meta)


def checkpoints_newest_first(run_dir: Path) -> list[Path]:
    directory = Path(run_dir) / "checkpoints"
    found = [p for p in directory.glob("*.safetensors") if CHECKPOINT_NAME.match(p.name)]
    return sorted(found, key=lambda p: int(CHECKPOINT_NAME.match(p.name).group(1)), reverse=True)


def latest_checkpoint(run_dir: str | Path, need_state: bool = False) -> Path:
    """The newest checkpoint whose files open cleanly; broken ones are reported and skipped."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist")
    for path in checkpoints_newest_first(run_dir):
        try:
            load_checkpoint(path)
            if need_state:
                load_state(path)
            return path
        except UserError as error:
            print(f"warning: skipping {path.name}: {error}", file=sys.stderr)
    raise UserError(f"{run_dir} holds no complete checkpoint; train one first (aigc train ... --out {run_dir})")


# The train state mixes tensors (optimizer moments, RNG states) and JSON scalars; nested dicts are
# flattened into "a.b.c" tensor names and a JSON tree with {"$tensor": name} placeholders.


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
