"""The language-model service under load, on loopback: streaming clients asking for 128-token completions from
`aigc serve`, continuous batching (up to 64 sequences a step) side by side with one completion at a time
(`--max-batch 1`), at 16 and 64 concurrent clients, and once with more clients than the queue holds. Reported:
total tokens a second, time to first token and time per token (p50/p99), and what overload answers - only 200
or 503 are acceptable; anything else fails the benchmark. Then 16 streams running when 8 prompts of the model's
full context arrive at once: the largest gap between two pieces of a running stream against its median gap
(chunked prefill keeps it to about one chunk's work)."""

from __future__ import annotations

import collections
import http.client
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))  # the repository root, for the test suite's server helper
from tests.serving.server import Server  # noqa: E402

ALLOWED = {200, 503}
TOKENS = 128


def streamed(port: int, body: dict, on_first=None) -> dict:
    """One streamed completion: status, time to its first text, the times of its pieces, its tokens."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    start = time.perf_counter()
    connection.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    if response.status != 200:
        response.read()
        return {"status": response.status}
    arrivals, tokens = [], 0
    for line in response:
        if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
            continue
        event = json.loads(line[6:])
        if event.get("usage"):
            tokens = event["usage"]["completion_tokens"]
        if any(choice["text"] for choice in event["choices"]):
            arrivals.append(time.perf_counter() - start)
            if on_first is not None and len(arrivals) == 1:
                on_first()
    connection.close()
    return {"status": 200, "first": arrivals[0], "last": arrivals[-1], "tokens": tokens, "start": start,
            "arrivals": arrivals}  # fmt: skip


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def load(server: Server, requests: int, concurrency: int) -> dict:
    def one(index: int) -> dict:
        body = {"prompt": "ROMEO:", "max_tokens": TOKENS, "seed": index, "stream": True,
                "stream_options": {"include_usage": True}}  # fmt: skip
        return streamed(server.port, body)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        replies = list(pool.map(one, range(requests)))
    seconds = time.perf_counter() - started
    statuses = collections.Counter(reply["status"] for reply in replies)
    if set(statuses) - ALLOWED:
        raise RuntimeError(f"the service answered {dict(statuses)}; only {sorted(ALLOWED)} are acceptable")
    ok = [reply for reply in replies if reply["status"] == 200]
    first = [1000 * r["first"] for r in ok]
    per_token = [1000 * (r["last"] - r["first"]) / max(1, r["tokens"] - 1) for r in ok]
    return {
        "requests": requests,
        "concurrency": concurrency,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "tokens_per_s": round(sum(r["tokens"] for r in ok) / seconds, 1),
        "first_token_p50_ms": round(statistics.median(first), 1),
        "first_token_p99_ms": round(percentile(first, 0.99), 1),
        "per_token_p50_ms": round(statistics.median(per_token), 2),
        "per_token_p99_ms": round(percentile(per_token, 0.99), 2),
    }


def long_prompts(server: Server, streams: int = 16, arriving: int = 8) -> dict:
    """`streams` streaming completions; once each has its first text, `arriving` prompts of the model's whole
    context at once. For each running stream: its largest gap between two pieces after they arrived, against
    its median gap."""
    import threading

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    connection.request("GET", "/v1/models")
    context = json.loads(connection.getresponse().read())["data"][0]["context"]
    started, lock = threading.Event(), threading.Lock()
    running = [0]

    def first() -> None:
        with lock:
            running[0] += 1
            if running[0] == streams:
                started.set()

    # each within the context, so that no step recomputes a cropped window (its cost is not what is measured)
    def stream(index: int) -> dict:
        body = {"prompt": "ROMEO:", "max_tokens": context - len("ROMEO:"), "seed": index, "stream": True}
        return streamed(server.port, body, first)

    def long(index: int) -> dict:
        prompt = ("ROMEO: " * context)[: context - 1]  # a character model: one token a character
        return streamed(server.port, {"prompt": prompt, "max_tokens": 1, "seed": index, "stream": True})

    with ThreadPoolExecutor(streams + arriving) as pool:
        running_replies = [pool.submit(stream, i) for i in range(streams)]
        started.wait(600)
        time.sleep(0.2)
        sent = time.perf_counter()
        long_replies = [pool.submit(long, i) for i in range(arriving)]
        replies = [r.result() for r in running_replies]
        long_done = [r.result() for r in long_replies]
    ratios, largest, medians = [], [], []
    for reply in replies:
        times = [reply["start"] + t for t in reply["arrivals"]]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        after = [gap for gap, t in zip(gaps, times[1:], strict=True) if t >= sent]
        largest.append(max(after))
        medians.append(statistics.median(gaps))
        ratios.append(largest[-1] / medians[-1])
    statuses = collections.Counter(r["status"] for r in long_done)
    return {
        "streams": streams,
        "arriving": arriving,
        "prompt_tokens": context - 1,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "max_gap_over_median_worst": round(max(ratios), 2),
        "max_gap_over_median_p50": round(statistics.median(ratios), 2),
        "max_gap_ms": round(1000 * max(largest), 1),
        "median_gap_ms": round(1000 * statistics.median(medians), 1),
        "long_first_token_p50_ms": round(1000 * statistics.median(r["first"] for r in long_done), 1),
    }


def bench_serving_lm(run: Path) -> dict:
    limits = ["--rate", "1000000", "--burst", "1000000", "--threads", "2", "--max-tokens", str(TOKENS)]
    rows = {}
    for concurrency in (16, 64):
        queue = ["--queue-size", str(concurrency)]
        with Server(run, *limits, *queue, "--max-batch", "64") as server:
            rows[f"continuous_{concurrency}"] = load(server, 2 * concurrency, concurrency)
        with Server(run, *limits, *queue, "--max-batch", "1") as server:
            rows[f"one_at_a_time_{concurrency}"] = load(server, 2 * concurrency, concurrency)
        print(f"lm service at {concurrency} clients: {rows[f'continuous_{concurrency}']} / "
              f"{rows[f'one_at_a_time_{concurrency}']}")  # fmt: skip
    with Server(run, *limits, "--queue-size", "16", "--max-batch", "16") as server:
        rows["overload"] = load(server, 128, 64)  # 64 clients, 16 in the batch and 16 waiting
    with Server(run, *limits, "--max-batch", "64") as server:
        rows["long_prompts"] = long_prompts(server)
        print(f"lm service, 16 streams and 8 full-context prompts: {rows['long_prompts']}")
    speedups = {
        str(c): round(rows[f"continuous_{c}"]["tokens_per_s"] / rows[f"one_at_a_time_{c}"]["tokens_per_s"], 2)
        for c in (16, 64)
    }
    per_token = {
        str(c): round(rows[f"continuous_{c}"]["per_token_p50_ms"] / rows[f"one_at_a_time_{c}"]["per_token_p50_ms"], 2)
        for c in (16, 64)
    }
    return {
        "model": run.name,
        "max_tokens": TOKENS,
        "rows": rows,
        "continuous_batching_speedup": speedups,
        "per_token_p50_over_alone": per_token,
    }
