"""Where a fine-tuning run's weights start (an aigc language-model run or a Hugging Face directory), and which of
them train: every weight, or LoRA adapters (Hu et al. 2021) with the rest frozen. The families that fine-tune a
pre-trained transformer (lm, classifier) share it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from aigc.core.checkpoint import Checkpoint, latest_checkpoint, read_checkpoint
from aigc.core.config import Config
from aigc.core.distributed import is_main
from aigc.core.errors import ConfigError, UserError
from aigc.models.lora import linear_names, trainable_share, unload_lora


@dataclass(frozen=True)
class FinetuneConfig(Config):
    """Where a run's weights start, and which of them train: all (full fine-tuning) or LoRA adapters."""

    init: str = field(
        default="",
        metadata={"help": "an aigc lm run or a Hugging Face directory to start from; default: random weights"},
    )
    lora_rank: int = field(
        default=0, metadata={"help": "train LoRA adapters of this rank, the rest frozen (0: every weight)", "min": 0}
    )
    lora_alpha: float | None = field(
        default=None, metadata={"help": "LoRA's scale is alpha / rank (default: alpha = 2 x rank)", "above": 0.0}
    )
    lora_dropout: float = field(
        default=0.0, metadata={"help": "dropout on the adapters' input", "min": 0.0, "below": 1.0}
    )
    lora_targets: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "module names LoRA adapts, comma-separated (default: every linear layer but the head)",
            "parse": lambda text: tuple(name.strip() for name in text.split(",") if name.strip()),
        },
    )

    def check(self) -> None:
        if self.lora_rank and not self.init:
            raise ConfigError("lora_rank", self.lora_rank, "adapts pretrained weights; give --init RUN_OR_DIR")


def resolved(finetune: FinetuneConfig, model: nn.Module, head: nn.Module) -> FinetuneConfig:
    """LoRA's defaults made explicit for `model`: alpha = 2 x rank, and every linear layer but its `head`."""
    if not finetune.lora_rank:
        return finetune
    alpha = finetune.lora_alpha or 2.0 * finetune.lora_rank
    return dataclasses.replace(
        finetune, lora_alpha=alpha, lora_targets=finetune.lora_targets or linear_names(model, head)
    )


def report_trainable(model: nn.Module) -> None:
    """Print (once, under torchrun) how many of the model's weights train."""
    if is_main():
        trainable, total = trainable_share(model)
        print(f"trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.2f}%)")


def without_adapters(model: nn.Module, config):
    """A LoRA run's model with its adapters merged into the weights, and its run config without them (what
    `aigc compress` compresses); any other run's as they are."""
    if not config.finetune.lora_rank:
        return model, config
    finetune = dataclasses.replace(config.finetune, lora_rank=0, lora_alpha=None, lora_targets=())
    return unload_lora(model), dataclasses.replace(config, finetune=finetune)


def language_model_checkpoint(path: Path, flag: str, directories: bool = False) -> Checkpoint:
    """The checkpoint of `flag RUN` (a family that reads an aigc language model's weights: --init, --text-model):
    the lm run in `path` (its newest checkpoint), or one of its checkpoint files, with its `model` weights;
    UserError when it is something else. `directories`: the flag takes a Hugging Face directory too."""
    if path.is_dir() and not (path / "config.json").is_file():
        other = ", a Hugging Face directory or none" if directories else ""
        raise UserError(f"{flag} {path}: no config.json there; give an aigc lm run{other}")
    checkpoint = read_checkpoint(latest_checkpoint(path) if path.is_dir() else path, modules=("model",))
    data = checkpoint.config
    if data.get("family") != "lm":
        raise UserError(f"{flag} {path} is a {data.get('family')} run; give a language model (lm) run")
    if data.get("pretrained"):
        instead = "that model's directory" if directories else "an aigc lm run of aigc's own transformer"
        raise UserError(f"{flag} {path} fine-tunes a Hugging Face model; give {instead} instead")
    if (data.get("finetune") or {}).get("lora_rank"):
        raise UserError(f"{flag} {path} holds LoRA adapters; give the run it adapted, or one trained every weight")
    if (data.get("compression") or {}).get("quantize", "none") != "none":
        raise UserError(f"{flag} {path} is compressed; give the run it was compressed from")
    return checkpoint
