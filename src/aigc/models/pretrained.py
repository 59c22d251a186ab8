"""A Hugging Face model (a local directory as `save_pretrained` writes it: config.json, safetensors weights,
tokenizer files) in aigc's hands. As a causal language model it has the same `logits = LM(tokens, cache)`
interface as aigc's own transformer, so training, decoding, scoring and the service treat both alike; the text
classifier's counterpart is models/pretrained_classifier.py.

The network is transformers' own class for the directory's `model_type` (Llama, GPT-2, Qwen2, Qwen3, ... -
whatever `AutoModelForCausalLM` builds), so its numbers are transformers' numbers. Nothing is downloaded, and
pickled weights (`pytorch_model.bin`) are refused: loading a pickle runs whatever code it holds.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from aigc.core.errors import UserError

WEIGHTS = ("model.safetensors", "model.safetensors.index.json")


def transformers():
    """The transformers module, or a UserError saying how to install it."""
    try:
        import transformers
    except ImportError:
        raise UserError("Hugging Face models need transformers; pip install 'aigc[hf]'") from None
    return transformers


@dataclass(frozen=True)
class PretrainedFiles:
    """What a run takes from a Hugging Face directory besides the weights: the architecture's config.json, the
    tokenizer (tokenizer.json), its chat template and special tokens ("" when it has none)."""

    config: str
    tokenizer: str
    chat_template: str
    bos_token: str
    eos_token: str
    pad_token: str


# what transformers builds for each task aigc fine-tunes: its Auto class, and the table of the architectures it has
TASKS = {
    "causal": ("AutoModelForCausalLM", "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES"),
    "classification": ("AutoModelForSequenceClassification", "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES"),
    "base": ("AutoModel", "MODEL_MAPPING_NAMES"),  # the architecture without a head: what a new head sits on
}


def task_models(task: str) -> dict[str, str]:
    """{model_type: class name} of the architectures transformers builds for `task`."""
    from transformers.models.auto import modeling_auto

    return getattr(modeling_auto, TASKS[task][1])


def is_pretrained_dir(path: Path) -> bool:
    """Whether `path` looks like a Hugging Face model directory (rather than an aigc run)."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "model_type" in config


def read_pretrained(path: Path, task: str = "causal") -> PretrainedFiles:
    """The files of the model in `path`, whose architecture must have a `task` class in transformers; UserError
    naming what is missing or unsupported."""
    if not any((path / name).is_file() for name in WEIGHTS):
        if (path / "pytorch_model.bin").is_file():
            raise UserError(
                f"{path} holds pickled weights (pytorch_model.bin), which aigc does not load (a pickle can run "
                "code); convert them to safetensors: AutoModel.from_pretrained(DIR)"
                ".save_pretrained(DIR, safe_serialization=True)"
            )
        raise UserError(f"{path} has no model.safetensors; save the model with save_pretrained")
    if not (path / "tokenizer.json").is_file():
        raise UserError(f"{path} has no tokenizer.json (a fast tokenizer); save the tokenizer with save_pretrained")
    hf = transformers()
    try:
        config = hf.AutoConfig.from_pretrained(path, local_files_only=True)
    except (ValueError, KeyError, OSError) as error:
        raise UserError(f"{path}: config.json is not one transformers reads ({first_line(error)})") from None
    if config.model_type not in task_models(task):
        if task == "causal":
            raise UserError(f"{path} is a {config.model_type} model, not a causal language model; give a GPT-style one")
        raise UserError(f"{path} is a {config.model_type} model, which transformers has no classifier of")
    special = tokenizer_settings(path)
    return PretrainedFiles(
        config.to_json_string(use_diff=False),
        (path / "tokenizer.json").read_text(),
        chat_template_of(path, special),
        *(token_text(special.get(name)) for name in ("bos_token", "eos_token", "pad_token")),
    )


def pretrained_weights(path: Path, task: str = "causal", **options) -> dict[str, torch.Tensor]:
    """The weights (float32, by transformers' names) of the model in `path` as its `task` class holds them.
    `options`: settings of the architecture's config."""
    auto = getattr(transformers(), TASKS[task][0])
    try:
        network = auto.from_pretrained(path, local_files_only=True, dtype=torch.float32, **options)
    except (ValueError, KeyError, OSError, RuntimeError) as error:
        raise UserError(f"{path}: the weights do not load ({first_line(error)})") from None
    return network.state_dict()


def first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def tokenizer_settings(path: Path) -> dict:
    """tokenizer_config.json of the directory ({} when it has none)."""
    try:
        settings = json.loads((path / "tokenizer_config.json").read_text())
    except (OSError, ValueError):
        return {}
    return settings if isinstance(settings, dict) else {}


def token_text(token) -> str:
    """A special token as tokenizer_config.json writes it (a string, or {"content": ...})."""
    if isinstance(token, dict):
        token = token.get("content")
    return token if isinstance(token, str) else ""


def chat_template_of(path: Path, settings: dict) -> str:
    """The directory's chat template: chat_template.jinja (transformers 4.43 and later) or tokenizer_config.json's
    "chat_template"; "" when it has none."""
    if (path / "chat_template.jinja").is_file():
        return (path / "chat_template.jinja").read_text()
    template = settings.get("chat_template", "")
    return template if isinstance(template, str) else ""  # a list of named templates: not read


class PretrainedCache:
    """transformers' key/value cache of one sequence."""

    def __init__(self):
        self.past = None

    def length(self) -> int:
        return 0 if self.past is None else self.past.get_seq_length()


class PretrainedSlots:
    """The slots of `Transformer.kv_slots` for a transformers model: a cache object per sequence."""

    def __init__(self, count: int):
        self.caches = [PretrainedCache() for _ in range(count)]

    def move(self, source: int, target: int) -> None:
        self.caches[target], self.caches[source] = self.caches[source], PretrainedCache()

    def swap(self, a: int, b: int) -> None:
        self.caches[a], self.caches[b] = self.caches[b], self.caches[a]

    def clear(self, slot: int) -> None:
        self.caches[slot] = PretrainedCache()


class PretrainedNetwork(nn.Module):
    """A transformers network (`network`) whose state dict holds a tied tensor once: a tied head is one tensor
    under two names, safetensors refuses shared tensors, and loading fills the second name from the first."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network
        self.tied = tied_names(self)
        self.register_state_dict_post_hook(self._drop_tied)
        self.register_load_state_dict_pre_hook(self._fill_tied)

    @staticmethod
    def _drop_tied(module, state_dict, prefix, local_metadata) -> None:
        for name in module.tied:
            state_dict.pop(prefix + name, None)

    @staticmethod
    def _fill_tied(module, state_dict, prefix, *args) -> None:
        for name, source in module.tied.items():
            if prefix + source in state_dict:
                state_dict.setdefault(prefix + name, state_dict[prefix + source])


def longest_input(config) -> int:
    """The most positions a transformers architecture reads, by its config (0 when it does not say)."""
    return int(getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 0)


class PretrainedLM(PretrainedNetwork):
    """logits = LM(tokens, cache) of a transformers causal LM built from its config.json text (random weights
    until a checkpoint is loaded)."""

    def __init__(self, config_json: str):
        hf = transformers()
        config = hf.AutoConfig.for_model(**json.loads(config_json))
        super().__init__(hf.AutoModelForCausalLM.from_config(config, dtype=torch.float32))
        self.context = longest_input(config)
        # transformers 5.24 renamed the key/value cache `past_key_values` -> `cache` (in and out)
        self.cache_name = (
            "cache" if "cache" in inspect.signature(self.network.forward).parameters else "past_key_values"
        )

    def output_head(self) -> nn.Module:
        return self.network.get_output_embeddings()

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        """The last layer's states [N, T, width] of `tokens` [N, T] (a causal model: right padding changes no real
        token's)."""
        return self.network.base_model(input_ids=tokens, use_cache=False).last_hidden_state

    def new_cache(self, rows: int = 1) -> PretrainedCache:
        """A cache for `rows` sequences of one length fed in parts (transformers' cache holds a batch as it is)."""
        return PretrainedCache()

    def kv_slots(self, count: int) -> PretrainedSlots:
        return PretrainedSlots(count)

    def extend(self, slots: PretrainedSlots, first: int, tokens: torch.Tensor, counts: list[int]) -> torch.Tensor:
        """Next-token logits [N, vocab_size] after row i's first counts[i] tokens, appended to slot first + i: one
        sequence per forward (transformers' caches do not batch sequences of different lengths)."""
        rows = [self(tokens[i : i + 1, :n], slots.caches[first + i])[:, -1] for i, n in enumerate(counts)]
        return torch.cat(rows)

    def forward(self, tokens: torch.Tensor, cache: PretrainedCache | None = None) -> torch.Tensor:
        """Logits [N, T, vocab_size] of tokens [N, T], which follow the positions `cache` holds (if any)."""
        past = 0 if cache is None else cache.length()
        if past + tokens.shape[1] > self.context:
            raise UserError(f"{past + tokens.shape[1]} tokens are more than the model's context of {self.context}")
        if cache is None:
            return self.network(input_ids=tokens, use_cache=False).logits
        output = self.network(input_ids=tokens, **{self.cache_name: cache.past}, use_cache=True)
        cache.past = output[self.cache_name]
        return output.logits


def tied_names(module: nn.Module) -> dict[str, str]:
    """{name: the earlier name of the same tensor} for each parameter held under two names."""
    first: dict[int, str] = {}
    tied = {}
    for name, parameter in module.named_parameters(remove_duplicate=False):
        if id(parameter) in first:
            tied[name] = first[id(parameter)]
        else:
            first[id(parameter)] = name
    return tied
