"""A classifier's texts as model input: token ids cut to the model's context and right-padded, and labels as class
indices. A new run from random weights fits its tokenizer to the training texts (`--tokenizer`, `--vocab-size`)."""

from __future__ import annotations

import dataclasses

import torch

from aigc.data.labelled import Rows, class_indices, read_labelled
from aigc.data.tokenizer import TextTokenizer
from aigc.training.batch import TrainingData

PAD = -1  # in stored examples: no token (the model reads padding as token 0; see models/classifier.py)


def token_rows(tokenizer: TextTokenizer, texts: list[str] | tuple[str, ...], context: int) -> torch.Tensor:
    """Texts as ids [N, longest, at most context] padded with PAD: each text's first `context` tokens (characters
    the tokenizer has never seen left out; a text of none of its characters is one token 0)."""
    encoded = [ids[:context] or [0] for ids in tokenizer.encode_all(list(texts))]
    rows = torch.full((len(encoded), max(map(len, encoded))), PAD, dtype=torch.int32)
    for i, ids in enumerate(encoded):
        rows[i, : len(ids)] = torch.tensor(ids, dtype=torch.int32)
    return rows


def model_input(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids [N, T] long with padding as 0, lengths [N]) of stored rows, cut to their longest text."""
    lengths = (rows != PAD).sum(1)
    ids = rows[:, : int(lengths.max())].clamp(min=0).long()
    return ids, lengths


def with_tokenizer(config, train: Rows):
    """A new run's config with its tokenizer fitted to the training texts and its vocabulary sized to it."""
    tokenizer = TextTokenizer.train(config.data.tokenizer, "\n".join(train.texts), config.data.vocab_size)
    model = dataclasses.replace(config.model, vocab_size=tokenizer.vocab_size)
    return dataclasses.replace(config, model=model, tokenizer=tokenizer.to_str())


def training_data(config):
    """(resolved config, TrainingData) of the training split: ids [N, at most context] and class indices [N]."""
    data = read_labelled(config.data)
    train = data.splits["train"]
    if not config.labels:
        config = dataclasses.replace(config, labels=data.labels)
    if not config.tokenizer:
        config = with_tokenizer(config, train)
    tokenizer = TextTokenizer.from_str(config.tokenizer)
    rows = token_rows(tokenizer, train.texts, config.model.context)
    return config, TrainingData(rows, class_indices(train, config.labels), lambda rows, generator: rows)
