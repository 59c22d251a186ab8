"""The autoencoder family: the first stage of text to image trained on its own (`aigc train autoencoder`),
judged by its reconstructions (`aigc eval`: PSNR and FID of reconstructions), then handed to `aigc train
text2image --autoencoder RUN`, which freezes it. It reconstructs images and draws none: sampling and serving
say so."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from aigc.core.errors import UserError
from aigc.core.images import save_grid, square_shape, to_model_space
from aigc.data.captions import held_out_images, load_captioned
from aigc.families.autoencoder.config import AutoencoderRunConfig, ReconstructionConfig
from aigc.families.drawing import DrawingFamily
from aigc.models.autoencoder import Autoencoder, reconstruct
from aigc.training.batch import TrainingData

EXAMPLES = """examples:
  aigc train autoencoder --kimg 30 --out runs/ae                       # digits scenes: runs anywhere
  aigc train autoencoder --data scenes:mnist --data-dir DIR --kimg 30 --out runs/ae-mnist
  aigc eval runs/ae-mnist                                              # PSNR and FID of reconstructions
  aigc train text2image --data scenes:mnist --data-dir DIR --autoencoder runs/ae-mnist --minutes 10
"""
GRID_IMAGES = 8  # a snapshot: held-out images above their reconstructions


class AutoencoderFamily(DrawingFamily):
    name = "autoencoder"
    help = "the autoencoder of text to image, trained on its own (for text2image --autoencoder RUN)"
    examples = EXAMPLES
    run_config = AutoencoderRunConfig
    sample_config = ReconstructionConfig
    flag_components = ("data", "model", "train")
    unused_flags = frozenset({"train.optimizer", "train.memory_format"})
    conditions = "images"  # an output is the reconstruction of an image
    evaluation = "reconstructions"
    sampling_modules = ("autoencoder",)
    model_type = Autoencoder
    metrics = "psnr,mse,fid"
    selection_metric = "mse"
    run_suffix = "-autoencoder"

    def describe(self, config) -> str:
        return f"{super().describe(config)}, {config.image_size}px"

    def training_data(self, config):
        data = load_captioned(config.data)
        channels, height = square_shape(data.images.shape[1:])
        config = dataclasses.replace(config, image_size=height, channels=channels)

        def prepare(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            return to_model_space(images)

        return config, TrainingData(data.images, None, prepare)

    def trainer(self, config, device: torch.device, fresh: bool = True):
        from aigc.families.autoencoder.trainer import AutoencoderTrainer

        return AutoencoderTrainer(self.build(config), config, device)

    def save_samples(self, model: Autoencoder, config, device: torch.device, stem: Path) -> None:
        images, _ = held_out_images(config.data, GRID_IMAGES)
        save_grid(torch.cat([images, reconstruct(model, images)]), stem.with_suffix(".png"), len(images))

    def build(self, config) -> Autoencoder:
        return Autoencoder(config.model, config.image_size, config.channels)

    def check_request(self, model, conditions, sample) -> None:
        raise UserError(
            "an autoencoder reconstructs images and draws none; train a text2image model with --autoencoder RUN"
        )
