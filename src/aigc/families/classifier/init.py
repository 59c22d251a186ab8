"""Where a classifier starts: an aigc language-model run (`--init RUN`) - its transformer and tokenizer, read
from the run's newest checkpoint as the lm family writes it (a `model` module whose `model.*` weights are the
decoder), its head left behind for the classifier's own `score` - or a Hugging Face directory (`--init DIR`):
transformers' sequence classifier of its architecture, its tokenizer, and a head transformers initialises."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from aigc.core.config import from_dict
from aigc.core.errors import UserError
from aigc.data.tokenizer import TextTokenizer
from aigc.models.pretrained import PretrainedFiles, is_pretrained_dir, longest_input, pretrained_weights, transformers
from aigc.models.pretrained import read_pretrained as read_directory
from aigc.models.transformer import TransformerConfig
from aigc.training.finetune import language_model_checkpoint

DECODER = "model."
# what --init decides, by part of the run config: every model field, the tokenizer of the data, the pooling
FROM_INIT = {
    "model": {f.name for f in dataclasses.fields(TransformerConfig)},
    "data": {"tokenizer", "vocab_size"},
    "head": {"pooling"},
}
# the flags that still apply to a model from --init, by where it comes from
KEPT = {"run": ("--context", "--dropout", "--pooling"), "directory": ("--context",)}


def from_init(config, defaults):
    """A new run's config with the model and tokenizer of `--init`: an aigc lm run's transformer, with `--init`
    pinned to the checkpoint file read (so the weights loaded later are that checkpoint's, whatever the run writes
    meanwhile), or a Hugging Face directory's architecture. `--context` may shorten the window (default: an aigc
    run's context, a Hugging Face model's capped at the recipe's); an aigc run's `--dropout` applies too.
    `defaults`: the run config no flag changed."""
    path = Path(config.finetune.init)
    directory = is_pretrained_dir(path)
    if directory:
        source = read_directory(path, task="classification")
    else:
        source = language_model_checkpoint(path, "--init", directories=True)
    changed = [
        "--" + f.name.replace("_", "-")
        for part in FROM_INIT
        for f in dataclasses.fields(getattr(defaults, part))
        if f.name in FROM_INIT[part]
        and getattr(getattr(config, part), f.name) != getattr(getattr(defaults, part), f.name)
    ]
    fixed = [flag for flag in changed if flag not in KEPT["directory" if directory else "run"]]
    if fixed:
        raise UserError(f"{', '.join(fixed)}: the model comes from --init {config.finetune.init}; drop these flags")
    if directory:
        longest = longest_input(architecture_of(source)) or defaults.model.context
        model = dataclasses.replace(config.model, context=min(defaults.model.context, longest))
        config = dataclasses.replace(config, tokenizer=source.tokenizer, pretrained=with_padding(source, path))
    else:
        model = from_dict(TransformerConfig, source.config["model"], f"{source.path}: model")
        longest = model.context
        model = dataclasses.replace(model, dropout=config.model.dropout)
        finetune = dataclasses.replace(config.finetune, init=str(source.path))
        config = dataclasses.replace(config, tokenizer=source.config["tokenizer"], finetune=finetune)
    context = config.model.context if "--context" in changed else model.context
    if context > longest:
        raise UserError(f"--context {context}: the model of --init reads at most {longest} tokens")
    vocab_size = TextTokenizer.from_str(config.tokenizer).vocab_size if directory else model.vocab_size
    return dataclasses.replace(config, model=dataclasses.replace(model, context=context, vocab_size=vocab_size))


def architecture_of(source: PretrainedFiles):
    """The transformers config of a Hugging Face directory's architecture."""
    return transformers().AutoConfig.for_model(**json.loads(source.config))


def with_padding(source: PretrainedFiles, path: Path) -> str:
    """The architecture's config.json with the id that pads texts (`pad_token_id`): the tokenizer's pad token,
    else the config's own (an encoder's embedding and positions may depend on it), else the end-of-text token;
    one the embedding has a row for. UserError when there is none, or the tokenizer has more tokens than the
    embedding has rows."""
    architecture = json.loads(source.config)
    text = architecture_of(source).get_text_config()  # composite configs keep the language model's apart
    vocabulary = TextTokenizer.from_str(source.tokenizer)
    rows = getattr(text, "vocab_size", 0) or 0
    if vocabulary.vocab_size > rows:
        raise UserError(
            f"--init {path}: its tokenizer has {vocabulary.vocab_size} tokens but the embedding {rows} rows; "
            "resize the embeddings (model.resize_token_embeddings(len(tokenizer))) and save the model again"
        )
    token = vocabulary.tokenizer.token_to_id
    candidates = [token(source.pad_token) if source.pad_token else None, getattr(text, "pad_token_id", None)]
    candidates += [token(source.eos_token) if source.eos_token else None, getattr(text, "eos_token_id", None)]
    pad = next((i for i in candidates if isinstance(i, int) and 0 <= i < rows), None)
    if pad is None:
        raise UserError(
            f"--init {path}: its tokenizer has no pad or end-of-text token to pad texts with; add one "
            "(tokenizer.add_special_tokens({'pad_token': ...}), resize the embeddings) and save it again"
        )
    return json.dumps({**architecture, "pad_token_id": pad})


def load_init(model: torch.nn.Module, config) -> None:
    """`model` (a new run's, before adapters) with the weights of `--init`: every weight but the new head. From a
    Hugging Face directory, a base weight it lacks (BERT's pooler, saved by a masked LM) stays as transformers
    initialises it; transformers' load report names it."""
    path = Path(config.finetune.init)
    if config.pretrained:
        target, weights, new = model.network.base_model, pretrained_weights(path, "base"), None
    else:
        weights = language_model_checkpoint(path, "--init", directories=True).modules["model"]
        target, new = model, {"temperature", "score.weight"}
        weights = {name: tensor for name, tensor in weights.items() if name.startswith(DECODER)}
    missing, unexpected = target.load_state_dict(weights, strict=False)
    if unexpected or (new is not None and set(missing) - new):
        raise UserError(f"--init {path}: its weights do not fit its own config (incompatible)")
