"""The run config of an autoencoder trained on its own (`aigc train autoencoder`): the first stage of text to
image, for `aigc train text2image --autoencoder RUN`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aigc.core.config import Config
from aigc.data.captions import CaptionDataConfig
from aigc.families.family import FORMAT_VERSION
from aigc.models.autoencoder import AutoencoderConfig
from aigc.models.compression import CompressionConfig
from aigc.training.config import TrainConfig


@dataclass(frozen=True)
class ReconstructionConfig(Config):
    """An autoencoder draws nothing: it has no sample settings."""


@dataclass(frozen=True)
class AutoencoderRunConfig(Config):
    family: Literal["autoencoder"] = "autoencoder"
    data: CaptionDataConfig = CaptionDataConfig()  # the images text2image trains on (their captions unused)
    model: AutoencoderConfig = AutoencoderConfig()
    train: TrainConfig = TrainConfig()
    sample: ReconstructionConfig = ReconstructionConfig()
    compression: CompressionConfig = CompressionConfig()
    image_size: int = 0  # resolved from the data
    channels: int = 0
    format_version: int = FORMAT_VERSION

    def check(self) -> None:
        self.train.check_optimizer("adamw")
