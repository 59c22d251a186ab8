"""Classifier training: the cross-entropy of each text's label, AdamW (weight decay on the matrices only), under
the learning-rate schedule of every family (training/optim.py). With `--adversarial`, each batch also trains on
its texts with their token embeddings pushed the way that raises the loss most, within a norm of `--epsilon` per
text - FGM (Miyato et al. 2017): one step along the gradient; PGD (Madry et al. 2018): `--pgd-steps` steps, each
projected back into that ball - and the two losses are added, so the model learns to keep its label under small
changes of its input."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aigc.core.device import autocast
from aigc.families.classifier.data import model_input
from aigc.training.batch import Batch
from aigc.training.optim import decaying_matrices, gradient_step


class Pushed:
    """A forward hook on the token embedding: adds `delta` to its output when one is set, and keeps the output
    (so the loss's gradient with respect to the embeddings can be taken)."""

    def __init__(self, embedding: torch.nn.Module):
        self.delta: torch.Tensor | None = None
        self.embedded: torch.Tensor | None = None
        embedding.register_forward_hook(self.hook)

    def hook(self, module, inputs, output):
        if torch.is_grad_enabled() and not output.requires_grad:  # a frozen embedding (LoRA): the gradient is wanted
            output = output.detach().requires_grad_()
        if self.delta is not None:
            output = output + self.delta
        self.embedded = output
        return output


def step_along(gradient: torch.Tensor, epsilon: float) -> torch.Tensor:
    """A step of norm `epsilon` per text [N, T, width] along `gradient`."""
    norms = gradient.flatten(1).norm(dim=1).clamp_min(1e-12)
    return epsilon * gradient / norms[:, None, None]


def projected(delta: torch.Tensor, epsilon: float) -> torch.Tensor:
    """`delta` brought into the ball of norm `epsilon` per text."""
    norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    return delta * (epsilon / norms).clamp(max=1.0)[:, None, None]


class ClassifierTrainer:
    def __init__(self, model: torch.nn.Module, config, device: torch.device):
        self.train_config, self.robustness = config.train, config.robustness
        self.model = model.to(device)
        self.optimizers = {"model": decaying_matrices(self.model, config.train)}
        self.modules = {"model": self.model}
        self.autocast = autocast(config.train.precision, device)
        self.pushed = Pushed(self.model.embedding()) if self.robustness.adversarial != "none" else None

    @property
    def sampling_model(self):
        return self.model

    def loss(self, tokens: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with self.autocast:
            logits = self.model(tokens, lengths)
        return F.cross_entropy(logits.float(), labels)

    def adversarial_loss(self, tokens, lengths, labels, clean: torch.Tensor) -> torch.Tensor:
        """The loss at the embeddings pushed from the clean ones (whose loss is `clean`)."""
        r, pushed = self.robustness, self.pushed
        steps = 1 if r.adversarial == "fgm" else r.pgd_steps
        size = r.epsilon if r.adversarial == "fgm" else 2.5 * r.epsilon / steps  # PGD's step (Madry et al.)
        delta = torch.zeros_like(pushed.embedded)
        loss = clean
        for _ in range(steps):
            (gradient,) = torch.autograd.grad(loss, pushed.embedded, retain_graph=loss is clean)
            delta = projected(delta + step_along(gradient.detach(), size), r.epsilon)
            pushed.delta = delta
            loss = self.loss(tokens, lengths, labels)
        pushed.delta = None
        return loss

    def step(self, batches: list[Batch], position) -> dict[str, float]:
        self.model.train()

        def losses(batch: Batch):
            tokens, lengths = model_input(batch.data)
            loss = self.loss(tokens, lengths, batch.condition)
            if self.pushed is None:
                return loss, {"loss": loss}
            adversarial = self.adversarial_loss(tokens, lengths, batch.condition, loss)
            return loss + adversarial, {"loss": loss, "adversarial_loss": adversarial}

        return gradient_step(self.optimizers["model"], self.model, batches, losses, self.train_config, position)
