"""The run config of a recommender: the ratings, the transformer over histories, where item vectors come from (ids,
the text vectors of an aigc language-model run, or both), how it trains (a budget in histories) and how many
items a recommendation lists."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aigc.core.config import Config
from aigc.core.errors import ConfigError
from aigc.data.ratings import RatingsConfig
from aigc.families.family import FORMAT_VERSION
from aigc.models.compression import CompressionConfig
from aigc.models.recommender import Representation
from aigc.models.transformer import TransformerConfig
from aigc.training.config import TrainConfig

MAX_ITEMS = 1000  # the most items one recommendation may list

# SASRec's size for MovieLens (Kang & McAuley 2018: 2 blocks, width 50, dropout 0.2, the newest 200 items), at a
# width whose heads have an even size
MODEL = TransformerConfig(width=64, layers=2, heads=2, context=200, dropout=0.2)
# How a recommender trains unless told otherwise (amounts in histories): AdamW at three times SASRec's rate (on
# MovieLens, 3 minutes at 1e-3 reached validation NDCG@10 0.040, at 3e-3 0.075: docs/benchmarks.md), the
# validation targets scored every 5,000 histories (their loss picks the best checkpoint)
TRAIN = TrainConfig(
    batch=64, lr=3e-3, lr_schedule="cosine", final_lr=0.1, warmup=2_000, weight_decay=0.01,
    snapshot_every=25_000, grid_size=4, eval_every=5_000, eval_n=1_000,
)  # fmt: skip


@dataclass(frozen=True)
class ItemsConfig(Config):
    """Where an item's vector comes from."""

    text_model: str = field(
        default="",
        metadata={"help": "an aigc lm run whose text vectors the items get (default: none, item ids only)"},
    )
    representation: Representation | None = field(
        default=None,
        metadata={"help": "id, text or id+text (default: id+text with --text-model, else id)"},
    )
    id_dropout: float = field(
        default=0.3,
        metadata={
            "help": "id+text: share of items trained without their id part, as cold items are ranked",
            "min": 0.0,
            "below": 1.0,
        },
    )
    text_batch: int = field(default=64, metadata={"help": "item texts per forward pass of the text model", "min": 1})

    def check(self) -> None:
        if self.representation in ("text", "id+text") and not self.text_model:
            raise ConfigError("representation", self.representation, "needs text vectors; give --text-model RUN")
        if self.representation == "id" and self.text_model:
            raise ConfigError("representation", self.representation, "reads no text; drop --text-model")


@dataclass(frozen=True)
class RecommendSampleConfig(Config):
    """What a recommendation lists: `aigc recommend`, snapshots and the service."""

    k: int = field(default=10, metadata={"help": "items to recommend", "min": 1, "max": MAX_ITEMS})
    explain: int = field(
        default=3, metadata={"help": "history items listed with each, those that weighed most", "min": 0, "max": 20}
    )


@dataclass(frozen=True)
class RecommenderRunConfig(Config):
    family: Literal["recommender"] = "recommender"
    data: RatingsConfig = RatingsConfig()
    model: TransformerConfig = MODEL
    items: ItemsConfig = ItemsConfig()
    train: TrainConfig = TRAIN
    sample: RecommendSampleConfig = RecommendSampleConfig()
    compression: CompressionConfig = CompressionConfig()
    catalogue: tuple[str, ...] = ()  # the item ids, item index i + 1 being catalogue[i]
    titles: tuple[str, ...] = ()  # their titles
    users: tuple[str, ...] = ()  # the user ids whose histories the model keeps
    likes: int = 0  # the likes of every user the model keeps, together
    features: int = 0  # the width of the items' text vectors (0: none)
    format_version: int = FORMAT_VERSION

    def check(self) -> None:
        self.train.check_optimizer("adamw")
        if self.train.memory_format != "contiguous":
            raise ConfigError("memory_format", self.train.memory_format, "applies to convolutional models; drop it")
        if self.train.eval_every is None:
            raise ConfigError("eval_every", None, "the validation targets pick the best checkpoint; give one")
