"""A text encoder for conditioning: the language model's transformer blocks (models/transformer.py) attending in
both directions over a prompt's tokens, which yields one vector per token for the denoiser's cross-attention to
read (Imagen and Stable Diffusion condition on every token's output, not a pooled one).

Token ids arrive shifted by one, 0 being padding (`to_ids`); a learned vector is put before every prompt, so
even the empty prompt - the unconditional branch of classifier-free guidance - has something to attend to.
"""

from __future__ import annotations

import torch
from torch import nn

from aigc.models.transformer import Block, RMSNorm, TransformerConfig, rotary_tables

PAD = 0


class PaddedPrompts:
    """What each layer's self-attention attends to: every real position of its own prompt, in both directions
    (the blocks take it where the language model passes its cache)."""

    def __init__(self, real: torch.Tensor):
        self.mask = real[:, None, None, :]  # [N, 1, 1, T]: queries of every position see the real keys

    def attend(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        return k, v, self.mask


class TextEncoder(nn.Module):
    """(states [N, 1 + T, width], real [N, 1 + T] bool) of prompt ids [N, T] (to_ids' layout)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size + 1, config.width, padding_idx=PAD)
        self.begin = nn.Parameter(torch.zeros(config.width))
        self.layers = nn.ModuleList(Block(config, i) for i in range(config.layers))
        self.norm = RMSNorm(config.width, config.norm_eps)
        nn.init.normal_(self.embed_tokens.weight, std=0.02)
        for module in self.layers.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)

    @property
    def width(self) -> int:
        return self.config.width

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, t = ids.shape
        x = torch.cat([self.begin.expand(n, 1, -1).to(self.embed_tokens.weight.dtype), self.embed_tokens(ids)], 1)
        real = torch.cat([torch.ones(n, 1, dtype=torch.bool, device=ids.device), ids != PAD], dim=1)
        cos, sin = rotary_tables(self.config, torch.arange(t + 1, device=ids.device))
        attention = PaddedPrompts(real)
        for block in self.layers:
            x = block(x, cos, sin, attention)
        return self.norm(x), real


def to_ids(token_lists: list[list[int]], length: int) -> torch.Tensor:
    """Token ids [N, length] in the encoder's layout: each tokenizer id + 1, padded with 0 (PAD) at the end."""
    ids = torch.full((len(token_lists), length), PAD, dtype=torch.long)
    for row, tokens in enumerate(token_lists):
        ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long) + 1
    return ids
