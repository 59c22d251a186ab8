"""The language model a run builds: aigc's transformer, or the transformers architecture it fine-tunes, with the
run's tokenizer beside it, and its LoRA adapters when it has them."""

from __future__ import annotations

from aigc.data.tokenizer import TextTokenizer
from aigc.models.lora import LoRA, add_lora
from aigc.models.pretrained import PretrainedLM
from aigc.models.transformer import Transformer, TransformerConfig


class LanguageModel(Transformer):
    """aigc's transformer with its run's tokenizer: text in, text out."""

    def __init__(self, config: TransformerConfig, tokenizer: TextTokenizer):
        super().__init__(config)
        self.tokenizer = tokenizer


class PretrainedLanguageModel(PretrainedLM):
    """A transformers causal LM with its run's tokenizer: text in, text out."""

    def __init__(self, config_json: str, tokenizer: TextTokenizer):
        super().__init__(config_json)
        self.tokenizer = tokenizer


def base(config) -> LanguageModel | PretrainedLanguageModel:
    """The model without adapters, its weights random: aigc's transformer, or the transformers architecture the
    run fine-tunes."""
    tokenizer = TextTokenizer.from_str(config.tokenizer)
    if config.pretrained:
        return PretrainedLanguageModel(config.pretrained, tokenizer)
    return LanguageModel(config.model, tokenizer)


def adapted(model, config):
    """`model` with the run's LoRA adapters, if it has them."""
    f = config.finetune
    if not f.lora_rank:
        return model
    return add_lora(model, LoRA(f.lora_rank, f.lora_alpha, f.lora_dropout, f.lora_targets))


def build(config) -> LanguageModel | PretrainedLanguageModel:
    return adapted(base(config), config)
