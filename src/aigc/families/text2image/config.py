"""The run config of a text-to-image model: captioned images, the autoencoder (trained first in the run, or taken
from another run), the text encoder, the denoiser of the latents, and how images are drawn."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aigc.core.config import Config
from aigc.core.errors import ConfigError
from aigc.data.captions import CaptionDataConfig
from aigc.families.denoising import DenoiserSampleConfig, check_schedule
from aigc.families.family import FORMAT_VERSION
from aigc.models.autoencoder import AutoencoderConfig
from aigc.models.compression import CompressionConfig
from aigc.models.losses import LossConfig
from aigc.models.precond import PrecondConfig
from aigc.models.unet import PRESETS, UNetConfig
from aigc.sampling.samplers import SamplerName
from aigc.training.config import TrainConfig


@dataclass(frozen=True)
class StageConfig(Config):
    """The first stage: the autoencoder whose latents the denoiser learns, then frozen."""

    init: str = field(
        default="",
        metadata={
            "help": "take this text2image run's autoencoder, or none: diffuse the pixels (default: train one first)",
            "flag": "--autoencoder",
        },
    )

    @property
    def pixels(self) -> bool:
        """No autoencoder: the denoiser works on the images (`--autoencoder none`, the pixel-space baseline)."""
        return self.init == "none"

    kimg: float = field(
        default=30.0,
        metadata={
            "help": "images the autoencoder trains on before the denoiser starts",
            "flag": "--autoencoder-kimg",
            "min": 0.0,
        },
    )
    model: AutoencoderConfig = AutoencoderConfig()


@dataclass(frozen=True)
class TextConfig(Config):
    """The prompt's tokenizer and the text encoder (the language model's blocks, attending both ways)."""

    # bpe by default: a caption is ~20 tokens against ~80 characters, which makes a denoiser step 1.4x faster
    tokenizer: Literal["char", "bpe"] = field(
        default="bpe", metadata={"help": "char or bpe, fitted to the training captions", "flag": "--tokenizer"}
    )
    vocab_size: int = field(default=512, metadata={"help": "bpe: the vocabulary size", "min": 16})
    max_tokens: int = field(default=128, metadata={"help": "longest prompt, in tokens", "min": 4})
    width: int = field(default=128, metadata={"help": "text encoder width", "flag": "--text-width", "min": 8})
    layers: int = field(default=2, metadata={"help": "text encoder blocks", "flag": "--text-layers", "min": 1})
    heads: int = field(default=4, metadata={"help": "text encoder attention heads", "flag": "--text-heads", "min": 1})
    pretrained: str = field(
        default="",
        metadata={
            "help": "a Hugging Face text encoder directory (CLIP's text model, ...) to use, frozen, instead of "
            "training aigc's own",
            "flag": "--text-encoder",
        },
    )
    pretrained_config: str = ""  # resolved: that encoder's config.json
    tokenizer_json: str = ""  # resolved: fitted to the training captions, or the pretrained encoder's
    alphabet: str = ""  # resolved: the characters of the training captions, all a prompt may use (own encoder)

    def check(self) -> None:
        if self.width % self.heads or (self.width // self.heads) % 2:
            raise ConfigError("heads", self.heads, f"must divide the text width {self.width} into even head sizes")


@dataclass(frozen=True)
class DenoiserConfig(Config):
    preset: str = field(default="t12", metadata={"help": f"U-Net size: {', '.join(PRESETS)}"})
    unet: UNetConfig | None = None  # resolved from the preset
    # the latents are scaled to unit variance: EDM's sigma_data is their standard deviation, 1 (0.5 is that of
    # images in [-1, 1])
    precond: PrecondConfig = PrecondConfig(sigma_data=1.0)

    def check(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError("preset", self.preset, f"choose one of {', '.join(PRESETS)}")


@dataclass(frozen=True)
class Text2ImageSampleConfig(DenoiserSampleConfig):
    # the sampler its guidance and the text-to-image tables (docs/benchmarks.md) were measured with
    sampler: SamplerName = field(default="dpmpp-2m", metadata={"help": "the ODE/SDE solver"})
    guidance: float = field(
        default=3.0, metadata={"help": "classifier-free guidance scale (1: none)", "min": 0.0, "max": 100.0}
    )


@dataclass(frozen=True)
class Text2ImageRunConfig(Config):
    family: Literal["text2image"] = "text2image"
    data: CaptionDataConfig = CaptionDataConfig()
    autoencoder: StageConfig = StageConfig()
    text: TextConfig = TextConfig()
    model: DenoiserConfig = DenoiserConfig()
    # more of the training at high noise than EDM's images get (p_mean -0.5 relative to sigma_data 1): where the
    # objects go is decided there. Measured on MNIST scenes, 5 minutes from the same autoencoder: place 0.96 of
    # the objects against 0.32 with EDM's relative levels
    loss: LossConfig = LossConfig(p_mean=0.5)
    train: TrainConfig = TrainConfig()
    sample: Text2ImageSampleConfig = Text2ImageSampleConfig()
    compression: CompressionConfig = CompressionConfig()
    image_size: int = 0  # resolved from the data
    channels: int = 0
    prompts: tuple[str, ...] = ()  # resolved: what the snapshot grids draw (held-out captions)
    format_version: int = FORMAT_VERSION

    def check(self) -> None:
        check_schedule(self.sample, self.model.precond)
        self.train.check_optimizer("adamw")
