"""A language model's training data: a text corpus as windows of context + 1 tokens, or conversations as
examples whose loss counts the assistant's turns only; the tokenizer a new run fits, and the chat template a
run without one gets."""

from __future__ import annotations

import dataclasses
import json

import torch

from aigc.data.chat import (
    CHATML,
    TURN_END,
    TURN_START,
    ChatFormat,
    chat_examples,
    chat_splits,
    chat_text,
    default_format,
    is_chat,
)
from aigc.data.text import TokenWindows, read_corpus, token_ids
from aigc.data.tokenizer import TextTokenizer
from aigc.training.batch import TrainingData


def training_data(config):
    """(resolved config, TrainingData) of the training split; a new run fits its tokenizer here (characters: over
    the whole text, as nanoGPT does, so the validation split has no unknown one; BPE: the training split), a
    resumed one keeps its own."""
    if is_chat(config.data.name):
        return chat_training_data(config)
    corpus = read_corpus(config.data)
    if config.tokenizer:
        tokenizer = TextTokenizer.from_str(config.tokenizer)
    else:
        fitted = corpus.train + corpus.validation if config.data.tokenizer == "char" else corpus.train
        tokenizer = TextTokenizer.train(config.data.tokenizer, fitted, config.data.vocab_size)
        model = dataclasses.replace(config.model, vocab_size=tokenizer.vocab_size)
        config = dataclasses.replace(config, model=model, tokenizer=tokenizer.to_str())
    ids = torch.from_numpy(token_ids(corpus.train, tokenizer).astype("int32"))
    windows = TokenWindows(ids, config.model.context + 1)
    return with_end_of_turn(config, tokenizer), TrainingData(windows, None, lambda windows, generator: windows)


def chat_training_data(config):
    """The training conversations as [N, 2, context + 1] examples (ids, which of them the loss counts); a
    tokenizer without a chat template gets the ChatML-style default, its markers as new tokens."""
    train_rows, _ = chat_splits(config.data.name, config.data.data_dir)
    if config.tokenizer:
        tokenizer = TextTokenizer.from_str(config.tokenizer)
    else:  # a model trained from scratch on the conversations: a tokenizer of their text, markers aside
        text = chat_text(ChatFormat(CHATML), train_rows).replace(TURN_START, "").replace(TURN_END, "")
        tokenizer = TextTokenizer.train(config.data.tokenizer, text, config.data.vocab_size)
    if config.chat_template:
        chat = ChatFormat.of(config)
    else:
        chat, tokenizer = default_format(tokenizer)
        config = dataclasses.replace(
            config, chat_template=chat.template, bos_token=chat.bos_token, eos_token=chat.eos_token
        )
    config = with_vocabulary(dataclasses.replace(config, tokenizer=tokenizer.to_str()), tokenizer.vocab_size)
    examples = chat_examples(tokenizer, chat, train_rows, config.model.context + 1)
    return with_end_of_turn(config, tokenizer), TrainingData(examples, None, lambda examples, generator: examples)


def with_end_of_turn(config, tokenizer: TextTokenizer):
    """`config` whose completions end at its end-of-text (or end-of-turn) token, when its tokenizer has one."""
    token = tokenizer.tokenizer.token_to_id(config.eos_token) if config.eos_token else None
    if token is None:
        return config
    return dataclasses.replace(config, sample=dataclasses.replace(config.sample, stop_tokens=(token,)))


def with_vocabulary(config, size: int):
    """`config` with a model of at least `size` tokens (a pretrained model may hold more rows than its tokenizer
    has tokens; tokens the run added make it grow)."""
    if config.pretrained:
        architecture = json.loads(config.pretrained)
        if architecture["vocab_size"] < size:
            config = dataclasses.replace(config, pretrained=json.dumps({**architecture, "vocab_size": size}))
    model = dataclasses.replace(config.model, vocab_size=max(config.model.vocab_size, size))
    return dataclasses.replace(config, model=model)
