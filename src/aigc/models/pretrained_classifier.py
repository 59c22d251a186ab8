"""A Hugging Face model as a text classifier: transformers' `AutoModelForSequenceClassification` of the
architecture (Llama, GPT-2, Qwen2, BERT, ... - whatever has one), with the interface of aigc's own
(models/classifier.py): logits = classifier(tokens, lengths), a `temperature` buffer, the `head` and `embedding`
modules by role.

It pools as transformers' class does: a decoder reads the state of each text's last token that is not the
padding token (so padding must be an id a text does not end with: the tokenizer's pad token, else its end-of-text
token), an encoder its first token's ([CLS]) through its own pooler.
"""

from __future__ import annotations

import json

import torch
from torch import nn

from aigc.models.pretrained import PretrainedNetwork, transformers


class PretrainedClassifier(PretrainedNetwork):
    def __init__(self, config_json: str, labels: tuple[str, ...], context: int):
        """A classifier of `labels` that reads `context` tokens, built from the architecture's config.json text
        (which names its `pad_token_id`); random weights until a checkpoint is loaded."""
        hf = transformers()
        names = dict(enumerate(labels))
        settings = {**json.loads(config_json), "id2label": names, "label2id": {v: k for k, v in names.items()}}
        config = hf.AutoConfig.for_model(**settings)
        super().__init__(hf.AutoModelForSequenceClassification.from_config(config, dtype=torch.float32))
        self.context, self.pad = context, config.pad_token_id
        self.register_buffer("temperature", torch.ones(()))

    def head(self) -> nn.Module:
        """The classification head: every module transformers' class adds to the architecture's base model (a
        linear `score`; DistilBERT's pre_classifier and classifier; ...)."""
        base = self.network.base_model
        return nn.ModuleList(module for module in self.network.children() if module is not base)

    def embedding(self) -> nn.Module:
        return self.network.get_input_embeddings()

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits [N, classes] of texts `tokens` [N, T] (right-padded), row i's first lengths[i] tokens real."""
        real = torch.arange(tokens.shape[1], device=tokens.device) < lengths.to(tokens.device)[:, None]
        ids = tokens.masked_fill(~real, self.pad)
        return self.network(input_ids=ids, attention_mask=real.long()).logits
