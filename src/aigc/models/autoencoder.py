"""A KL-regularised convolutional autoencoder (the first stage of latent diffusion, Rombach et al. 2022): images
[N, C, H, W] in [-1, 1] <-> latents [N, latent_channels, H / f, W / f], f = patch_size x 2 ** downsamples (4 by
default, which the paper finds best for small images). The encoder gives a diagonal Gaussian per latent;
training minimises reconstruction error plus a small KL term towards N(0, I), which keeps the latent space
smooth without blurring. `latent_scale` (measured once the autoencoder is trained) makes the latents
unit-variance for the diffusion model that works on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from aigc.core.config import Config
from aigc.core.errors import UserError
from aigc.core.images import to_model_space, to_uint8
from aigc.models.unet import group_norm


@dataclass(frozen=True)
class AutoencoderConfig(Config):
    channels: int = field(
        default=32,
        metadata={"help": "width of the autoencoder's first level", "min": 4, "flag": "--autoencoder-channels"},
    )
    latent_channels: int = field(default=4, metadata={"help": "channels of a latent", "min": 1})
    # latents are patch_size x 2^downsamples times smaller than the image (4 by default); the first level works
    # on patch_size^2-pixel patches, which costs a CPU a quarter of full-resolution convolutions
    patch_size: int = field(default=2, metadata={"min": 1})
    downsamples: int = field(default=1, metadata={"help": "halvings of the side after the patches", "min": 0})
    kl_weight: float = field(default=1e-6, metadata={"help": "weight of the KL term", "min": 0.0})


class ResBlock(nn.Module):
    """GroupNorm, SiLU, 3x3 convolution, twice, around a skip connection."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.body = nn.Sequential(
            group_norm(channels_in), nn.SiLU(), nn.Conv2d(channels_in, channels_out, 3, padding=1),
            group_norm(channels_out), nn.SiLU(), nn.Conv2d(channels_out, channels_out, 3, padding=1),
        )  # fmt: skip
        self.skip = nn.Conv2d(channels_in, channels_out, 1) if channels_in != channels_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


def widths(config: AutoencoderConfig) -> list[int]:
    """The width of each level, doubling (at most to 4x) at each halving."""
    return [config.channels * min(2**level, 4) for level in range(config.downsamples + 1)]


class Autoencoder(nn.Module):
    def __init__(self, config: AutoencoderConfig, image_size: int, channels: int):
        super().__init__()
        factor = config.patch_size * 2**config.downsamples
        if image_size % factor:
            raise UserError(f"image size {image_size} is not divisible by the autoencoder's factor {factor}")
        self.config, self.factor = config, factor
        self.latent_shape = (config.latent_channels, image_size // factor, image_size // factor)
        w = widths(config)
        patch_channels = channels * config.patch_size**2
        encoder = [nn.PixelUnshuffle(config.patch_size), nn.Conv2d(patch_channels, w[0], 3, padding=1)]
        for level in range(config.downsamples):  # a block at this side, then halve it (and widen)
            encoder.append(ResBlock(w[level], w[level]))
            encoder.append(nn.Conv2d(w[level], w[level + 1], 3, stride=2, padding=1))
        encoder += [ResBlock(w[-1], w[-1]), group_norm(w[-1]), nn.SiLU()]
        encoder.append(nn.Conv2d(w[-1], 2 * config.latent_channels, 3, padding=1))  # mean and log-variance
        self.encoder = nn.Sequential(*encoder)
        decoder = [nn.Conv2d(config.latent_channels, w[-1], 3, padding=1), ResBlock(w[-1], w[-1])]
        for level in reversed(range(config.downsamples)):  # double the side (and narrow), then a block
            decoder.append(nn.Upsample(scale_factor=2.0, mode="nearest"))
            decoder.append(nn.Conv2d(w[level + 1], w[level], 3, padding=1))
            decoder.append(ResBlock(w[level], w[level]))
        decoder += [group_norm(w[0]), nn.SiLU(), nn.Conv2d(w[0], patch_channels, 3, padding=1)]
        decoder.append(nn.PixelShuffle(config.patch_size))
        self.decoder = nn.Sequential(*decoder)
        # the latents' standard deviation once trained (1 until measured): diffusion sees latents / scale
        self.register_buffer("latent_scale", torch.ones(()))

    def moments(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance) of the latent Gaussian of images [N, C, H, W] in [-1, 1]."""
        mean, log_var = self.encoder(images).chunk(2, dim=1)
        return mean, log_var.clamp(-30.0, 20.0)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The scaled latents (the Gaussian's mean / latent_scale): what the diffusion model is trained on."""
        return self.moments(images)[0] / self.latent_scale

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Images [N, C, H, W] (about [-1, 1]) of scaled latents."""
        return self.decoder(latents * self.latent_scale)

    def loss(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-sample reconstruction error (mean squared, over pixels) plus kl_weight x KL(q(z|x) || N(0, I))
        (summed over the latent, as latent diffusion's autoencoder is trained); the two parts for the log."""
        mean, log_var = self.moments(images)
        noise = torch.randn(mean.shape, generator=generator, device=generator.device).to(mean)
        reconstruction = self.decoder(mean + (0.5 * log_var).exp() * noise)
        error = (reconstruction.float() - images.float()).pow(2).flatten(1).mean(1)
        kl = 0.5 * (mean.float().pow(2) + log_var.float().exp() - 1 - log_var.float()).flatten(1).sum(1)
        total = error + self.config.kl_weight * kl
        return total.mean(), {"reconstruction": error.mean(), "kl": kl.mean()}


class PixelSpace(nn.Module):
    """No first stage: the denoiser works on the images themselves, scaled to unit variance like latents - the
    baseline that says what the autoencoder buys."""

    def __init__(self, image_size: int, channels: int):
        super().__init__()
        self.latent_shape = (channels, image_size, image_size)
        self.register_buffer("latent_scale", torch.ones(()))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return images / self.latent_scale

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return latents * self.latent_scale


@torch.no_grad()
def reconstruct(autoencoder: nn.Module, images: torch.Tensor, batch: int = 250) -> torch.Tensor:
    """uint8 reconstructions of uint8 images [N, C, H, W], through the latents' means."""
    device = next(autoencoder.parameters()).device
    out = []
    for start in range(0, len(images), batch):
        x = to_model_space(images[start : start + batch].to(device))
        out.append(to_uint8(autoencoder.decode(autoencoder.encode(x))).cpu())
    return torch.cat(out)


def psnr(reference: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio [N] in dB of images in [-1, 1] (peak-to-peak 2)."""
    mse = (reference.float() - reconstruction.float().clamp(-1, 1)).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-10))
