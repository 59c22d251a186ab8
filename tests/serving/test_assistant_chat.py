"""An assistant served on /v1/chat/completions: OpenAI's shapes with the intent and the retrieved pairs' ids as
`aigc.assistant` (in the body, and in a stream's first event), counted in /metrics and logged; customer data
masked before the model reads it with --mask-prompts; a conversation over the context trimmed from its oldest
message, whole, and one whose newest message alone is over refused; and what the chat route refuses."""

import json
import logging
import time

import pytest
from fastapi.testclient import TestClient

from aigc.cli import main as aigc
from aigc.core.errors import UserError
from aigc.serving import completions
from aigc.serving.app import create_app
from aigc.serving.settings import load_settings

CARD, EMAIL = "4111 1111 1111 1111", "jane.doe@example.com"


@pytest.fixture(scope="module")
def support(assistant_parts):
    out = assistant_parts / "support"
    if not out.exists():
        parts = {name: str(assistant_parts / name) for name in ("gen", "index", "intents")}
        argv = ["assistant", "create", "--generator", parts["gen"], "--index", parts["index"], "--intents",
                parts["intents"], "--out", str(out)]  # fmt: skip
        assert aigc(argv) == 0
    return out


def serve(support, **settings):
    client = TestClient(create_app(load_settings(models={"support": support}, burst=200, **settings)))
    client.__enter__()
    deadline = time.monotonic() + 60
    while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    return client


@pytest.fixture(scope="module")
def served(support):
    client = serve(support, max_tokens=32)
    yield client
    client.__exit__(None, None, None)


def chat(text, **asked):
    return {"messages": [{"role": "user", "content": text}], "max_tokens": 8, "seed": 0, **asked}


def test_a_reply_says_the_intent_and_the_retrieved_pairs_in_body_stream_metrics_and_log(served, caplog):
    with caplog.at_level(logging.INFO, logger="aigc.serve"):
        reply = served.post("/v1/chat/completions", json=chat("how do I cancel order no. 7"))
    assert reply.status_code == 200
    body = reply.json()
    found = body["aigc"]["assistant"]
    assert body["object"] == "chat.completion" and isinstance(body["choices"][0]["message"]["content"], str)
    assert found["intent_source"] == "classifier" and found["intent"] in {"cancel_order", "track_order", "get_refund"}
    assert len(found["retrieved"]) == 1 and all(isinstance(i, int) for i in found["retrieved"])
    (logged,) = [r.fields for r in caplog.records if getattr(r, "fields", {}).get("route") == "/v1/chat/completions"]
    assert logged["assistant"] == found and logged["status"] == 200
    with served.stream("POST", "/v1/chat/completions", json=chat("how do I cancel order no. 7", stream=True)) as events:
        data = [json.loads(line[6:]) for line in events.iter_lines() if line.startswith("data: {")]
    assert data[0]["aigc"] == body["aigc"] and all("aigc" not in event for event in data[1:])
    streamed = "".join(event["choices"][0]["delta"].get("content", "") for event in data if event["choices"])
    assert streamed == body["choices"][0]["message"]["content"]
    metrics = served.get("/metrics").text
    assert f'aigc_assistant_intents_total{{intent="{found["intent"]}",model="support"}} 2.0' in metrics
    retrieved = found["retrieved_intents"][0]
    assert f'aigc_assistant_retrieved_pairs_total{{intent="{retrieved}",model="support"}} 2.0' in metrics
    info = served.get("/v1/models").json()["data"][0]
    assert info["chat"] and info["assistant"] == {"index": "bitext/train", "pairs": 72, "answers": 1,
                                                  "intent_source": "classifier"}  # fmt: skip


def test_what_the_assistant_cannot_answer_is_a_422_naming_it(served):
    no_user = {"messages": [{"role": "system", "content": "be brief"}], "max_tokens": 4}
    for asked, message in [
        (no_user, "the conversation has no customer message"),
        (chat("   "), "the conversation has no customer message"),
        (chat("how do I " * 200), "the conversation's system messages and newest messages are"),
    ]:
        reply = served.post("/v1/chat/completions", json=asked)
        assert reply.status_code == 422 and message in reply.json()["detail"]


def test_a_long_conversation_loses_its_oldest_messages_whole(served):
    turns = []
    for i in range(6):
        turns += [{"role": "user", "content": f"how do I track order no. {i}"},
                  {"role": "assistant", "content": f"Sure. Open the order history, choose order {i}."}]  # fmt: skip
    asked = {"messages": [*turns, {"role": "user", "content": "and cancel it"}], "max_tokens": 4, "seed": 1}
    body = served.post("/v1/chat/completions", json=asked).json()
    assert "aigc" in body, body
    dropped = body["aigc"]["trimmed_messages"]
    assert 0 < dropped < len(turns)
    kept = asked["messages"][dropped:]  # the same conversation without them is not trimmed, and its prompt as long
    again = served.post("/v1/chat/completions", json={**asked, "messages": kept}).json()
    assert "trimmed_messages" not in again["aigc"] and again["usage"]["prompt_tokens"] == body["usage"]["prompt_tokens"]
    assert again["choices"][0]["message"] == body["choices"][0]["message"]


def test_the_message_a_reply_answers_is_kept_when_the_conversation_ends_in_a_reply(served):
    from aigc.families.registry import family_of
    from aigc.families.text import fitted_chat_prompt

    service = served.app.state.service.loaded()["support"]
    family, model, config = family_of(service.config), service.model, service.config
    long = {"role": "assistant", "content": "Sure. Open the order history, choose order 1."}
    question = {"role": "user", "content": "how do I track order no. 9"}
    messages = [{"role": "system", "content": "be brief"}, long, long, question, long]
    kept = [messages[0], question, long]  # the system message, the last user message and the newest stay
    most = len(family.tokenizer(model).encode(family.chat_prompt(config, kept)))
    assert fitted_chat_prompt(family, model, config, messages, most) == (family.chat_prompt(config, kept), 2)
    one_gone = family.chat_prompt(config, messages[:1] + messages[2:])
    fewer = len(family.tokenizer(model).encode(one_gone))
    assert fitted_chat_prompt(family, model, config, messages, fewer) == (one_gone, 1)  # no more than must go
    assert fitted_chat_prompt(family, model, config, messages, 10_000) == (family.chat_prompt(config, messages), 0)
    with pytest.raises(UserError, match=f"are {most} tokens whole; this model reads at most {most - 1}"):
        fitted_chat_prompt(family, model, config, messages, most - 1)


def test_masked_prompts_reach_the_model_as_placeholders(served, support):
    masking = serve(support, mask_prompts=True)
    try:
        models = masking.app.state.service.loaded()
        settings = masking.app.state.settings
        request = completions.chat_model(["support"], settings)(**chat(f"card {CARD}, mail {EMAIL}; refund no. 3"))
        prompt = completions.chat_job(request, models, settings).conditions[0]
        assert "card {{Card Number}}, mail {{Email}}; refund no. 3" in prompt and CARD not in prompt
        plain = completions.chat_job(request, served.app.state.service.loaded(), served.app.state.settings)
        assert CARD in plain.conditions[0]  # unmasked unless asked for
        long = completions.chat_model(["support"], settings)(**chat("refund no. 3", max_tokens=1000))
        job = completions.chat_job(long, models, settings)
        assert job.sample.max_tokens == 256 - len(job.encoded[job.conditions[0]])  # the reply ends at the context
        reply = masking.post("/v1/chat/completions", json=chat(f"card {CARD}"))
        assert reply.status_code == 200
    finally:
        masking.__exit__(None, None, None)
