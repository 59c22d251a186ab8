"""A diffusion model as one config: which U-Net, which preconditioning, and the data shape it was built for."""

from __future__ import annotations

from dataclasses import dataclass, field

from aigc.core.config import Config
from aigc.core.errors import ConfigError
from aigc.models.precond import Denoiser, PrecondConfig
from aigc.models.unet import PRESETS, UNet, UNetConfig, default_preset


@dataclass(frozen=True)
class ModelConfig(Config):
    preset: str | None = field(default=None, metadata={"help": f"U-Net size: {', '.join(PRESETS)} (default: by size)"})
    unet: UNetConfig | None = None  # resolved from the preset
    precond: PrecondConfig = PrecondConfig()
    class_conditional: bool = field(default=True, metadata={"help": "condition on class labels when the data has them"})
    image_size: int = 0  # resolved from the data
    channels: int = 0
    num_classes: int = 0  # 0: unconditional

    def check(self) -> None:
        if self.preset is not None and self.preset not in PRESETS:
            raise ConfigError("preset", self.preset, f"choose one of {', '.join(PRESETS)}")


def resolve_unet(config: ModelConfig) -> UNetConfig:
    if config.unet is not None:
        return config.unet
    return PRESETS[config.preset or default_preset(config.image_size)]


def build_denoiser(config: ModelConfig) -> Denoiser:
    """A freshly initialised denoiser D(x, sigma, labels) for a fully resolved config."""
    net = UNet(resolve_unet(config), config.image_size, config.channels, config.num_classes)
    return Denoiser(net, config.precond)
