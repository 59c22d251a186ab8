"""The classifier a run builds: aigc's transformer with a head (models/classifier.py), the run's tokenizer and its
class names beside it, and its LoRA adapters when it has them."""

from __future__ import annotations

from aigc.data.tokenizer import TextTokenizer
from aigc.models.classifier import SequenceClassifier
from aigc.models.lora import LoRA, add_lora


class TextClassifier(SequenceClassifier):
    """A sequence classifier with its run's tokenizer and labels: text in, class probabilities out."""

    def __init__(self, config, tokenizer: TextTokenizer, labels: tuple[str, ...]):
        super().__init__(config.model, len(labels), config.head.pooling)
        self.tokenizer, self.labels = tokenizer, labels


def base(config) -> TextClassifier:
    return TextClassifier(config, TextTokenizer.from_str(config.tokenizer), config.labels)


def adapted(model: TextClassifier, config):
    """`model` with the run's LoRA adapters on the transformer, if it has them (the head always trains)."""
    f = config.finetune
    if not f.lora_rank:
        return model
    model = add_lora(model, LoRA(f.lora_rank, f.lora_alpha, f.lora_dropout, f.lora_targets))
    model.score.requires_grad_(True)  # peft freezes all but the adapters; the head is new and trains whole
    return model


def build(config) -> TextClassifier:
    return adapted(base(config), config)
