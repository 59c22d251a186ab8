"""Adversarial training: the losses, the R1 penalty and one alternating D-then-G step.

Losses (Goodfellow et al. 2014; Lim & Ye 2017), on D's outputs for real (r) and generated (f) images:
- `bce`: D outputs probabilities; D minimises -log r - log(1 - f), G the non-saturating -log f (the seed's loss).
- `logistic`: the same objective on logits, written with softplus so it cannot overflow.
- `hinge`: D minimises relu(1 - r) + relu(1 + f), G minimises -f.
R1 (Mescheder et al. 2018) penalises gamma/2 * |grad_x D(x)|^2 on real images; computed lazily every k steps and
scaled by k (Karras et al. 2020), it costs a fraction of a step on average.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

from aigc.data.augment import diff_augment, parse_policy
from aigc.errors import Diverged, check_finite
from aigc.models.gan import build_discriminator, build_generator
from aigc.training.ema import EMA, ema_beta
from aigc.training.optim import (
    MicroBatch,
    TrainConfig,
    accumulate_gradients,
    apply_gradients,
    autocast,
    learning_rate,
)

COLLAPSE_LOSS = 1e-3  # a D loss below this means D separates real from fake perfectly


@dataclass(frozen=True)
class AdversarialConfig:
    loss: Literal["bce", "logistic", "hinge"] = field(default="hinge", metadata={"help": "GAN loss"})
    lr_d: float = field(default=4e-4, metadata={"help": "discriminator learning rate (--lr is G's)"})
    beta1: float = field(default=0.5, metadata={"help": "Adam beta1 of both networks"})
    beta2: float = field(default=0.999, metadata={"help": "Adam beta2 of both networks"})
    r1_gamma: float = field(default=0.1, metadata={"help": "R1 penalty weight on real images (0: off)"})
    r1_every: int = field(default=16, metadata={"help": "apply R1 every k steps (lazy regularisation)"})
    augment: str = field(
        default="translation", metadata={"help": "DiffAugment: comma list of translation,cutout,color, or none"}
    )
    collapse_steps: int = field(
        default=2000, metadata={"help": "stop when D's loss stays ~0 for this many steps (0: never)"}
    )


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if kind == "bce":
        real_loss = F.binary_cross_entropy(real, torch.ones_like(real))
        return real_loss + F.binary_cross_entropy(fake, torch.zeros_like(fake))
    if kind == "logistic":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    if kind == "bce":
        return F.binary_cross_entropy(fake, torch.ones_like(fake))
    if kind == "logistic":
        return F.softplus(-fake).mean()
    return -fake.mean()


def r1_penalty(real: torch.Tensor, score) -> torch.Tensor:
    """E |grad_x score(x)|^2 over real images x, kept differentiable for D's update."""
    real = real.detach().requires_grad_(True)
    scores = score(real)
    (grad,) = torch.autograd.grad(scores.sum(), real, create_graph=True)
    return grad.square().sum(dim=(1, 2, 3)).mean()


class GANTrainer:
    """G, D, the EMA of G and their optimisers; `step` does one D update then one G update on a real batch."""

    remedy = "a lower --lr/--lr-d, a larger --r1-gamma or another --loss"

    def __init__(self, config, device: torch.device):
        self.adversarial: AdversarialConfig = config.adversarial
        self.train_config: TrainConfig = config.train
        self.generator = build_generator(config.model).to(device)
        self.discriminator = build_discriminator(config.model, self.adversarial.loss == "bce").to(device)
        if self.train_config.memory_format == "channels_last":
            self.generator = self.generator.to(memory_format=torch.channels_last)
            self.discriminator = self.discriminator.to(memory_format=torch.channels_last)
        self.ema = EMA(self.generator)
        betas = (self.adversarial.beta1, self.adversarial.beta2)
        self.optimizers = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=self.train_config.lr, betas=betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=self.adversarial.lr_d, betas=betas),
        }
        self.modules = {"generator": self.generator, "discriminator": self.discriminator, "ema": self.ema.model}
        self.policy = parse_policy(self.adversarial.augment)
        self.autocast = autocast(self.train_config, device)
        self.steps_collapsed = 0

    @property
    def sampling_model(self):
        return self.ema.model

    def step(self, micro_batches: list[MicroBatch], step: int, nimg: int) -> dict[str, float]:
        adv, tc = self.adversarial, self.train_config
        G, D = self.generator.train(), self.discriminator.train()
        scale = learning_rate(tc, nimg) / tc.lr
        self.optimizers["generator"].param_groups[0]["lr"] = tc.lr * scale
        self.optimizers["discriminator"].param_groups[0]["lr"] = adv.lr_d * scale
        lazy_r1 = adv.r1_gamma > 0 and step % adv.r1_every == 0

        def score(images: torch.Tensor, micro: MicroBatch) -> torch.Tensor:
            """D's float32 scores of augmented images; the losses and R1's gradient stay in float32."""
            with self.autocast:
                return D(diff_augment(images, self.policy, micro.generator), micro.labels).float()

        def generate(micro: MicroBatch) -> torch.Tensor:
            n, device = len(micro.images), micro.generator.device
            z = torch.randn(n, G.z_dim, generator=micro.generator, device=device).to(micro.images.device)
            with self.autocast:
                return G(z, micro.labels)

        def d_losses(micro: MicroBatch):
            """Real up, generated down, plus R1 on the lazy steps."""
            with torch.no_grad():
                fake = generate(micro)
            terms = {"loss_d": d_loss(adv.loss, score(micro.images, micro), score(fake, micro))}
            if not lazy_r1:
                return terms["loss_d"], terms
            terms["r1"] = r1_penalty(micro.images, lambda images: score(images, micro))
            return terms["loss_d"] + terms["r1"] * (adv.r1_gamma / 2 * adv.r1_every), terms

        def g_losses(micro: MicroBatch):
            """Fool the updated D."""
            loss = g_loss(adv.loss, score(generate(micro), micro))
            return loss, {"loss_g": loss}

        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        values = accumulate_gradients(micro_batches, d_losses)
        check_finite("discriminator loss", values["loss_d"], step)
        self._watch_collapse(values["loss_d"], step)
        if lazy_r1:
            check_finite("R1 penalty", values["r1"], step)
        apply_gradients(self.optimizers["discriminator"], D, tc.grad_clip)

        D.requires_grad_(False)
        self.optimizers["generator"].zero_grad(set_to_none=True)
        values |= accumulate_gradients(micro_batches, g_losses)
        D.requires_grad_(True)
        check_finite("generator loss", values["loss_g"], step, intact=False)  # D was already updated
        apply_gradients(self.optimizers["generator"], G, tc.grad_clip)

        self.ema.update(G, ema_beta(tc.batch, nimg + tc.batch, tc.ema_halflife_kimg, tc.ema_rampup))
        return values

    def _watch_collapse(self, loss_d: float, step: int) -> None:
        self.steps_collapsed = self.steps_collapsed + 1 if loss_d < COLLAPSE_LOSS else 0
        limit = self.adversarial.collapse_steps
        if limit and self.steps_collapsed >= limit:
            raise Diverged(
                f"the discriminator's loss stayed below {COLLAPSE_LOSS} for {limit} steps up to step {step}: "
                "D wins outright and G gets no signal"
            )
