"""The models of a text-to-image run, built from its resolved config: the autoencoder, the denoiser (text encoder
and prompted U-Net), and what sampling holds - both, and how prompts are read."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from aigc.core.checkpoint import latest_checkpoint, read_checkpoint
from aigc.core.config import from_dict
from aigc.core.errors import UserError
from aigc.data.captions import PromptReader
from aigc.data.tokenizer import TextTokenizer
from aigc.models.autoencoder import Autoencoder, AutoencoderConfig, PixelSpace
from aigc.models.latent_diffusion import PromptedUNet
from aigc.models.precond import Denoiser
from aigc.models.pretrained_text_encoder import PretrainedTextEncoder
from aigc.models.text_encoder import TextEncoder, to_ids
from aigc.models.transformer import TransformerConfig
from aigc.models.unet import UNet


def build_autoencoder(config) -> Autoencoder | PixelSpace:
    if config.autoencoder.pixels:
        return PixelSpace(config.image_size, config.channels)
    return Autoencoder(config.autoencoder.model, config.image_size, config.channels)


def build_denoiser(config) -> Denoiser:
    text = config.text
    tokenizer = TextTokenizer.from_str(text.tokenizer_json)
    if text.pretrained_config:
        encoder = PretrainedTextEncoder(text.pretrained_config, tokenizer.encode(""))
    else:
        encoder = TextEncoder(
            TransformerConfig(
                width=text.width, layers=text.layers, heads=text.heads, context=text.max_tokens + 1,
                vocab_size=tokenizer.vocab_size,
            )
        )  # fmt: skip
    latent = build_autoencoder(config).latent_shape
    unet = UNet(config.model.unet, latent[-1], latent[0], context_dim=encoder.width)
    return Denoiser(PromptedUNet(encoder, unet), config.model.precond)


class LatentDiffusion(nn.Module):
    """What a text-to-image model samples from: the (frozen) autoencoder - anything with `encode`, `decode` and
    `latent_shape` -, the denoiser of its latents, and how it reads prompts: `read_prompts(prompts)` gives the ids
    [N, T] its text encoder takes, or raises a UserError for a prompt it cannot read. aigc's own models and
    Stable Diffusion directories (pipeline.py) differ only in these parts."""

    compute_dtype = torch.float32

    def __init__(self, autoencoder: nn.Module, denoiser: Denoiser, read_prompts: Callable[[list[str]], torch.Tensor]):
        super().__init__()
        self.autoencoder, self.denoiser, self.read_prompts = autoencoder, denoiser, read_prompts

    def prompt_ids(self, prompts: list[str]) -> torch.Tensor:
        return self.read_prompts(prompts)


class AigcPrompts:
    """Prompts as aigc's text encoder reads them: the run's tokenizer, its alphabet and token limit, `to_ids`."""

    def __init__(self, reader: PromptReader):
        self.reader = reader

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        return to_ids([self.reader.tokens(p) for p in prompts], self.reader.max_tokens)


def prompt_reader(config) -> PromptReader:
    text = config.text
    alphabet = None if text.pretrained_config else text.alphabet  # a pretrained tokenizer reads any text
    return PromptReader(TextTokenizer.from_str(text.tokenizer_json), text.max_tokens, alphabet)


def sampling_model(config, autoencoder: Autoencoder, denoiser: Denoiser) -> LatentDiffusion:
    return LatentDiffusion(autoencoder, denoiser, AigcPrompts(prompt_reader(config)))


def caption_ids(reader: PromptReader, captions: tuple[str, ...], slots: int) -> torch.Tensor:
    """[slots, max_tokens] ids of an image's captions (to_ids' layout; unused slots all PAD)."""
    rows = [reader.tokens(caption, "a training caption") for caption in captions]
    return to_ids(rows + [[]] * (slots - len(rows)), reader.max_tokens)


@dataclasses.dataclass(frozen=True)
class TrainedAutoencoder:
    """The autoencoder of `--autoencoder RUN`: its config, the images it reads, its weights."""

    model: AutoencoderConfig
    image_size: int
    channels: int
    weights: dict[str, torch.Tensor]


def trained_autoencoder(run: str) -> TrainedAutoencoder:
    """The autoencoder of the newest checkpoint of RUN: an autoencoder run, or a text2image run that trained one."""
    path = Path(run)
    if not path.exists():
        raise UserError(f"--autoencoder {run}: no such run or checkpoint")
    checkpoint = read_checkpoint(latest_checkpoint(path) if path.is_dir() else path, modules=("autoencoder",))
    config, where = checkpoint.config, str(checkpoint.path)
    if config.get("family") == "autoencoder":
        stage = config
    elif config.get("family") == "text2image":
        stage = config.get("autoencoder", {})
        if stage.get("init") == "none":
            raise UserError(f"--autoencoder {run}: that run diffuses pixels (it has no autoencoder); give another")
    else:
        raise UserError(f"--autoencoder {run}: a {config.get('family')} run; give an autoencoder or text2image run")
    # only what describes the autoencoder is read, which every format version of either run writes alike
    model = from_dict(AutoencoderConfig, stage.get("model", {}), f"{where}: model")
    size, channels = config.get("image_size", 0), config.get("channels", 0)
    return TrainedAutoencoder(model, size, channels, checkpoint.modules["autoencoder"])
