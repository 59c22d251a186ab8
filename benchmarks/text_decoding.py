"""Text decoding, side by side in one process on the same random weights (speed does not depend on them):
- what the KV cache saves: time per generated token of the static decoder aigc had before its engine
  (benchmarks/baseline_decoder.py) with and without its cache, and of the engine, at 64 and 1024 tokens, batch 1;
- `aigc sample --n 16`: tokens a second of 16 completions of one prompt drawn as one static batch, by the engine
  (`TextFamily.generate`) against the old static decoder (the completions are the same:
  tests/sampling/test_engine.py holds the engine to completions recorded from it)."""

from __future__ import annotations

import time

import torch

from aigc.data.tokenizer import TextTokenizer
from aigc.families.lm.model import LanguageModel
from aigc.families.registry import family
from aigc.models.transformer import TransformerConfig
from aigc.sampling.engine import Engine, Request
from aigc.sampling.text import Decoding
from baseline_decoder import decode

# a 2-core-CPU sized model (4.8 M parameters without the embedding) with room for 1,024 generated tokens
CONFIG = TransformerConfig(width=256, layers=6, heads=8, context=1152, vocab_size=65)
LENGTHS = (64, 1024)
BATCH, BATCH_TOKENS = 16, 256


def engine_decode(model, prompt, seeds, decoding) -> None:
    requests = [Request(list(prompt), seed, decoding, on_done=lambda completion: None) for seed in seeds]
    Engine(model, lambda ids: "", slots=len(seeds)).complete(requests)


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def bench_text_decoding() -> dict:
    torch.manual_seed(0)
    tokenizer = TextTokenizer.train("char", "".join(chr(32 + i) for i in range(CONFIG.vocab_size)))
    model = LanguageModel(CONFIG, tokenizer).eval()
    prompt = [1, 2, 3, 4]
    rows = []
    for length in LENGTHS:
        decoding = Decoding(max_tokens=length, temperature=1.0)
        cached = timed(decode, model, prompt, [0], decoding, lambda ids: "", None, True)
        recomputed = timed(decode, model, prompt, [0], decoding, lambda ids: "", None, False)
        engine = timed(engine_decode, model, prompt, [0], decoding)
        rows.append(
            {
                "tokens": length,
                "ms_per_token_cache": round(1000 * cached / length, 2),
                "ms_per_token_no_cache": round(1000 * recomputed / length, 2),
                "speedup": round(recomputed / cached, 2),
                "ms_per_token_engine": round(1000 * engine / length, 2),
            }
        )
        print(f"text decoding, {length} tokens: {rows[-1]}")
    sample = family("lm").sample_config(max_tokens=BATCH_TOKENS, temperature=1.0, top_k=0)
    seeds, total = list(range(BATCH)), BATCH * BATCH_TOKENS
    baseline = timed(decode, model, prompt, seeds, family("lm").decoding(sample), tokenizer.decode)
    engine = timed(family("lm").generate, model, seeds, [tokenizer.decode(prompt)] * BATCH, sample)
    batch = {
        "completions": BATCH,
        "tokens_each": BATCH_TOKENS,
        "tokens_per_s_engine": round(total / engine, 1),
        "tokens_per_s_baseline": round(total / baseline, 1),
        "ratio": round(baseline / engine, 2),
    }
    print(f"aigc sample --n {BATCH}: {batch}")
    parameters = sum(p.numel() for p in model.parameters())
    return {
        "model": {**CONFIG.__dict__, "parameters": parameters},
        "threads": torch.get_num_threads(),
        "rows": rows,
        "static_batch": batch,
    }
