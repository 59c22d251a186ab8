"""Continuous batching: every completion drawn in a shared, changing batch equals what `decode` draws for it
alone (stops, stop tokens, logprobs and the crop past the context included), requests join as slots free, and a
cancelled one leaves at its next step."""

import threading

import pytest
import torch

from aigc.models.transformer import Transformer, TransformerConfig
from aigc.sampling.batching import DecodeLoop, Request
from aigc.sampling.text import Decoding, decode

VOCAB = 30


def detokenize(ids):
    return "".join(chr(ord("a") + i % 26) for i in ids)


def model_of(kind: str):
    torch.manual_seed(0)
    if kind == "aigc":
        return Transformer(TransformerConfig(width=32, layers=2, heads=4, kv_heads=2, context=16, vocab_size=VOCAB))
    from transformers import GPT2Config

    from aigc.models.pretrained import PretrainedLM

    config = GPT2Config(vocab_size=VOCAB, n_positions=16, n_embd=32, n_layer=2, n_head=2)
    return PretrainedLM(config.to_json_string())


def requests_and_expected(model):
    generator = torch.Generator().manual_seed(1)
    asked = []
    for k in range(7):
        prompt = torch.randint(VOCAB, (2 + k,), generator=generator).tolist()
        decoding = Decoding(
            max_tokens=6 + 3 * k,  # the longest runs past the context of 16 and crops
            temperature=[0.0, 0.8, 1.2][k % 3],
            top_k=[0, 5, 0][k % 3],
            top_p=[1.0, 1.0, 0.9][k % 3],
            stop=("ab",) if k == 2 else (),
            stop_tokens=(3,) if k == 4 else (),
            logprobs=2 if k == 5 else None,
        )
        asked.append((prompt, 100 + k, decoding))
    expected = [decode(model, p, [s], d, detokenize)[0] for p, s, d in asked]
    return asked, expected


@pytest.mark.parametrize("kind", ["aigc", "transformers"])
def test_each_completion_in_a_changing_batch_equals_decoding_it_alone(kind):
    model = model_of(kind).eval()
    asked, expected = requests_and_expected(model)
    done, streamed = {}, {k: [] for k in range(len(asked))}
    loop = DecodeLoop(model, detokenize, max_batch=3)  # seven requests through three slots: they join as others end
    loop.submit([
        Request(p, s, d, on_done=lambda c, k=k: done.__setitem__(k, c), on_token=streamed[k].append)
        for k, (p, s, d) in enumerate(asked)
    ])  # fmt: skip
    loop.close()
    loop.run()
    for k, want in enumerate(expected):
        got = done[k]
        assert (got.text, got.tokens, got.finish_reason) == (want.text, want.tokens, want.finish_reason), k
        if want.logprobs is not None:  # the same numbers, to the rounding of a batched matmul
            assert [e.token for e in got.logprobs] == [e.token for e in want.logprobs]
            assert all(abs(a.logprob - b.logprob) < 1e-5 for a, b in zip(got.logprobs, want.logprobs, strict=True))
    assert expected[2].finish_reason == "stop" or "ab" not in expected[2].text
    assert all(len(streamed[k]) <= expected[k].tokens for k in streamed)


def test_a_cancelled_request_leaves_and_frees_its_slot():
    model = model_of("aigc").eval()
    asked, expected = requests_and_expected(model)
    cancel, done, steps = threading.Event(), {}, []
    first = Request(
        asked[6][0],
        asked[6][1],
        asked[6][2],
        on_done=lambda c: done.__setitem__("first", c),
        on_token=lambda t: cancel.set() if len(steps) >= 2 else None,
        cancelled=cancel.is_set,
    )
    second = Request(*asked[0], on_done=lambda c: done.__setitem__("second", c))
    loop = DecodeLoop(model, detokenize, max_batch=1, on_step=lambda active, tokens: steps.append(active))
    loop.submit([first, second])
    loop.close()
    loop.run()
    assert "first" not in done and done["second"] == expected[0]  # the second got the only slot once freed
    assert len(steps) < expected[6].tokens + expected[0].tokens
