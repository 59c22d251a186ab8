"""`aigc optimize`: a smaller or faster checkpoint made from a trained run - pruned (optionally fine-tuned by the
training loop, which then keeps the zeros), quantised to int8 or stored in bf16 - written as a run directory that
sample, eval and serve load like any other (the transforms are in models/optimize.py)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch

from aigc.config import to_json
from aigc.errors import UserError
from aigc.models.optimize import OptimizationConfig, bf16_state, int8_state, prune_weights, quantize_int8
from aigc.sampling.pipeline import model_from_checkpoint
from aigc.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, save_weights, weights_path
from aigc.utils.io import atomic_write_text


def optimize_checkpoint(
    source: Path, out: Path, options: OptimizationConfig, progress: bool = True, data_dir: str | None = None
) -> Path:
    """Write the optimised EMA model of `source` (a run directory's newest checkpoint, or a checkpoint file) to
    the run directory `out`; returns the new checkpoint's path. Fine-tuning reads the run's data set from
    `data_dir` when given, else from where the run recorded it."""
    weights = latest_checkpoint(source) if Path(source).is_dir() else Path(source)
    checkpoint = load_checkpoint(weights)
    config = checkpoint.config
    record = _combined(config.optimization, options, weights)
    config = dataclasses.replace(config, optimization=record)
    if data_dir is not None:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, data_dir=data_dir))
    model = model_from_checkpoint(checkpoint)  # the EMA model, as sampling sees it
    model = model.to(memory_format=torch.contiguous_format)  # pruning views weights as flat vectors
    if options.prune:
        prune_weights(model, options.prune, options.prune_structure)
    out.mkdir(parents=True, exist_ok=True)
    if options.finetune_kimg:
        return _finetune(model, checkpoint, config, out, options.finetune_kimg, progress)
    if options.quantize == "int8":
        state = int8_state(quantize_int8(model))
    elif options.quantize == "bf16":
        state = bf16_state(model)
    else:
        state = model.state_dict()
    path = weights_path(out, checkpoint.step)
    save_weights(path, config, {"ema": state}, checkpoint.step, checkpoint.nimg)
    atomic_write_text(out / "config.json", to_json(config))
    return path


def _combined(done: OptimizationConfig, asked: OptimizationConfig, weights: Path) -> OptimizationConfig:
    """What the new checkpoint records: earlier transforms of the source and this one; UserError for
    combinations that cannot be applied."""
    if asked.finetune_kimg and not asked.prune:
        raise UserError("--finetune-kimg fine-tunes a pruned model; give --prune too")
    if asked.quantize == "none" and not asked.prune:
        raise UserError("nothing to do; give --quantize int8|bf16 and/or --prune FRACTION")
    if done.quantize != "none":
        raise UserError(f"{weights} is already quantised ({done.quantize}); optimise the original run instead")
    if asked.prune and done.prune:
        raise UserError(f"{weights} is already pruned ({done.prune}); optimise the original run instead")
    if asked.finetune_kimg and asked.quantize != "none":
        raise UserError("fine-tune first (--prune with --finetune-kimg), then --quantize its result in a second run")
    if asked.finetune_kimg < 0:
        raise UserError("--finetune-kimg must be positive")
    pruned = asked if asked.prune else done
    return OptimizationConfig(
        quantize=asked.quantize,
        prune=pruned.prune,
        prune_structure=pruned.prune_structure,
        finetune_kimg=pruned.finetune_kimg,
        source=str(weights),
    )


def _finetune(pruned, checkpoint, config, out: Path, kimg: float, progress: bool) -> Path:
    """Continue training from the pruned EMA weights (the trained model restarts from them, the discriminator
    of a GAN from its checkpoint, the optimisers afresh) for `kimg` thousand images."""
    from aigc.training.loop import make_trainer, train

    trainer = make_trainer(config, torch.device("cpu"))
    pruned_state = pruned.state_dict()
    for name, module in trainer.modules.items():
        same_model = module.state_dict().keys() == pruned_state.keys()
        module.load_state_dict(pruned_state if same_model else checkpoint.modules[name])
    state = {
        "optimizers": {name: optimizer.state_dict() for name, optimizer in trainer.optimizers.items()},
        "train_seconds": 0.0,
        "best_fid": math.inf,
    }
    save_checkpoint(out, config, trainer.modules, checkpoint.step, checkpoint.nimg, state)
    budget = dataclasses.replace(config.train, kimg=checkpoint.nimg / 1000 + kimg, minutes=None)
    outcome = train(dataclasses.replace(config, train=budget), out, resume=True, progress=progress)
    return outcome.checkpoint
