"""POST /v1/completions and /v1/chat/completions in OpenAI's shapes, driven by OpenAI's own Python client: one
body or a stream of server-sent events, the same text either way and whatever else is asked beside it, log-probs
and echo, the usage at the end of a stream when asked for, the server's limits as 422s naming the field, and the
tokens and time to first token in /metrics."""

import json
import time

import pytest
from fastapi.testclient import TestClient

from aigc.core.checkpoint import latest_checkpoint
from aigc.serving.app import create_app
from aigc.serving.settings import load_settings


@pytest.fixture(scope="module")
def served(lm_run, chat_run, diffusion_run):
    models = {
        "lm": latest_checkpoint(lm_run),
        "chat": latest_checkpoint(chat_run),
        "digits": latest_checkpoint(diffusion_run),
    }
    with TestClient(create_app(load_settings(models=models, max_tokens=64, max_prompt_tokens=28, burst=200))) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield client


@pytest.fixture(scope="module")
def openai_client(served):
    from openai import OpenAI

    return OpenAI(base_url="http://testserver/v1", api_key="none", http_client=served, max_retries=0)


def test_openai_s_client_gets_completions_in_its_own_shape(openai_client):
    reply = openai_client.completions.create(model="lm", prompt="line 4", max_tokens=12, seed=7, n=2, temperature=0.9)
    assert reply.object == "text_completion" and reply.model == "lm" and reply.id.startswith("cmpl-")
    assert [c.index for c in reply.choices] == [0, 1] and all(c.finish_reason == "length" for c in reply.choices)
    assert reply.usage.prompt_tokens == len("line 4") and reply.usage.completion_tokens == 24
    again = openai_client.completions.create(
        model="lm", prompt=["the ", "line 4"], max_tokens=12, seed=7, n=2, temperature=0.9
    )
    # prompt i's completion j is choice i * n + j, drawn with seed + j: the same text as when asked alone
    assert [c.text for c in again.choices[2:]] == [c.text for c in reply.choices]


def test_a_stream_sends_the_same_text_as_one_body(openai_client):
    asked = dict(model="lm", prompt="line 1", max_tokens=20, seed=3, temperature=1.0, stop=[" the"])
    whole = openai_client.completions.create(**asked).choices[0]
    pieces, finishes = [], []
    for chunk in openai_client.completions.create(**asked, stream=True):
        for choice in chunk.choices:
            pieces.append(choice.text)
            finishes.append(choice.finish_reason)
    assert "".join(pieces) == whole.text and " the" not in whole.text
    assert finishes[-1] == whole.finish_reason and len(pieces) > 2  # text arrived as it was drawn
    chunks = list(openai_client.completions.create(**asked, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole_usage(openai_client, asked)


def whole_usage(client, asked):
    return client.completions.create(**asked).usage.completion_tokens


def test_logprobs_are_the_model_s_own_and_echo_scores_the_prompt_too(openai_client, lm_run):
    import math

    import torch

    from aigc.families.registry import load_model

    asked = dict(model="lm", prompt="line 4", max_tokens=6, seed=1, temperature=1.0, logprobs=3)
    choice = openai_client.completions.create(**asked, echo=True).choices[0]
    plain = openai_client.completions.create(**asked).choices[0]
    assert choice.text == "line 4" + plain.text
    lp = choice.logprobs
    assert lp.token_logprobs[0] is None and len(lp.tokens) == len("line 4") + 6 and lp.text_offset[:3] == [0, 1, 2]
    model, _ = load_model(lm_run)
    ids = torch.tensor([model.tokenizer.encode(choice.text)])
    with torch.no_grad():
        expected = torch.log_softmax(model(ids)[0, :-1], -1).gather(1, ids[0, 1:, None])[:, 0]
    assert all(math.isclose(a, b, abs_tol=1e-4) for a, b in zip(lp.token_logprobs[1:], expected.tolist(), strict=True))
    assert all(
        len(top) == 3 and max(top.values()) >= got - 1e-6
        for top, got in zip(lp.top_logprobs[1:], lp.token_logprobs[1:], strict=True)
    )


def test_chat_completions_answer_in_openai_s_shape_and_end_at_the_turn(openai_client):
    messages = [{"role": "user", "content": "line 2"}]
    reply = openai_client.chat.completions.create(
        model="chat", messages=messages, max_tokens=40, seed=0, n=2, temperature=0.0, logprobs=True, top_logprobs=2
    )
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-") and len(reply.choices) == 2
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and "<|im_end|>" not in choice.message.content
    assert choice.finish_reason in ("stop", "length") and len(choice.logprobs.content[0].top_logprobs) == 2
    assert reply.usage.prompt_tokens == len("user\nline 2\nassistant\n") + 3  # 3 markers, one token each
    pieces, roles = [], []
    stream = openai_client.chat.completions.create(
        model="chat",
        messages=messages,
        max_tokens=40,
        seed=0,
        temperature=0.0,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        for c in chunk.choices:
            roles.append(c.delta.role)
            pieces.append(c.delta.content or "")
        usage = chunk.usage
    assert roles[0] == "assistant" and "".join(pieces) == choice.message.content
    assert usage.completion_tokens == reply.usage.completion_tokens // 2


def test_a_model_without_a_chat_template_refuses_chat(served):
    reply = served.post("/v1/chat/completions", json={"model": "lm", "messages": [{"role": "user", "content": "x"}]})
    assert reply.status_code == 422 and "has no chat template" in reply.json()["detail"]
    reply = served.post("/v1/chat/completions", json={"model": "chat", "messages": []})
    assert reply.status_code == 422
    reply = served.post(
        "/v1/chat/completions",
        json={"model": "chat", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 2},
    )
    assert reply.status_code == 422 and "top_logprobs needs logprobs" in reply.json()["detail"]


def test_the_server_s_limits_and_the_model_s_refusals_are_422s(served):
    cases = [
        (
            {"model": "lm", "prompt": "x", "max_tokens": 65},
            "max_tokens = 65: this server allows at most 64",
            "max_tokens",
        ),
        ({"model": "lm", "prompt": "x", "max_tokens": 0}, "max_tokens = 0: must lie in 1..4096", "max_tokens"),
        ({"model": "lm", "prompt": "x", "temperature": -1}, "temperature = -1.0: must lie in 0.0..10.0", "temperature"),
        ({"model": "lm", "prompt": "€"}, "character '€' (U+20AC) is not in this model's vocabulary", None),
        ({"model": "lm", "prompt": "x" * 40}, "the prompt is 40 tokens; this model reads at most 31", None),
        ({"model": "lm", "prompt": ["x", "x" * 29]}, "the prompt is 29 tokens; this server allows 28", None),
        ({"model": "lm", "prompt": ""}, "the prompt is empty", None),
        ({"model": "digits", "prompt": "x"}, "digits generates images, not text; use /v1/generate", None),
        ({"prompt": "x"}, "several models are served; name one in 'model'", None),
    ]
    for body, message, field in cases:
        reply = served.post("/v1/completions", json=body)
        assert reply.status_code == 422, body
        assert message in reply.json()["detail"] and reply.json().get("field") == field, (body, reply.json())
    reply = served.post("/v1/generate", json={"model": "lm", "n": 2})
    assert reply.status_code == 422 and "lm generates text, not images; use /v1/completions" in reply.json()["detail"]
    reply = served.post("/v1/completions", json={"model": "lm", "prompt": "x", "logit_bias": {}})
    assert reply.status_code == 422 and reply.json()["detail"][0]["loc"] == ["body", "logit_bias"]


def test_an_unknown_model_is_openai_s_404_model_not_found(served, openai_client):
    import openai

    not_found = {
        "message": "The model `nope` does not exist.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    with pytest.raises(openai.NotFoundError, match="The model `nope` does not exist.") as refused:
        openai_client.completions.create(model="nope", prompt="line", max_tokens=2)
    assert (refused.value.code, refused.value.param, refused.value.type) == (
        "model_not_found",
        "model",
        not_found["type"],
    )
    with pytest.raises(openai.NotFoundError) as refused:
        openai_client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert refused.value.body == not_found
    with pytest.raises(openai.NotFoundError) as refused:
        openai_client.models.retrieve("nope")
    assert refused.value.body == not_found
    reply = served.post("/v1/generate", json={"model": "nope", "n": 1})  # the images route answers the same
    assert reply.status_code == 404
    assert reply.json() == {"detail": not_found["message"], "field": "model", "error": not_found}
    reply = served.post("/v1/completions", json={"model": "", "prompt": "x"})  # a name, even empty, is looked up
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "model_not_found"


def test_openai_s_client_retrieves_a_model_as_the_list_describes_it(served, openai_client):
    model = openai_client.models.retrieve("lm")
    assert (model.id, model.object, model.owned_by) == ("lm", "model", "aigc")
    listed = next(m for m in served.get("/v1/models").json()["data"] if m["id"] == "lm")
    assert served.get("/v1/models/lm").json() == listed


def test_an_invalid_body_names_its_field_to_openai_s_client(openai_client):
    import openai

    with pytest.raises(openai.UnprocessableEntityError, match="n: Input should be greater than or equal to 1") as bad:
        openai_client.completions.create(model="lm", prompt="x", n=0)
    assert (bad.value.param, bad.value.type, bad.value.code) == ("n", "invalid_request_error", None)
    with pytest.raises(openai.UnprocessableEntityError, match="logit_bias: Extra inputs are not permitted") as bad:
        openai_client.completions.create(model="lm", prompt="x", logit_bias={"1": 2})
    assert bad.value.param == "logit_bias"
    with pytest.raises(openai.UnprocessableEntityError, match="messages.0.role: Input should be") as bad:
        openai_client.chat.completions.create(model="chat", messages=[{"role": "robot", "content": "x"}])
    assert bad.value.param == "messages.0.role"


def test_models_and_metrics_describe_the_language_model(served):
    info = next(m for m in served.get("/v1/models").json()["data"] if m["name"] == "lm")
    assert info["modality"] == "text" and info["context"] == 32 and info["tokenizer"] == "char"
    assert {s["name"] for s in info["settings"]} == {
        "max_tokens",
        "temperature",
        "top_k",
        "top_p",
        "repetition_penalty",
    }
    served.post("/v1/completions", json={"model": "lm", "prompt": "line", "max_tokens": 5, "seed": 0})
    exposition = served.get("/metrics").text
    tokens = [line for line in exposition.splitlines() if line.startswith('aigc_tokens_generated_total{model="lm"}')]
    assert tokens and float(tokens[0].split()[-1]) >= 5
    assert 'aigc_time_to_first_token_seconds_count{model="lm"}' in exposition


def test_a_completion_is_the_same_alone_or_in_a_full_batch(served):
    from concurrent.futures import ThreadPoolExecutor

    asked = {"model": "lm", "prompt": "line 9", "max_tokens": 40, "seed": 11, "temperature": 1.0}
    alone = served.post("/v1/completions", json=asked).json()["choices"][0]["text"]
    others = [{**asked, "prompt": f"line {k}", "seed": k, "max_tokens": 10 + 4 * k} for k in range(12)]
    with ThreadPoolExecutor(13) as pool:  # they join and leave the decode batch at different steps
        replies = list(pool.map(lambda body: served.post("/v1/completions", json=body), [*others, asked]))
    assert all(r.status_code == 200 for r in replies), [
        (r.status_code, r.text[:90]) for r in replies if r.status_code != 200
    ]
    assert replies[-1].json()["choices"][0]["text"] == alone


@pytest.fixture(scope="module")
def long_server(lm_run):
    """One slot and one waiting place, completions of up to 4096 tokens (past the context: a second or more)."""
    models = {"lm": latest_checkpoint(lm_run)}
    settings = load_settings(models=models, max_tokens=4096, max_batch=1, queue_size=1, burst=100)
    with TestClient(create_app(settings)) as client:
        while client.get("/readyz").status_code != 200:
            time.sleep(0.05)
        yield client


def gauge(client, name):
    """The value of metric `name` of the one model (0 before it has one)."""
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(name + "{")]
    return float(lines[0].split()[-1]) if lines else 0.0


def test_a_client_that_leaves_mid_stream_frees_its_slot_at_once(long_server):
    body = {"prompt": "line 1", "max_tokens": 4096, "seed": 0, "stream": True}
    with long_server.stream("POST", "/v1/completions", json=body) as reply:
        next(reply.iter_lines())  # the first piece; then the client goes away
    deadline = time.monotonic() + 5
    while gauge(long_server, "aigc_decode_batch_occupancy") > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gauge(long_server, "aigc_decode_batch_occupancy") == 0
    assert gauge(long_server, "aigc_tokens_generated_total") == 0  # it never finished its 4096 tokens
    reply = long_server.post("/v1/completions", json={"prompt": "line 2", "max_tokens": 5, "seed": 0})
    assert reply.status_code == 200  # the slot is free again


def test_a_full_text_queue_answers_503(long_server):
    from concurrent.futures import ThreadPoolExecutor

    body = {"prompt": "line 1", "max_tokens": 2048, "seed": 0}
    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(
            r.status_code for r in pool.map(lambda _: long_server.post("/v1/completions", json=body), range(4))
        )
    assert 503 in statuses and set(statuses) <= {200, 503} and statuses.count(200) >= 1


def test_a_failure_no_handler_answers_is_openai_s_server_error(lm_run, monkeypatch):
    from aigc.serving.service import Service

    def broken(self, job):
        raise RuntimeError("a bug")

    monkeypatch.setattr(Service, "check", broken)
    models = {"lm": latest_checkpoint(lm_run)}
    with TestClient(create_app(load_settings(models=models)), raise_server_exceptions=False) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the served model did not load"
            time.sleep(0.05)
        reply = client.post("/v1/completions", json={"prompt": "line", "max_tokens": 2})
    assert reply.status_code == 500 and reply.json()["error"]["type"] == "server_error"
    assert "a bug" not in reply.text  # the details stay in the server's log


def test_a_failure_after_a_stream_began_is_an_event_in_openai_s_shape(lm_run, monkeypatch, caplog):
    from aigc.sampling.engine import Engine

    def broken(self, group):
        raise RuntimeError("a bug")

    monkeypatch.setattr(Engine, "choose", broken)
    models = {"lm": latest_checkpoint(lm_run)}
    with TestClient(create_app(load_settings(models=models))) as client:
        while client.get("/readyz").status_code != 200:
            time.sleep(0.05)
        body = {"prompt": "line", "max_tokens": 2, "stream": True}
        with client.stream("POST", "/v1/completions", json=body) as reply:
            events = [line for line in reply.iter_lines() if line.startswith("data: ")]
    assert reply.status_code == 200 and json.loads(events[-1][len("data: ") :])["error"]["type"] == "server_error"
    assert "a bug" not in " ".join(events) and "a bug" in caplog.text  # the details go to the server's log
