"""The GAN family: a generator G(z, labels) trained against a discriminator, drawn in one forward pass."""

from __future__ import annotations

import functools
import sys

import torch

from aigc.core.rng import PerSampleNoise
from aigc.families.gan.config import RECIPES, GANRunConfig, GANSampleConfig, gan_recipe
from aigc.families.images import ImageFamily
from aigc.models.gan import Generator, build_generator

EXAMPLES = """examples:
  aigc train gan --recipe seed --data mnist --minutes 5 --out runs/gan-seed    # the tutorial's MLP GAN
  aigc train gan --recipe dcgan --data mnist --minutes 5
  aigc train gan --data mnist --minutes 5 --eval-every 50     # conditional recipe; FID + coverage in the log
  aigc train gan --recipe stable --data fashion-mnist --loss logistic   # unconditional, another loss
  aigc train gan --data folder:path/to/photos --image-size 64
  aigc train gan --resume runs/mnist-gan --minutes 5
"""


class GANFamily(ImageFamily):
    name = "gan"
    help = f"a GAN (recipes: {', '.join(RECIPES)})"
    examples = EXAMPLES
    run_config = GANRunConfig
    sample_config = GANSampleConfig
    flag_components = ("data", "model", "adversarial", "train", "sample")
    unused_flags = frozenset({"train.optimizer", "train.weight_decay"})
    recipes = {name: functools.partial(gan_recipe, name) for name in RECIPES}
    model_type = Generator
    remedy = "a lower --lr/--lr-d, a larger --r1-gamma or another --loss"
    run_suffix = "-gan"

    def upgrade(self, data: dict) -> dict:
        # 0.1 kept the diffusion settings in a GAN's sample config too
        return {**data, "sample": {"truncation": data.get("sample", {}).get("truncation")}}

    def title(self, config) -> str:
        return f"gan ({config.recipe} recipe)"

    def resolve_model(self, model, dataset):
        if model.class_conditional and dataset.labels is None:  # as a diffusion model: classes where there are any
            print("notice: the data has no labels; the GAN trains unconditionally", file=sys.stderr)
        return super().resolve_model(model, dataset)

    def trainer(self, config, device: torch.device, fresh: bool = True):
        from aigc.families.gan.trainer import GANTrainer

        return GANTrainer(config, device)

    def build(self, config) -> Generator:
        return build_generator(config.model)

    def num_classes(self, model: Generator) -> int:
        return model.num_classes

    def check_request(self, model: Generator, labels, sample: GANSampleConfig) -> None:
        self.check_labels(model, labels)

    def drawer(self, model: Generator, sample: GANSampleConfig):
        """(noise, labels) -> images in [-1, 1]: one pass of G on each seed's latent (truncated when asked)."""

        def draw(noise: PerSampleNoise, labels: torch.Tensor | None) -> torch.Tensor:
            if sample.truncation is None:
                z = noise.randn((model.z_dim,))
            else:
                z = noise.truncated_randn((model.z_dim,), sample.truncation)
            return model(z, labels)

        return draw
