"""The completions that the test of the text engine holds it to: tiny seeded models (aigc's transformer with a
byte-level BPE tokenizer, so that tokens split characters; and a transformers GPT-2) and a set of requests that
touch every decoding setting (greedy, temperature, top-k, top-p, repetition penalty, stop strings and tokens,
logprobs, prompts that run past the context). They were recorded with the static decoder aigc had before its
engine; `python tests/sampling/recorded.py` records them again with that decoder (kept as the benchmarks'
baseline, benchmarks/baseline_decoder.py) and writes completions.json."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from aigc.data.tokenizer import TextTokenizer
from aigc.families.lm.config import LMSampleConfig
from aigc.models.transformer import TransformerConfig

RECORDED = Path(__file__).with_name("completions.json")
TEXT = (
    "Le café coûte trois euros — über günstig, naïve façade. The quick brown fox jumps over the lazy dog; "
    "Ærøskøbing, São Paulo, Kraków, Zürich. 東京と大阪。 Numbers: 12, 345, 6789. "
) * 4
PROMPTS = ["The ", "café — ", "Zürich. 東京", "The quick brown fox jumps over "]
SEEDS = [0, 1, 2, 3]
SAMPLES = {
    "greedy": LMSampleConfig(max_tokens=12, temperature=0.0),
    "temperature": LMSampleConfig(max_tokens=16, temperature=1.0, top_k=0),
    "top_k": LMSampleConfig(max_tokens=16, temperature=0.9, top_k=20),
    "top_p": LMSampleConfig(max_tokens=16, temperature=1.1, top_k=0, top_p=0.8),
    "penalty": LMSampleConfig(max_tokens=16, temperature=0.7, top_k=0, repetition_penalty=1.5),
    "stop": LMSampleConfig(max_tokens=30, temperature=1.0, top_k=0, stop=("e", "ü")),
    "stop_tokens": LMSampleConfig(max_tokens=30, temperature=1.0, top_k=0, stop_tokens=(5, 17, 33)),
    "logprobs": LMSampleConfig(max_tokens=8, temperature=1.0, top_k=0, logprobs=2),
    "past_context": LMSampleConfig(max_tokens=40, temperature=0.9, top_k=0),
}


def tokenizer() -> TextTokenizer:
    return TextTokenizer.train("bpe", TEXT, 300)


def aigc_model():
    from aigc.families.lm.model import LanguageModel

    torch.manual_seed(0)
    config = TransformerConfig(width=32, layers=2, heads=4, kv_heads=2, context=24, vocab_size=300)
    return LanguageModel(config, tokenizer()).eval()


def transformers_model():
    from transformers import GPT2Config

    from aigc.families.lm.model import PretrainedLanguageModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=300, n_positions=24, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0)
    return PretrainedLanguageModel(config.to_json_string(), tokenizer()).eval()


MODELS = {"aigc": aigc_model, "transformers": transformers_model}


def summary(completion) -> dict:
    logprobs = None
    if completion.logprobs is not None:
        logprobs = [[e.token, round(e.logprob, 4), [[t, round(v, 4)] for t, v in e.top]] for e in completion.logprobs]
    return {
        "text": completion.text,
        "tokens": completion.tokens,
        "finish_reason": completion.finish_reason,
        "logprobs": logprobs,
    }


def draw(model, sample) -> list[dict]:
    """Each prompt's completions for SEEDS, drawn as one call (a static batch)."""
    from aigc.families.registry import generate

    prompts = [p for p in PROMPTS for _ in SEEDS]
    return [summary(c) for c in generate(model, SEEDS * len(PROMPTS), prompts, sample)]


def draw_baseline(model, sample) -> list[dict]:
    """What `draw` gives, by the decoder before the engine: each prompt's seeds decoded as one batch."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    from aigc.families.registry import family
    from baseline_decoder import decode

    lm, decoding = family("lm"), family("lm").decoding(sample)
    drawn = [decode(model, lm.encode(model, p), SEEDS, decoding, model.tokenizer.decode) for p in PROMPTS]
    return [summary(c) for completions in drawn for c in completions]


def record() -> dict:
    return {
        kind: {name: draw_baseline(build(), sample) for name, sample in SAMPLES.items()}
        for kind, build in MODELS.items()
    }


if __name__ == "__main__":
    RECORDED.write_text(json.dumps(record(), indent=1, ensure_ascii=False) + "\n")
