"""`aigc compress`: a smaller or faster checkpoint made from a trained run - pruned (optionally fine-tuned by the
training loop, which then keeps the zeros), quantised to int8 or stored in bf16 - written as a run directory
that sample, eval and serve load like any other (the transforms are in models/compression.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from aigc.core.checkpoint import save_weights, weights_path
from aigc.core.config import to_json
from aigc.core.errors import UserError
from aigc.core.io import atomic_write_text
from aigc.families.registry import checkpoint_path, family_of, load_checkpoint, model_from_checkpoint
from aigc.models.compression import CompressionConfig, bf16_state, int8_state, prune_weights, quantize_int8
from aigc.runs import train
from aigc.training.loop import Start


def compress_checkpoint(
    source: Path, out: Path, options: CompressionConfig, progress: bool = True, data_dir: str | None = None
) -> Path:
    """Write the compressed sampling model of `source` (a run directory's newest checkpoint, or a checkpoint
    file) to the run directory `out`; returns the new checkpoint's path. Fine-tuning reads the run's data set
    from `data_dir` when given, else from where the run recorded it."""
    weights = checkpoint_path(source)
    checkpoint = load_checkpoint(weights)
    config = checkpoint.config
    config = dataclasses.replace(config, compression=_combined(config.compression, options, weights))
    if options.finetune_kimg and family_of(config).unit != "img":
        raise UserError(f"--finetune-kimg counts images; a {config.family} model cannot be fine-tuned by it")
    if data_dir is not None:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, data_dir=data_dir))
    model, config = family_of(config).plain(model_from_checkpoint(checkpoint), config)  # as sampling sees it
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
    (name,) = family_of(config).sampling_modules  # what a compressed checkpoint holds: the model that samples
    path = weights_path(out, checkpoint.step)
    save_weights(path, config, {name: state}, checkpoint.step, checkpoint.seen)
    atomic_write_text(out / "config.json", to_json(config))
    return path


def _combined(done: CompressionConfig, asked: CompressionConfig, weights: Path) -> CompressionConfig:
    """What the new checkpoint records: earlier transforms of the source and this one; UserError for
    combinations that cannot be applied."""
    if asked.finetune_kimg and not asked.prune:
        raise UserError("--finetune-kimg fine-tunes a pruned model; give --prune too")
    if asked.quantize == "none" and not asked.prune:
        raise UserError("nothing to do; give --quantize int8|bf16 and/or --prune FRACTION")
    if done.quantize != "none":
        raise UserError(f"{weights} is already quantised ({done.quantize}); compress the original run instead")
    if asked.prune and done.prune:
        raise UserError(f"{weights} is already pruned ({done.prune}); compress the original run instead")
    if asked.finetune_kimg and asked.quantize != "none":
        raise UserError("fine-tune first (--prune with --finetune-kimg), then --quantize its result in a second run")
    pruned = asked if asked.prune else done
    return CompressionConfig(
        quantize=asked.quantize,
        prune=pruned.prune,
        prune_structure=pruned.prune_structure,
        finetune_kimg=pruned.finetune_kimg,
        source=str(weights),
    )


def _finetune(pruned, checkpoint, config, out: Path, kimg: float, progress: bool) -> Path:
    """Continue training from the pruned sampling weights (every module of the same shape as the sampling model
    restarts from them - the trained model and its EMA -, the others, a GAN's discriminator, from the
    checkpoint; the optimisers afresh) for `kimg` thousand images."""
    pruned_state = pruned.state_dict()
    modules = {
        name: pruned_state if state.keys() == pruned_state.keys() else state
        for name, state in checkpoint.modules.items()
    }
    budget = config.train.extended(checkpoint.seen, 0.0, {"budget": kimg * 1000})
    start = Start(modules, checkpoint.step, checkpoint.seen)
    outcome = train(dataclasses.replace(config, train=budget), out, start=start, progress=progress)
    return outcome.checkpoint
