"""The text engine: completions equal to those recorded from the decoder before it (static batches), the same
whether drawn alone, in a static batch or joining a running one; streams that add up to the completion; a long
prompt fed in chunks while others decode; slots that stay consecutive as sequences come and go; cancellation."""

import json
import sys
from pathlib import Path

import pytest
import torch

from aigc.families.registry import family
from aigc.sampling.engine import Engine, Request
from aigc.sampling.text import Decoding

sys.path.insert(0, str(Path(__file__).parent))
import recorded  # noqa: E402

EXPECTED = json.loads(recorded.RECORDED.read_text())


@pytest.fixture(scope="module", params=list(recorded.MODELS))
def model(request):
    return request.param, recorded.MODELS[request.param]()


def same(got: list[dict], want: list[dict]) -> None:
    for g, w in zip(got, want, strict=True):
        assert (g["text"], g["tokens"], g["finish_reason"]) == (w["text"], w["tokens"], w["finish_reason"])
        if w["logprobs"] is not None:  # the same tokens; numbers to the rounding of a batched matmul
            assert [e[0] for e in g["logprobs"]] == [e[0] for e in w["logprobs"]]
            assert all(abs(a[1] - b[1]) < 1e-3 for a, b in zip(g["logprobs"], w["logprobs"], strict=True))


@pytest.mark.parametrize("name", list(recorded.SAMPLES))
def test_a_static_batch_draws_the_recorded_completions(model, name):
    kind, lm = model
    same(recorded.draw(lm, recorded.SAMPLES[name]), EXPECTED[kind][name])


def test_each_completion_alone_equals_it_in_a_batch(model):
    kind, lm = model
    sample = recorded.SAMPLES["stop"]
    lm_family = family("lm")
    alone = [
        recorded.summary(lm_family.generate(lm, [seed], [prompt], sample)[0])
        for prompt in recorded.PROMPTS
        for seed in recorded.SEEDS
    ]
    same(alone, EXPECTED[kind]["stop"])


def test_requests_joining_a_running_engine_draw_what_they_draw_alone(model):
    """Three slots, sixteen requests of every kind, submitted in two waves while the first decode."""
    kind, lm = model
    lm_family, asked = family("lm"), []
    for name in ("past_context", "stop_tokens", "logprobs", "penalty"):
        asked += [(p, s, recorded.SAMPLES[name], EXPECTED[kind][name][i]) for i, (p, s) in enumerate(pairs())][::4]
    done, streamed = {}, {k: [] for k in range(len(asked))}

    def on_done(k, completion):
        done[k] = completion

    requests = lm_family.requests(
        lm, [s for _, s, _, _ in asked], [p for p, _, _, _ in asked], recorded.SAMPLES["past_context"], None, on_done
    )
    requests = [
        Request(r.prompt, r.seed, lm_family.decoding(sample), r.on_done, streamed[k].append, on_error=fail)
        for k, (r, (_, _, sample, _)) in enumerate(zip(requests, asked, strict=True))
    ]
    engine = lm_family.engine(lm, slots=3)
    step = engine.step

    def checked_step(plan):  # the slots stay consecutive after every step, joins and leaves included
        step(plan)
        check_slots(engine.scheduler)

    engine.step = checked_step
    engine.submit(requests[:5])
    for _ in range(4):
        engine.step(engine.scheduler.plan())
    engine.complete(requests[5:])
    same([recorded.summary(done[k]) for k in range(len(asked))], [want for *_, want in asked])
    assert all("".join(streamed[k]) == done[k].text for k in streamed)


def fail(error: Exception):
    raise AssertionError(f"a request failed: {error!r}") from error


def pairs():
    return [(p, s) for p in recorded.PROMPTS for s in recorded.SEEDS]


def check_slots(scheduler) -> None:
    assert [s.slot for s in scheduler.running] == list(range(len(scheduler.running)))
    first = len(scheduler.running)
    assert sorted(s.slot for s in scheduler.prefilling) == list(range(first, first + len(scheduler.prefilling)))


def test_streamed_text_adds_up_to_each_completion_and_never_shows_a_stop_string():
    lm, lm_family = recorded.aigc_model(), family("lm")
    prompts = [p for p in recorded.PROMPTS for _ in recorded.SEEDS]
    seeds = recorded.SEEDS * len(recorded.PROMPTS)
    pieces = {k: [] for k in range(len(seeds))}
    drawn = lm_family.generate(lm, seeds, prompts, recorded.SAMPLES["stop"], on_text=lambda k, t: pieces[k].append(t))
    assert ["".join(pieces[k]) for k in pieces] == [c.text for c in drawn]
    assert any(c.finish_reason == "stop" for c in drawn) and all("e" not in c.text for c in drawn)


def test_a_long_prompt_is_fed_in_chunks_while_others_keep_decoding():
    torch.manual_seed(0)
    lm = recorded.aigc_model()
    lm_family = family("lm")
    engine = Engine(lm, lm.tokenizer.decode, slots=4, chunk=4)
    decoding = lm_family.decoding(recorded.SAMPLES["temperature"])
    engine.submit([Request([1, 2], 0, decoding, on_done=lambda c: None)])
    engine.step(engine.scheduler.plan())  # the short prompt in one step; it decodes from now on
    engine.submit([Request(list(range(3, 22)), 1, decoding, on_done=lambda c: None)])  # 19 tokens
    fed = []
    for _ in range(5):
        plan = engine.scheduler.plan()
        assert len(plan.decode) == 1  # the running sequence gets its token in every step
        fed.append(sum(n for _, n in plan.prefill))
        engine.step(plan)
    assert fed == [4, 4, 4, 4, 3]


def test_a_cancelled_request_leaves_at_its_next_step_and_frees_its_slot():
    lm, lm_family = recorded.aigc_model(), family("lm")
    cancelled, done = [False], {}
    sample = recorded.SAMPLES["past_context"]
    first, second = lm_family.requests(
        lm, [0, 1], ["The ", "The "], sample, None, done.__setitem__, cancelled=lambda: cancelled[0]
    )
    engine = lm_family.engine(lm, slots=1)
    engine.submit([first])
    engine.step(engine.scheduler.plan())
    cancelled[0] = True
    second.cancelled = lambda: False
    engine.complete([second])
    assert list(done) == [1] and done[1].tokens == sample.max_tokens


def greedy_alone(lm, prompt: list[int], tokens: int) -> list[int]:
    sequence = list(prompt)
    for _ in range(tokens):  # the reference: the whole sequence recomputed at every step
        with torch.no_grad():
            sequence.append(int(lm(torch.tensor([sequence[-lm.context :]]))[0, -1].argmax()))
    return sequence[len(prompt) :]


def test_a_prompt_half_fed_then_padded_beside_a_longer_one_keeps_its_keys():
    """A prompt fed in chunks while another decodes; the other leaves, and the rest of it is fed padded beside a
    new, longer prompt (a step with nothing decoding takes more than a chunk): neither writes where it reads."""
    lm = recorded.aigc_model()
    engine = Engine(lm, lm.tokenizer.decode, slots=3, chunk=4)
    greedy, done, cancelled = Decoding(max_tokens=6, temperature=0), {}, [False]
    engine.submit([Request([1, 2], 0, greedy, done.__setitem__, cancelled=lambda: cancelled[0])])
    engine.step(engine.scheduler.plan())
    half, longer = list(range(3, 23)), list(range(30, 50))  # 20 tokens each, the context is 24
    engine.submit([Request(half, 1, greedy, lambda c: done.__setitem__("half", c), on_error=fail)])
    for _ in range(4):  # 16 of its 20 tokens while the first decodes
        engine.step(engine.scheduler.plan())
    cancelled[0] = True
    engine.submit([Request(longer, 2, greedy, lambda c: done.__setitem__("longer", c), on_error=fail)])
    plan = engine.scheduler.plan()
    assert [n for _, n in plan.prefill] == [4, 20]  # padded to 20 beside the longer prompt
    engine.step(plan)
    engine.complete([])
    for name, prompt in (("half", half), ("longer", longer)):
        assert done[name].text == lm.tokenizer.decode(greedy_alone(lm, prompt, 6)), name


def test_a_sequence_past_the_context_still_counts_against_the_slots():
    lm, lm_family = recorded.aigc_model(), family("lm")
    sample = recorded.SAMPLES["past_context"]  # 19 prompt tokens + 40 through a context of 24
    done = {}
    first, second = lm_family.requests(lm, [0, 1], [recorded.PROMPTS[3]] * 2, sample, None, done.__setitem__)
    engine = lm_family.engine(lm, slots=1)
    engine.submit([first, second])
    for _ in range(12):
        engine.step(engine.scheduler.plan())
    assert engine.scheduler.windowed and not engine.scheduler.running  # the first left its slot for the window
    assert engine.scheduler.free() == 0 and len(engine.scheduler.waiting) == 1 and engine.queued() == 1
    engine.complete([])
    assert sorted(done) == [0, 1]


def test_a_cancelled_waiting_request_leaves_the_queue():
    lm, lm_family = recorded.aigc_model(), family("lm")
    gone = [False]
    requests = lm_family.requests(lm, [0, 1, 2], ["The "] * 3, recorded.SAMPLES["greedy"], None, lambda k, c: None)
    requests[2].cancelled = lambda: gone[0]
    engine = lm_family.engine(lm, slots=1)
    engine.submit(requests)
    assert engine.queued() == 2
    gone[0] = True
    engine.step(engine.scheduler.plan())
    assert engine.queued() == 1  # the second still waits; the third is gone


def test_a_stop_string_is_seen_before_the_half_character_that_follows_it():
    from aigc.sampling.detokenizer import Detokenizer

    pieces = {0: b"ab", 1: b"f\xc3", 2: b"\xa9"}  # token 1 ends in the first byte of "\u00e9"
    text = Detokenizer(lambda ids: b"".join(pieces[i] for i in ids).decode(errors="replace"), stop=("f",))
    assert not text.add(0) and text.add(1)
    whole = Detokenizer(lambda ids: b"".join(pieces[i] for i in ids).decode(errors="replace"))
    assert [whole.add(t) for t in (0, 1, 2)] == [False] * 3 and whole.take() == "abf\u00e9"


def test_an_empty_prompt_or_no_token_to_draw_is_refused():
    lm = recorded.aigc_model()
    engine = Engine(lm, lm.tokenizer.decode, slots=1)
    with pytest.raises(ValueError, match="prompt of at least one token"):
        engine.submit([Request([], 0, Decoding(max_tokens=3), lambda c: None)])
    with pytest.raises(ValueError, match="max_tokens of at least 1"):
        engine.submit([Request([1], 0, Decoding(max_tokens=0), lambda c: None)])


def test_an_error_outside_any_request_fails_them_all_and_the_engine_goes_on():
    lm = recorded.aigc_model()
    engine = Engine(lm, lm.tokenizer.decode, slots=2)
    errors, done = [], []

    def broken() -> bool:
        raise RuntimeError("the client's state is gone")

    greedy = Decoding(max_tokens=3, temperature=0)
    engine.submit([Request([1, 2], 0, greedy, done.append, on_error=errors.append, cancelled=broken)])
    engine.submit([Request([3], 1, greedy, done.append, on_error=errors.append)])
    engine.close()
    engine.run()  # returns once idle: the failure did not end the thread
    assert len(errors) == 2 and all("the client's state is gone" in str(e) for e in errors) and not done
    engine.open = True
    engine.submit([Request([3], 1, greedy, done.append, on_error=errors.append)])
    engine.close()
    engine.run()
    assert len(done) == 1 and done[0].tokens == 3
