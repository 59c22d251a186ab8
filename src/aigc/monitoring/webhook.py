"""An alert's webhook: each alert POSTed as JSON from a thread of its own, a few tries with a timeout and a
growing pause between them, so that a dead or slow webhook never stops the scoring. Alerts wait in a bounded
queue; when it is full the oldest waiting one is dropped (and counted with the failures)."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.request
from collections.abc import Callable

LOG = logging.getLogger("aigc.monitor")


class Webhook:
    def __init__(self, url: str, on_failure: Callable[[], None], timeout: float = 5.0, tries: int = 3,
                 pause: float = 1.0, capacity: int = 100):  # fmt: skip
        self.url, self.on_failure = url, on_failure
        self.timeout, self.tries, self.pause = timeout, tries, pause
        self.waiting: queue.Queue = queue.Queue(capacity)
        self.thread = threading.Thread(target=self.run, name="aigc-webhook", daemon=True)
        self.thread.start()

    def send(self, alert: dict) -> None:
        """Queue an alert; never blocks."""
        while True:
            try:
                self.waiting.put_nowait(alert)
                return
            except queue.Full:
                try:
                    self.waiting.get_nowait()
                    self.on_failure()
                except queue.Empty:
                    pass

    def run(self) -> None:
        while True:
            alert = self.waiting.get()
            if alert is None:
                return
            self.deliver(alert)

    def deliver(self, alert: dict) -> bool:
        body = json.dumps(alert).encode()
        for attempt in range(self.tries):
            request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"}, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                    if reply.status < 300:
                        return True
            except Exception as error:  # any failure of the network or the other side: try again
                LOG.warning("webhook %s: try %d of %d failed: %s", self.url, attempt + 1, self.tries, error)
            if attempt + 1 < self.tries:
                time.sleep(self.pause * 2**attempt)
        self.on_failure()
        return False

    def close(self, wait: float = 10.0) -> None:
        """Deliver what waits, for at most `wait` seconds."""
        try:
            self.waiting.put(None, timeout=wait)
        except queue.Full:
            return
        self.thread.join(wait)
