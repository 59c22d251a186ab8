"""The text2image family: latent diffusion conditioned on a prompt ("Stable Diffusion" in miniature) - an
autoencoder, a text encoder and the denoiser of the autoencoder's latents, trained from scratch on captioned
images in one run, drawn with any of the diffusion family's samplers and classifier-free guidance."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from aigc.core.errors import UserError
from aigc.core.images import save_grid, square_shape, to_model_space
from aigc.core.rng import PerSampleNoise
from aigc.data.captions import PromptReader, load_captioned, normalized, scene_splits
from aigc.families.drawing import DrawingFamily
from aigc.families.text2image.config import Text2ImageRunConfig, Text2ImageSampleConfig
from aigc.families.text2image.model import (
    LatentDiffusion,
    TrainedAutoencoder,
    build_autoencoder,
    build_denoiser,
    caption_ids,
    prompt_reader,
    sampling_model,
    trained_autoencoder,
)
from aigc.families.text2image.pipeline import is_pipeline, load_pipeline
from aigc.models.pretrained_text_encoder import read_text_encoder
from aigc.models.unet import PRESETS
from aigc.sampling.guidance import conditioned
from aigc.sampling.samplers import SAMPLERS
from aigc.sampling.schedules import make_sigmas
from aigc.training.batch import TrainingData

EXAMPLES = """examples:
  aigc train text2image --kimg 300 --out runs/scenes          # digits scenes: runs anywhere
  aigc train text2image --data scenes:mnist --data-dir DIR --minutes 30
  aigc train text2image --data captions:photos/ --image-size 64 --minutes 30
  aigc train text2image --data scenes:mnist --data-dir DIR --autoencoder runs/scenes   # reuse its autoencoder
  aigc sample runs/scenes --prompt "a large 5 at the top right" --guidance 3 --n 16 --seeds 0-15 --out five.png
"""
SNAPSHOT_PROMPTS = 8  # rows of a snapshot grid: held-out captions, each drawn with the grid's seeds


class Text2ImageFamily(DrawingFamily):
    name = "text2image"
    help = "text-to-image latent diffusion (autoencoder + text encoder + U-Net)"
    examples = EXAMPLES
    run_config = Text2ImageRunConfig
    sample_config = Text2ImageSampleConfig
    flag_components = ("data", "autoencoder", "autoencoder.model", "text", "model", "model.precond", "loss", "train",
                       "sample")  # fmt: skip
    unused_flags = frozenset({"train.optimizer", "train.memory_format"})
    conditions = "prompts"
    evaluation = "prompted images"
    sampling_modules = ("autoencoder", "ema")
    model_type = LatentDiffusion
    metrics = "adherence,fid"
    remedy = "a lower --lr or a longer --warmup-kimg"

    def describe(self, config) -> str:
        return f"{super().describe(config)}, {config.image_size}px"

    # Training -------------------------------------------------------------------------------------------

    def training_data(self, config):
        data = load_captioned(config.data)
        config = self.resolved(config, data.images, data.captions)
        reader, slots = prompt_reader(config), max(len(row) for row in data.captions)
        ids = torch.stack([caption_ids(reader, row, slots) for row in data.captions])

        def prepare(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            return to_model_space(images)

        return config, TrainingData(data.images, ids, prepare)

    def resolved(self, config, images: torch.Tensor, captions: list[tuple[str, ...]]):
        """The config with what the data decides: image shape, the tokenizer fitted to the captions, the U-Net,
        the snapshot prompts, and the autoencoder of `--autoencoder RUN`."""
        channels, height = square_shape(images.shape[1:])
        text = config.text
        if text.pretrained and not text.pretrained_config:
            files = read_text_encoder(Path(text.pretrained))
            text = dataclasses.replace(
                text, pretrained_config=files.config, tokenizer_json=files.tokenizer,
                max_tokens=min(text.max_tokens, files.max_tokens),
            )  # fmt: skip
        if not text.tokenizer_json:
            reader = PromptReader.fit(text.tokenizer, captions, text.vocab_size, text.max_tokens)
            text = dataclasses.replace(text, tokenizer_json=reader.tokenizer.to_str(), alphabet=reader.alphabet)
        model = config.model
        if model.unet is None:
            model = dataclasses.replace(model, unet=PRESETS[model.preset])
        prompts = config.prompts or self.snapshot_prompts(config, captions)
        stage = config.autoencoder
        if stage.init and not stage.pixels and not config.image_size:  # a resumed run's has it: RUN may have moved
            stage = dataclasses.replace(stage, model=self.init_config(stage.init, height, channels).model)
        return dataclasses.replace(
            config, text=text, model=model, prompts=prompts, autoencoder=stage, image_size=height, channels=channels
        )

    def snapshot_prompts(self, config, captions) -> tuple[str, ...]:
        """Captions the model is not trained on when the data has them (held-out scenes), else the first ones."""
        if config.data.name.startswith("scenes:"):
            splits = scene_splits(config.data)
            each = SNAPSHOT_PROMPTS // len(splits)
            rows = [row for split in splits for row in load_captioned(config.data, split, each).captions]
            return tuple(normalized(row[0]) for row in rows)
        return tuple(row[0] for row in captions[:SNAPSHOT_PROMPTS])

    @staticmethod
    def init_config(run: str, image_size: int, channels: int) -> TrainedAutoencoder:
        """The autoencoder `--autoencoder RUN` names, refused when it reads other images."""
        trained = trained_autoencoder(run)
        if (trained.image_size, trained.channels) != (image_size, channels):
            raise UserError(
                f"--autoencoder {run} encodes {trained.image_size}px images with {trained.channels} channels; "
                f"these are {image_size}px with {channels}"
            )
        return trained

    def trainer(self, config, device: torch.device, fresh: bool = True):
        from aigc.families.text2image.trainer import Text2ImageTrainer

        return Text2ImageTrainer(config, device, fresh)

    def save_samples(self, model: LatentDiffusion, config, device: torch.device, stem: Path) -> None:
        """A grid of the snapshot prompts (rows) by seeds (columns), and the prompts beside it."""
        columns = max(1, config.train.grid_size // len(config.prompts))
        prompts = [p for p in config.prompts for _ in range(columns)]
        seeds = list(range(columns)) * len(config.prompts)
        images = self.generate(model, seeds, prompts, config.sample, device=device)
        save_grid(images, stem.with_suffix(".png"), columns)
        stem.with_suffix(".txt").write_text("".join(f"row {i + 1}: {p}\n" for i, p in enumerate(config.prompts)))

    # Sampling -------------------------------------------------------------------------------------------

    def build(self, config) -> LatentDiffusion:
        return sampling_model(config, build_autoencoder(config), build_denoiser(config))

    def reads_directory(self, path: Path) -> bool:
        return is_pipeline(path)

    def load_directory(self, path: Path):
        return load_pipeline(path)

    def sampling_state(self, modules: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        state = {f"autoencoder.{k}": v for k, v in modules["autoencoder"].items()}
        return state | {f"denoiser.{k}": v for k, v in modules["ema"].items()}

    def check_request(self, model: LatentDiffusion, conditions, sample) -> None:
        """UserError for a prompt the model cannot read (`generate` passes the ids of prompts it has read)."""
        if conditions is not None and not isinstance(conditions, torch.Tensor):
            model.prompt_ids(list(conditions))

    @torch.no_grad()
    def generate(self, model, seeds, prompts=None, sample=None, batch_size=64, device=None, progress=False):
        """One image per seed, of prompts[k] (default: the empty prompt - the unconditional model)."""
        if prompts is not None and not isinstance(prompts, torch.Tensor):
            prompts = list(prompts)
            if len(prompts) != len(seeds):
                raise UserError(f"{len(prompts)} prompts for {len(seeds)} seeds; give one prompt per seed")
            prompts = model.prompt_ids(prompts)
        return super().generate(model, seeds, prompts, sample, batch_size, device, progress)

    def drawer(self, model: LatentDiffusion, sample):
        schedule = sample.schedule or ("karras" if model.denoiser.config.kind == "edm" else "trailing")
        sigmas = make_sigmas(schedule, sample.steps, model.denoiser)
        shape = model.autoencoder.latent_shape

        def draw(noise: PerSampleNoise, ids: torch.Tensor | None) -> torch.Tensor:
            x = noise.randn(shape) * model.denoiser.initial_noise_scale(float(sigmas[0]))
            guided = conditioned(model.denoiser, ids, sample.guidance if ids is not None else 1.0)
            latents = SAMPLERS[sample.sampler](guided, x, sigmas, noise=noise)
            return model.autoencoder.decode(latents).clamp(-1, 1)

        return draw

    def info(self, model: LatentDiffusion, config) -> dict:
        return {"image_size": config.image_size, "channels": config.channels, "max_tokens": config.text.max_tokens}
