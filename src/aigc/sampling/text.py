"""Text decoding's pure parts: how the next token is chosen (temperature, top-k, top-p, repetition penalty) from
logits, what a completion is, and log-probabilities. The engine that runs a language model over many requests
is sampling/engine.py.

Each completion draws from its own torch.Generator seeded by its seed, so completion k depends only on its
prompt, its seed and the settings, never on how many others are decoded beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch


@dataclass(frozen=True)
class Decoding:
    """How the next token is chosen; temperature 0 is greedy, top_k 0 and top_p 1 keep every token."""

    max_tokens: int
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    stop_tokens: tuple[int, ...] = ()  # token ids that end a completion (a chat model's end of turn), not shown
    logprobs: int | None = None  # report each token's log-probability and this many most likely alternatives


@dataclass(frozen=True)
class TokenLogprob:
    """A token's log-probability under the model (its raw distribution, before temperature and filtering) and
    the most likely tokens at that position."""

    token: str
    logprob: float | None  # None for a prompt's first token, which nothing predicts
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Completion:
    text: str  # cut where its first stop string begins
    tokens: int  # generated (up to and including those of the stop string or the stop token)
    finish_reason: Literal["stop", "length"]  # a stop string or token ended it, or max_tokens
    logprobs: tuple[TokenLogprob, ...] | None = None  # of the tokens generated, when asked for


def penalise_repeats(logits: torch.Tensor, history: torch.Tensor, penalty: float) -> torch.Tensor:
    """logits [N, V] with every token already in history [N, T] made less likely: a positive logit divided by
    `penalty`, a negative one multiplied (Keskar et al. 2019, as transformers' repetition penalty)."""
    if penalty == 1.0 or history.numel() == 0:
        return logits
    seen = torch.gather(logits, 1, history)
    return logits.scatter(1, history, torch.where(seen > 0, seen / penalty, seen * penalty))


def filter_top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """logits [N, V] with -inf outside the k most likely tokens and outside the smallest set whose probability
    reaches top_p (Holtzman et al. 2020; the most likely token always stays)."""
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = torch.sort(logits, dim=-1, descending=True)
        before = ordered.softmax(-1).cumsum(-1) - ordered.softmax(-1)  # probability of the tokens ahead of each
        drop = (before >= top_p).scatter(1, order, before >= top_p)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def choose(logits: torch.Tensor, history: torch.Tensor, decoding: Decoding, generators: Sequence[torch.Generator]):
    """The next token [N] of each sequence, row i drawn from generators[i]."""
    logits = penalise_repeats(logits.float(), history, decoding.repetition_penalty)
    if decoding.temperature == 0:
        return logits.argmax(-1)
    probs = filter_top_k_top_p(logits / decoding.temperature, decoding.top_k, decoding.top_p).softmax(-1)
    return torch.cat([torch.multinomial(p, 1, generator=g) for p, g in zip(probs, generators, strict=True)])


def token_logprobs(logits: torch.Tensor, token: torch.Tensor, top: int, detokenize) -> list[TokenLogprob]:
    """Each row's chosen token with its log-probability under `logits` [N, V] and the `top` most likely tokens."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    chosen = logp.gather(1, token[:, None])[:, 0].tolist()
    best = torch.topk(logp, min(top, logp.shape[-1]), dim=-1) if top else None
    entries = []
    for row, t in enumerate(token.tolist()):
        alternatives = ()
        if best is not None:
            pairs = zip(best.indices[row].tolist(), best.values[row].tolist(), strict=True)
            alternatives = tuple((detokenize([i]), v) for i, v in pairs)
        entries.append(TokenLogprob(detokenize([t]), chosen[row], alternatives))
    return entries


@torch.no_grad()
def prompt_logprobs(model, prompt: Sequence[int], top: int, detokenize) -> list[TokenLogprob]:
    """The log-probability of each prompt token given those before it (None for the first, which has none)."""
    device = next(model.parameters()).device
    ids = torch.tensor([list(prompt)], dtype=torch.long, device=device)
    logits = model(ids)[0, :-1]
    return [TokenLogprob(detokenize(prompt[:1]), None), *token_logprobs(logits, ids[0, 1:], top, detokenize)]


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """`text` up to where its first stop string begins."""
    starts = [text.find(s) for s in stop if s in text]
    return text[: min(starts)] if starts else text
