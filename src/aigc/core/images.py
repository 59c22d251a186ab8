"""Image tensors <-> PNG files and sample grids (PIL + numpy; no torchvision)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from aigc.core.errors import UserError
from aigc.core.io import atomic_write_bytes


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Model space [-1, 1] float [N, C, H, W] -> uint8 [N, C, H, W] in [0, 255]."""
    return ((x.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def to_model_space(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float32 in [-1, 1]."""
    return images.float().div(127.5).sub(1)


def square_shape(shape: Sequence[int]) -> tuple[int, int]:
    """(channels, side) of images of shape [C, H, W]; a UserError unless they are square."""
    channels, height, width = shape
    if height != width:
        raise UserError(f"images are {height}x{width}; only square images are supported (set --image-size)")
    return channels, height


def make_grid(images: torch.Tensor, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """uint8 [N, C, H, W] -> one uint8 array [H', W', C] tiling the images row by row, nearly square."""
    n, c, h, w = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.zeros((rows * (h + padding) + padding, columns * (w + padding) + padding, c), np.uint8)
    pixels = images.permute(0, 2, 3, 1).cpu().numpy()
    for k in range(n):
        top = padding + (k // columns) * (h + padding)
        left = padding + (k % columns) * (w + padding)
        grid[top : top + h, left : left + w] = pixels[k]
    return grid


def png_bytes(array: np.ndarray, upscale: int = 1) -> bytes:
    """uint8 [H, W, C] (C = 1 or 3) -> PNG file contents, optionally enlarged with nearest neighbour."""
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    if upscale > 1:
        image = image.resize((image.width * upscale, image.height * upscale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def grid_upscale(image_size: int) -> int:
    """Small images are enlarged in grids so that a 16x16 digit is visible on screen."""
    return max(1, 64 // image_size)


def grid_png(images: torch.Tensor, columns: int | None = None) -> bytes:
    """uint8 [N, C, H, W] -> one PNG grid (what `aigc sample` writes and the service returns)."""
    return png_bytes(make_grid(images, columns), grid_upscale(images.shape[-1]))


def image_png(image: torch.Tensor) -> bytes:
    """uint8 [C, H, W] -> a PNG of that one image at its own size."""
    return png_bytes(image.permute(1, 2, 0).cpu().numpy())


def per_seed_name(seed: int) -> str:
    """The file name of a seed's image, in a directory or a zip archive alike."""
    return f"{seed:06d}.png"


def save_grid(images: torch.Tensor, path: str | Path, columns: int | None = None) -> None:
    """Write uint8 [N, C, H, W] as one PNG grid (`columns` wide; default nearly square)."""
    atomic_write_bytes(path, grid_png(images, columns))


def save_per_seed(images: torch.Tensor, seeds: Sequence[int], directory: str | Path) -> list[Path]:
    """Write image k to `directory/<seed:06d>.png`, so a seed always lands in the same file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for image, seed in zip(images, seeds, strict=True):
        path = directory / per_seed_name(seed)
        atomic_write_bytes(path, image_png(image))
        paths.append(path)
    return paths
