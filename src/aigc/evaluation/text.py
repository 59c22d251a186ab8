"""Text metrics: the validation loss of a language model over a whole split (sliding windows of a stated context
and stride), bits per byte (comparable across tokenizers), perplexity, and, on generated samples, distinct-n and
the longest span copied verbatim from the training text (memorisation shown rather than guessed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from aigc.core.errors import UserError


@torch.no_grad()
def validation_loss(model, ids: np.ndarray, context: int, stride: int, batch_size: int = 16) -> tuple[float, int]:
    """(mean loss in nats per token, tokens scored) of `model` (tokens [N, T] -> logits [N, T, V]) on the token
    ids of a split. Windows of `context` tokens start every `stride` tokens; each token after the first is
    scored once, in the first window that holds it at a position past the overlap, so it sees at least
    `context - stride` tokens before it (all before it in the first window)."""
    if not 0 < stride <= context:
        raise ValueError(f"stride {stride} must lie in 1..context ({context})")
    if len(ids) < 2:
        raise UserError(f"the split holds {len(ids)} token(s); a loss needs at least 2")
    device = next(model.parameters()).device
    tokens = torch.from_numpy(np.asarray(ids, dtype=np.int64))
    context = min(context, len(tokens) - 1)  # a window is `context` inputs and the `context` tokens after them
    last = len(tokens) - context - 1
    starts = list(range(0, last + 1, stride))
    if starts[-1] < last:
        starts.append(last)  # the tail
    total, count, scored_until = 0.0, 0, 1  # token 0 has no context: it is never scored
    for first in range(0, len(starts), batch_size):
        group = starts[first : first + batch_size]
        windows = torch.stack([tokens[s : s + context + 1] for s in group]).to(device)  # (B, context + 1)
        logits = model(windows[:, :-1]).float()
        losses = F.cross_entropy(logits.transpose(1, 2), windows[:, 1:], reduction="none")  # (B, context)
        for row, start in enumerate(group):
            keep = max(scored_until, start + 1) - (start + 1)  # targets of this window already scored
            total += float(losses[row, keep:].sum())
            count += context - keep
            scored_until = start + 1 + context
    return total / count, count


def bits_per_byte(nats_per_token: float, tokens: int, text_bytes: int) -> float:
    """Total information of a text in bits divided by its UTF-8 bytes: a tokenizer-independent loss."""
    return nats_per_token * tokens / math.log(2) / text_bytes


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct word n-grams over all n-grams of the texts (Li et al. 2016); 0 when there are none."""
    grams = [tuple(words[i : i + n]) for words in (t.split() for t in texts) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def longest_copy(generated: str, training_text: str) -> int:
    """The length in characters of the longest span of `generated` that occurs verbatim in `training_text`
    (two pointers: the span [i, j) only ever grows at j or shrinks at i, so there are O(len(generated))
    substring searches)."""
    best, i = 0, 0
    for j in range(1, len(generated) + 1):
        while i < j and generated[i:j] not in training_text:
            i += 1
        best = max(best, j - i)
    return best
