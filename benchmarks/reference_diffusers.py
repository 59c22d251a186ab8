"""The performance issue's reference: diffusers' unconditional training example
(examples/unconditional_image_generation/train_unconditional.py) reduced to MNIST, trained for a wall-clock
budget and sampled with a diffusers scheduler. Benchmark-only: aigc never imports diffusers.

As in the example: epsilon-prediction MSE under `DDPMScheduler(1000)`, AdamW (betas 0.95/0.999, weight decay 1e-6,
eps 1e-8), gradient norm clipped to 1, EMA with warm-up (inv_gamma 1, power 3/4, max 0.9999), shuffled epochs,
images scaled to [-1, 1]. Two differences a timed run forces: the learning rate stays at its peak after warm-up
(the example's cosine decay needs a known number of steps), and MNIST is padded from 28 to 32 pixels (with the
background value) so the three-level U-Net divides evenly; the padding is cropped off before scoring.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, UNet2DModel
from diffusers.training_utils import EMAModel

from aigc.data.datasets import DataConfig, load_dataset

# (a) the example's defaults; (b) tuned for short runs. The bar is set against (b).
SETTINGS = {
    "default": dict(lr=1e-4, warmup_steps=500, batch=128, scheduler=DDIMScheduler, steps=50),
    "tuned": dict(lr=1e-3, warmup_steps=50, batch=64, scheduler=DPMSolverMultistepScheduler, steps=20),
}
PAD = 2  # 28 -> 32


def build_unet() -> UNet2DModel:
    return UNet2DModel(
        sample_size=32,
        in_channels=1,
        out_channels=1,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    )


def noise_schedule() -> DDPMScheduler:
    """The training noise schedule; the samplers are built from its config."""
    return DDPMScheduler(num_train_timesteps=1000)


def mnist_padded(data_dir: str) -> torch.Tensor:
    """MNIST train as float [-1, 1], [60000, 1, 32, 32]."""
    images = load_dataset(DataConfig(name="mnist", data_dir=data_dir)).images.float() / 127.5 - 1
    return F.pad(images, (PAD, PAD, PAD, PAD), value=-1.0)


def train(setting: str, minutes: float, data_dir: str, seed: int = 0) -> tuple[UNet2DModel, dict]:
    """Train for `minutes` of wall-clock time; the EMA weights loaded into a fresh U-Net, and the counters."""
    options = SETTINGS[setting]
    torch.manual_seed(seed)
    data = mnist_padded(data_dir)
    unet = build_unet()
    noise_scheduler = noise_schedule()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=options["lr"], betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8)
    ema = EMAModel(unet.parameters(), decay=0.9999, use_ema_warmup=True, inv_gamma=1.0, power=3 / 4)
    batch, steps, position, order = options["batch"], 0, 0, torch.randperm(len(data))
    started = time.perf_counter()
    while time.perf_counter() - started < minutes * 60:
        if position + batch > len(order):  # a new epoch; the last partial batch is dropped
            position, order = 0, torch.randperm(len(data))
        clean = data[order[position : position + batch]]
        position += batch
        noise = torch.randn_like(clean)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (batch,))
        loss = F.mse_loss(unet(noise_scheduler.add_noise(clean, noise, timesteps), timesteps).sample, noise)
        for group in optimizer.param_groups:
            group["lr"] = options["lr"] * min(1.0, (steps + 1) / options["warmup_steps"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        ema.step(unet.parameters())
        steps += 1
    seconds = time.perf_counter() - started
    ema.copy_to(unet.parameters())
    return unet.eval(), {"steps": steps, "kimg": steps * batch / 1000, "img_per_s": steps * batch / seconds}


@torch.no_grad()
def sample(unet: UNet2DModel, setting: str, n: int, batch: int, seed: int = 0) -> tuple[np.ndarray, float]:
    """n images as uint8 [n, 1, 28, 28] (padding cropped) with the setting's scheduler, and the seconds it took."""
    options = SETTINGS[setting]
    scheduler = options["scheduler"].from_config(noise_schedule().config)
    generator = torch.Generator().manual_seed(seed)
    started, images = time.perf_counter(), []
    for start in range(0, n, batch):
        x = torch.randn(min(batch, n - start), 1, 32, 32, generator=generator)
        scheduler.set_timesteps(options["steps"])
        for t in scheduler.timesteps:
            x = scheduler.step(unet(x, t).sample, t, x).prev_sample
        x = x[:, :, PAD:-PAD, PAD:-PAD]
        images.append(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy())
    return np.concatenate(images), time.perf_counter() - started
