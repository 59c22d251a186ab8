"""A language-model run as a Hugging Face model directory: config.json of the architecture its weights already
are (Llama, or Qwen3 with QK-norm, for aigc's own transformer, models/transformer.py; the fine-tuned
architecture itself for a run from a Hugging Face model), model.safetensors under the same names, and the run's
tokenizer as transformers' fast tokenizer loads it - nothing custom, so `AutoModelForCausalLM` and
`AutoTokenizer` (and tools built on them) read it as it is. A LoRA run's adapters go beside it as peft writes
them, or merged into the weights."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save, save_file

from aigc.core.errors import UserError
from aigc.core.io import atomic_write, atomic_write_bytes, atomic_write_text
from aigc.models.lora import LoRA, adapter_files
from aigc.models.pretrained import PretrainedLM
from aigc.models.transformer import hf_config


def make_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create {out} ({error.strerror}); choose a writable --out") from None


def export_hf(model, chat_template: str, out: Path) -> list[Path]:
    """Write the directory of `model` (without adapters); the files written."""
    make_dir(out)
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": model.context,
        "clean_up_tokenization_spaces": False,
    }
    if chat_template:
        tokenizer_config["chat_template"] = chat_template
    files = {
        "tokenizer.json": model.tokenizer.to_str(),
        "tokenizer_config.json": json.dumps(tokenizer_config, indent=2),
    }
    if isinstance(model, PretrainedLM):
        model.network.save_pretrained(out, safe_serialization=True)
        written = [out / "config.json", *sorted(out.glob("*.safetensors"))]
    else:
        files["config.json"] = json.dumps(hf_config(model.config), indent=2)
        state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
        weights = out / "model.safetensors"
        atomic_write(weights, lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))
        written = [out / "config.json", weights]
    for name, text in files.items():
        atomic_write_text(out / name, text)
    return written + [out / name for name in files if name != "config.json"]


def adapter_bytes(model, config, base: str) -> dict[str, bytes]:
    """adapter_config.json and adapter_model.safetensors of a LoRA run, over the base model at `base`."""
    f = config.finetune
    lora = LoRA(f.lora_rank, f.lora_alpha, f.lora_dropout, f.lora_targets)
    prefix = "network." if isinstance(model, PretrainedLM) else ""
    adapter_config, tensors = adapter_files(model, lora, prefix, base)
    weights = save(tensors, metadata={"format": "pt"})
    return {"adapter_config.json": adapter_config.encode(), "adapter_model.safetensors": weights}


def export_adapter(model, config, out: Path, base: Path) -> list[Path]:
    """The adapter files of a LoRA run in `out`, over the base exported at `base`."""
    make_dir(out)
    written = []
    for name, data in adapter_bytes(model, config, str(base)).items():
        atomic_write_bytes(out / name, data)
        written.append(out / name)
    return written
