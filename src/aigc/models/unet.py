"""A compact U-Net F(x, c_noise, labels, context) for diffusion: residual blocks, GroupNorm, SiLU, attention at
chosen levels, a noise-level embedding, an optional class embedding with a null class for guidance, and
optional cross-attention to a prompt's token states at every level (text-to-image).

Sized by `UNetConfig`; `PRESETS` holds a tuned configuration per image size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from aigc.core.config import Config
from aigc.core.errors import ConfigError, UserError


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with the most groups (at most 32, at least 4 channels each) that divide `channels`."""
    groups = next(g for g in range(max(1, min(32, channels // 4)), 0, -1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class NoiseEmbedding(nn.Module):
    """Sinusoidal features of the scalar noise conditioning c_noise [N] -> [N, dim] (Vaswani et al. 2017)."""

    def __init__(self, dim: int, max_positions: float = 10_000.0):
        super().__init__()
        self.dim, self.max_positions = dim, max_positions

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        # Always float32: in bf16 the angles of large c_noise would lose their low digits.
        half = self.dim // 2
        freqs = torch.exp(-math.log(self.max_positions) * torch.arange(half, device=c_noise.device) / half)
        angles = c_noise.float()[:, None] * freqs[None]
        return torch.cat([angles.cos(), angles.sin()], dim=1)


class ResBlock(nn.Module):
    """GN-SiLU-conv, FiLM by the embedding (scale and shift), GN-SiLU-dropout-conv, plus a skip."""

    def __init__(self, in_channels: int, out_channels: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.affine = nn.Linear(emb_dim, 2 * out_channels)
        self.norm2 = group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity: stable early training
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, C_out, H, W)
        scale, shift = self.affine(emb)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(self.norm2(h) * (1 + scale) + shift)
        h = self.conv2(self.dropout(h))
        return (self.skip(x) + h) * (1 / math.sqrt(2))


class Attention(nn.Module):
    """Multi-head self-attention over the H*W positions, with a residual connection."""

    def __init__(self, channels: int, head_dim: int = 32):
        super().__init__()
        self.heads = max(1, channels // head_dim)
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = qkv.transpose(-1, -2).unbind(1)  # each (B, heads, H*W, C/heads)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(-1, -2).reshape(b, c, h, w)
        return (x + self.proj(out)) * (1 / math.sqrt(2))


def grid_sinusoids(channels: int, side: int) -> torch.Tensor:
    """[1, channels, side, side]: sines and cosines of the row (first half of the channels) and the column (second
    half) at geometrically spaced frequencies, each of unit mean square."""
    quarter = max(1, channels // 4)
    frequencies = torch.exp(-math.log(side * 4.0) * torch.arange(quarter) / quarter) * math.pi
    angles = torch.arange(side, dtype=torch.float32)[:, None] * frequencies[None, :]  # [side, quarter]
    table = torch.cat([angles.sin(), angles.cos()], dim=1) * math.sqrt(2.0)  # [side, 2 * quarter]
    rows = table.T[:, :, None].expand(-1, side, side)
    columns = table.T[:, None, :].expand(-1, side, side)
    grid = torch.zeros(channels, side, side)
    half = min(2 * quarter, channels // 2)
    grid[:half], grid[half : 2 * half] = rows[:half], columns[:half]
    return grid[None]


# a prompt as the U-Net reads it: token states [N, T, D] and which of them are real [N, T] (the rest is padding)
Context = tuple[torch.Tensor, torch.Tensor]


class CrossAttention(nn.Module):
    """Multi-head attention from the H*W positions to a prompt's token states (Rombach et al. 2022, Sec. 3.3):
    what the words say reaches every place, and each place picks the words about it; a residual connection."""

    def __init__(self, channels: int, context_dim: int, side: int, head_dim: int = 32):
        super().__init__()
        self.heads = max(1, channels // head_dim)
        self.norm = group_norm(channels)
        # where each query is (a learned embedding, from 2-D sinusoids): words say "top left", and a convolution
        # alone knows its place only from the padding at the borders (measured: prompts barely followed without)
        self.position = nn.Parameter(grid_sinusoids(channels, side))
        self.q = nn.Conv2d(channels, channels, 1)
        self.kv = nn.Linear(context_dim, 2 * channels)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, context: Context) -> torch.Tensor:
        b, c, h, w = x.shape
        states, real = context
        q = self.q(self.norm(x) + self.position.to(x.dtype)).reshape(b, self.heads, c // self.heads, h * w)
        q = q.transpose(-1, -2)
        k, v = self.kv(states.to(x.dtype)).reshape(b, -1, 2, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=real[:, None, None, :])
        out = out.transpose(-1, -2).reshape(b, c, h, w)
        return (x + self.proj(out)) * (1 / math.sqrt(2))


class Level(nn.Module):
    """The residual blocks (and optional self-attention, and cross-attention to a prompt) of one resolution."""

    def __init__(
        self,
        channels: list[tuple[int, int]],
        emb_dim: int,
        dropout: float,
        attention: bool,
        context_dim: int = 0,
        side: int = 0,
    ):
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(i, o, emb_dim, dropout) for i, o in channels)
        self.attention = nn.ModuleList(Attention(o) for _, o in channels) if attention else None
        cross = [CrossAttention(o, context_dim, side) for _, o in channels] if context_dim else None
        self.cross = nn.ModuleList(cross) if cross else None

    def forward(
        self,
        h: torch.Tensor,
        emb: torch.Tensor,
        save_to: list[torch.Tensor] | None = None,
        take_from: list[torch.Tensor] | None = None,
        context: Context | None = None,
    ) -> torch.Tensor:
        """On the way down each block's output is saved as a skip; on the way up each block takes one."""
        for k, block in enumerate(self.blocks):
            if take_from is not None:
                h = torch.cat([h, take_from.pop()], dim=1)
            h = block(h, emb)
            if self.attention is not None:
                h = self.attention[k](h)
            if self.cross is not None:
                h = self.cross[k](h, context)
            if save_to is not None:
                save_to.append(h)
        return h


@dataclass(frozen=True)
class UNetConfig(Config):
    """Width and depth of the U-Net; resolution halves between levels."""

    channels: int = field(default=64, metadata={"help": "width of the first level", "min": 1})
    channel_mult: tuple[int, ...] = (1, 2, 2)
    # the first level sees (H/p, W/p) patches of p*p pixels: cheap on CPUs
    patch_size: int = field(default=1, metadata={"min": 1})
    num_res_blocks: int = field(default=2, metadata={"min": 1})
    attention_levels: tuple[int, ...] = (2,)  # indices into channel_mult
    dropout: float = field(default=0.0, metadata={"min": 0.0, "below": 1.0})

    def check(self) -> None:
        if not self.channel_mult or min(self.channel_mult) < 1:
            raise ConfigError("channel_mult", self.channel_mult, "give one positive multiplier per level")
        if any(not 0 <= level < len(self.channel_mult) for level in self.attention_levels):
            raise ConfigError("attention_levels", self.attention_levels, "name levels of channel_mult, from 0")


# Tuned for throughput on a 2-core CPU: the first level of the larger presets works on 2x2 patches.
PRESETS: dict[str, UNetConfig] = {
    "tiny": UNetConfig(channels=16, channel_mult=(1, 2), num_res_blocks=1, attention_levels=()),
    "s16": UNetConfig(channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,)),
    "s28": UNetConfig(channels=32, channel_mult=(1, 2), patch_size=2, num_res_blocks=1, attention_levels=(1,)),
    "s32": UNetConfig(channels=64, channel_mult=(1, 2), patch_size=2, num_res_blocks=1, attention_levels=(1,)),
    "s64": UNetConfig(channels=64, channel_mult=(1, 2, 2), patch_size=2, num_res_blocks=1, attention_levels=(2,)),
    # text-to-image on 12x12 latents (48-pixel scenes through a factor-4 autoencoder)
    "t12": UNetConfig(channels=64, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,)),
    # the same network on 48-pixel scenes themselves (text2image --autoencoder none): 4x4 patches make its first
    # level the same 12x12 grid, so it costs what t12 costs on latents
    "p48": UNetConfig(channels=64, channel_mult=(1, 2), patch_size=4, num_res_blocks=1, attention_levels=(1,)),
}


def default_preset(image_size: int) -> str:
    """The preset tuned for the nearest image size at or below `image_size` (s16 for smaller ones)."""
    sizes = sorted(int(name[1:]) for name in PRESETS if name.startswith("s"))
    return f"s{max([s for s in sizes if s <= image_size] or sizes[:1])}"


class UNet(nn.Module):
    """F(x, c_noise, labels, context): x [N, C, H, W] and c_noise [N] float, labels [N] int64 in
    [0, num_classes] where num_classes is the null class (unconditional), context a prompt's (states [N, T,
    context_dim], real [N, T]) when built with a context_dim; returns [N, C, H, W]."""

    def __init__(
        self, config: UNetConfig, image_size: int, in_channels: int, num_classes: int = 0, context_dim: int = 0
    ):
        super().__init__()
        levels = len(config.channel_mult)
        factor = config.patch_size * 2 ** (levels - 1)
        if image_size % factor or image_size // factor < 4:
            raise UserError(
                f"image size {image_size} does not fit this U-Net (it must be divisible by {factor} and leave "
                f"at least 4 pixels at the lowest level); choose --image-size 16, 28, 32 or 64"
            )
        if any(not 0 <= level < levels for level in config.attention_levels):
            raise UserError(f"attention_levels {config.attention_levels} must lie in 0..{levels - 1}")
        self.num_classes = num_classes
        self.image_shape = (in_channels, image_size, image_size)
        ch = config.channels
        emb_dim = 4 * ch
        self.noise_embedding = NoiseEmbedding(ch)
        self.embedding_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_embedding = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None
        # the prompt's mean token state joins the noise embedding (as Imagen and SDXL add a pooled text
        # embedding): what the prompt says overall reaches every block, where it is said goes through attention
        self.context_embedding = nn.Linear(context_dim, emb_dim) if context_dim else None

        widths = [ch * m for m in config.channel_mult]
        self.patch_size = config.patch_size
        patch_channels = in_channels * config.patch_size**2
        self.stem = nn.Conv2d(patch_channels, ch, 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        skip_widths, current = [ch], ch
        for i, width in enumerate(widths):
            pairs = []
            for _ in range(config.num_res_blocks):
                pairs.append((current, width))
                current = width
                skip_widths.append(width)
            side = image_size // config.patch_size // 2**i
            self.down.append(Level(pairs, emb_dim, config.dropout, i in config.attention_levels, context_dim, side))
            if i < levels - 1:
                self.downsample.append(nn.Conv2d(current, current, 3, stride=2, padding=1))
                skip_widths.append(current)
        self.middle = Level([(current, current)] * 2, emb_dim, config.dropout, True, context_dim, side)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, width in reversed(list(enumerate(widths))):
            pairs = []
            for _ in range(config.num_res_blocks + 1):
                pairs.append((current + skip_widths.pop(), width))
                current = width
            side = image_size // config.patch_size // 2**i
            self.up.append(Level(pairs, emb_dim, config.dropout, i in config.attention_levels, context_dim, side))
            if i > 0:
                self.upsample.append(nn.Conv2d(current, current, 3, padding=1))
        self.head = nn.Sequential(group_norm(current), nn.SiLU(), nn.Conv2d(current, patch_channels, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def null_condition(self, labels: torch.Tensor) -> torch.Tensor:
        """The labels of the unconditional branch: the null class."""
        return torch.full_like(labels, self.num_classes)

    def forward(
        self, x: torch.Tensor, c_noise: torch.Tensor, labels: torch.Tensor | None, context: Context | None = None
    ) -> torch.Tensor:
        emb = self.embedding_mlp(self.noise_embedding(c_noise).to(x.dtype))  # (B, 4C)
        if self.class_embedding is not None:
            if labels is None:
                labels = torch.full((x.shape[0],), self.num_classes, dtype=torch.long, device=x.device)
            emb = emb + self.class_embedding(labels)
        if self.context_embedding is not None:
            states, real = context
            pooled = (states * real[..., None]).sum(1) / real.sum(1, keepdim=True)
            emb = emb + self.context_embedding(pooled.to(emb.dtype))
        emb = F.silu(emb)

        h = self.stem(F.pixel_unshuffle(x, self.patch_size))
        skips = [h]
        for i, level in enumerate(self.down):
            h = level(h, emb, save_to=skips, context=context)
            if i < len(self.downsample):
                h = self.downsample[i](h)
                skips.append(h)
        h = self.middle(h, emb, context=context)
        for i, level in enumerate(self.up):
            h = level(h, emb, take_from=skips, context=context)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return F.pixel_shuffle(self.head(h), self.patch_size)
