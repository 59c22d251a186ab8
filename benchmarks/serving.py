"""The service under load, on loopback: a bounded number of requests from a fixed number of concurrent clients
against `aigc serve`, side by side with request merging on and off, and once past the queue's capacity. Every
reply must be a 200, or an explicit 429/503; anything else fails the benchmark."""

from __future__ import annotations

import collections
import re
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))  # the repository root, for the test suite's server helper
from tests.serving.server import Server  # noqa: E402

ALLOWED = {200, 429, 503}


def load(server: Server, requests: int, concurrency: int, body: dict) -> dict:
    """Send `requests` generate requests from `concurrency` clients at once; statuses, latency and throughput."""

    def one(index: int) -> tuple[int, float]:
        start = time.perf_counter()
        reply = server.call("POST", "/v1/generate", body | {"seed": index * body["n"]})
        return reply.status, time.perf_counter() - start

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        replies = list(pool.map(one, range(requests)))
    seconds = time.perf_counter() - started
    statuses = collections.Counter(status for status, _ in replies)
    unexpected = set(statuses) - ALLOWED
    if unexpected:
        raise RuntimeError(f"the service answered {dict(statuses)}; only {sorted(ALLOWED)} are acceptable")
    ok = sorted(latency for status, latency in replies if status == 200)
    refused = sorted(latency for status, latency in replies if status != 200)
    metrics = server.call("GET", "/metrics").body.decode()
    merged = _metric(metrics, "aigc_batch_requests_sum") / max(1.0, _metric(metrics, "aigc_batch_requests_count"))
    return {
        "requests": requests,
        "concurrency": concurrency,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "p50_ms": round(1000 * statistics.median(ok), 1),
        "p99_ms": round(1000 * ok[min(len(ok) - 1, int(0.99 * len(ok)))], 1),
        "refused_p99_ms": round(1000 * refused[min(len(refused) - 1, int(0.99 * len(refused)))], 1)
        if refused
        else None,
        "requests_per_s": round(len(ok) / seconds, 2),
        "images_per_s": round(len(ok) * body["n"] / seconds, 1),
        "requests_per_generate_call": round(merged, 2),
    }


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def bench_serving(run: Path, requests: int = 200, concurrency: int = 16, n: int = 4, steps: int = 10) -> dict:
    body = {"n": n, "steps": steps}
    open_limits = ["--rate", "1000000", "--burst", "1000000", "--threads", "2"]
    rows = {}
    with Server(run, *open_limits, "--queue-size", str(concurrency)) as server:
        rows["merged"] = load(server, requests, concurrency, body)
    with Server(run, *open_limits, "--queue-size", str(concurrency), "--max-batch", str(n)) as server:
        rows["one_request_per_call"] = load(server, requests, concurrency, body)
    with Server(run, *open_limits, "--queue-size", str(concurrency)) as server:
        rows["overload"] = load(server, requests, 4 * concurrency, body)  # 4x more clients than queue places
    speedup = rows["merged"]["images_per_s"] / rows["one_request_per_call"]["images_per_s"]
    return {"model": run.name, "body": body, "rows": rows, "merging_speedup": round(speedup, 2)}
