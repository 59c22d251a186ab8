"""The run config of a text classifier: the labelled texts, the transformer (random, or an aigc language-model
run's), the head, where fine-tuning starts and what trains, how it trains (a budget in texts), and the temperature
its probabilities are divided by (fitted on the validation split when training ends)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aigc.core.config import Config
from aigc.core.errors import ConfigError
from aigc.data.labelled import LabelledDataConfig
from aigc.families.family import FORMAT_VERSION
from aigc.models.classifier import Pooling
from aigc.models.compression import CompressionConfig
from aigc.models.transformer import TransformerConfig
from aigc.training.config import TrainConfig
from aigc.training.finetune import FinetuneConfig

# How a classifier trains unless told otherwise (amounts in texts): AdamW with a short warm-up and a cosine decay,
# the validation split scored every 2,000 texts (its loss picks the best checkpoint)
TRAIN = TrainConfig(
    batch=32, lr=5e-4, lr_schedule="cosine", final_lr=0.1, warmup=1_000, weight_decay=0.01,
    snapshot_every=10_000, grid_size=8, eval_every=2_000, eval_n=1_000,
)  # fmt: skip


@dataclass(frozen=True)
class HeadConfig(Config):
    pooling: Pooling = field(
        default="last",
        metadata={"help": "one vector per text: the last token's state (the one that read it all) or the mean"},
    )


@dataclass(frozen=True)
class RobustnessConfig(Config):
    """Adversarial training on the token embeddings (trainer.py): FGM's one step or PGD's projected steps."""

    adversarial: Literal["none", "fgm", "pgd"] = field(
        default="none", metadata={"help": "also train on embeddings pushed to raise the loss: fgm or pgd"}
    )
    epsilon: float = field(
        default=1.0, metadata={"help": "how far a text's embeddings may be pushed (norm per text)", "above": 0.0}
    )
    pgd_steps: int = field(default=3, metadata={"help": "pgd: ascent steps per batch", "min": 1})


@dataclass(frozen=True)
class ClassifySampleConfig(Config):
    """How texts are labelled: `aigc classify`, snapshots and the service."""

    temperature: float | None = field(
        default=None,
        metadata={
            "help": "divide the logits by this before the softmax (default: the run's, fitted on validation)",
            "above": 0.0,
        },
    )


@dataclass(frozen=True)
class ClassifierRunConfig(Config):
    family: Literal["classifier"] = "classifier"
    data: LabelledDataConfig = LabelledDataConfig()
    model: TransformerConfig = TransformerConfig()
    head: HeadConfig = HeadConfig()
    robustness: RobustnessConfig = RobustnessConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    train: TrainConfig = TRAIN
    sample: ClassifySampleConfig = ClassifySampleConfig()
    compression: CompressionConfig = CompressionConfig()
    tokenizer: str = ""  # the run's tokenizer.json: its init's, or fitted to the training texts
    pretrained: str = ""  # config.json of the transformers architecture the model is, when it is not aigc's own
    labels: tuple[str, ...] = ()  # the class names, in the order of the logits
    format_version: int = FORMAT_VERSION

    def check(self) -> None:
        self.train.check_optimizer("adamw")
        if self.train.memory_format != "contiguous":
            raise ConfigError("memory_format", self.train.memory_format, "applies to convolutional models; drop it")
        if self.train.eval_every is None:
            raise ConfigError("eval_every", None, "a classifier is calibrated on validation as it trains; give one")
        if self.finetune.lora_rank and not self.finetuned:
            raise ConfigError("lora_rank", self.finetune.lora_rank, "adapts pretrained weights; give --init RUN_OR_DIR")

    @property
    def finetuned(self) -> bool:
        """Whether the model starts from a pre-trained one's weights (`--init none`: it does not)."""
        return self.finetune.init not in ("", "none")
