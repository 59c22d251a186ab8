"""The service through a real uvicorn process on 127.0.0.1, as a client sees it."""

import base64
import io
import json
import socket
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image
from tests.serving.server import Server

from aigc.cli import main as aigc
from aigc.report import write_report


def make_key(directory):
    """(key file, the key of 'alice'), made by `aigc keys add` as a user would."""
    path = directory / "keys.txt"
    made = subprocess.run(
        [sys.executable, "-m", "aigc", "keys", "add", path, "--name", "alice"], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    return path, made.stdout.strip()


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    return make_key(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def server(diffusion_run, gan_run, key, tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "serve.log"
    with Server(diffusion_run, gan_run, "--api-keys", key[0], "--rate", "6000", "--burst", "1000", log_path=log) as s:
        yield s


def test_every_route_but_health_and_metrics_needs_a_known_key(server, key):
    for path in ("/healthz", "/readyz", "/metrics", "/"):
        assert server.call("GET", path).status == 200, path
    missing = server.call("GET", "/v1/models")
    assert missing.status == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in missing.json()["detail"]
    assert missing.json()["error"]["type"] == "invalid_request_error"  # OpenAI's shape, as every refusal
    assert server.call("POST", "/v1/generate", {"model": "digits"}, key="aigc_wrong").status == 401
    models = server.call("GET", "/v1/models", key=key[1])
    assert models.status == 200
    described = {m["name"]: m for m in models.json()["data"]}
    assert described["digits"]["family"] == "diffusion" and described["digits"]["classes"] == 10
    assert described["gan"]["family"] == "gan" and described["gan"]["default_sample"] == {"truncation": None}


def test_the_api_draws_what_aigc_sample_draws(server, key, diffusion_run, gan_run, tmp_path):
    grid = server.call("POST", "/v1/generate", {"model": "digits", "n": 16, "seed": 0, "steps": 5}, key=key[1])
    assert grid.status == 200 and grid.headers["content-type"] == "image/png"
    assert grid.headers["x-aigc-seeds"] == ",".join(map(str, range(16)))
    assert Image.open(io.BytesIO(grid.body)).size == ((4 * 10 + 2) * 8,) * 2  # 4x4 8-pixel digits, 2 apart, x8
    assert aigc(["sample", str(diffusion_run), "--n", "16", "--steps", "5", "--out", str(tmp_path / "grid.png")]) == 0
    assert grid.body == (tmp_path / "grid.png").read_bytes()

    body = {"model": "digits", "seeds": [3, 11], "class": 2, "format": "png-zip", "sampler": "ddpm", "steps": 4}
    archive = zipfile.ZipFile(io.BytesIO(server.call("POST", "/v1/generate", body, key=key[1]).body))
    flags = ["--seeds", "3,11", "--class", "2", "--sampler", "ddpm", "--steps", "4"]
    assert aigc(["sample", str(diffusion_run), *flags, "--out", f"{tmp_path}/each/"]) == 0
    assert sorted(archive.namelist()) == ["000003.png", "000011.png"]
    for name in archive.namelist():
        assert archive.read(name) == (tmp_path / "each" / name).read_bytes()

    body = {"model": "gan", "seeds": [5, 6, 7], "truncation": 0.8, "format": "json"}
    drawn = server.call("POST", "/v1/generate", body, key=key[1]).json()
    assert drawn["seeds"] == [5, 6, 7] and drawn["labels"] is None and drawn["sample"]["truncation"] == 0.8
    assert aigc(["sample", str(gan_run), "--seeds", "5-7", "--truncation", "0.8", "--out", f"{tmp_path}/gan/"]) == 0
    for seed, png in zip(drawn["seeds"], drawn["images"], strict=True):
        assert base64.b64decode(png) == (tmp_path / "gan" / f"{seed:06d}.png").read_bytes()


def test_without_a_seed_the_server_picks_one_and_says_which(server, key):
    reply = server.call("POST", "/v1/generate", {"model": "digits", "n": 3, "steps": 2, "format": "json"}, key=key[1])
    seeds = reply.json()["seeds"]
    assert len(seeds) == 3 and seeds == list(range(seeds[0], seeds[0] + 3))
    assert reply.json()["labels"] == [s % 10 for s in seeds]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"n": 4}, "several models are served; name one"),
        ({"model": "digits", "n": 0}, "greater than or equal to 1"),
        ({"model": "digits", "n": 65}, "less than or equal to 64"),
        ({"model": "digits", "steps": 101}, "steps = 101: this server allows at most 100"),
        ({"model": "digits", "sampler": "plms"}, "sampler = 'plms': choose one of euler, heun"),
        ({"model": "digits", "schedule": "cosine"}, "schedule = 'cosine': choose one of karras"),
        ({"model": "digits", "schedule": "leading"}, "schedule = 'leading': applies to vp (DDPM) models"),
        ({"model": "digits", "guidance": -1}, "guidance = -1.0: must lie in 0.0..100.0"),
        ({"model": "digits", "class": 10}, "class out of range; this model has classes 0..9"),
        ({"model": "digits", "seed": -1}, "greater than or equal to 0"),
        ({"model": "digits", "seeds": [1, 2], "n": 3}, "n is 3 but seeds lists 2"),
        ({"model": "digits", "seeds": [1], "seed": 1}, "not both"),
        ({"model": "digits", "format": "gif"}, "Input should be 'png-grid'"),
        ({"model": "digits", "truncation": 0.5}, "truncation: not a setting of diffusion models"),
        ({"model": "gan", "steps": 5}, "steps: not a setting of gan models"),
        ({"model": "gan", "truncation": 0.01}, "truncation = 0.01: must be at least 0.05"),
        ({"model": "gan", "class": 1}, "this model is unconditional"),
        ({"model": "digits", "colour": "red"}, "Extra inputs are not permitted"),
        ({"model": "digits", "prompt": "a 5"}, "digits draws classes, not prompts; drop 'prompt'"),
        ("{not json", "Invalid JSON"),
    ],
)
def test_each_bad_field_is_a_422_that_says_what_is_wrong(server, key, body, message):
    raw = body.encode() if isinstance(body, str) else None
    reply = server.call("POST", "/v1/generate", body if raw is None else None, key=key[1], raw=raw)
    assert reply.status == 422
    assert message in json.dumps(reply.json()["detail"])


def test_a_huge_body_is_refused_unread(server, key):
    reply = server.call("POST", "/v1/generate", key=key[1], raw=b'{"model": "' + b"x" * 100_000 + b'"}')
    assert reply.status == 413 and "request body over 16384 bytes" in reply.json()["detail"]
    assert reply.json()["error"]["message"] == reply.json()["detail"]


def test_an_unknown_model_is_a_404_model_not_found_and_a_known_one_is_retrieved(server, key):
    reply = server.call("POST", "/v1/generate", {"model": "nope", "n": 2}, key=key[1])
    assert reply.status == 404 and reply.json()["detail"] == "The model `nope` does not exist."
    assert reply.json()["error"] == {
        "message": "The model `nope` does not exist.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    assert server.call("GET", "/v1/models/nope", key=key[1]).json()["error"]["code"] == "model_not_found"
    assert server.call("GET", "/v1/models/digits").status == 401
    digits = server.call("GET", "/v1/models/digits", key=key[1]).json()
    assert digits["id"] == "digits" and digits["object"] == "model" and digits["family"] == "diffusion"
    unknown = server.call("GET", "/v1/images", key=key[1])  # a route that does not exist: the same shape
    assert unknown.status == 404 and unknown.json()["error"]["type"] == "invalid_request_error"


def test_metrics_count_requests_images_and_load_time(server, key):
    server.call("POST", "/v1/generate", {"model": "digits", "n": 2, "steps": 2}, key=key[1])
    server.call("GET", "/v1/models")
    metrics = server.call("GET", "/metrics").body.decode()
    assert 'aigc_http_requests_total{method="POST",route="/v1/generate",status="200"}' in metrics
    assert 'aigc_http_requests_total{method="GET",route="/v1/models",status="401"}' in metrics
    assert 'aigc_http_request_duration_seconds_bucket{le="0.5",route="/v1/generate",status="200"}' in metrics
    assert 'aigc_images_generated_total{model="digits"}' in metrics
    assert 'aigc_model_load_seconds{model="gan"}' in metrics
    assert "aigc_queue_depth 0.0" in metrics and "aigc_batch_images_count" in metrics


def test_logs_are_json_lines_that_name_the_caller_but_never_hold_the_key(server, key):
    reply = server.call("POST", "/v1/generate", {"model": "digits", "n": 1, "steps": 1, "seed": 987}, key=key[1])
    assert reply.status == 200
    deadline = time.monotonic() + 10  # the server writes a request's line once the response is sent
    while True:
        text = open(server.log.name).read()
        lines = [json.loads(line) for line in text.splitlines()]
        generated = [e for e in lines if e.get("route") == "/v1/generate" and e["status"] == 200]
        if (generated and generated[-1]["images"] == 1) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert generated and generated[-1]["caller"] == "alice" and generated[-1]["images"] == 1
    assert key[1] not in text


def test_the_training_report_of_a_served_model(server, key, diffusion_run):
    missing = server.call("GET", "/v1/models/digits/report", key=key[1])
    assert missing.status == 404 and "aigc report RUN_DIR" in missing.json()["detail"]
    unknown = server.call("GET", "/v1/models/nope/report", key=key[1])
    assert unknown.status == 404 and unknown.json()["error"]["code"] == "model_not_found"
    assert server.call("GET", "/v1/models/digits/report").status == 401
    write_report(diffusion_run)
    report = server.call("GET", "/v1/models/digits/report", key=key[1])
    assert report.status == 200 and b"<h1>digits</h1>" in report.body
    described = {m["name"]: m for m in server.call("GET", "/v1/models", key=key[1]).json()["data"]}
    assert described["digits"]["report"] and not described["gan"]["report"]
    (diffusion_run / "report.html").unlink()  # the run is shared with other tests


def test_with_several_workers_metrics_add_up_over_them(diffusion_run, tmp_path):
    log = tmp_path / "serve.log"
    with Server(diffusion_run, "--workers", "2", "--queue-size", "16", "--rate", "6000", log_path=log) as server:
        body = {"n": 2, "steps": 2}
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda seed: server.call("POST", "/v1/generate", body | {"seed": seed}), range(24)))
        metrics = server.call("GET", "/metrics").body.decode()
        assert server.stop() == 0
    assert [reply.status for reply in replies] == [200] * 24
    assert "aigc_queue_capacity 32.0" in metrics  # both workers' queues: /metrics sums every worker
    assert 'aigc_images_generated_total{model="digits"} 48.0' in metrics
    lines = [json.loads(line) for line in log.read_text().splitlines()]  # nothing but JSON, workers' exits too
    assert len({entry["pid"] for entry in lines if entry["message"] == "started"}) == 2


def test_over_the_rate_a_caller_gets_429(diffusion_run):
    with Server(diffusion_run, "--rate", "6", "--burst", "2", "--max-pixels", "200") as server:
        too_large = server.call("POST", "/v1/generate", {"n": 4})  # 4 x 8 x 8 pixels
        replies = [too_large, *(server.call("GET", "/v1/models") for _ in range(2))]
    assert [r.status for r in replies] == [422, 200, 429]
    assert "4 images of this model are 256 pixels; this server allows 200" in too_large.json()["detail"]
    assert int(replies[2].headers["retry-after"]) == 10  # 6 a minute: one token every 10 s


def test_a_full_queue_answers_503_at_once_and_sigterm_finishes_requests_in_flight(diffusion_run):
    slow = {"n": 64, "steps": 100, "sampler": "heun", "seed": 0}  # seconds on one thread; one model: no name
    server = Server(diffusion_run, "--queue-size", "1")
    replies = {}

    def send(name):
        replies[name] = server.call("POST", "/v1/generate", slow)

    running = threading.Thread(target=send, args=("running",))
    running.start()
    time.sleep(0.5)  # taken by the worker: the queue is empty again
    queued = threading.Thread(target=send, args=("queued",))
    queued.start()
    time.sleep(0.3)
    start = time.monotonic()
    refused = server.call("POST", "/v1/generate", slow)
    assert time.monotonic() - start < 1.0
    assert refused.status == 503 and int(refused.headers["retry-after"]) >= 1
    assert "queue is full" in refused.json()["detail"]
    assert server.stop() == 0  # SIGTERM while one request runs and one waits
    running.join(), queued.join()
    assert replies["running"].status == 200 and replies["queued"].status == 200
    with pytest.raises(OSError):
        server.call("GET", "/healthz")


def test_a_port_in_use_is_a_one_line_error(diffusion_run):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "aigc", "serve", diffusion_run, "--port", str(port)], capture_output=True, text=True
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: cannot listen on 127.0.0.1:{port}")
