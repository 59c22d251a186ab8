"""OpenAI's own Python client against a real `aigc serve` on loopback: completions, chat, streams, and the
server's refusals surfacing as the client's own exception types (401, 422, 429, 503)."""

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


def test_refusals_are_the_client_s_own_exceptions(server, key):
    with pytest.raises(openai.AuthenticationError):
        client(server, "not-a-key").completions.create(model="chat", prompt="line", max_tokens=2)
    with pytest.raises(openai.UnprocessableEntityError, match="must lie in 1..4096"):
        client(server, key[1]).completions.create(model="chat", prompt="line", max_tokens=5000)

    def long(_):
        try:
            client(server, key[1]).completions.create(model="chat", prompt="line", max_tokens=3000, seed=0)
            return 200
        except openai.InternalServerError as error:  # 503: one slot, one waiting place
            return error.status_code
        except openai.RateLimitError as error:
            return error.status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(long, range(4)))
    assert 503 in statuses and 200 in statuses
    with pytest.raises(openai.RateLimitError):
        for _ in range(40):  # past the burst of 30
            client(server, key[1]).completions.create(model="chat", prompt="line", max_tokens=1)
