"""A pretrained text encoder from a local Hugging Face directory (a CLIP text model, as Stable Diffusion uses; or a
BERT-like encoder) in place of aigc's own: the same (states, real) = encoder(ids) interface as
models/text_encoder.py, so the U-Net's cross-attention reads either.

The directory is what `save_pretrained` writes for the model and its tokenizer: config.json, model.safetensors,
tokenizer.json. The run keeps the config and the tokenizer in its own config and the weights in its checkpoint,
so it needs the directory only when it starts. Ids arrive in aigc's layout (`text_encoder.to_ids`: each token
id + 1, 0 padding) and are handed to the network with an attention mask over the padding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from aigc.core.errors import UserError
from aigc.models.pretrained import WEIGHTS, first_line, transformers
from aigc.models.text_encoder import PAD


@dataclass(frozen=True)
class TextEncoderFiles:
    """What a run takes from the directory besides the weights: config.json and tokenizer.json, as text."""

    config: str
    tokenizer: str
    max_tokens: int  # the most positions the encoder has


def read_text_encoder(path: Path) -> TextEncoderFiles:
    """The files of the text encoder in `path`; UserError naming what is missing or not an encoder."""
    if not path.is_dir():
        raise UserError(f"--text-encoder {path}: no such directory")
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"--text-encoder {path}: no readable config.json ({first_line(error)})") from None
    kind = config.get("model_type") if isinstance(config, dict) else None
    if kind == "clip":
        raise UserError(
            f"--text-encoder {path}: a whole CLIP model; save its text half: "
            "CLIPTextModel.from_pretrained(DIR).save_pretrained(OUT), and the tokenizer beside it"
        )
    if config.get("is_encoder_decoder"):
        raise UserError(f"--text-encoder {path}: a {kind} encoder-decoder; give a text encoder (e.g. CLIP's)")
    if not any((path / name).is_file() for name in WEIGHTS):
        raise UserError(f"--text-encoder {path}: no model.safetensors; save the model with save_pretrained")
    if not (path / "tokenizer.json").is_file():
        raise UserError(f"--text-encoder {path}: no tokenizer.json; save its tokenizer there (save_pretrained)")
    hf_config = build_config(json.dumps(config), str(path))
    return TextEncoderFiles(
        hf_config.to_json_string(use_diff=False), (path / "tokenizer.json").read_text(),
        int(getattr(hf_config, "max_position_embeddings", 512)),
    )  # fmt: skip


def build_config(text: str, where: str):
    hf = transformers()
    data = json.loads(text)
    try:
        return hf.AutoConfig.for_model(data.pop("model_type"), **data)
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"{where}: not a config transformers reads ({first_line(error)})") from None


class PretrainedTextEncoder(nn.Module):
    """(states [N, T, width], real [N, T] bool) of prompt ids [N, T] (to_ids' layout) through transformers' model
    for the config (its weights loaded by `load_weights`, or from aigc's checkpoint). The empty prompt - all
    padding, the unconditional branch - is read as the tokenizer writes "" (CLIP: its begin and end tokens), so
    cross-attention always has a real position to attend to."""

    def __init__(self, config_json: str, empty: list[int]):
        super().__init__()
        config = build_config(config_json, "the run config's text encoder")
        self.network = transformers().AutoModel.from_config(config)
        self.register_buffer("empty", torch.tensor(empty or [0], dtype=torch.long), persistent=False)

    @property
    def width(self) -> int:
        return self.network.config.hidden_size

    def load_weights(self, path: Path) -> None:
        hf = transformers()
        try:
            network = hf.AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True)
        except (ValueError, KeyError, OSError) as error:
            raise UserError(f"--text-encoder {path}: the weights do not load ({first_line(error)})") from None
        self.network.load_state_dict(network.state_dict())

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, length = len(ids), max(ids.shape[1], len(self.empty))
        ids = torch.cat([ids, ids.new_full((n, length - ids.shape[1]), PAD)], dim=1)
        real = ids != PAD
        network_ids = (ids - 1).clamp_min(0)  # padding becomes token 0, masked out
        empty = ~real.any(1)
        network_ids[empty, : len(self.empty)] = self.empty
        real[empty, : len(self.empty)] = True
        states = self.network(input_ids=network_ids, attention_mask=real.long()).last_hidden_state
        return states, real
