"""OpenAI's own Python client against a real `aigc serve` on loopback: completions, chat, streams, retrieving a
model, and the server's refusals surfacing as the client's own exception types with OpenAI's codes (401, 404,
413, 422, 429, 503)."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from tests.serving.server import Server
from tests.serving.test_server import make_key

openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    return make_key(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def server(chat_run, key):
    flags = ["--api-keys", key[0], "--max-tokens", "4096", "--max-batch", "1", "--queue-size", "1", "--burst", "30"]
    with Server(chat_run, *flags) as s:
        yield s


def client(server, key, retries=0):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=retries)


def test_completions_chat_and_streams_through_the_official_client(server, key):
    c = client(server, key[1])
    text = c.completions.create(model="chat", prompt="line 3", max_tokens=8, seed=0).choices[0].text
    assert len(text) > 0
    reply = c.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "line 3"}], max_tokens=8, seed=0
    )
    pieces = [
        chunk.choices[0].delta.content or ""
        for chunk in c.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "line 3"}], max_tokens=8, seed=0, stream=True
        )
        if chunk.choices
    ]
    assert "".join(pieces) == reply.choices[0].message.content
    assert [m.id for m in c.models.list()] == ["chat"]


def test_models_are_retrieved_and_an_unknown_one_is_not_found(server, key):
    c = client(server, key[1])
    model = c.models.retrieve("chat")
    assert (model.id, model.object, model.owned_by) == ("chat", "model", "aigc")
    for ask in (
        lambda: c.models.retrieve("gpt-4o"),
        lambda: c.completions.create(model="gpt-4o", prompt="line", max_tokens=2),
        lambda: c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}]),
    ):
        with pytest.raises(openai.NotFoundError, match="The model `gpt-4o` does not exist.") as refused:
            ask()
        assert (refused.value.code, refused.value.param, refused.value.type) == (
            "model_not_found",
            "model",
            "invalid_request_error",
        )
    with pytest.raises(openai.NotFoundError):  # a route aigc does not have
        c.embeddings.create(model="chat", input="line")


def test_refusals_are_the_client_s_own_exceptions(server, key):
    with pytest.raises(openai.AuthenticationError, match="API key not recognised") as refused:
        client(server, "not-a-key").completions.create(model="chat", prompt="line", max_tokens=2)
    assert (refused.value.code, refused.value.type) == ("invalid_api_key", "invalid_request_error")
    with pytest.raises(openai.UnprocessableEntityError, match="must lie in 1..4096") as refused:
        client(server, key[1]).completions.create(model="chat", prompt="line", max_tokens=5000)
    assert refused.value.param == "max_tokens"
    with pytest.raises(openai.APIStatusError, match="request body over 16384 bytes") as refused:
        client(server, key[1]).completions.create(model="chat", prompt="x" * 20_000, max_tokens=2)
    assert refused.value.status_code == 413

    def long(_):
        try:
            client(server, key[1]).completions.create(model="chat", prompt="line", max_tokens=3000, seed=0)
            return 200, None
        except openai.InternalServerError as error:  # 503: one slot, one waiting place
            return error.status_code, (error.type, error.code)
        except openai.RateLimitError as error:
            return error.status_code, (error.type, error.code)

    with ThreadPoolExecutor(4) as pool:
        answers = dict(pool.map(long, range(4)))
    assert 200 in answers and answers[503] == ("service_unavailable_error", "server_is_overloaded")
    with pytest.raises(openai.RateLimitError, match="requests a minute exceeded") as refused:
        for _ in range(40):  # past the burst of 30
            client(server, key[1]).completions.create(model="chat", prompt="line", max_tokens=1)
    assert (refused.value.code, refused.value.type) == ("rate_limit_exceeded", "rate_limit_error")
