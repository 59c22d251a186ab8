"""A Stable Diffusion directory - what diffusers' `StableDiffusionPipeline.save_pretrained` writes: model_index.json
beside unet/, vae/, text_encoder/, tokenizer/ and scheduler/ - read as a text2image sampling model, so aigc's
samplers, `generate()`, `aigc sample DIR --prompt ...` and the service draw from it unchanged.

diffusers' and transformers' own networks run inside aigc's parts: the U-Net and the CLIP text encoder are the
denoiser's network under vp preconditioning built from the scheduler's DDPM table (epsilon or v prediction,
linear or scaled-linear betas); the VAE is the autoencoder, its scaling factor the latent scale; a prompt is
the tokenizer's fixed-length ids (the empty prompt's are the unconditional branch, as the pipeline's negative
prompt ""). The scheduler itself is not used: aigc's samplers visit its timesteps (`--schedule leading` or
`trailing`; diffusers' `steps_offset` is not applied).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import torch
from torch import nn

from aigc.core.errors import UserError
from aigc.families.text2image.config import DenoiserConfig, Text2ImageRunConfig, Text2ImageSampleConfig, TextConfig
from aigc.families.text2image.model import LatentDiffusion
from aigc.models.precond import Denoiser, PrecondConfig
from aigc.models.pretrained import first_line

PIPELINES = ("StableDiffusionPipeline",)
COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
LIBRARIES = ("diffusers", "transformers")
BETA_SCHEDULES = ("linear", "scaled_linear")
PREDICTIONS = {"epsilon": "epsilon", "v_prediction": "v"}  # diffusers' names -> PrecondConfig's
# what people draw Stable Diffusion with: DPM-Solver++ (2M) at 25 steps, guidance 7.5 (diffusers' default scale)
SAMPLE = Text2ImageSampleConfig(sampler="dpmpp-2m", steps=25, schedule="trailing", guidance=7.5)


def is_pipeline(path: Path) -> bool:
    return (path / "model_index.json").is_file()


class PipelineAutoencoder(nn.Module):
    """The VAE as aigc's autoencoder: images [N, C, H, W] in [-1, 1] <-> latents scaled by its scaling factor."""

    def __init__(self, vae: nn.Module, image_size: int):
        super().__init__()
        self.vae = vae
        factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.latent_shape = (vae.config.latent_channels, image_size // factor, image_size // factor)
        self.scaling = float(vae.config.scaling_factor)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(images).latent_dist.mean * self.scaling

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents / self.scaling).sample


class PipelineNetwork(nn.Module):
    """F(x, t, ids): the conditional U-Net reading the text encoder's last hidden states of prompt ids [N, T]."""

    num_classes = 0

    def __init__(self, unet: nn.Module, text_encoder: nn.Module, empty_ids: torch.Tensor):
        super().__init__()
        self.unet, self.text_encoder = unet, text_encoder
        self.register_buffer("empty_ids", empty_ids, persistent=False)

    def null_condition(self, ids: torch.Tensor) -> torch.Tensor:
        return self.empty_ids.expand(len(ids), -1)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
        ids = self.empty_ids.expand(len(x), -1) if ids is None else ids
        states = self.text_encoder(ids)[0]
        return self.unet(x, c_noise, encoder_hidden_states=states.to(x.dtype)).sample


class TokenizerPrompts:
    """Prompts as the pipeline's tokenizer reads them: ids padded to its fixed length; a prompt longer than the
    text encoder takes is refused (diffusers would cut it off silently)."""

    def __init__(self, tokenizer):
        self.tokenizer, self.length = tokenizer, tokenizer.model_max_length

    def rows(self, prompts: list[str]) -> list[list[int]]:
        return self.tokenizer(prompts, padding="max_length", max_length=self.length).input_ids

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        rows = self.rows(prompts)
        for prompt, row in zip(prompts, rows, strict=True):
            if not prompt.strip():
                raise UserError("the prompt is empty; say what to draw")
            if len(row) > self.length:
                raise UserError(
                    f"the prompt {shorten(prompt)!r} is {len(row)} tokens; this text encoder reads {self.length}"
                )
        return torch.tensor(rows)


def shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_index(path: Path) -> dict:
    try:
        index = json.loads((path / "model_index.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"{path}/model_index.json: unreadable ({error})") from None
    kind = index.get("_class_name") if isinstance(index, dict) else None
    if kind not in PIPELINES:
        raise UserError(f"{path}: a {kind} directory; aigc samples {', '.join(PIPELINES)} directories")
    missing = [name for name in COMPONENTS if not (path / name).is_dir() or not library_and_class(index.get(name))]
    if missing:
        raise UserError(f"{path}: no {', '.join(missing)} folder; save the whole pipeline (save_pretrained)")
    return index


def library_and_class(entry) -> bool:
    """Whether a model_index.json entry names a component: [library, class name]."""
    return isinstance(entry, list) and len(entry) == 2 and all(isinstance(part, str) for part in entry)


def load_component(path: Path, index: dict, name: str):
    """The component `name` of the pipeline directory, by the library and class its model_index.json names;
    weights from safetensors only (a pickle can run code), without the libraries' progress bars."""
    library, class_name = index[name][:2]
    if library not in LIBRARIES:  # the directory names what to import: only the libraries made for it
        raise UserError(f"{path}: its {name} is a {library} {class_name}; aigc reads {' and '.join(LIBRARIES)} ones")
    try:
        module = importlib.import_module(library)
        component = getattr(module, class_name)
    except ImportError:
        raise UserError(f"{path}: its {name} needs {library}; pip install 'aigc[hf]'") from None
    except AttributeError:
        raise UserError(f"{path}: {library} has no {class_name} (its {name}); upgrade {library}") from None
    module.utils.logging.disable_progress_bar()
    options = {} if name == "tokenizer" else {"use_safetensors": True}
    try:
        return component.from_pretrained(path / name, local_files_only=True, **options)
    except Exception as error:  # missing files, bad configs, bad weights: each library raises its own kinds
        raise UserError(f"{path}/{name}: unreadable {class_name} ({first_line(error)})") from None


def precond_of(path: Path) -> PrecondConfig:
    """The vp preconditioning of the scheduler's DDPM table; UserError for a table aigc does not build."""
    try:
        scheduler = json.loads((path / "scheduler" / "scheduler_config.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"{path}/scheduler: unreadable scheduler_config.json ({error})") from None
    beta_schedule = scheduler.get("beta_schedule", "linear")
    prediction = scheduler.get("prediction_type", "epsilon")
    if beta_schedule not in BETA_SCHEDULES or scheduler.get("trained_betas"):
        raise UserError(f"{path}/scheduler: beta schedule {beta_schedule!r}; aigc builds linear and scaled_linear")
    if prediction not in PREDICTIONS:
        raise UserError(f"{path}/scheduler: prediction type {prediction!r}; aigc reads epsilon and v_prediction")
    if scheduler.get("rescale_betas_zero_snr"):
        raise UserError(f"{path}/scheduler: zero-terminal-SNR betas are not supported; use a standard schedule")
    return PrecondConfig(
        kind="vp", num_timesteps=int(scheduler.get("num_train_timesteps", 1000)),
        beta_start=float(scheduler.get("beta_start", 1e-4)), beta_end=float(scheduler.get("beta_end", 0.02)),
        beta_schedule=beta_schedule, prediction=PREDICTIONS[prediction],
    )  # fmt: skip


def load_pipeline(path: Path) -> tuple[LatentDiffusion, Text2ImageRunConfig]:
    """(sampling model, run config) of a Stable Diffusion directory, on the CPU in float32."""
    index = read_index(path)
    precond = precond_of(path)
    unet, vae = load_component(path, index, "unet"), load_component(path, index, "vae")
    text_encoder, tokenizer = load_component(path, index, "text_encoder"), load_component(path, index, "tokenizer")
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    image_size, channels = int(unet.config.sample_size) * factor, int(vae.config.in_channels)
    prompts = TokenizerPrompts(tokenizer)
    network = PipelineNetwork(unet, text_encoder, torch.tensor(prompts.rows([""])))
    model = LatentDiffusion(PipelineAutoencoder(vae, image_size), Denoiser(network, precond), prompts)
    config = Text2ImageRunConfig(
        text=TextConfig(max_tokens=prompts.length), model=DenoiserConfig(precond=precond), sample=SAMPLE,
        image_size=image_size, channels=channels,
    )  # fmt: skip
    return model, config
