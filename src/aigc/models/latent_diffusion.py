"""The denoising network of text-conditional latent diffusion ("Stable Diffusion" in miniature, Rombach et al.
2022): a U-Net over an autoencoder's latents that reads a prompt through cross-attention, the prompt encoded by
a text encoder trained with it."""

from __future__ import annotations

import torch
from torch import nn

from aigc.models.text_encoder import PAD, TextEncoder
from aigc.models.unet import UNet


class PromptedUNet(nn.Module):
    """F(x, c_noise, prompt ids): the U-Net with cross-attention to the text encoder's states of the prompt
    (ids [N, T] as text_encoder.to_ids lays them out; all PAD is the empty prompt, the unconditional branch)."""

    num_classes = 0

    def __init__(self, text: TextEncoder, unet: UNet):
        super().__init__()
        self.text, self.unet = text, unet

    def null_condition(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.full_like(ids, PAD)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
        if ids is None:
            ids = torch.full((x.shape[0], 1), PAD, dtype=torch.long, device=x.device)
        # padding at the end changes no real token's state (it is masked): the encoder reads up to the longest prompt
        longest = int((ids != PAD).sum(1).max())
        return self.unet(x, c_noise, None, context=self.text(ids[:, :longest]))
