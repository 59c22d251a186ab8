"""What the KV cache saves: time per generated token of a language model with and without it, at 64 and 1024
generated tokens, batch 1, same weights, same seeds, side by side in one process (the tokens are identical
either way; tests/sampling/test_decoding.py checks that). The weights are random: speed does not depend on them."""

from __future__ import annotations

import time

import torch

from aigc.models.transformer import Transformer, TransformerConfig
from aigc.sampling.text import Decoding, decode

# a 2-core-CPU sized model (4.8 M parameters without the embedding) with room for 1,024 generated tokens
CONFIG = TransformerConfig(width=256, layers=6, heads=8, context=1152, vocab_size=65)
LENGTHS = (64, 1024)


def bench_text_decoding() -> dict:
    torch.manual_seed(0)
    model = Transformer(CONFIG).eval()
    prompt = [1, 2, 3, 4]
    rows = []
    for length in LENGTHS:
        decoding = Decoding(max_tokens=length, temperature=1.0)
        seconds = {}
        for use_cache in (True, False):
            started = time.perf_counter()
            decode(model, prompt, [0], decoding, lambda ids: "", use_cache=use_cache)
            seconds[use_cache] = time.perf_counter() - started
        rows.append(
            {
                "tokens": length,
                "ms_per_token_cache": round(1000 * seconds[True] / length, 2),
                "ms_per_token_no_cache": round(1000 * seconds[False] / length, 2),
                "speedup": round(seconds[False] / seconds[True], 2),
            }
        )
        print(f"text decoding, {length} tokens: {rows[-1]}")
    parameters = sum(p.numel() for p in model.parameters())
    return {"model": {**CONFIG.__dict__, "parameters": parameters}, "threads": torch.get_num_threads(), "rows": rows}
