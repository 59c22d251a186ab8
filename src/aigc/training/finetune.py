"""Where a fine-tuning run's weights start (an aigc language-model run or a Hugging Face directory), and which of
them train: every weight, or LoRA adapters (Hu et al. 2021) with the rest frozen. The families that fine-tune a
pre-trained transformer (lm, classifier) share it."""

from __future__ import annotations

from dataclasses import dataclass, field

from aigc.core.config import Config
from aigc.core.errors import ConfigError


@dataclass(frozen=True)
class FinetuneConfig(Config):
    """Where a run's weights start, and which of them train: all (full fine-tuning) or LoRA adapters."""

    init: str = field(
        default="",
        metadata={"help": "start from this aigc lm run or Hugging Face model directory (default: random weights)"},
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
