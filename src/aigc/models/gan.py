"""GAN generators and discriminators, by architecture name, at any square image size.

- `mlp`: the seed tutorial's networks. G: Linear 100-256-256-784 + Tanh, D: Linear 784-256-256-1 + Sigmoid,
  LeakyReLU(0.2) between layers; at other sizes only the pixel-facing layer changes.
- `dcgan`: Radford et al. (2016): G of transposed convolutions with BatchNorm and ReLU, D of strided
  convolutions with BatchNorm (not on the first layer) and LeakyReLU(0.2); with spectral normalisation, D drops
  its BatchNorm (SN-DCGAN, Miyato et al. 2018). Channels halve as the resolution
  doubles; the start resolution is the image size halved while it stays even and above 4 (28 -> 7, 32 -> 4).
- `resnet`: the SNGAN/BigGAN residual networks (Miyato et al. 2018): up-sampling and down-sampling residual
  blocks, meant to be paired with spectral normalisation in D.

Every generator maps (z [N, z_dim], labels) -> images [N, C, H, W] in [-1, 1]; a class-conditional one
concatenates a learned class embedding to z. Every discriminator maps (images, labels) -> [N] scores: a feature
trunk, a linear head, and for classes the projection term <embed(y), features> (Miyato & Koyama 2018); with the
`bce` loss the score is a probability (a final Sigmoid, as in the seed), otherwise a logit.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from aigc.core.config import Config
from aigc.core.errors import UserError

Architecture = Literal["mlp", "dcgan", "resnet"]
ARCHITECTURES: tuple[str, ...] = typing.get_args(Architecture)


@dataclass(frozen=True)
class GANModelConfig(Config):
    generator: Architecture = field(default="dcgan", metadata={"help": "G architecture"})
    discriminator: Architecture = field(default="dcgan", metadata={"help": "D architecture"})
    z_dim: int = field(default=128, metadata={"help": "latent dimensions", "min": 1})
    width: int = field(
        default=16,
        metadata={"help": "MLP units; conv nets: 2x this at half the image size, x2 per halving, at most 8x", "min": 1},
    )
    spectral_norm: bool = field(default=True, metadata={"help": "spectral normalisation of every D layer"})
    class_conditional: bool = field(
        default=False, metadata={"help": "condition G and D on class labels", "flag": "--conditional"}
    )
    image_size: int = 0  # resolved from the data
    channels: int = 0
    num_classes: int = 0  # 0: unconditional


def start_resolution(image_size: int) -> tuple[int, int]:
    """(resolution of the first feature map, number of 2x up-samplings): 28 -> (7, 2), 32 -> (4, 3), 64 -> (4, 4)."""
    size, levels = image_size, 0
    while size % 2 == 0 and size > 4:
        size, levels = size // 2, levels + 1
    return size, levels


def level_channels(width: int, levels: int) -> list[int]:
    """Channels from the lowest resolution up: width * 2^levels ... width, capped at 8 * width."""
    return [width * min(2 ** (levels - i), 8) for i in range(levels + 1)]


# Generators: body(in_features, channels, image_size, width) -> module mapping [N, in_features] -> [N, C, H, W].


def mlp_generator(in_features: int, channels: int, image_size: int, width: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(in_features, width),
        nn.LeakyReLU(0.2),
        nn.Linear(width, width),
        nn.LeakyReLU(0.2),
        nn.Linear(width, channels * image_size * image_size),
        nn.Tanh(),
        nn.Unflatten(1, (channels, image_size, image_size)),
    )


def dcgan_init(network: nn.Sequential) -> nn.Sequential:
    """DCGAN's initialisation: weights ~ N(0, 0.02), BatchNorm scales ~ N(1, 0.02), biases 0."""
    for module in network.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    return network


def dcgan_generator(in_features: int, channels: int, image_size: int, width: int) -> nn.Module:
    start, levels = start_resolution(image_size)
    widths = level_channels(width, levels)
    layers: list[nn.Module] = [
        nn.Linear(in_features, widths[0] * start * start, bias=False),  # DCGAN's 1x1 -> start x start projection
        nn.Unflatten(1, (widths[0], start, start)),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(),
    ]
    for c_in, c_out in pairwise(widths[:-1]):
        layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
    to_image = nn.ConvTranspose2d(widths[-2], channels, 4, 2, 1) if levels else nn.Conv2d(widths[0], channels, 3, 1, 1)
    return dcgan_init(nn.Sequential(*layers, to_image, nn.Tanh()))


class UpBlock(nn.Module):
    """BN-ReLU-up-conv-BN-ReLU-conv, plus an up-sampled 1x1 skip (SNGAN's generator block)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.residual = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1),
        )
        self.skip = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.residual(x)


def resnet_generator(in_features: int, channels: int, image_size: int, width: int) -> nn.Module:
    start, levels = start_resolution(image_size)
    widths = level_channels(width, levels)
    return nn.Sequential(
        nn.Linear(in_features, widths[0] * start * start),
        nn.Unflatten(1, (widths[0], start, start)),
        *[UpBlock(c_in, c_out) for c_in, c_out in pairwise(widths)],
        nn.BatchNorm2d(widths[-1]),
        nn.ReLU(),
        nn.Conv2d(widths[-1], channels, 3, padding=1),
        nn.Tanh(),
    )


# Discriminator trunks: trunk(channels, image_size, width, batch_norm) -> (module [N, C, H, W] -> [N, F], F).


def mlp_trunk(channels: int, image_size: int, width: int, batch_norm: bool) -> tuple[nn.Module, int]:
    layers = [
        nn.Flatten(),
        nn.Linear(channels * image_size * image_size, width),
        nn.LeakyReLU(0.2),
        nn.Linear(width, width),
        nn.LeakyReLU(0.2),
    ]
    return nn.Sequential(*layers), width


def dcgan_trunk(channels: int, image_size: int, width: int, batch_norm: bool) -> tuple[nn.Module, int]:
    start, levels = start_resolution(image_size)
    widths = [channels] + level_channels(width, levels)[::-1][1:]
    layers: list[nn.Module] = []
    for i, (c_in, c_out) in enumerate(pairwise(widths)):
        norm = [nn.BatchNorm2d(c_out)] if batch_norm and i > 0 else []
        layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not norm), *norm, nn.LeakyReLU(0.2)]
    layers.append(nn.Flatten())
    return dcgan_init(nn.Sequential(*layers)), widths[-1] * start * start


class DownBlock(nn.Module):
    """ReLU-conv-ReLU-conv-pool, plus a 1x1-conv-pool skip (SNGAN's discriminator block); the first block skips
    the leading ReLU so the raw image is not rectified."""

    def __init__(self, c_in: int, c_out: int, first: bool):
        super().__init__()
        self.residual = nn.Sequential(
            *([] if first else [nn.ReLU()]),
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1),
            nn.AvgPool2d(2),
        )
        self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1), nn.AvgPool2d(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.residual(x)


class SumPool(nn.Module):
    """ReLU, then the sum over positions: SNGAN's global pooling before the linear head."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x).sum(dim=(2, 3))


def resnet_trunk(channels: int, image_size: int, width: int, batch_norm: bool) -> tuple[nn.Module, int]:
    _, levels = start_resolution(image_size)
    widths = [channels] + level_channels(width, levels)[::-1][1:]
    blocks = [DownBlock(c_in, c_out, first=i == 0) for i, (c_in, c_out) in enumerate(pairwise(widths))]
    return nn.Sequential(*blocks, SumPool()), widths[-1]


GENERATORS = {"mlp": mlp_generator, "dcgan": dcgan_generator, "resnet": resnet_generator}
TRUNKS = {"mlp": mlp_trunk, "dcgan": dcgan_trunk, "resnet": resnet_trunk}


class Generator(nn.Module):
    compute_dtype = torch.float32  # inference under autocast to this dtype when lower (bf16 checkpoints)

    def __init__(self, config: GANModelConfig):
        super().__init__()
        self.z_dim, self.num_classes = config.z_dim, config.num_classes
        self.image_shape = (config.channels, config.image_size, config.image_size)
        self.embed = nn.Embedding(config.num_classes, config.z_dim) if config.num_classes else None
        in_features = config.z_dim * (2 if self.embed else 1)
        self.body = GENERATORS[config.generator](in_features, config.channels, config.image_size, config.width)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.body(z)


class Discriminator(nn.Module):
    def __init__(self, config: GANModelConfig, probability_output: bool):
        super().__init__()
        self.num_classes = config.num_classes
        trunk = TRUNKS[config.discriminator]
        self.trunk, features = trunk(config.channels, config.image_size, config.width, not config.spectral_norm)
        self.head = nn.Linear(features, 1)
        self.embed = nn.Embedding(config.num_classes, features) if config.num_classes else None
        self.sigmoid = nn.Sigmoid() if probability_output else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.trunk(x)
        score = self.head(h).squeeze(1)
        if self.embed is not None:
            score = score + (self.embed(labels) * h).sum(dim=1)
        return self.sigmoid(score) if self.sigmoid is not None else score


def check_config(config: GANModelConfig) -> None:
    if config.image_size < 8:
        raise UserError(f"images of {config.image_size} px are too small for a GAN; use --image-size 8 or more")


def build_generator(config: GANModelConfig) -> Generator:
    check_config(config)
    return Generator(config)


def build_discriminator(config: GANModelConfig, probability_output: bool = False) -> Discriminator:
    """D with spectral normalisation on every weight (convolutions, linear head, projection embedding) when
    configured; BatchNorm layers keep their own affine weights. `probability_output` adds the final Sigmoid."""
    check_config(config)
    discriminator = Discriminator(config, probability_output)
    if config.spectral_norm:
        for module in list(discriminator.modules()):
            if isinstance(module, (nn.Conv2d, nn.Linear, nn.Embedding)):
                spectral_norm(module)
    return discriminator
