"""Where a fine-tuning run starts: the model, tokenizer and chat template of `--init` (an aigc lm run or a Hugging
Face directory), its weights, and the rows a grown vocabulary adds."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from aigc.core.checkpoint import Checkpoint, latest_checkpoint, read_checkpoint
from aigc.core.config import from_dict
from aigc.core.errors import UserError
from aigc.families.family import FORMAT_VERSION
from aigc.families.lm.config import LMRunConfig
from aigc.families.lm.model import base, build
from aigc.models.lora import unload_lora
from aigc.models.pretrained import is_pretrained_dir, pretrained_weights, read_pretrained
from aigc.training.config import upgrade_train
from aigc.training.finetune import resolved


def from_init(config, defaults):
    """A new fine-tuning run's config: the model, tokenizer and chat template of `--init` (an aigc lm run or
    a Hugging Face directory), the training window `--context` (default: an aigc run's context; a Hugging
    Face model's, at most the recipe's), LoRA's defaults resolved. `defaults`: the recipe's model config."""
    path = Path(config.finetune.init)
    if not (path / "config.json").is_file():
        raise UserError(f"--init {path}: no config.json there; give an aigc lm run or a Hugging Face model directory")
    changed = [
        f.name for f in dataclasses.fields(defaults) if getattr(config.model, f.name) != getattr(defaults, f.name)
    ]
    fixed = [name for name in changed if name not in ("context", "dropout")]
    if fixed:
        flags = ", ".join("--" + name.replace("_", "-") for name in fixed)
        raise UserError(f"{flags}: the model comes from --init {path}; drop these flags")
    hugging_face = is_pretrained_dir(path)
    if hugging_face:  # the tokenizer's files, and the architecture's config.json
        source = read_pretrained(path)
        model, pretrained = config.model, source.config
    else:  # the run's config
        source = init_checkpoint(path).config
        model, pretrained = dataclasses.replace(source.model, dropout=config.model.dropout), source.pretrained
    taken = {name: getattr(source, name) for name in ("tokenizer", "chat_template", "bos_token", "eos_token")}
    config = dataclasses.replace(config, pretrained=pretrained, **taken)
    source_model = base(dataclasses.replace(config, model=model))
    # default window: an aigc run's own context; a Hugging Face model's (often thousands) capped at the recipe's
    context = min(defaults.context, source_model.context) if hugging_face else source_model.context
    context = config.model.context if "context" in changed else context
    if context > source_model.context:
        raise UserError(f"--context {context}: this model reads at most {source_model.context} tokens")
    model = dataclasses.replace(model, context=context, vocab_size=source_model.tokenizer.vocab_size)
    finetune = resolved(config.finetune, source_model, source_model.output_head())
    return dataclasses.replace(config, model=model, finetune=finetune)


def init_checkpoint(path: Path) -> Checkpoint:
    """The newest checkpoint of the aigc lm run in `path`: its config (an LMRunConfig) and model weights."""
    checkpoint = read_checkpoint(latest_checkpoint(path), modules=("model",))
    if checkpoint.config.get("family") != "lm":
        raise UserError(f"--init {path} is a {checkpoint.config.get('family')} run; give a language model (lm) run")
    data = checkpoint.config  # lm runs began at format 2; before 3 the train config counted in its own words
    if data.get("format_version") == 2 and isinstance(data.get("train"), dict):
        data = {**data, "train": upgrade_train(data["train"]), "format_version": FORMAT_VERSION}
    config = from_dict(LMRunConfig, data, str(checkpoint.path))
    if config.compression.quantize != "none":
        raise UserError(f"--init {path} is compressed; fine-tune the run it was compressed from")
    return dataclasses.replace(checkpoint, config=config)


def init_weights(config) -> dict[str, torch.Tensor]:
    """The weights `--init` holds, named as this run's base model names them (adapters merged)."""
    path = Path(config.finetune.init)
    if is_pretrained_dir(path):
        return {"network." + name: tensor for name, tensor in pretrained_weights(path).items()}
    checkpoint = init_checkpoint(path)
    model = build(checkpoint.config)
    model.load_state_dict(checkpoint.modules["model"])
    return unload_lora(model).state_dict()


def with_new_rows(weights: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The init's weights as `model` holds them: rows of the embedding (and head) for the tokens the run added,
    each the mean of the others (Hewitt 2021: a new token starts as an average one); names the model does not
    hold (a tied head's second name) left out."""
    target = model.state_dict()
    fitted = {}
    for name, tensor in weights.items():
        if name not in target:
            continue
        want = target[name].shape
        if want != tensor.shape and want[1:] == tensor.shape[1:] and want[0] > tensor.shape[0]:
            extra = tensor.mean(0, keepdim=True).expand(want[0] - tensor.shape[0], *tensor.shape[1:])
            tensor = torch.cat([tensor, extra])
        fitted[name] = tensor
    return fitted
