"""The ASGI middleware around every request: a size limit on the body before the app reads it, then a count, a
time and a JSON log line for each response (the caller by key name, never the key)."""

from __future__ import annotations

import logging
import time
import traceback

from aigc.serving.errors import refusal
from aigc.serving.metrics import Metrics


class Observed:
    """ASGI middleware: refuses bodies over `max_body` bytes (413) before the app reads them, then counts, times
    and logs every response."""

    def __init__(self, app, metrics: Metrics, log: logging.Logger, max_body: int):
        self.app = app
        self.metrics = metrics
        self.log = log
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500
        error = None

        async def send_observed(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            body = await self._read_body(scope, receive)
            if body is None:
                too_large = refusal(413, f"request body over {self.max_body} bytes; send a smaller request")
                await too_large(scope, receive, send_observed)
            else:
                await self.app(scope, replay(body, receive), send_observed)
        except Exception as exc:
            error = exc
            raise
        finally:
            self._record(scope, status, time.perf_counter() - start, error)

    async def _read_body(self, scope, receive) -> bytes | None:
        """The whole body, or None when it is (or says it will be) larger than allowed."""
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                return None
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _record(self, scope, status: int, seconds: float, error: Exception | None) -> None:
        route = scope.get("route")
        name = getattr(route, "path", "unmatched")
        self.metrics.requests.labels(name, scope["method"], str(status)).inc()
        self.metrics.latency.labels(name, str(status)).observe(seconds)
        state = scope.get("state", {})
        fields = {
            "method": scope["method"],
            "route": name,
            "status": status,
            "ms": round(seconds * 1000, 1),
            "client": scope["client"][0] if scope.get("client") else None,
            "caller": state.get("caller"),
            **state.get("fields", {}),
        }
        if error is not None:
            fields["error"] = "".join(traceback.format_exception_only(error)).strip()
            self.log.error("request failed", extra={"fields": fields})
        else:
            self.log.info("request", extra={"fields": fields})


def replay(body: bytes, receive):
    """An ASGI receive that hands over the already-read body, then listens for the client leaving."""
    sent = False

    async def receive_replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_replayed
