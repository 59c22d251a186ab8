"""The language-model family: a GPT-style decoder-only transformer trained on a text - from scratch, or
fine-tuned from an aigc run or a Hugging Face causal LM (every weight, or LoRA adapters) - drawing completions
of prompts through the text engine (families/text.py). Its training data is in data.py, where a fine-tune starts
in init.py, the model in model.py, the Hugging Face and peft formats in export.py."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch

from aigc.core.errors import UserError
from aigc.data.chat import ChatFormat, render
from aigc.data.tokenizer import TextTokenizer
from aigc.families.family import from_recipe
from aigc.families.lm import data, init
from aigc.families.lm.config import RECIPES, LMRunConfig, LMSampleConfig
from aigc.families.lm.model import LanguageModel, PretrainedLanguageModel, adapted, base, build
from aigc.families.text import TextFamily
from aigc.models.lora import unload_lora
from aigc.training.finetune import report_trainable, without_adapters

EXAMPLES = """examples:
  aigc train lm --minutes 1                              # the bundled Python docs, a character model
  aigc train lm --data shakespeare --data-dir DIR --minutes 10 --out runs/shakespeare
  aigc train lm --data gutenberg --tokenizer bpe --vocab-size 2048 --tokens 20M
  aigc train lm --data text:notes/ --context 512 --optimizer adamw --schedule cosine
  aigc train lm --resume runs/shakespeare --tokens 5M    # continue, 5M tokens more
  aigc train lm --init runs/gutenberg --data text:mine.txt --lr 1e-3 --tokens 1M   # fine-tune every weight
  aigc train lm --init hf-model/ --lora-rank 8 --data text:mine.txt --lr 1e-3      # LoRA on a HF directory
"""


class LMFamily(TextFamily):
    name = "lm"
    help = "a GPT-style language model (decoder-only transformer)"
    examples = EXAMPLES
    run_config = LMRunConfig
    sample_config = LMSampleConfig
    flag_components = ("data", "model", "train", "sample", "finetune")
    unused_flags = frozenset({"train.memory_format"})
    recipes = {name: functools.partial(from_recipe, LMRunConfig, RECIPES, name) for name in RECIPES}
    sampling_modules = ("model",)
    model_type = (LanguageModel, PretrainedLanguageModel)
    metrics = "val_loss,bits_per_byte,perplexity,distinct_2,max_copy_chars"
    remedy = "a lower --lr or a longer --warmup-tokens"
    run_suffix = "-lm"
    selection_metric = "val_loss"
    export_formats = ("hf",)

    def title(self, config) -> str:
        m = config.model
        if config.pretrained:  # a transformers architecture, fine-tuned in windows of `context`
            kind = json.loads(config.pretrained)["model_type"]
            return f"lm ({kind} from {config.finetune.init}, windows of {m.context} tokens)"
        return f"lm ({m.layers} layers x {m.width}, context {m.context}, {config.data.tokenizer} tokens)"

    # Training -------------------------------------------------------------------------------------------

    def training_data(self, config):
        """The training split (see data.py); a new fine-tuning run first takes its init's model and tokenizer."""
        if config.finetune.init and not config.tokenizer:
            config = init.from_init(config, self.new_config(config.recipe).model)
        return data.training_data(config)

    def trainer(self, config, device: torch.device, fresh: bool = True):
        """The trainer; a fresh fine-tuning run starts from its init's weights (a resumed one is loaded from its
        own checkpoint, which holds every weight, so it does not need the init again)."""
        from aigc.families.lm.trainer import LMTrainer

        model = base(config)
        if fresh and config.finetune.init:
            model.load_state_dict(init.with_new_rows(init.init_weights(config), model))
        model = adapted(model, config)
        if config.finetune.init:
            report_trainable(model)
        return LMTrainer(model, config, device)

    def example_size(self, config) -> int:
        return config.model.context  # a window predicts `context` tokens

    def progress(self, seen: int) -> dict[str, float]:
        return {self.progress_key: seen}

    def amount(self, seen: int) -> str:
        return f"{seen / 1e6:.2f}M tokens"

    def run_files(self, config) -> dict[str, str]:
        return {"tokenizer.json": config.tokenizer}

    def plain(self, model, config):
        return without_adapters(model, config)

    def checkpoint_files(self, model, config) -> dict[str, bytes]:
        """A LoRA run's adapters as peft writes them (adapter/adapter_config.json, adapter_model.safetensors),
        over the init's base: `PeftModel.from_pretrained(base, "RUN/checkpoints/adapter")`."""
        from aigc.families.lm.export import adapter_bytes

        if not config.finetune.lora_rank:
            return {}
        return {f"adapter/{name}": data for name, data in adapter_bytes(model, config, config.finetune.init).items()}

    # Sampling -------------------------------------------------------------------------------------------

    def build(self, config) -> LanguageModel | PretrainedLanguageModel:
        return build(config)

    def export(self, model, config, format: str, out: Path, merge_lora: bool = False) -> list[Path]:
        """A Hugging Face directory; a LoRA run's adapters merged into it (`merge_lora`), or beside it in
        `adapter/` as peft writes them (peft loads them over the exported base)."""
        from aigc.families.lm.export import export_adapter, export_hf

        if config.compression.quantize != "none":
            raise UserError(f"this checkpoint is {config.compression.quantize}-compressed; export the run it came from")
        if merge_lora and not config.finetune.lora_rank:
            raise UserError("--merge-lora: this run has no LoRA adapters; export it without the flag")
        files = []
        if config.finetune.lora_rank and not merge_lora:
            files = export_adapter(model, config, out / "adapter", base=out)
        return export_hf(unload_lora(model, merge=merge_lora), config.chat_template, out) + files

    def info(self, model: LanguageModel, config) -> dict:
        return {
            "context": model.context,
            "vocab_size": config.model.vocab_size,
            "tokenizer": self.tokenizer(model).kind,
            "chat": bool(config.chat_template),  # /v1/chat/completions answers it
        }

    def tokenizer(self, model: LanguageModel) -> TextTokenizer:
        return model.tokenizer

    def chat_prompt(self, config, messages: list[dict]) -> str:
        if not config.chat_template:
            raise UserError(
                "this model has no chat template; fine-tune it on conversations (--data chat:PATH) or use "
                "/v1/completions"
            )
        return render(ChatFormat.of(config), messages, add_generation_prompt=True)
