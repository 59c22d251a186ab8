"""A decoder-only transformer in the form small budgets favour - RMSNorm before each block, rotary positions, a
gated (SwiGLU) MLP, no biases, optionally QK-norm and tied embeddings - built so that its weights *are* a
Hugging Face checkpoint: modules and parameters carry Llama's names (`model.layers.0.self_attn.q_proj`, ...),
rotary embeddings and RMSNorm compute as transformers' `modeling_llama` does, and with QK-norm the model is
Qwen3's. `hf_config` gives the config.json of that architecture, so an exported run loads in transformers,
vLLM or llama.cpp's converter with no custom code.

Shapes: tokens int64 [N, T] -> logits float [N, T, vocab_size]; attention is causal
(`F.scaled_dot_product_attention(is_causal=True)`): position t sees positions 0..t only. With `KVSlots` the
keys and values of earlier positions are kept, so decoding feeds one new token a step instead of the whole
sequence again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from aigc.core.config import Config
from aigc.core.errors import ConfigError, UserError


@dataclass(frozen=True)
class TransformerConfig(Config):
    width: int = field(default=128, metadata={"help": "model width (hidden size)", "min": 8})
    layers: int = field(default=4, metadata={"help": "transformer blocks", "min": 1})
    heads: int = field(default=4, metadata={"help": "attention heads", "min": 1})
    kv_heads: int | None = field(default=None, metadata={"help": "key/value heads (default: --heads)", "min": 1})
    mlp_width: int | None = field(default=None, metadata={"help": "gated MLP width (default: ~8/3 x width)", "min": 1})
    context: int = field(default=128, metadata={"help": "longest sequence, in tokens", "min": 2})
    qk_norm: bool = field(default=False, metadata={"help": "RMSNorm on queries and keys (exports as Qwen3)"})
    tied_embeddings: bool = field(default=True, metadata={"help": "the output head shares the input embedding"})
    dropout: float = field(
        default=0.0,
        metadata={
            "help": "dropout of attention and residual branches in training (no weights: exports alike)",
            "min": 0.0,
            "below": 1.0,
        },
    )
    rope_theta: float = field(default=10_000.0, metadata={"above": 0.0})
    norm_eps: float = field(default=1e-5, metadata={"above": 0.0})
    vocab_size: int = 0  # resolved from the tokenizer

    def check(self) -> None:
        if self.width % self.heads or (self.width // self.heads) % 2:
            raise ConfigError("heads", self.heads, f"must divide the width {self.width} into even head sizes")
        if self.heads % (self.kv_heads or self.heads):
            raise ConfigError("kv_heads", self.kv_heads, f"must divide the {self.heads} heads")

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    @property
    def hidden(self) -> int:
        """The gated MLP's width: as given, else 8/3 of the model width rounded up to a multiple of 32."""
        return self.mlp_width or -(-8 * self.width // 3 // 32) * 32


class RMSNorm(nn.Module):
    """x / rms(x) * weight, computed in float32 as transformers' LlamaRMSNorm does."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.variance_epsilon = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * h.to(x.dtype)


def rotary_tables(config: TransformerConfig, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) [..., head_dim] of the rotary embedding at `positions` [...] (Su et al. 2021), with Llama's
    half-split layout: frequency i rotates dimensions i and i + head_dim / 2."""
    d = config.head_dim
    inv_freq = 1.0 / config.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d)
    angles = positions.float()[..., None] * inv_freq.to(positions.device)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [N, heads, T, head_dim] rotated by the tables [T, head_dim]."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x * cos + rotated * sin).to(x.dtype)


class KVSlots:
    """The keys and values of up to `count` sequences in memory allocated once: per layer [count, kv_heads,
    capacity, head_dim], and each slot's length. A forward pass over a run of consecutive slots writes its new
    positions in place and attends to views of the slots, so no step pads, concatenates or copies a cache
    (vLLM's and llama.cpp's slots). `capacity` leaves room past the context for a padded chunk's spare rows."""

    def __init__(self, config: TransformerConfig, count: int, capacity: int, device=None, dtype=torch.float32):
        shape = (count, config.kv_heads or config.heads, capacity, config.head_dim)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.layers)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.layers)]
        self.lengths = torch.zeros(count, dtype=torch.long, device=device)

    def length(self, slot: int) -> int:
        return int(self.lengths[slot])

    def move(self, source: int, target: int) -> None:
        """Slot `target` takes over `source`'s positions (consecutive slots stay consecutive as sequences leave)."""
        n = self.length(source)
        for tensors in (self.keys, self.values):
            for layer in tensors:
                layer[target, :, :n] = layer[source, :, :n]
        self.lengths[target], self.lengths[source] = n, 0

    def swap(self, a: int, b: int) -> None:
        for tensors in (self.keys, self.values):
            for layer in tensors:
                layer[[a, b]] = layer[[b, a]]
        self.lengths[[a, b]] = self.lengths[[b, a]]

    def clear(self, slot: int) -> None:
        self.lengths[slot] = 0


class SlotRows:
    """The cache of one forward pass over slots first, first + 1, ...: row i adds counts[i] tokens (of a batch
    padded to `new`) after the slot's positions. Padding writes to the slots' last column, a scratch column past
    the context that no query reads, so a padded row never touches a position that is or will be real."""

    def __init__(self, slots: KVSlots, first: int, counts: torch.Tensor, new: int):
        self.slots, self.first, self.counts = slots, first, counts
        self.past = slots.lengths[first : first + len(counts)]  # (N,)
        device = self.past.device
        self.positions_ = self.past[:, None] + torch.arange(new, device=device)  # (N, T)
        real = torch.arange(new, device=device)[None, :] < counts.to(device)[:, None]
        scratch = slots.keys[0].shape[2] - 1
        self.written = torch.where(real, self.positions_, scratch)
        self.span = int((self.past + counts.to(device)).max())  # one past the farthest real position
        # query j of row i (at position past_i + j) sees the positions up to its own: (N, 1, T, span)
        self.seen = (torch.arange(self.span, device=device)[None, None, :] <= self.positions_[:, :, None])[:, None]
        self.rows = torch.arange(first, first + len(counts), device=device)[:, None]

    def end(self) -> int:
        return self.span

    def positions(self, device: torch.device) -> torch.Tensor:
        return self.positions_.to(device)

    def attend(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        keys, values = self.slots.keys[layer], self.slots.values[layer]
        keys[self.rows, :, self.written] = k.transpose(1, 2).to(keys.dtype)  # (N, T, kv_heads, head_dim) in place
        values[self.rows, :, self.written] = v.transpose(1, 2).to(values.dtype)
        window = slice(self.first, self.first + len(self.counts))
        seen = self.seen.to(k.device)
        return keys[window, :, : self.span].to(k.dtype), values[window, :, : self.span].to(v.dtype), seen

    def advance(self) -> None:
        self.past += self.counts.to(self.past.device)


class PromptCache:
    """The keys and values of `rows` sequences of one length fed in parts (a prompt, then a token at a time)."""

    def __init__(self, config: TransformerConfig, rows: int = 1, device=None):
        self.slots, self.count = KVSlots(config, rows, config.context + 1, device), rows

    def length(self) -> int:
        return self.slots.length(0)

    def rows(self, new: int) -> SlotRows:
        return SlotRows(self.slots, 0, torch.full((self.count,), new, device=self.slots.lengths.device), new)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **options) -> torch.Tensor:
    """`F.scaled_dot_product_attention(q, k, v, **options)` in q's dtype; bf16 on a CPU computes it in fp32:
    torch's CPU flash attention runs bf16 at under half its fp32 speed (forward and backward of a training step's
    [32, 4, 128, 32]: 26 ms against 12 ms on an AVX512-BF16 core), and autocast would cast it back to bf16."""
    if q.device.type != "cpu" or q.dtype != torch.bfloat16:
        return F.scaled_dot_product_attention(q, k, v, **options)
    with torch.autocast("cpu", enabled=False):
        return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), **options).to(q.dtype)


class Attention(nn.Module):
    def __init__(self, config: TransformerConfig, index: int):
        super().__init__()
        self.index = index  # of the layer, in a cache
        self.heads, self.kv_heads, self.head_dim = config.heads, config.kv_heads or config.heads, config.head_dim
        self.q_proj = nn.Linear(config.width, self.heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(config.width, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(config.width, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.heads * self.head_dim, config.width, bias=False)
        if config.qk_norm:
            self.q_norm = RMSNorm(self.head_dim, config.norm_eps)
            self.k_norm = RMSNorm(self.head_dim, config.norm_eps)
        self.qk_norm = config.qk_norm
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: SlotRows | None) -> torch.Tensor:
        n, t, _ = x.shape  # (N, T, width)
        q = self.q_proj(x).view(n, t, self.heads, self.head_dim)
        k = self.k_proj(x).view(n, t, self.kv_heads, self.head_dim)
        v = self.v_proj(x).view(n, t, self.kv_heads, self.head_dim).transpose(1, 2)
        if self.qk_norm:  # Qwen3: per head, before the rotation
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = rotate(q.transpose(1, 2), cos, sin), rotate(k.transpose(1, 2), cos, sin)  # (N, heads, T, head_dim)
        mask = None
        if cache is not None:
            k, v, mask = cache.attend(self.index, k, v)
        causal = mask is None and t > 1
        gqa = self.kv_heads != self.heads
        dropout = self.dropout if self.training else 0.0
        y = attend(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=causal, enable_gqa=gqa)
        return self.o_proj(y.transpose(1, 2).reshape(n, t, -1))


class MLP(nn.Module):
    """SwiGLU (Shazeer 2020): down(silu(gate(x)) * up(x))."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.width, config.hidden, bias=False)
        self.up_proj = nn.Linear(config.width, config.hidden, bias=False)
        self.down_proj = nn.Linear(config.hidden, config.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, config: TransformerConfig, index: int):
        super().__init__()
        self.input_layernorm = RMSNorm(config.width, config.norm_eps)
        self.self_attn = Attention(config, index)
        self.post_attention_layernorm = RMSNorm(config.width, config.norm_eps)
        self.mlp = MLP(config)
        self.resid_dropout = nn.Dropout(config.dropout)  # as nanoGPT's: on each branch's output

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: SlotRows | None) -> torch.Tensor:
        x = x + self.resid_dropout(self.self_attn(self.input_layernorm(x), cos, sin, cache))
        return x + self.resid_dropout(self.mlp(self.post_attention_layernorm(x)))


class Decoder(nn.Module):
    """The transformer without its head (transformers' `LlamaModel`): token ids to their last hidden states."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.width)
        self.layers = nn.ModuleList(Block(config, i) for i in range(config.layers))
        self.norm = RMSNorm(config.width, config.norm_eps)

    def forward(self, tokens: torch.Tensor, cache: SlotRows | None = None) -> torch.Tensor:
        """The last block's normalised output [N, T, width] of `tokens` [N, T] (after the cache's positions)."""
        return self.transform(self.embed_tokens(tokens), cache)

    def transform(self, x: torch.Tensor, cache: SlotRows | None = None) -> torch.Tensor:
        """The last block's normalised output [N, T, width] of inputs `x` [N, T, width] already embedded (a
        recommender's item vectors, where a language model's are its tokens')."""
        new = x.shape[1]
        end = new if cache is None else cache.end()
        if end > self.config.context:
            raise UserError(f"{end} tokens are more than the model's context of {self.config.context}; use fewer")
        if cache is None:
            positions = torch.arange(new, device=x.device)
        else:
            positions = cache.positions(x.device)
        cos, sin = rotary_tables(self.config, positions)
        if positions.ndim == 2:  # a position per sequence: (N, 1, T, head_dim) against (N, heads, T, head_dim)
            cos, sin = cos[:, None], sin[:, None]
        for block in self.layers:
            x = block(x, cos, sin, cache)
        return self.norm(x)


def initialize(module: nn.Module) -> None:
    """GPT-2's initialisation of a linear layer or an embedding: normal, standard deviation 0.02."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)


class Transformer(nn.Module):
    """logits = LM(tokens): a causal language model, `LlamaForCausalLM` (or Qwen3's) in aigc's hands."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        if config.vocab_size < 1:
            raise ConfigError("vocab_size", config.vocab_size, "resolve it from the tokenizer first")
        self.config = config
        self.model = Decoder(config)
        self.lm_head = nn.Linear(config.width, config.vocab_size, bias=False)
        self.apply(initialize)
        if config.tied_embeddings:
            # one tensor under two names: its state dict holds it once, as the embedding (as a Hugging Face
            # checkpoint with tie_word_embeddings does; safetensors refuses shared tensors)
            self.lm_head.weight = self.model.embed_tokens.weight
            self.register_state_dict_post_hook(_drop_tied_head)
            self.register_load_state_dict_pre_hook(_fill_tied_head)

    @property
    def context(self) -> int:
        return self.config.context

    def output_head(self) -> nn.Module:
        return self.lm_head

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        """The last layer's states [N, T, width] of `tokens` [N, T] (right padding changes no real token's)."""
        return self.model(tokens)

    def new_cache(self, rows: int = 1) -> PromptCache:
        """A cache for `rows` sequences fed in parts: `model(tokens[:, :5], cache)`, then the next tokens."""
        return PromptCache(self.config, rows, self.model.embed_tokens.weight.device)

    def kv_slots(self, count: int) -> KVSlots:
        """Memory for the keys and values of `count` sequences of up to `context` positions each (and the
        scratch column of padding). The embedding's dtype: an int8-compressed model keeps it in floats."""
        weight = self.model.embed_tokens.weight
        return KVSlots(self.config, count, self.config.context + 1, weight.device, weight.dtype)

    def extend(self, slots: KVSlots, first: int, tokens: torch.Tensor, counts: list[int]) -> torch.Tensor:
        """Next-token logits [N, vocab_size] after row i's first counts[i] tokens of `tokens` [N, T] (the rest
        padding), appended to slot first + i."""
        counts_tensor = torch.tensor(counts, device=slots.lengths.device)
        rows = SlotRows(slots, first, counts_tensor, tokens.shape[1])
        hidden = self.model(tokens, rows)  # (N, T, width)
        last = hidden[torch.arange(len(counts), device=hidden.device), counts_tensor.to(hidden.device) - 1]
        rows.advance()
        return self.lm_head(last)

    def forward(self, tokens: torch.Tensor, cache: PromptCache | None = None) -> torch.Tensor:
        """Logits [N, T, vocab_size] of `tokens` [N, T], which follow the positions `cache` holds (if any: as many
        sequences as it was made for)."""
        if cache is None:
            return self.lm_head(self.model(tokens))
        if tokens.shape[0] != cache.count:
            raise ValueError(f"this cache holds {cache.count} sequences, not {tokens.shape[0]}")
        rows = cache.rows(tokens.shape[1])
        logits = self.lm_head(self.model(tokens, rows))
        rows.advance()
        return logits


def _drop_tied_head(module, state_dict, prefix, local_metadata) -> None:
    state_dict.pop(prefix + "lm_head.weight", None)


def _fill_tied_head(module, state_dict, prefix, *args) -> None:
    embedding = state_dict.get(prefix + "model.embed_tokens.weight")
    if embedding is not None:
        state_dict.setdefault(prefix + "lm_head.weight", embedding)


def hf_config(config: TransformerConfig) -> dict:
    """config.json of the Hugging Face architecture these weights are: Llama, or Qwen3 with QK-norm."""
    qwen3 = config.qk_norm
    return {
        "architectures": ["Qwen3ForCausalLM" if qwen3 else "LlamaForCausalLM"],
        "model_type": "qwen3" if qwen3 else "llama",
        "vocab_size": config.vocab_size,
        "hidden_size": config.width,
        "intermediate_size": config.hidden,
        "num_hidden_layers": config.layers,
        "num_attention_heads": config.heads,
        "num_key_value_heads": config.kv_heads or config.heads,
        "head_dim": config.head_dim,
        "max_position_embeddings": config.context,
        "rms_norm_eps": config.norm_eps,
        "rope_theta": config.rope_theta,
        "tie_word_embeddings": config.tied_embeddings,
        "hidden_act": "silu",
        "attention_bias": False,
        "attention_dropout": config.dropout,
        "mlp_bias": False,
        "torch_dtype": "float32",
    }
