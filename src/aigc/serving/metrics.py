"""Prometheus metrics of the service, one set per app (no module-level registry, so tests can build many apps).

With several uvicorn workers, `aigc serve` points PROMETHEUS_MULTIPROC_DIR at a fresh directory before they start:
each worker's metrics then live in shared files and /metrics, answered by any one worker, adds them all up.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "aigc_http_requests", "HTTP requests answered", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "aigc_http_request_duration_seconds",
            "time from request to response",
            ["route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "aigc_queue_depth", "generation requests waiting for the model", registry=r, multiprocess_mode="livesum"
        )
        self.queue_capacity = Gauge(
            "aigc_queue_capacity", "requests that may wait before 503", registry=r, multiprocess_mode="livesum"
        )
        self.batch_images = Histogram(
            "aigc_batch_images", "images per generate() call (merged requests)", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_requests = Histogram(
            "aigc_batch_requests", "requests merged into one generate() call", buckets=BATCH_BUCKETS, registry=r
        )
        self.images = Counter("aigc_images_generated", "images generated", ["model"], registry=r)
        self.load_seconds = Gauge(
            "aigc_model_load_seconds", "time to load a model", ["model"], registry=r, multiprocess_mode="max"
        )

    def close(self) -> None:
        """A worker that stops leaves the sums of the live workers (queue depth and capacity)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            multiprocess.mark_process_dead(os.getpid())

    def exposition(self) -> bytes:
        """The text format of every metric (of all workers when there are several)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
