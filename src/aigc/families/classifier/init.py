"""Where a classifier starts: the transformer and tokenizer of an aigc language-model run (`--init RUN`), read from
the run's newest checkpoint as the lm family writes it - a `model` module whose `model.*` weights are the
decoder, and a config with the transformer (`model`) and the tokenizer (`tokenizer`). The lm run's head is left
behind; the classifier's own `score` starts from random weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from aigc.core.checkpoint import Checkpoint, latest_checkpoint, read_checkpoint
from aigc.core.config import from_dict
from aigc.core.errors import UserError
from aigc.models.pretrained import is_pretrained_dir
from aigc.models.transformer import TransformerConfig

DECODER = "model."
# what --init decides, by part of the run config: every model field, and the tokenizer of the data
FROM_INIT = {
    "model": {f.name for f in dataclasses.fields(TransformerConfig)},
    "data": {"tokenizer", "vocab_size"},
}  # the decoder's weights, in an lm checkpoint's model module and in the classifier alike


def init_checkpoint(path: Path) -> Checkpoint:
    """The checkpoint of `--init`: the aigc lm run in `path` (its newest checkpoint), or one of its checkpoint
    files; UserError when it is something a classifier cannot start from."""
    if is_pretrained_dir(path):
        raise UserError(
            f"--init {path} is a Hugging Face model directory; the classifier starts from aigc lm runs only (not "
            "yet from Hugging Face directories)"
        )
    if path.is_dir() and not (path / "config.json").is_file():
        raise UserError(f"--init {path}: no config.json there; give an aigc lm run directory (or --init none)")
    checkpoint = read_checkpoint(latest_checkpoint(path) if path.is_dir() else path, modules=("model",))
    data = checkpoint.config
    if data.get("family") != "lm":
        raise UserError(f"--init {path} is a {data.get('family')} run; give a language model (lm) run")
    if data.get("pretrained"):
        raise UserError(f"--init {path} fine-tunes a Hugging Face model; the classifier starts from aigc's own lm runs")
    if (data.get("finetune") or {}).get("lora_rank"):
        raise UserError(f"--init {path} holds LoRA adapters; give the run it adapted, or one trained every weight")
    if (data.get("compression") or {}).get("quantize", "none") != "none":
        raise UserError(f"--init {path} is compressed; give the run it was compressed from")
    return checkpoint


def from_init(config, defaults):
    """A new run's config with the init run's transformer and tokenizer, and `--init` pinned to the checkpoint
    file read (so the weights loaded later are that checkpoint's, whatever the run writes meanwhile). Of the model
    flags only --context (at most the init's; default: the init's) and --dropout apply. `defaults`: the run
    config no flag changed."""
    checkpoint = init_checkpoint(Path(config.finetune.init))
    changed = [
        "--" + f.name.replace("_", "-")
        for part in ("model", "data")
        for f in dataclasses.fields(getattr(defaults, part))
        if f.name in FROM_INIT[part]
        and getattr(getattr(config, part), f.name) != getattr(getattr(defaults, part), f.name)
    ]
    fixed = [flag for flag in changed if flag not in ("--context", "--dropout")]
    if fixed:
        raise UserError(f"{', '.join(fixed)}: the model comes from --init {config.finetune.init}; drop these flags")
    source = from_dict(TransformerConfig, checkpoint.config["model"], f"{checkpoint.path}: model")
    context = config.model.context if "--context" in changed else source.context
    if context > source.context:
        raise UserError(f"--context {context}: the model of --init reads at most {source.context} tokens")
    model = dataclasses.replace(source, context=context, dropout=config.model.dropout)
    finetune = dataclasses.replace(config.finetune, init=str(checkpoint.path))
    return dataclasses.replace(config, model=model, tokenizer=checkpoint.config["tokenizer"], finetune=finetune)


def init_weights(config) -> dict[str, torch.Tensor]:
    """The decoder's weights of `--init`."""
    weights = init_checkpoint(Path(config.finetune.init)).modules["model"]
    return {name: tensor for name, tensor in weights.items() if name.startswith(DECODER)}
