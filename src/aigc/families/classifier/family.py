"""The classifier family: a text classifier on aigc's transformer - from random weights (`--init none`, the
control), or on an aigc language-model run's (`--init RUN`) - or transformers' classifier of a Hugging Face
directory (`--init DIR`); every weight fine-tuned, or LoRA adapters with the head. It gives calibrated class
probabilities of texts (families/labelling.py). Its data is in data.py, where it starts in init.py, the model in
model.py."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from aigc.core.errors import UserError
from aigc.data.labelled import LabelledDataConfig, Rows, read_labelled
from aigc.families.classifier import data, init
from aigc.families.classifier.config import ClassifierRunConfig, ClassifySampleConfig
from aigc.families.classifier.model import Classifier, PretrainedTextClassifier, TextClassifier, adapted, base, build
from aigc.families.labelling import LabellingFamily
from aigc.training.finetune import report_trainable, resolved, without_adapters

EXAMPLES = """examples:
  aigc train classifier --data phrasebank --data-dir DIR --init none --texts 20k          # from random weights
  aigc train lm --data reuters --data-dir DIR --tokenizer bpe --vocab-size 4096 --out runs/reuters
  aigc train classifier --data phrasebank --data-dir DIR --init runs/reuters --texts 20k  # fine-tune every weight
  aigc train classifier --data phrasebank --init runs/reuters --lora-rank 8 --lr 2e-3    # LoRA and the head
  aigc train classifier --data csv:reviews.csv --text-column body --label-column stars --init runs/reuters
  aigc train classifier --data phrasebank --init ./Qwen2.5-0.5B --lora-rank 8           # a Hugging Face directory
"""


class ClassifierFamily(LabellingFamily):
    name = "classifier"
    help = "a text classifier (a transformer and a head: from scratch, on an lm run or a Hugging Face model)"
    examples = EXAMPLES
    run_config = ClassifierRunConfig
    sample_config = ClassifySampleConfig
    flag_components = ("data", "model", "head", "robustness", "finetune", "train")
    unused_flags = frozenset({"train.optimizer", "train.memory_format"})
    sampling_modules = ("model",)
    model_type = (TextClassifier, PretrainedTextClassifier)
    metrics = "accuracy,macro_f1,ece,nll"
    remedy = "a lower --lr or a longer --warmup-texts"
    run_suffix = "-classifier"
    selection_metric = "val_loss_calibrated"

    def title(self, config) -> str:
        start = config.finetune.init if config.finetuned else "random weights"
        adapters = f", LoRA rank {config.finetune.lora_rank}" if config.finetune.lora_rank else ""
        if config.pretrained:
            kind = json.loads(config.pretrained)["model_type"]
            return f"classifier ({kind} from {start}{adapters}, as transformers pools it)"
        m = config.model
        return f"classifier ({m.layers} layers x {m.width} from {start}{adapters}, {config.head.pooling} pooling)"

    # Training -------------------------------------------------------------------------------------------

    def training_data(self, config):
        """The training split as ids and classes; a new run on an lm run first takes its model and tokenizer."""
        fresh = config.finetuned and not config.tokenizer
        if fresh:
            config = init.from_init(config, self.new_config())
        config, examples = data.training_data(config)
        if fresh and config.finetune.lora_rank:  # the adapted layers' names, from a model without weights
            with torch.device("meta"):
                model = base(config)
            config = dataclasses.replace(config, finetune=resolved(config.finetune, model, model.head()))
        return config, examples

    def trainer(self, config, device: torch.device, fresh: bool = True):
        """The trainer; a fresh run on a pre-trained model starts from its weights (a new head from random)."""
        from aigc.families.classifier.trainer import ClassifierTrainer

        model = base(config)
        if fresh and config.finetuned:
            init.load_init(model, config)
        model = adapted(model, config)
        if config.finetuned:
            report_trainable(model)
        return ClassifierTrainer(model, config, device)

    def run_files(self, config) -> dict[str, str]:
        return {"tokenizer.json": config.tokenizer, "labels.txt": "\n".join(config.labels) + "\n"}

    def plain(self, model, config):
        return without_adapters(model, config)

    # Labelling ------------------------------------------------------------------------------------------

    def build(self, config) -> Classifier:
        return build(config)

    @torch.no_grad()
    def logits(self, model: Classifier, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        device, training = next(model.parameters()).device, model.training
        parts = [torch.zeros(0, len(model.labels))]
        model.eval()
        try:
            for first in range(0, len(texts), batch_size):
                rows = data.token_rows(model.tokenizer, texts[first : first + batch_size], model.context)
                tokens, lengths = data.model_input(rows)
                parts.append(model(tokens.to(device), lengths.to(device)).float().cpu())
        finally:
            model.train(training)
        return torch.cat(parts)

    def temperature(self, model: Classifier) -> float:
        return float(model.temperature)

    def calibrate(self, model: Classifier, temperature: float) -> None:
        model.temperature.fill_(temperature)

    def check_request(self, model, texts, sample) -> None:
        for text in texts or ():
            if not isinstance(text, str) or not text.strip():
                raise UserError("a text to classify is empty; give at least one word")

    def save_samples(self, model: Classifier, config, device: torch.device, stem: Path) -> None:
        """The labels of the first `grid_size` validation texts, with their probabilities."""
        rows = validation_rows(config.data)
        texts = rows.texts[: config.train.grid_size]
        probabilities = self.classify(model, texts, config.sample)
        lines = []
        for text, label, p in zip(texts, rows.labels, probabilities, strict=False):
            chosen = int(p.argmax())
            lines.append(f"{model.labels[chosen]} ({p[chosen]:.2f}; labelled {label}): {text}")
        stem.with_suffix(".txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


@functools.lru_cache(maxsize=2)
def validation_rows(data: LabelledDataConfig) -> Rows:
    """The validation split, read once per training process (each snapshot shows its first texts)."""
    return read_labelled(data).splits["validation"]
