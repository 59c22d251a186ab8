"""The family registry: every family by its public name, and what follows from a name - a run config read from
JSON, a checkpoint read with its config, the model that samples, and `generate()`.

A run config's JSON names its family (`"family": "gan"`); older format versions are upgraded on reading, so
checkpoints of earlier releases still load: version 1 (aigc 0.1) called the family `method`, and versions 1 and
2 wrote a train config's amounts in the family's words (`kimg`, `tokens`) where today's count its unit.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from aigc.core.checkpoint import Checkpoint, latest_checkpoint, read_checkpoint, read_header
from aigc.core.config import describe_fields, from_dict
from aigc.core.errors import UserError
from aigc.families.autoencoder.family import AutoencoderFamily
from aigc.families.classifier.family import ClassifierFamily
from aigc.families.diffusion.family import DiffusionFamily
from aigc.families.family import FORMAT_VERSION, Family
from aigc.families.gan.family import GANFamily
from aigc.families.labelling import Ensemble, check_member
from aigc.families.lm.family import LMFamily
from aigc.families.recommender.family import RecommenderFamily
from aigc.families.text2image.family import Text2ImageFamily
from aigc.models.compression import load_compressed
from aigc.training.config import upgrade_train

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        DiffusionFamily(),
        GANFamily(),
        LMFamily(),
        Text2ImageFamily(),
        AutoencoderFamily(),
        ClassifierFamily(),
        RecommenderFamily(),
    )
}


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise UserError(f"unknown family {name!r}; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def family_of(config) -> Family:
    """The family of a run config."""
    return FAMILIES[config.family]


def family_of_model(model: nn.Module) -> Family:
    """The family whose sampling model `model` is."""
    for entry in FAMILIES.values():
        if isinstance(model, entry.model_type):
            return entry
    raise TypeError(f"{type(model).__name__} is no family's sampling model")


def from_json_dict(data: dict, where: str):
    """A run config from its JSON object (any format version this release reads)."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a config object")
    version = data.get("format_version")
    if version in (1, 2):
        data = upgrade(data)
    elif isinstance(version, int) and version > FORMAT_VERSION:
        raise UserError(
            f"{where}: config format {version} is newer than this aigc reads ({FORMAT_VERSION}); upgrade aigc"
        )
    elif version != FORMAT_VERSION:
        raise UserError(f"{where}: config format {version!r} is not one aigc writes; written by another program?")
    name = data.get("family")
    if name not in FAMILIES:
        raise UserError(f"{where}: unknown family {name!r}; expected one of {', '.join(FAMILIES)}")
    return from_dict(FAMILIES[name].run_config, data, where)


def upgrade(data: dict) -> dict:
    """Formats 1 and 2 in today's: format 1 (aigc 0.1) named the family `method` and the compression
    `optimization`; both wrote the train config's amounts in the family's words (training/config.py); the family
    upgrades its own parts."""
    data = dict(data)
    if data["format_version"] == 1:
        data["family"] = data.pop("method", None)
        if "optimization" in data:
            data["compression"] = data.pop("optimization")
    if isinstance(data.get("train"), dict):
        data["train"] = upgrade_train(data["train"])
    data["format_version"] = FORMAT_VERSION
    return FAMILIES[data["family"]].upgrade(data) if data.get("family") in FAMILIES else data


def load_json(path):
    """The run config of a run directory's config.json."""
    try:
        data = json.loads(open(path).read())
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: unreadable config ({error})") from None
    return from_json_dict(data, str(path))


def load_checkpoint(path: str | Path, modules: Sequence[str] | None = None) -> Checkpoint:
    """A checkpoint with its config as the family's run config; only `modules` when named."""
    checkpoint = read_checkpoint(path, modules)
    return dataclasses.replace(checkpoint, config=from_json_dict(checkpoint.config, str(path)))


def reading_family(path: Path) -> Family | None:
    """The family that reads the directory `path` in another tool's format as it is, if one does."""
    return next((entry for entry in FAMILIES.values() if entry.reads_directory(path)), None)


def checkpoint_path(path: str | Path) -> Path:
    """What `load_model` reads of `path`: a checkpoint file, a run directory's newest complete one, or a
    directory that a family reads as it is (a Stable Diffusion pipeline)."""
    path = Path(path)
    return latest_checkpoint(path) if path.is_dir() and reading_family(path) is None else path


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """(sampling model, run config) of a run directory (its newest complete checkpoint), a checkpoint file, or
    a directory of another tool's format that a family reads (a Stable Diffusion pipeline). Only the modules
    sampling needs are read."""
    reader = reading_family(Path(path))
    if reader is not None:
        model, config = reader.load_directory(Path(path))
        return model.to(device).eval().requires_grad_(False), config
    weights = checkpoint_path(path)
    header = read_header(weights)
    config = from_json_dict(header["config"], str(weights))
    checkpoint = read_checkpoint(weights, family_of(config).sampling_modules, header)
    return model_from_checkpoint(dataclasses.replace(checkpoint, config=config), device), config


def load_ensemble(paths: list, device: str | torch.device = "cpu") -> tuple[Ensemble, object]:
    """(ensemble, its first member's run config) of the labelling runs (or checkpoints) `paths`, served and
    scored as one model (families/labelling.py); UserError when one is not a labelling model or its labels
    differ from the first's."""
    members = []
    for path in paths:
        model, config = load_model(path, device)
        family, labels = family_of(config), getattr(model, "labels", ())
        check_member(path, family, labels, members[0][1].labels if members else labels)
        members.append((family, model, config, str(path)))
    return Ensemble(members, members[0][1].labels), members[0][2]


def model_from_checkpoint(checkpoint: Checkpoint, device: str | torch.device = "cpu") -> nn.Module:
    """The sampling model of a checkpoint already read, rebuilt as its config (and any compression) describes."""
    config, entry = checkpoint.config, family_of(checkpoint.config)
    missing = [name for name in entry.sampling_modules if name not in checkpoint.modules]
    if missing:
        raise UserError(
            f"{checkpoint.path}: the checkpoint holds no {', '.join(missing)} weights (not from aigc train)"
        )
    try:
        model = load_compressed(entry.build(config), entry.sampling_state(checkpoint.modules), config.compression)
    except (RuntimeError, KeyError):
        raise UserError(
            f"{checkpoint.path}: weights do not match the model its config describes (incompatible)"
        ) from None
    if config.compression.quantize == "int8" and torch.device(device).type != "cpu":
        raise UserError(f"{checkpoint.path}: int8 models run on the CPU only; use --device cpu")
    model = model.to(device, memory_format=entry.sampling_memory_format(config))
    return model.eval().requires_grad_(False)


def with_sample(config, settings: dict):
    """The run config with its sample settings updated by `settings` (field -> value), checked as a whole: a
    setting of another family, or one this model cannot take, is a UserError naming it."""
    sample_type = type(config.sample)
    stray = sorted(set(settings) - {f.name for f in dataclasses.fields(sample_type)})
    if stray:
        raise UserError(f"{', '.join(stray)}: not a setting of {config.family} models; drop it")
    return dataclasses.replace(config, sample=dataclasses.replace(config.sample, **settings))


def families_of(modality: str) -> list[Family]:
    """The families that generate `modality` (images, text)."""
    return [entry for entry in FAMILIES.values() if entry.modality == modality]


def sample_setting_names(modality: str) -> list[str]:
    """The names of the sample settings of every family of `modality` that a request may give, sorted."""
    return sorted({entry["name"] for f in families_of(modality) for entry in describe_fields(f.sample_config)})


@torch.no_grad()
def generate(model: nn.Module | str | Path, seeds: Sequence[int], labels=None, sample=None, **options) -> torch.Tensor:
    """`Family.generate` of the model's family; `model` may be a run directory or a checkpoint file."""
    if isinstance(model, (str, Path)):
        model, _ = load_model(model, options.get("device") or "cpu")
    return family_of_model(model).generate(model, seeds, labels, sample, **options)
