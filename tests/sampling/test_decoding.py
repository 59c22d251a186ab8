"""Text decoding: the filters as their papers define them, per-seed completions independent of the batch, the
KV slots changing nothing, stop strings, and the context window."""

import pytest
import torch

from aigc.models.transformer import Transformer, TransformerConfig
from aigc.sampling.engine import Engine, Request
from aigc.sampling.text import Decoding, cut_at_stop, filter_top_k_top_p, penalise_repeats


def test_top_k_and_top_p_keep_the_most_likely_tokens():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_top_k_top_p(logits, 2, 1.0)).tolist() == [[False, False, True, True]]
    # nucleus 0.7: 0.5 alone is short of it, 0.5 + 0.3 reaches it
    assert torch.isinf(filter_top_k_top_p(logits, 0, 0.7)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_top_k_top_p(logits, 0, 0.1)).tolist() == [[False, True, True, True]]
    assert not torch.isinf(filter_top_k_top_p(logits, 0, 1.0)).any()


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits():
    logits = torch.tensor([[2.0, -1.0, 3.0]])
    penalised = penalise_repeats(logits, torch.tensor([[0, 1, 0]]), 2.0)
    assert penalised.tolist() == [[1.0, -2.0, 3.0]]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Transformer(TransformerConfig(width=32, layers=2, heads=4, context=24, vocab_size=20)).eval()


def detokenize(tokens):
    return "".join(chr(ord("a") + t) for t in tokens)


def decode(model, prompt, seeds, decoding, detokenize):
    """Completions of one prompt, one per seed, as a static batch of the engine."""
    done = {}
    requests = [Request(list(prompt), s, decoding, lambda c, k=k: done.__setitem__(k, c)) for k, s in enumerate(seeds)]
    Engine(model, detokenize, slots=len(seeds)).complete(requests)
    return [done[k] for k in range(len(seeds))]


def texts(model, prompt, seeds, decoding):
    return [c.text for c in decode(model, prompt, seeds, decoding, detokenize)]


def test_each_completion_depends_on_its_seed_alone(model):
    decoding = Decoding(max_tokens=12, temperature=1.0, top_k=10, top_p=0.9)
    together = texts(model, [1, 2, 3], [5, 6, 7, 8], decoding)
    alone = [texts(model, [1, 2, 3], [seed], decoding)[0] for seed in (5, 6, 7, 8)]
    assert together == alone and len(set(together)) > 1 and all(len(c) == 12 for c in together)


def test_the_kv_slots_change_no_token(model):
    (cached,) = texts(model, [4, 5], [0], Decoding(max_tokens=10, temperature=0))
    sequence = [4, 5]
    for _ in range(10):  # the reference: the whole sequence recomputed at every step
        with torch.no_grad():
            sequence.append(int(model(torch.tensor([sequence]))[0, -1].argmax()))
    assert cached == detokenize(sequence[2:])


def test_greedy_decoding_past_the_context_crops_as_nanogpt_does(model):
    completion = texts(model, list(range(20)), [0], Decoding(max_tokens=30, temperature=0))[0]
    assert len(completion) == 30  # 50 tokens through a 24-token window
    sequence = list(range(20))
    for _ in range(30):  # the reference: recompute the last 24 tokens, take the most likely next one
        with torch.no_grad():
            sequence.append(int(model(torch.tensor([sequence[-24:]]))[0, -1].argmax()))
    assert completion == detokenize(sequence[20:])


def test_stop_strings_end_a_completion_where_they_begin(model):
    (free,) = decode(model, [1], [3], Decoding(max_tokens=15, temperature=0), detokenize)
    stop = free.text[5:7]
    (stopped,) = decode(model, [1], [3], Decoding(max_tokens=15, temperature=0, stop=(stop,)), detokenize)
    assert stopped.text == cut_at_stop(free.text, (stop,)) and len(stopped.text) <= 5
    # the tokens it took to see the stop string, and why it ended
    assert stopped.finish_reason == "stop" and stopped.tokens == free.text.find(stop) + len(stop)
    assert free.finish_reason == "length" and free.tokens == 15
    assert cut_at_stop("hello world", ("o w", "ld")) == "hell" and cut_at_stop("abc", ("x",)) == "abc"
