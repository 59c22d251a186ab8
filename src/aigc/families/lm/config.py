"""The run config of a language model: the text and its tokenizer, the transformer, how it trains (a token
budget, warm-up then a cosine or warm-up-stable-decay schedule, AdamW or Muon) and how text is drawn; and the
recipes, sized for a 2-core CPU and for a GPU."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from aigc.core.config import Config, parse_count
from aigc.core.device import Precision
from aigc.core.errors import ConfigError
from aigc.data.text import TextDataConfig
from aigc.families.family import FORMAT_VERSION
from aigc.models.compression import CompressionConfig
from aigc.models.transformer import TransformerConfig
from aigc.training.optim import LRSchedule

MAX_TOKENS = 4096  # the most tokens one completion may ask for


@dataclass(frozen=True)
class LMTrainConfig(Config):
    batch: int = field(default=32, metadata={"help": "sequences per optimiser step, over all processes", "min": 1})
    batch_per_device: int | None = field(
        default=None,
        metadata={"help": "sequences per forward pass of each process; fewer accumulate", "min": 1},
    )
    optimizer: Literal["adamw", "muon"] = field(
        default="muon", metadata={"help": "muon (2-D hidden weights; AdamW for the rest) or adamw"}
    )
    lr: float = field(default=4e-3, metadata={"help": "peak learning rate", "above": 0.0})
    schedule: LRSchedule = field(
        default="wsd", metadata={"help": "after warm-up: cosine, warm-up-stable-decay, or constant"}
    )
    final_lr: float = field(
        default=0.1, metadata={"help": "the learning rate at the end, as a share of --lr", "min": 0.0, "max": 1.0}
    )
    decay: float = field(
        default=0.3, metadata={"help": "wsd: the share of the run the rate decays over", "above": 0.0, "max": 1.0}
    )
    warmup_tokens: int = field(
        default=50_000, metadata={"help": "linear warm-up, in tokens", "min": 0, "parse": parse_count}
    )
    weight_decay: float = field(default=0.5, metadata={"help": "decoupled weight decay of matrices", "min": 0.0})
    grad_clip: float = field(default=1.0, metadata={"help": "clip the gradient norm (0: off)", "min": 0.0})
    tokens: int | None = field(
        default=None, metadata={"help": "stop after this many tokens (5M, 200k, ...)", "min": 1, "parse": parse_count}
    )
    minutes: float | None = field(
        default=None, metadata={"help": "stop after this many minutes of training", "above": 0.0}
    )
    seed: int = field(default=0, metadata={"help": "seed of initialisation and data order", "min": 0})
    precision: Precision = field(
        default="auto", metadata={"help": "fp32, bf16 (autocast), or auto: bf16 where the hardware has it natively"}
    )
    snapshot_tokens: int = field(
        default=2_000_000,
        metadata={"help": "checkpoint and sample texts every N tokens", "min": 1, "parse": parse_count},
    )
    samples: int = field(default=4, metadata={"min": 1})  # texts written at each snapshot, seeds 0..samples-1
    eval_every: int | None = field(
        default=None,
        metadata={"help": "validation loss every N tokens (keeps the best checkpoint)", "min": 1, "parse": parse_count},
    )
    eval_tokens: int = field(
        default=100_000,
        metadata={"help": "validation tokens scored in the loop", "min": 2, "parse": parse_count},
    )
    threads: int | None = field(default=None, metadata={"help": "CPU threads (default: torch's choice)", "min": 1})

    # What the training loop reads (see TrainConfig), in tokens.
    budget_fields: ClassVar[tuple[str, ...]] = ("tokens", "minutes")

    def limit(self) -> float | None:
        return self.tokens

    def snapshot_interval(self) -> float:
        return self.snapshot_tokens

    def eval_interval(self) -> float | None:
        return self.eval_every

    def extended(self, seen: int, seconds: float, more: dict) -> LMTrainConfig:
        tokens = seen + more["tokens"] if more.get("tokens") is not None else None
        minutes = seconds / 60 + more["minutes"] if more.get("minutes") is not None else None
        return dataclasses.replace(self, tokens=tokens, minutes=minutes)

    def describe_budget(self) -> str:
        return f"{self.tokens:,} tokens" if self.tokens is not None else f"{self.minutes:g} min"


@dataclass(frozen=True)
class FinetuneConfig(Config):
    """Where a run's weights start, and which of them train: all (full fine-tuning) or LoRA adapters."""

    init: str = field(
        default="",
        metadata={"help": "start from this aigc lm run or Hugging Face causal-LM directory (default: random weights)"},
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


@dataclass(frozen=True)
class LMSampleConfig(Config):
    """How text is drawn: the defaults of `aigc sample`, the snapshot texts and the service."""

    max_tokens: int = field(
        default=256, metadata={"help": "tokens to generate per completion", "min": 1, "max": MAX_TOKENS}
    )
    temperature: float = field(
        default=0.8, metadata={"help": "softmax temperature (0: greedy)", "min": 0.0, "max": 10.0}
    )
    top_k: int = field(default=200, metadata={"help": "keep the k most likely tokens (0: all)", "min": 0})
    top_p: float = field(
        default=1.0, metadata={"help": "keep the smallest set of this probability (1: all)", "above": 0.0, "max": 1.0}
    )
    repetition_penalty: float = field(
        default=1.0, metadata={"help": "divide the logits of tokens already generated (1: none)", "min": 1.0}
    )
    stop: tuple[str, ...] = ()  # a completion ends where one of these begins (aigc sample --stop, the service)
    stop_tokens: tuple[int, ...] = ()  # token ids that end a completion unseen: a chat model's end of turn
    logprobs: int | None = field(default=None, metadata={"min": 0, "max": 20})  # the service: report log-probs


@dataclass(frozen=True)
class LMRunConfig(Config):
    family: Literal["lm"] = "lm"
    recipe: str = "cpu"
    data: TextDataConfig = TextDataConfig()
    model: TransformerConfig = TransformerConfig()
    train: LMTrainConfig = LMTrainConfig()
    sample: LMSampleConfig = LMSampleConfig()
    compression: CompressionConfig = CompressionConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    tokenizer: str = ""  # the run's tokenizer.json, fitted to the training text (or the init's)
    chat_template: str = ""  # the tokenizer's chat template (Jinja), for chat data and the chat service
    bos_token: str = ""  # the tokens the template names (its bos_token, eos_token): "" when it has none
    eos_token: str = ""
    pretrained: str = ""  # config.json of the transformers architecture the model is, when it is not aigc's own
    format_version: int = FORMAT_VERSION

    def check(self) -> None:
        if self.recipe not in RECIPES:
            raise ConfigError("recipe", self.recipe, f"choose one of {', '.join(RECIPES)}")


# cpu (the default): sized for 10 minutes on a 2-core laptop (see the README's language-model table for what
# was tried); gpu: a model that uses one GPU's throughput (bf16, longer context, larger batch).
RECIPES = {
    "cpu": dict(),
    "gpu": dict(
        model=dict(width=384, layers=6, heads=6, context=256),
        train=dict(batch=64, lr=1e-3, warmup_tokens=1_000_000, snapshot_tokens=20_000_000),
    ),
}
