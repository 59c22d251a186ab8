"""LoRA (Hu et al. 2021) through the `peft` library: low-rank adapters injected beside a model's linear layers,
the base weights frozen; the adapters written as peft writes them (adapter_config.json and
adapter_model.safetensors, loadable with `PeftModel.from_pretrained` on the exported base); and merged into the
base weights for an export that needs no peft at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch
from torch import nn

from aigc.core.errors import UserError

ADAPTER_PREFIX = "base_model.model."  # what peft's PeftModel puts before the base model's names


@dataclass(frozen=True)
class LoRA:
    rank: int
    alpha: float
    dropout: float
    targets: tuple[str, ...]  # the names of the modules adapted (their last name: q_proj, c_attn, ...)


def peft():
    try:
        import peft
    except ImportError:
        raise UserError("LoRA needs peft; pip install 'aigc[hf]'") from None
    return peft


def linear_names(model: nn.Module, head: nn.Module) -> tuple[str, ...]:
    """The (last) names of the model's linear layers outside its output head (every module in `head`): what LoRA
    adapts by default (the attention and MLP projections of Llama-style models, GPT-2's c_attn, c_proj and c_fc)."""
    in_head = {id(module) for module in head.modules()}
    names = {
        name.rpartition(".")[2]
        for name, module in model.named_modules()
        if id(module) not in in_head and (isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D")
    }
    return tuple(sorted(names))


def add_lora(model: nn.Module, lora: LoRA) -> nn.Module:
    """`model` with adapters beside each `lora.targets` module, only they trainable (in place)."""
    library = peft()
    present = {name.rpartition(".")[2] for name, _ in model.named_modules()}
    missing = sorted(set(lora.targets) - present)
    if missing:
        raise UserError(
            f"--lora-targets {', '.join(missing)}: no such module in this model; choose among "
            f"{', '.join(sorted(present - {''}))[:300]}"
        )
    config = library.LoraConfig(
        r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=list(lora.targets)
    )
    return library.inject_adapter_in_model(config, model)


def adapter_files(model: nn.Module, lora: LoRA, prefix: str, base: str) -> tuple[str, dict[str, torch.Tensor]]:
    """(adapter_config.json, adapter_model.safetensors' tensors) of `model`'s adapters, named as peft names them
    over the base model, whose own names are the model's without `prefix`; `base` the base model's path."""
    library = peft()
    state = library.get_peft_model_state_dict(model)
    tensors = {ADAPTER_PREFIX + name.removeprefix(prefix): t.detach().cpu().contiguous() for name, t in state.items()}
    config = library.LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.targets),
        task_type="CAUSAL_LM",
        base_model_name_or_path=base,
    ).to_dict()
    config = {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}
    return json.dumps(config, indent=2, default=str), tensors


def unload_lora(model: nn.Module, merge: bool = True) -> nn.Module:
    """`model` with each adapter folded into its base layer (or dropped, `merge=False`) and the base layer back in
    its place (in place): a plain model again."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            if merge:
                module.merge()
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, module.get_base_layer())
    return model


def trainable_share(model: nn.Module) -> tuple[int, int]:
    """(trainable parameters, all parameters), each tensor counted once."""
    parameters = list(model.parameters())  # a tied tensor appears once
    return sum(p.numel() for p in parameters if p.requires_grad), sum(p.numel() for p in parameters)
