"""The run config of a language model: the text and its tokenizer, the transformer, how it trains (a token
budget, warm-up then a cosine or warm-up-stable-decay schedule, AdamW or Muon) and how text is drawn; and the
recipes, sized for a 2-core CPU and for a GPU."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aigc.core.config import Config
from aigc.core.errors import ConfigError
from aigc.data.text import TextDataConfig
from aigc.families.family import FORMAT_VERSION
from aigc.models.compression import CompressionConfig
from aigc.models.transformer import TransformerConfig
from aigc.training.config import TrainConfig
from aigc.training.finetune import FinetuneConfig

MAX_TOKENS = 4096  # the most tokens one completion may ask for


# How a language model trains unless told otherwise (amounts in tokens): Muon, and a peak rate that warms up over
# 50k tokens and decays to a tenth of itself over the last 30% of the budget
TRAIN = TrainConfig(
    batch=32, optimizer="muon", lr=4e-3, lr_schedule="wsd", final_lr=0.1, decay=0.3, warmup=50_000,
    weight_decay=0.5, snapshot_every=2_000_000, grid_size=4, eval_n=100_000,
)  # fmt: skip


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
    train: TrainConfig = TRAIN
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
        if self.train.memory_format != "contiguous":
            raise ConfigError("memory_format", self.train.memory_format, "applies to convolutional models; drop it")


# cpu (the default): sized for 10 minutes on a 2-core laptop (docs/benchmarks.md, "How the language-model recipe
# was chosen", says what was tried); gpu: a model that uses one GPU's throughput (bf16, longer context, larger batch).
RECIPES = {
    "cpu": dict(),
    "gpu": dict(
        model=dict(width=384, layers=6, heads=6, context=256),
        train=dict(batch=64, lr=1e-3, warmup=1_000_000, snapshot_every=20_000_000),
    ),
}
