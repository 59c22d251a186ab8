"""What the image families (diffusion, gan) share: the parts of a run config that are not the family's own,
training data from an image data set, the shapes and classes it decides, and the memory format image models
sample fastest in."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from aigc.core.config import Config
from aigc.core.errors import UserError
from aigc.core.images import square_shape, to_model_space
from aigc.data.augment import random_flip
from aigc.data.datasets import DataConfig, load_dataset
from aigc.families.drawing import DrawingFamily
from aigc.families.family import FORMAT_VERSION
from aigc.models.compression import CompressionConfig
from aigc.training.batch import TrainingData
from aigc.training.config import TrainConfig

IMAGE_METRICS = "fid,kid,pr,coverage"


@dataclass(frozen=True)
class ImageRunConfig(Config):
    """The parts of an image family's run config that every such family has; a family's run config adds its
    `family`, `model` and `sample` (and whatever else it needs)."""

    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    compression: CompressionConfig = CompressionConfig()
    format_version: int = FORMAT_VERSION


class ImageFamily(DrawingFamily):
    metrics = IMAGE_METRICS

    def resolve_model(self, model, dataset):
        """The model config with what the data decides filled in: image size, channels, classes."""
        channels, height = square_shape(dataset.image_shape)
        conditional = model.class_conditional and dataset.labels is not None
        return dataclasses.replace(
            model, image_size=height, channels=channels, num_classes=dataset.num_classes if conditional else 0
        )

    def training_data(self, config):
        dataset = load_dataset(config.data)
        config = dataclasses.replace(config, model=self.resolve_model(config.model, dataset))
        flip, channels_last = config.data.flip, config.train.memory_format == "channels_last"

        def prepare(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            y = to_model_space(images)
            if flip:
                y = random_flip(y, generator)
            return y.contiguous(memory_format=torch.channels_last) if channels_last else y

        labels = dataset.labels if config.model.num_classes else None
        return config, TrainingData(dataset.images, labels, prepare)

    def sampling_memory_format(self, config) -> torch.memory_format:
        # fp32 convolutions are faster channels-last on CPUs; bf16 ones in the layout the run trained in (measured
        # on the MNIST benchmark models: the U-Net samples 1.3x faster contiguous in bf16, the DCGAN channels-last)
        if config.compression.quantize == "bf16" and config.train.memory_format == "contiguous":
            return torch.contiguous_format
        return torch.channels_last

    def check_labels(self, model, labels) -> None:
        classes = self.num_classes(model)
        if labels is not None:
            labels = torch.as_tensor(labels)
            if not classes:
                raise UserError("this model is unconditional; drop --class (train with labels to use classes)")
            if int(labels.min()) < 0 or int(labels.max()) >= classes:
                raise UserError(f"class out of range; this model has classes 0..{classes - 1}")

    def describe(self, config) -> str:
        return f"{super().describe(config)}, {config.model.image_size}px"

    def info(self, model, config) -> dict:
        return {"image_size": config.model.image_size, "channels": config.model.channels}
