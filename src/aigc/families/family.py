"""What a family of models is to the rest of aigc: the one interface the CLI, the training loop, generation, the
evaluator, the service and the report are written against. Each family (diffusion, gan, ...) is a package with
one subclass of `Family`, entered once in `families/registry.py`; nothing outside the family's package asks
which family it is dealing with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from aigc.core.errors import UserError

FORMAT_VERSION = 3  # of a run config's JSON; the registry upgrades older ones on reading


def from_recipe(run_config: type, recipes: dict[str, dict], name: str):
    """The run config of recipe `name`: the run config's defaults with the recipe's values ({part: {field:
    value}}) applied."""
    if name not in recipes:
        raise UserError(f"unknown recipe {name!r}; choose one of {', '.join(recipes)}")
    base = run_config(recipe=name)
    parts = {part: dataclasses.replace(getattr(base, part), **values) for part, values in recipes[name].items()}
    return dataclasses.replace(base, **parts)


class Family:
    """One kind of generative model. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]  # the public name: `aigc train NAME`, the run config's `family`, /v1/models
    help: ClassVar[str]  # one line for `aigc train --help`
    examples: ClassVar[str]  # the end of `aigc train NAME --help`
    run_config: ClassVar[type]  # the frozen Config dataclass of a run, with `family`, `data`, `train`, `sample`
    sample_config: ClassVar[type]  # the frozen Config dataclass of how outputs are drawn (`run_config.sample`)
    flag_components: ClassVar[tuple[str, ...]]  # the run config's parts (paths) that `aigc train` takes flags for
    # flags of those parts that this family refuses or has no use for ('train.optimizer'): still read, so a value
    # gets the config's own message, but left out of --help
    unused_flags: ClassVar[frozenset[str]] = frozenset()
    recipes: ClassVar[dict[str, Callable[[], Any]]] = {}  # named starting configs; the first is the default
    sampling_modules: ClassVar[tuple[str, ...]] = ("ema",)  # the checkpoint's modules that sampling reads
    model_type: ClassVar[type[nn.Module]]  # what `build` returns: the model that draws
    metrics: ClassVar[str]  # what `aigc eval` scores by default (comma-separated metric names)
    remedy: ClassVar[str] = "a lower --lr"  # what to try when training diverges
    run_suffix: ClassVar[str] = ""  # a run directory's default name is runs/<data><run_suffix>
    modality: ClassVar[str] = "images"  # what it generates: images or text (how outputs are written and served)
    conditions: ClassVar[str] = "classes"  # what an output is drawn from besides its seed: classes or prompts
    evaluation: ClassVar[str] = "images"  # how `aigc eval` scores it: a key of evaluation/evaluate.py's JUDGINGS
    unit: ClassVar[str] = "img"  # what the training budget counts (the loop's `seen`)
    progress_key: ClassVar[str] = "kimg"  # the metrics.jsonl column of how far a run is
    selection_metric: ClassVar[str] = "fid"  # the in-loop metric (lower is better) that picks best.safetensors
    export_formats: ClassVar[tuple[str, ...]] = ()  # what `aigc export --format` can write

    def new_config(self, recipe: str | None = None):
        """The default run config, or a recipe's."""
        if self.recipes:
            return self.recipes[recipe or next(iter(self.recipes))]()
        return self.run_config()

    def upgrade(self, data: dict) -> dict:
        """A run config's JSON object written by an older format version, in today's form."""
        return data

    def title(self, config) -> str:
        """What kind of model a run trains."""
        return self.name

    def describe(self, config) -> str:
        """What a run is, for the first line of its report."""
        return f"{self.title(config)} on {config.data.name}"

    # Training -------------------------------------------------------------------------------------------

    def training_data(self, config):
        """(resolved config, TrainingData) for a new or resumed run: what the data decides (shapes, classes)
        filled into the config."""
        raise NotImplementedError

    def trainer(self, config, device: torch.device, fresh: bool = True):
        """The object the loop drives (see training/loop.py, `Trainer`). `fresh`: the run starts here (not from a
        checkpoint, which the loop loads next): where a fine-tuning family loads the weights it starts from."""
        raise NotImplementedError

    def example_size(self, config) -> int:
        """How many units (see `unit`) one training example is."""
        return 1

    def progress(self, seen: int) -> dict[str, float]:
        """How far a run is, as metrics.jsonl logs it."""
        return {self.progress_key: seen / 1000}

    def amount(self, seen: int) -> str:
        """How far a run is, for people."""
        return f"{seen / 1000:.1f} kimg"

    def run_files(self, config) -> dict[str, str]:
        """Files (name -> text) the run directory holds beside config.json."""
        return {}

    def plain(self, model: nn.Module, config) -> tuple[nn.Module, object]:
        """(model, config) without what only training needs (a fine-tune's adapters folded in): what
        `aigc compress` compresses."""
        return model, config

    def checkpoint_files(self, model: nn.Module, config) -> dict[str, bytes]:
        """Files written beside each checkpoint, by path under checkpoints/ (a fine-tune's adapters in the
        format their own library reads); the newest snapshot's replace the last."""
        return {}

    # Sampling -------------------------------------------------------------------------------------------

    def build(self, config) -> nn.Module:
        """A freshly initialised sampling model for a resolved run config (the registry loads its weights)."""
        raise NotImplementedError

    def reads_directory(self, path: Path) -> bool:
        """Whether `path` is a directory in another tool's format that this family samples from as it is (a
        Stable Diffusion pipeline), read by `load_directory`."""
        return False

    def load_directory(self, path: Path) -> tuple[nn.Module, object]:
        """(sampling model on the CPU, run config) of a directory `reads_directory` accepts."""
        raise NotImplementedError

    def sampling_state(self, modules: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """The state dict of `build`'s model from the checkpoint's `sampling_modules`."""
        (name,) = self.sampling_modules
        return modules[name]

    def num_classes(self, model: nn.Module) -> int:
        """How many classes the model draws (0: unconditional)."""
        return 0

    def check_request(self, model: nn.Module, conditions, sample) -> None:
        """UserError when `model` cannot draw what is asked: `conditions` (class labels, prompts; one per output)
        it cannot take, a setting it has no use for."""

    def export(self, model: nn.Module, config, format: str, out: Path, merge_lora: bool = False) -> list[Path]:
        """Write the sampling model in another ecosystem's `format` (one of `export_formats`) under `out`, with
        fine-tuned adapters folded into the weights when `merge_lora`; the files written."""
        raise NotImplementedError

    def info(self, model: nn.Module, config) -> dict:
        """What a client of the service needs to know about a served model beyond its sample settings."""
        return {}

    def save_samples(self, model: nn.Module, config, device: torch.device, stem: Path) -> None:
        """What a snapshot shows of the model: the outputs of the fixed seeds, at `stem` plus a suffix."""
        raise NotImplementedError

    def sampling_memory_format(self, config) -> torch.memory_format:
        """The memory format the sampling model runs fastest in."""
        return torch.contiguous_format

    def generate(self, model: nn.Module, seeds: Sequence[int], conditions=None, sample=None, **options):
        """One output per seed (images: families/drawing.py; completions: families/text.py), output k a function
        of seeds[k], its condition and the settings alone, never of the batch it is drawn in."""
        raise NotImplementedError
