"""A recommender's data as model input: the training histories cut into windows of the model's context plus one
(the items it reads and, shifted by one, the items it should name next), histories right-padded with item 0, and
the items' text vectors by the language model of `--text-model`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from aigc.core.config import from_dict
from aigc.core.errors import UserError
from aigc.data.ratings import Ratings, read_ratings
from aigc.data.tokenizer import TextTokenizer
from aigc.families.text import text_vectors
from aigc.models.transformer import Transformer, TransformerConfig
from aigc.training.batch import TrainingData
from aigc.training.finetune import language_model_checkpoint

DECODER = "model."  # the language model's weights that compute its states (its head is left behind)


def windows(histories: list[tuple[int, ...]], context: int) -> torch.Tensor:
    """Every history as windows [N, context + 1] (int32, right-padded with 0): the newest context + 1 items, then
    the context + 1 before those, and so on while a window holds two items or more (one to read, one to name)."""
    rows = []
    for history in histories:
        for end in range(len(history), 1, -context):
            rows.append(history[max(0, end - context - 1) : end])
    table = torch.zeros(len(rows), context + 1, dtype=torch.int32)
    for i, row in enumerate(rows):
        table[i, : len(row)] = torch.tensor(row, dtype=torch.int32)
    return table


def padded(histories: list[list[int]] | tuple[tuple[int, ...], ...], context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(the newest `context` items of each history [N, longest] right-padded with 0, lengths [N])."""
    kept = [list(history[-context:]) for history in histories]
    lengths = torch.tensor([len(history) for history in kept])
    table = torch.zeros(len(kept), max(1, int(lengths.max())), dtype=torch.long)
    for i, history in enumerate(kept):
        table[i, : len(history)] = torch.tensor(history, dtype=torch.long)
    return table, lengths


def training_data(config):
    """(config with the catalogue, the users, the model's item count and the text model's checkpoint filled in,
    TrainingData of the windows). `--text-model` is pinned to the checkpoint file read, so the text vectors
    computed later are that checkpoint's, whatever its run writes meanwhile."""
    ratings = read_ratings(config.data)
    items, features = config.items, config.features
    if items.text_model and not features:
        checkpoint = language_model_checkpoint(Path(items.text_model), "--text-model")
        items, features = (
            dataclasses.replace(items, text_model=str(checkpoint.path)),
            checkpoint.config["model"]["width"],
        )
    representation = items.representation or ("id+text" if items.text_model else "id")
    config = dataclasses.replace(
        config,
        items=dataclasses.replace(items, representation=representation),
        model=dataclasses.replace(config.model, vocab_size=len(ratings.catalogue) + 1),
        catalogue=ratings.catalogue.ids,
        titles=ratings.catalogue.titles,
        users=ratings.users,
        likes=sum(map(len, ratings.liked)),
        features=features,
    )
    examples = windows(ratings.training_histories(), config.model.context)
    if not len(examples) or not len(ratings.cases("validation")):
        raise UserError(
            f"--data {config.data.name}: no user has 3 likes (ratings of {config.data.min_rating:g} or more) of items "
            "that train; lower --min-rating or --cold-items, or give more ratings"
        )
    return config, TrainingData(examples, None, lambda rows, generator: rows)


def text_model(path: str) -> tuple[Transformer, TextTokenizer]:
    """The language model of `--text-model` (its newest checkpoint's decoder) and its tokenizer, on the CPU."""
    checkpoint = language_model_checkpoint(Path(path), "--text-model")
    config = from_dict(TransformerConfig, checkpoint.config["model"], f"{checkpoint.path}: model")
    model = Transformer(config)
    weights = {name: w for name, w in checkpoint.modules["model"].items() if name.startswith(DECODER)}
    model.model.load_state_dict({name.removeprefix(DECODER): w for name, w in weights.items()})
    return model.eval(), TextTokenizer.from_str(checkpoint.config["tokenizer"])


def item_features(config, ratings: Ratings) -> torch.Tensor:
    """The text vector of every item [items + 1, features] (row 0, the padding, zero) by `--text-model`."""
    model, tokenizer = text_model(config.items.text_model)
    vectors = text_vectors(model, tokenizer, list(ratings.catalogue.texts), config.items.text_batch)
    return torch.cat([torch.zeros(1, vectors.shape[1]), vectors])
