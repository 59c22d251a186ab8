"""Training throughput and efficiency of aigc's diffusion U-Nets: images/s by numeric setting (fp32/bf16 autocast,
contiguous/channels-last, eager/torch.compile), the model's FLOPs per image counted by torch.utils.flop_counter,
the share of this machine's convolution peak it sustains, and how cost grows with image size and batch."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch.profiler import profile
from torch.utils.flop_counter import FlopCounterMode

from aigc.core.device import autocast, resolved_precision
from aigc.models.diffusion import ModelConfig, build_denoiser
from aigc.models.losses import LossConfig, make_loss
from aigc.models.unet import default_preset
from aigc.training.config import TrainConfig

DEFAULT = TrainConfig()
DEFAULT_SETTING = (resolved_precision(DEFAULT.precision, torch.device("cpu")), DEFAULT.memory_format, False)

SETTINGS = [  # (precision, memory format, compiled)
    ("fp32", "contiguous", False),
    ("fp32", "channels_last", False),
    ("bf16", "contiguous", False),
    ("bf16", "channels_last", False),
    ("fp32", "contiguous", True),
    ("bf16", "contiguous", True),
]


def training_step(
    size: int,
    batch: int,
    precision: str = DEFAULT.precision,
    memory_format: str = DEFAULT.memory_format,
    compiled: bool = False,
):
    """One optimiser step (forward, backward, AdamW) of the diffusion recipe at `size` on random data; settings
    default to `aigc train`'s."""
    torch.manual_seed(0)
    denoiser = build_denoiser(ModelConfig(preset=default_preset(size), image_size=size, channels=1, num_classes=10))
    y = torch.rand(batch, 1, size, size) * 2 - 1
    if memory_format == "channels_last":
        denoiser = denoiser.to(memory_format=torch.channels_last)
        y = y.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(denoiser.parameters(), 1e-3)
    loss_fn = make_loss(LossConfig(), denoiser)
    forward = torch.compile(denoiser, dynamic=False) if compiled else denoiser
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(batch) % 10
    precision_context = autocast(precision, torch.device("cpu"))

    def step():
        with precision_context:
            loss = loss_fn(forward, y, labels, generator).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def images_per_second(step, batch: int, seconds: float) -> tuple[float, float]:
    """(images/s over a `seconds` window, seconds the first two steps took: warm-up and compilation)."""
    started = time.perf_counter()
    step()
    step()
    warmup = time.perf_counter() - started
    images, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        images += batch
    return images / (time.perf_counter() - started), warmup


def training_flops_per_image(size: int, batch: int = 16) -> float:
    """Forward + backward FLOPs of one training image (multiply-add = 2 FLOPs; the optimiser is not counted)."""
    step = training_step(size, batch, "fp32")
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / batch


# Where a training step's time goes: operator name fragments -> category (first match wins; the rest is "other").
CATEGORIES = {
    "convolution": ("conv",),
    "matmul and attention": ("mm", "linear", "attention", "bmm"),
    "group norm": ("group_norm",),
    "optimizer": ("adam", "_foreach", "lerp", "sqrt", "addcdiv", "addcmul"),
    "activations and elementwise": ("silu", "mul", "add", "sub", "div", "pow", "exp", "cat", "copy", "fill", "where"),
}


def time_breakdown(size: int, steps: int = 5) -> dict[str, float]:
    """Share of a default training step's CPU time by operator category (torch.profiler, self time)."""
    step = training_step(size, 64)
    step()
    with profile() as profiler:
        for _ in range(steps):
            step()
    totals = dict.fromkeys([*CATEGORIES, "other"], 0.0)
    for event in profiler.key_averages():
        name = event.key.lower()
        category = next((c for c, parts in CATEGORIES.items() if any(p in name for p in parts)), "other")
        totals[category] += event.self_cpu_time_total
    everything = sum(totals.values())
    return {category: round(t / everything, 3) for category, t in totals.items()}


def conv_peak_gflops(seconds: float, precision: str, memory_format: str) -> float:
    """This machine's throughput on the U-Net's workhorse: a 3x3 convolution, 64 -> 64 channels, 32x32, batch 64."""
    x = torch.randn(64, 64, 32, 32)
    weight = torch.randn(64, 64, 3, 3)
    if memory_format == "channels_last":
        x, weight = (
            x.contiguous(memory_format=torch.channels_last),
            weight.contiguous(memory_format=torch.channels_last),
        )
    if precision == "bf16":
        x, weight = x.bfloat16(), weight.bfloat16()
    flops = 2 * 64 * 64 * 64 * 9 * 32 * 32
    calls, started = 0, time.perf_counter()
    with torch.no_grad():
        while time.perf_counter() - started < seconds:
            F.conv2d(x, weight, padding=1)
            calls += 1
    return flops * calls / (time.perf_counter() - started) / 1e9


# Windows per setting, taken in turns (every setting once, then again) and the best kept: one 8-second window each
# once put fp32 ahead of bf16 (585 against 555 img/s) where two 25-second turns each put bf16 1.2x ahead.
ROUNDS = 2


def bench_throughput(seconds: float) -> dict:
    rows = []
    for size in (16, 28):
        flops = training_flops_per_image(size)
        steps = [training_step(size, 64, *setting) for setting in SETTINGS]
        windows = [[images_per_second(step, 64, seconds) for step in steps] for _ in range(ROUNDS)]
        for k, (precision, memory_format, compiled) in enumerate(SETTINGS):
            ips = max(turn[k][0] for turn in windows)
            warmup = windows[0][k][1]
            row = {
                "preset": default_preset(size),
                "size": size,
                "precision": precision,
                "memory_format": memory_format,
                "compiled": compiled,
                "default": (precision, memory_format, compiled) == DEFAULT_SETTING,
                "img_per_s": round(ips, 1),
                "img_per_s_windows": [round(turn[k][0], 1) for turn in windows],
                "warmup_seconds": round(warmup, 1),
                "gflop_per_image": round(flops / 1e9, 3),
                "gflop_per_s": round(flops * ips / 1e9, 1),
            }
            rows.append(row)
            print(row, flush=True)
    for row in rows:
        base = next(r for r in rows if r["size"] == row["size"])  # SETTINGS[0]: fp32, contiguous, eager
        row["ratio_to_fp32_contiguous"] = round(row["img_per_s"] / base["img_per_s"], 2)
    peaks = {
        f"{precision}_{memory_format}": round(conv_peak_gflops(seconds, precision, memory_format), 1)
        for precision in ("fp32", "bf16")
        for memory_format in ("contiguous", "channels_last")
    }
    print(peaks, flush=True)
    for row in rows:
        row["share_of_bf16_conv_peak"] = round(row["gflop_per_s"] / peaks["bf16_channels_last"], 3)
    breakdown = {default_preset(size): time_breakdown(size) for size in (16, 28)}
    print(breakdown, flush=True)
    return {"rows": rows, "conv_peak_gflop_per_s": peaks, "default_step_time_breakdown": breakdown}


def bench_scaling(seconds: float) -> dict:
    """Training images/s of the default recipe and settings (default preset per size) by image size and batch."""
    rows = []
    for size in (16, 28, 32, 64):
        for batch in (32, 128, 512):
            ips, _ = images_per_second(training_step(size, batch), batch, seconds)
            rows.append({"size": size, "preset": default_preset(size), "batch": batch, "img_per_s": round(ips, 1)})
            print(rows[-1], flush=True)
    return {"rows": rows}
