"""A language-model run as a Hugging Face model directory: config.json of the architecture its weights already
are (Llama, or Qwen3 with QK-norm; models/transformer.py), model.safetensors under the same names, and the
run's tokenizer as transformers' fast tokenizer loads it - nothing custom, so `AutoModelForCausalLM` and
`AutoTokenizer` (and tools built on them) read it as it is."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save_file

from aigc.core.errors import UserError
from aigc.core.io import atomic_write, atomic_write_text
from aigc.models.transformer import hf_config


def export_hf(model, out: Path) -> list[Path]:
    """Write the directory; the files written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create {out} ({error.strerror}); choose a writable --out") from None
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": model.config.context,
        "clean_up_tokenization_spaces": False,
    }
    files = {
        "config.json": json.dumps(hf_config(model.config), indent=2),
        "tokenizer.json": model.tokenizer.to_str(),
        "tokenizer_config.json": json.dumps(tokenizer_config, indent=2),
    }
    for name, text in files.items():
        atomic_write_text(out / name, text)
    weights = out / "model.safetensors"
    atomic_write(weights, lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))
    return [out / name for name in files] + [weights]
