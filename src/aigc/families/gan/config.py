"""The run config of a GAN, its sample settings, and the recipes: named starting points for a GAN run's config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aigc.core.config import Config
from aigc.core.errors import ConfigError, UserError
from aigc.data.augment import parse_policy
from aigc.families.family import from_recipe
from aigc.families.images import ImageRunConfig
from aigc.models.gan import GANModelConfig

MIN_TRUNCATION = 0.05  # below this, redrawing latents until they fit takes thousands of rounds


@dataclass(frozen=True)
class GANSampleConfig(Config):
    """How images are drawn: one pass of G on each seed's latent, truncated when asked."""

    truncation: float | None = field(
        default=None,
        metadata={
            "help": "redraw latent entries beyond this many std devs (lower: less variety)",
            "min": MIN_TRUNCATION,
        },
    )


@dataclass(frozen=True)
class AdversarialConfig(Config):
    loss: Literal["bce", "logistic", "hinge"] = field(default="hinge", metadata={"help": "GAN loss"})
    lr_d: float = field(default=4e-4, metadata={"help": "discriminator learning rate (--lr is G's)", "above": 0.0})
    beta1: float = field(default=0.5, metadata={"help": "Adam beta1 of both networks", "min": 0.0, "below": 1.0})
    beta2: float = field(default=0.999, metadata={"help": "Adam beta2 of both networks", "min": 0.0, "below": 1.0})
    r1_gamma: float = field(default=0.1, metadata={"help": "R1 penalty weight on real images (0: off)", "min": 0.0})
    r1_every: int = field(default=16, metadata={"help": "apply R1 every k steps (lazy regularisation)", "min": 1})
    augment: str = field(
        default="translation", metadata={"help": "DiffAugment: comma list of translation,cutout,color, or none"}
    )
    mode_seeking: float = field(
        default=0.0,
        metadata={"help": "weight of G's mode-seeking term (Mao et al. 2019: latents apart, images apart)", "min": 0.0},
    )
    collapse_steps: int = field(
        default=2000, metadata={"help": "stop when D's loss stays ~0 for this many steps (0: never)", "min": 0}
    )

    def check(self) -> None:
        try:
            parse_policy(self.augment)
        except UserError as error:
            raise ConfigError("augment", self.augment, str(error)) from None


@dataclass(frozen=True)
class GANRunConfig(ImageRunConfig):
    family: Literal["gan"] = "gan"
    recipe: str = "conditional"
    model: GANModelConfig = GANModelConfig()
    adversarial: AdversarialConfig = AdversarialConfig()
    sample: GANSampleConfig = GANSampleConfig()

    def check(self) -> None:
        if self.recipe not in RECIPES:
            raise ConfigError("recipe", self.recipe, f"choose one of {', '.join(RECIPES)}")
        self.train.check_optimizer("adamw")  # Adam, with the adversarial betas
        if self.train.weight_decay:
            raise ConfigError("weight_decay", self.train.weight_decay, "a GAN trains without weight decay; drop it")


# GAN training outside these recipes is a matter of flags: each recipe only sets the starting values.
# stable: the GANModelConfig and AdversarialConfig defaults (spectral norm, R1, hinge loss,
# DiffAugment), EMA of G.
# seed: the tutorial's MLP GAN as described (Adam 2e-4 with torch's default betas, BCE, no EMA or augmentation).
# dcgan: Radford et al. (2016): Adam 2e-4, beta1 0.5, batch 128, BCE.
# The recipes keep the precision and memory format their benchmark runs used: seed and dcgan fp32, stable bf16
# where the hardware has it natively, all channels-last.
_GAN_TRAIN = dict(warmup=0.0, grad_clip=0.0, memory_format="channels_last")
_STABLE_TRAIN = dict(_GAN_TRAIN, lr=4e-4, batch=32, ema_halflife=10_000.0, precision="auto")
RECIPES = {
    # conditional (the default): stable, class-conditional where the data has labels, with a light mode-seeking
    # term (without it a conditional G ignored its latent and drew one image per class; a heavier one cost
    # precision) and the rate decayed over the last fifth of the budget (docs/benchmarks.md, "GAN recipes")
    "conditional": dict(
        model=dict(class_conditional=True),
        adversarial=dict(mode_seeking=0.125),
        train=dict(_STABLE_TRAIN, lr_schedule="wsd"),
    ),
    "stable": dict(train=_STABLE_TRAIN),
    "seed": dict(
        model=dict(generator="mlp", discriminator="mlp", z_dim=100, width=256, spectral_norm=False),
        adversarial=dict(loss="bce", lr_d=2e-4, beta1=0.9, beta2=0.999, r1_gamma=0.0, augment="none"),
        train=dict(_GAN_TRAIN, lr=2e-4, batch=64, ema_halflife=0.0, precision="fp32"),
    ),
    "dcgan": dict(
        model=dict(generator="dcgan", discriminator="dcgan", z_dim=100, width=64, spectral_norm=False),
        adversarial=dict(loss="bce", lr_d=2e-4, beta1=0.5, beta2=0.999, r1_gamma=0.0, augment="none"),
        train=dict(_GAN_TRAIN, lr=2e-4, batch=128, ema_halflife=0.0, precision="fp32"),
    ),
}


def gan_recipe(name: str) -> GANRunConfig:
    return from_recipe(GANRunConfig, RECIPES, name)
