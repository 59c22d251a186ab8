"""The static text decoder aigc had before its engine (aigc 0.1's `sampling/text.py:decode`), kept here as a
baseline only: one prompt, one batch of seeds, a cache per batch grown a step at a time, the whole text decoded
again at every step when there are stop strings. Without `use_cache` every step recomputes the whole window
(what the cache saves; also the only way to decode a model that has no cache, like the nanoGPT reference)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from aigc.sampling.text import Completion, Decoding, TokenLogprob, choose, cut_at_stop, token_logprobs


@torch.no_grad()
def decode(
    model,
    prompt: Sequence[int],
    seeds: Sequence[int],
    decoding: Decoding,
    detokenize: Callable[[list[int]], str],
    on_token: Callable[[int, int], None] | None = None,
    use_cache: bool = True,
) -> list[Completion]:
    """Completions of one prompt (token ids), one per seed, each of up to `decoding.max_tokens` tokens, their
    text cut where its first stop string begins. `on_token(row, token)` hears each token as it is chosen, until the
    row's text holds a stop string (so a stream may have shown the start of one). Without `use_cache` every
    step recomputes the whole window (to measure what the cache saves)."""
    device = next(model.parameters()).device
    context = model.context
    generators = [torch.Generator(device).manual_seed(int(seed)) for seed in seeds]
    sequences = torch.tensor([list(prompt)] * len(seeds), dtype=torch.long, device=device)
    cache = model.new_cache(len(seeds)) if use_cache else None
    logits = model(sequences[:, -context:], cache)[:, -1]
    done, lengths = [False] * len(seeds), [decoding.max_tokens] * len(seeds)
    logprobs: list[list[TokenLogprob]] = [[] for _ in seeds]
    for step in range(decoding.max_tokens):
        token = choose(logits, sequences[:, len(prompt) :], decoding, generators)
        sequences = torch.cat([sequences, token[:, None]], dim=1)
        if decoding.logprobs is not None:
            for row, entry in enumerate(token_logprobs(logits, token, decoding.logprobs, detokenize)):
                if not done[row]:
                    logprobs[row].append(entry)
        for row, t in enumerate(token.tolist()):
            if not done[row]:
                if t in decoding.stop_tokens:
                    done[row], lengths[row] = True, step + 1
                # only stop strings need the text so far (decoding it every step costs O(length) a token)
                elif decoding.stop:
                    done[row] = any(s in detokenize(sequences[row, len(prompt) :].tolist()) for s in decoding.stop)
                    lengths[row] = step + 1
                if on_token is not None and not done[row]:
                    on_token(row, t)
        if all(done):
            break
        if cache is not None and cache.length() < context:
            logits = model(token[:, None], cache)[:, -1]
        else:  # no cache, or the window is full: the last `context` tokens, recomputed
            logits = model(sequences[:, -context:])[:, -1]
    completions = []
    for row in range(len(seeds)):
        ids = sequences[row, len(prompt) : len(prompt) + lengths[row]].tolist()
        text = detokenize([t for t in ids if t not in decoding.stop_tokens])
        reported = tuple(logprobs[row]) if decoding.logprobs is not None else None
        completions.append(
            Completion(cut_at_stop(text, decoding.stop), lengths[row], "stop" if done[row] else "length", reported)
        )
    return completions
