"""Adversarial training: the losses, the R1 penalty and one alternating D-then-G step.

Losses (Goodfellow et al. 2014; Lim & Ye 2017), on D's outputs for real (r) and generated (f) images:
- `bce`: D outputs probabilities; D minimises -log r - log(1 - f), G the non-saturating -log f (the seed's loss).
- `logistic`: the same objective on logits, written with softplus so it cannot overflow.
- `hinge`: D minimises relu(1 - r) + relu(1 + f), G minimises -f.
R1 (Mescheder et al. 2018) penalises gamma/2 * |grad_x D(x)|^2 on real images; computed lazily every k steps and
scaled by k (Karras et al. 2020), it costs a fraction of a step on average.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aigc.core.device import autocast
from aigc.core.errors import Diverged, check_finite
from aigc.data.augment import diff_augment, parse_policy
from aigc.families.gan.config import AdversarialConfig
from aigc.models.gan import build_discriminator, build_generator
from aigc.training.batch import Batch
from aigc.training.config import TrainConfig
from aigc.training.ema import EMA, ema_beta
from aigc.training.optim import accumulate_gradients, apply_gradients, budget_share, learning_rate

COLLAPSE_LOSS = 1e-3  # a D loss below this means D separates real from fake perfectly


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
    return grad.square().sum(dim=tuple(range(1, grad.ndim))).mean()


class GANTrainer:
    """G, D, the EMA of G and their optimisers; `step` does one D update then one G update on a real batch."""

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
        self.autocast = autocast(self.train_config.precision, device)
        self.steps_collapsed = 0

    @property
    def sampling_model(self):
        return self.ema.model

    def step(self, batches: list[Batch], position) -> dict[str, float]:
        """One D update (with R1 on the lazy steps), then one G update against the updated D, then the EMA."""
        tc, step = self.train_config, position.step
        self.generator.train()
        self.discriminator.train()
        scale = self.set_learning_rates(position)
        lazy_r1 = self.adversarial.r1_gamma > 0 and step % self.adversarial.r1_every == 0
        values = self.discriminator_step(batches, step, lazy_r1)
        values |= self.generator_step(batches, step)
        self.ema.update(self.generator, ema_beta(tc.batch, position.seen + tc.batch, tc.ema_halflife, tc.ema_rampup))
        return {**values, "lr": tc.lr * scale}

    def set_learning_rates(self, position) -> float:
        """Both networks' rates at `position`: their peaks (--lr, --lr-d) scaled alike by the schedule; the
        scale."""
        tc, seen = self.train_config, position.seen
        scale = learning_rate(tc, seen, budget_share(tc, seen, position.train_seconds)) / tc.lr
        self.optimizers["generator"].param_groups[0]["lr"] = tc.lr * scale
        self.optimizers["discriminator"].param_groups[0]["lr"] = self.adversarial.lr_d * scale
        return scale

    def discriminator_step(self, batches: list[Batch], step: int, lazy_r1: bool) -> dict[str, float]:
        optimizer = self.optimizers["discriminator"]
        optimizer.zero_grad(set_to_none=True)
        values = accumulate_gradients(batches, lambda batch: self.d_losses(batch, lazy_r1))
        check_finite("discriminator loss", values["loss_d"], step)
        self._watch_collapse(values["loss_d"], step)
        if lazy_r1:
            check_finite("R1 penalty", values["r1"], step)
        apply_gradients(optimizer, self.discriminator, self.train_config.grad_clip)
        return values

    def generator_step(self, batches: list[Batch], step: int) -> dict[str, float]:
        optimizer = self.optimizers["generator"]
        self.discriminator.requires_grad_(False)
        optimizer.zero_grad(set_to_none=True)
        values = accumulate_gradients(batches, self.g_losses)
        self.discriminator.requires_grad_(True)
        check_finite("generator loss", values["loss_g"], step, intact=False)  # D was already updated
        apply_gradients(optimizer, self.generator, self.train_config.grad_clip)
        return values

    def score(self, images: torch.Tensor, batch: Batch) -> torch.Tensor:
        """D's float32 scores of augmented images; the losses and R1's gradient stay in float32."""
        with self.autocast:
            return self.discriminator(diff_augment(images, self.policy, batch.generator), batch.condition).float()

    def latents(self, batch: Batch, n: int) -> torch.Tensor:
        z = torch.randn(n, self.generator.z_dim, generator=batch.generator, device=batch.generator.device)
        return z.to(batch.data.device)

    def generated(self, batch: Batch) -> torch.Tensor:
        with self.autocast:
            return self.generator(self.latents(batch, len(batch.data)), batch.condition)

    def d_losses(self, batch: Batch, lazy_r1: bool):
        """Real up, generated down, plus R1 on the lazy steps."""
        adv = self.adversarial
        with torch.no_grad():
            fake = self.generated(batch)
        terms = {"loss_d": d_loss(adv.loss, self.score(batch.data, batch), self.score(fake, batch))}
        if not lazy_r1:
            return terms["loss_d"], terms
        terms["r1"] = r1_penalty(batch.data, lambda images: self.score(images, batch))
        return terms["loss_d"] + terms["r1"] * (adv.r1_gamma / 2 * adv.r1_every), terms

    def g_losses(self, batch: Batch):
        """Fool the updated D; with mode seeking, also keep two latents of one class apart in the images."""
        adv = self.adversarial
        if not adv.mode_seeking or len(batch.data) < 2:  # a pair needs two images (--batch-per-device 1)
            loss = g_loss(adv.loss, self.score(self.generated(batch), batch))
            return loss, {"loss_g": loss}
        half = len(batch.data) // 2
        labels = None if batch.condition is None else batch.condition[:half].repeat(2)
        pairs = Batch(batch.data[: 2 * half], labels, batch.generator)
        z = self.latents(batch, 2 * half)
        with self.autocast:
            fake = self.generator(z, labels)
        loss = g_loss(adv.loss, self.score(fake, pairs))
        apart = (fake[:half] - fake[half:]).float().abs().mean(dim=(1, 2, 3)) / (z[:half] - z[half:]).abs().mean(1)
        seeking = adv.mode_seeking / (apart.mean() + 1e-5)
        return loss + seeking, {"loss_g": loss, "mode_seeking": seeking}

    def _watch_collapse(self, loss_d: float, step: int) -> None:
        self.steps_collapsed = self.steps_collapsed + 1 if loss_d < COLLAPSE_LOSS else 0
        limit = self.adversarial.collapse_steps
        if limit and self.steps_collapsed >= limit:
            raise Diverged(
                f"the discriminator's loss stayed below {COLLAPSE_LOSS} for {limit} steps up to step {step}: "
                "D wins outright and G gets no signal"
            )
