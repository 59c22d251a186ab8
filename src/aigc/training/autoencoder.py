"""One optimiser step of an autoencoder: its reconstruction error plus a small KL term (models/autoencoder.py),
no EMA. The autoencoder family trains it alone; a text-to-image run trains it as its first stage."""

from __future__ import annotations

from aigc.training.batch import Batch
from aigc.training.optim import gradient_step


def autoencoder_step(autoencoder, optimizer, batches: list[Batch], config, autocast_context, position):
    """One optimiser step of `autoencoder` on the micro-batches; the values to log ("autoencoder_loss" and its
    reconstruction and KL parts, "lr")."""
    autoencoder.train().requires_grad_(True)

    def losses(batch: Batch):
        with autocast_context:
            total, terms = autoencoder.loss(batch.data, batch.generator)
        return total, {"autoencoder_loss": total, **terms}

    return gradient_step(optimizer, autoencoder, batches, losses, config, position, "autoencoder_loss")
