"""The classifier a run builds: aigc's transformer with a head (models/classifier.py), or the transformers
architecture it fine-tunes (models/pretrained_classifier.py), with the run's tokenizer and class names beside it,
and its LoRA adapters when it has them."""

from __future__ import annotations

from aigc.data.tokenizer import TextTokenizer
from aigc.models.classifier import SequenceClassifier
from aigc.models.lora import LoRA, add_lora
from aigc.models.pretrained_classifier import PretrainedClassifier


class TextClassifier(SequenceClassifier):
    """aigc's sequence classifier with its run's tokenizer and labels: text in, class probabilities out."""

    def __init__(self, config, tokenizer: TextTokenizer, labels: tuple[str, ...]):
        super().__init__(config.model, len(labels), config.head.pooling)
        self.tokenizer, self.labels = tokenizer, labels


class PretrainedTextClassifier(PretrainedClassifier):
    """A transformers sequence classifier with its run's tokenizer and labels."""

    def __init__(self, config, tokenizer: TextTokenizer, labels: tuple[str, ...]):
        super().__init__(config.pretrained, labels, config.model.context)
        self.tokenizer, self.labels = tokenizer, labels


Classifier = TextClassifier | PretrainedTextClassifier


def base(config) -> Classifier:
    """The model without adapters, its weights random."""
    kind = PretrainedTextClassifier if config.pretrained else TextClassifier
    return kind(config, TextTokenizer.from_str(config.tokenizer), config.labels)


def adapted(model, config):
    """`model` with the run's LoRA adapters on the transformer, if it has them (the head always trains)."""
    f = config.finetune
    if not f.lora_rank:
        return model
    model = add_lora(model, LoRA(f.lora_rank, f.lora_alpha, f.lora_dropout, f.lora_targets))
    model.head().requires_grad_(True)  # peft freezes all but the adapters; the head is new and trains whole
    return model


def build(config) -> Classifier:
    return adapted(base(config), config)
