"""A polite stop: SIGINT/SIGTERM become a flag the training loop checks between steps."""

from __future__ import annotations

import signal
from contextlib import contextmanager


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step, so the step in flight completes."""

    def __init__(self):
        self.signal_name: str | None = None

    def __call__(self, signum, frame):
        self.signal_name = signal.Signals(signum).name

    @contextmanager
    def installed(self):
        previous = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
