"""What a family that writes text offers the rest of aigc: its tokenizer, a prompt's token ids (checked), the
prompt of a conversation, and its completions drawn by the one text engine (sampling/engine.py). The service's
text routes, `aigc sample --prompt`, evaluation and snapshots use these methods and nothing else of a text model,
so a new text family is a subclass and one registry entry.

A text family's sampling model is a causal language model in aigc's interface: `context`, `logits =
model(tokens)`, `kv_slots(count)` and `extend(slots, first, tokens, counts)` (models/transformer.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import torch
from torch import nn

from aigc.core.errors import UserError
from aigc.data.tokenizer import TextTokenizer
from aigc.families.family import Family
from aigc.models.classifier import mean_of_real
from aigc.sampling.engine import Engine, Request
from aigc.sampling.text import Completion, Decoding, TokenLogprob, prompt_logprobs

SNAPSHOT_PROMPT = "\n"  # what the texts of each snapshot continue (nanoGPT's default start)

# (completion index, text added since the last call): a stream of the completions as they are drawn
OnText = Callable[[int, str], None]


class TextFamily(Family):
    """A family whose outputs are completions of prompts. Subclasses implement `tokenizer` and the training side
    of `Family`; `sample_config` has the fields of `Decoding`."""

    modality: ClassVar[str] = "text"
    conditions: ClassVar[str] = "prompts"
    evaluation: ClassVar[str] = "text"
    unit: ClassVar[str] = "tok"
    progress_key: ClassVar[str] = "tokens"

    def tokenizer(self, model: nn.Module) -> TextTokenizer:
        """The tokenizer the model reads and writes with."""
        raise NotImplementedError

    def chat_prompt(self, config, messages: list[dict]) -> str:
        """The prompt that asks the model for the next assistant turn of a conversation; UserError when the model
        has no chat template."""
        raise UserError("this model has no chat template; use /v1/completions")

    def encode(self, model: nn.Module, prompt: str) -> list[int]:
        """The token ids of a prompt; UserError when it is empty, has a character the model never saw, or leaves
        no room in the context to generate."""
        if not prompt:
            raise UserError("the prompt is empty; give at least one character (e.g. a newline)")
        ids = self.tokenizer(model).encode(prompt)
        if len(ids) >= model.context:
            raise UserError(
                f"the prompt is {len(ids)} tokens; this model reads at most {model.context - 1} "
                "before the first one it generates; shorten it"
            )
        return ids

    def check_request(self, model: nn.Module, prompts, sample) -> None:
        for prompt in prompts or ():
            self.encode(model, prompt)

    def embed(self, model: nn.Module, texts: list[str], batch_size: int = 32) -> torch.Tensor:
        """One unit vector [len(texts), width] per text: `text_vectors` of the model's tokenizer."""
        return text_vectors(model, self.tokenizer(model), texts, batch_size)

    def prompt_logprobs(self, model: nn.Module, prompt: str, top: int) -> list[TokenLogprob]:
        """Each prompt token's log-probability given those before it (an echo with logprobs)."""
        return prompt_logprobs(model, self.encode(model, prompt), top, self.tokenizer(model).decode)

    def engine(self, model: nn.Module, slots: int, on_step=None) -> Engine:
        """The text engine of `model`, decoding up to `slots` sequences at once."""
        return Engine(model, self.tokenizer(model).decode, slots, on_step)

    @staticmethod
    def decoding(sample) -> Decoding:
        return Decoding(
            sample.max_tokens,
            sample.temperature,
            sample.top_k,
            sample.top_p,
            sample.repetition_penalty,
            sample.stop,
            sample.stop_tokens,
            sample.logprobs,
        )

    def requests(
        self, model, seeds: Sequence[int], prompts: Sequence[str], sample, on_text: OnText | None, on_done,
        on_error=lambda error: None, cancelled=lambda: False, encoded: dict[str, list[int]] | None = None,
    ) -> list[Request]:  # fmt: skip
        """The engine's requests for completion k of prompts[k] with seeds[k], each prompt tokenised once (or
        taken from `encoded`, prompt -> ids from `encode`): `on_text(k, text)` hears its new text,
        `on_done(k, completion)` its end. Every prompt is checked before any is returned."""
        if len(prompts) != len(seeds):
            raise UserError(f"{len(prompts)} prompts for {len(seeds)} seeds; give one prompt per seed")
        ids = encoded if encoded is not None else {p: self.encode(model, p) for p in dict.fromkeys(prompts)}
        decoding = self.decoding(sample)
        return [
            Request(
                ids[prompt],
                seed,
                decoding,
                on_done=lambda completion, k=k: on_done(k, completion),
                on_text=None if on_text is None else lambda text, k=k: on_text(k, text),
                on_error=on_error,
                cancelled=cancelled,
            )
            for k, (prompt, seed) in enumerate(zip(prompts, seeds, strict=True))
        ]

    @torch.no_grad()
    def generate(
        self,
        model: nn.Module,
        seeds: Sequence[int],
        prompts: Sequence[str] | None = None,
        sample=None,
        batch_size: int = 64,
        device: str | torch.device | None = None,
        progress: bool = False,
        on_text: OnText | None = None,
    ) -> list[Completion]:
        """One completion per seed, of prompts[k] (default: a newline), all submitted to the engine at once (a
        static batch of up to `batch_size` sequences a step) - completion k depends only on its prompt, its seed
        and the settings, never on the others drawn beside it. `on_text(k, text)` hears each completion's new
        text as it is drawn (a stream). The model decodes on the device it is on (`device` is the image
        families' argument, which a text model does not need)."""
        sample = self.sample_config() if sample is None else sample
        prompts = [SNAPSHOT_PROMPT] * len(seeds) if prompts is None else list(prompts)
        completions: list[Completion | None] = [None] * len(seeds)
        failures: list[Exception] = []
        requests = self.requests(model, seeds, prompts, sample, on_text, completions.__setitem__, failures.append)
        was_training = model.training
        model.eval()
        try:
            self.engine(model, max(1, min(batch_size, len(requests)))).complete(requests)
        finally:
            model.train(was_training)
        if failures:
            raise failures[0]
        return completions

    def save_samples(self, model, config, device: torch.device, stem) -> None:
        seeds = range(config.train.grid_size)
        drawn = self.generate(model, seeds, [SNAPSHOT_PROMPT] * len(seeds), config.sample)
        stem.with_suffix(".txt").write_text(
            "".join(f"--- seed {s} ---{SNAPSHOT_PROMPT}{c.text}\n" for s, c in zip(seeds, drawn, strict=True))
        )


def fitted_chat_prompt(
    family: TextFamily, model: nn.Module, config, messages: list[dict], most: int
) -> tuple[str, int]:
    """(the chat prompt `family` writes of a conversation, how many of its messages were dropped to fit): its
    oldest messages are dropped whole - never a system message, the last user message or the newest - as few as
    leave the prompt within `most` tokens and the reply a quarter of the model's context; UserError when what is
    kept is still over `most` or the context: a message is never cut."""
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=len(messages) - 1)
    droppable = [i for i, m in enumerate(messages[:-1]) if m["role"] not in ("system", "developer") and i != last_user]

    def without(first: int) -> tuple[str, int]:
        """The prompt without the `first` droppable messages, and its length in tokens."""
        gone = set(droppable[:first])
        prompt = family.chat_prompt(config, [m for i, m in enumerate(messages) if i not in gone])
        return prompt, len(family.tokenizer(model).encode(prompt))

    def fits(tokens: int) -> bool:
        return tokens <= most and tokens + model.context // 4 <= model.context

    dropped, (prompt, tokens) = 0, without(0)
    if not fits(tokens):  # the fewest to drop, by bisection: the prompt only shortens as more are dropped
        low, high = 1, len(droppable)
        while low < high:
            middle = (low + high) // 2
            low, high = (low, middle) if fits(without(middle)[1]) else (middle + 1, high)
        dropped = min(low, len(droppable))
        prompt, tokens = without(dropped)
    if tokens > most or tokens >= model.context:
        raise UserError(
            f"the conversation's system messages and newest messages are {tokens} tokens whole; this model reads "
            f"at most {min(most, model.context - 1)}; shorten them"
        )
    return prompt, dropped


@torch.no_grad()
def text_vectors(model: nn.Module, tokenizer: TextTokenizer, texts: list[str], batch_size: int = 32) -> torch.Tensor:
    """One unit vector [len(texts), width] (float32, on the CPU) per text by a causal language model: the mean of
    its tokens' last-layer states, each text cut to the model's context (a character the tokenizer never saw left
    out); a text of no token the model knows gets the zero vector, which matches nothing."""
    device, parts = next(model.parameters()).device, []
    for first in range(0, len(texts), batch_size):
        encoded = [ids[: model.context or None] for ids in tokenizer.encode_all(texts[first : first + batch_size])]
        lengths = torch.tensor([len(ids) for ids in encoded], device=device)
        tokens = torch.zeros(len(encoded), max(1, int(lengths.max())), dtype=torch.long, device=device)
        for i, ids in enumerate(encoded):
            tokens[i, : len(ids)] = torch.tensor(ids, dtype=torch.long, device=device)
        hidden = model.hidden_states(tokens).float()
        mean = mean_of_real(hidden, lengths)
        parts.append(torch.nn.functional.normalize(mean, dim=-1).cpu())
    return torch.cat(parts)
