"""generate(): the one way images come out of a model, diffusion or GAN. The CLI, evaluation and the service use it,
so they can never disagree about what a model produces."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from aigc.config import RunConfig
from aigc.errors import UserError
from aigc.models.diffusion import build_denoiser
from aigc.models.gan import Generator, build_generator
from aigc.models.optimize import load_int8
from aigc.models.precond import Denoiser
from aigc.sampling.guidance import conditioned
from aigc.sampling.rng import PerSampleNoise
from aigc.sampling.samplers import SAMPLERS, SampleConfig
from aigc.sampling.schedules import make_sigmas
from aigc.training.checkpoint import Checkpoint, latest_checkpoint, load_checkpoint
from aigc.utils.images import to_uint8

MAX_STEPS = 1000
MIN_TRUNCATION = 0.05  # below this, redrawing latents until they fit takes thousands of rounds

Model = Denoiser | Generator


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Model, RunConfig]:
    """The EMA model (a diffusion denoiser or a GAN generator) of a run directory (its newest complete checkpoint)
    or of a checkpoint file."""
    path = Path(path)
    checkpoint = load_checkpoint(latest_checkpoint(path) if path.is_dir() else path)
    return model_from_checkpoint(checkpoint, device), checkpoint.config


def model_from_checkpoint(checkpoint: Checkpoint, device: str | torch.device = "cpu") -> Model:
    """The EMA model of a checkpoint already read, rebuilt as its config (and any `aigc optimize`) describes."""
    config, weights = checkpoint.config, checkpoint.path
    model = build_generator(config.model) if config.method == "gan" else build_denoiser(config.model)
    quantize = config.optimization.quantize
    try:
        if quantize == "int8":
            model = load_int8(model, checkpoint.modules["ema"])
        else:
            model.load_state_dict(checkpoint.modules["ema"])  # bf16 weights are widened on the way in
    except (RuntimeError, KeyError):
        raise UserError(f"{weights}: weights do not match the model its config describes (incompatible)") from None
    if quantize == "int8" and torch.device(device).type != "cpu":
        raise UserError(f"{weights}: int8 models run on the CPU only; use --device cpu")
    # fp32 convolutions are faster channels-last on CPUs; bf16 ones in the layout the run trained in (measured
    # on the MNIST benchmark models: the U-Net samples 1.3x faster contiguous in bf16, the DCGAN channels-last)
    memory_format = torch.channels_last
    if quantize == "bf16":
        model.compute_dtype = torch.bfloat16
        if config.train.memory_format == "contiguous":
            memory_format = torch.contiguous_format
    model = model.to(device, memory_format=memory_format)
    return model.eval().requires_grad_(False)


def resolve_device(requested: str | None) -> str:
    """The device asked for (default: cuda when available, else cpu); UserError when it is not here."""
    device = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA device is available here; use --device cpu")
    return device


def model_device(model: Model) -> torch.device:
    """Where the model's weights are; an all-int8 model (no float parameters) runs on the CPU."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def sample_fields(method: str) -> set[str]:
    """The SampleConfig fields that apply to a method's models."""
    names = {f.name for f in dataclasses.fields(SampleConfig)}
    return {"truncation"} if method == "gan" else names - {"truncation"}


def check_sample_fields(names, method: str) -> None:
    """A setting of the other family (steps for a GAN, truncation for diffusion) is an error, not ignored."""
    stray = sorted(set(names) - sample_fields(method))
    if stray:
        flags = ", ".join("--" + name.replace("_", "-") for name in stray)
        raise UserError(f"{flags}: not a setting of {method} models; drop it")


def num_classes(model: Model) -> int:
    return model.num_classes if isinstance(model, Generator) else model.net.num_classes


def default_labels(model: Model, seeds: Sequence[int]) -> torch.Tensor | None:
    """A conditional model draws class seed % num_classes by default, so every grid shows all classes."""
    classes = num_classes(model)
    return torch.tensor([s % classes for s in seeds]) if classes else None


def check_request(model: Model, class_labels: torch.Tensor | None, sample: SampleConfig) -> None:
    classes = num_classes(model)
    if class_labels is not None:
        if not classes:
            raise UserError("this model is unconditional; drop --class (train with labels to use classes)")
        if int(class_labels.min()) < 0 or int(class_labels.max()) >= classes:
            raise UserError(f"class out of range; this model has classes 0..{classes - 1}")
    if isinstance(model, Generator):
        if sample.guidance != 1.0:
            raise UserError("guidance applies to diffusion models; a GAN draws with --truncation instead")
        if sample.truncation is not None and sample.truncation < MIN_TRUNCATION:
            raise UserError(f"--truncation {sample.truncation}: use {MIN_TRUNCATION} or more (lower: less variety)")
        return
    if sample.truncation is not None:
        raise UserError("--truncation applies to GANs; a diffusion model trades variety with --guidance")
    if sample.sampler not in SAMPLERS:
        raise UserError(f"unknown sampler {sample.sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if not 1 <= sample.steps <= MAX_STEPS:
        raise UserError(f"--steps {sample.steps} out of range; use 1..{MAX_STEPS}")
    if sample.guidance != 1.0 and not classes:
        raise UserError("guidance needs a class-conditional model; drop --guidance")


def diffusion_drawer(denoiser: Denoiser, sample: SampleConfig):
    """(noise, labels) -> images in [-1, 1]: the sampler run from the prior at the first noise level."""
    schedule = sample.schedule or ("karras" if denoiser.config.kind == "edm" else "trailing")
    sigmas = make_sigmas(schedule, sample.steps, denoiser)

    def draw(noise: PerSampleNoise, labels: torch.Tensor | None) -> torch.Tensor:
        x = noise.randn(denoiser.net.image_shape) * denoiser.initial_noise_scale(float(sigmas[0]))
        return SAMPLERS[sample.sampler](conditioned(denoiser, labels, sample.guidance), x, sigmas, noise=noise)

    return draw


def gan_drawer(generator: Generator, sample: SampleConfig):
    """(noise, labels) -> images in [-1, 1]: one pass of G on each seed's latent (truncated when asked)."""

    def draw(noise: PerSampleNoise, labels: torch.Tensor | None) -> torch.Tensor:
        if sample.truncation is None:
            z = noise.randn((generator.z_dim,))
        else:
            z = noise.truncated_randn((generator.z_dim,), sample.truncation)
        return generator(z, labels)

    return draw


@torch.no_grad()
def generate(
    model: Model | str | Path,
    seeds: Sequence[int],
    class_labels: torch.Tensor | Sequence[int] | None = None,
    sample: SampleConfig = SampleConfig(),
    batch_size: int = 64,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Draw one image per seed: uint8 [len(seeds), C, H, W]. Image k depends only on seeds[k] and its label
    (and the settings), never on the batch it is drawn in. Labels default to seed % num_classes when the
    model is class-conditional."""
    if isinstance(model, (str, Path)):
        model, _ = load_model(model, device or "cpu")
    device = torch.device(device) if device else model_device(model)
    if class_labels is not None:
        class_labels = torch.as_tensor(class_labels, dtype=torch.long)
        if len(class_labels) != len(seeds):
            raise UserError(f"{len(class_labels)} labels for {len(seeds)} seeds; give one label per seed")
    check_request(model, class_labels, sample)
    if class_labels is None:
        class_labels = default_labels(model, seeds)
    was_training = model.training
    model.eval()  # BatchNorm in a GAN generator uses its running statistics: images independent of the batch
    draw = gan_drawer(model, sample) if isinstance(model, Generator) else diffusion_drawer(model, sample)
    reduced = model.compute_dtype != torch.float32
    images = []
    starts = range(0, len(seeds), batch_size)
    # no tqdm object at all without a bar: its multiprocessing lock outlives uvicorn's spawned workers
    for start in tqdm(starts, desc="sampling", unit="batch") if progress else starts:
        batch_seeds = seeds[start : start + batch_size]
        labels = None if class_labels is None else class_labels[start : start + batch_size].to(device)
        with torch.autocast(device.type, model.compute_dtype, enabled=reduced):
            images.append(to_uint8(draw(PerSampleNoise(batch_seeds, device), labels)).cpu())
    model.train(was_training)
    return torch.cat(images)
