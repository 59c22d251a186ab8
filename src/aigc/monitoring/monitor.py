"""`aigc monitor`: a classifier over a stream of messages - each scored once, in order, in batches of what has
arrived - its labels counted and its negative share watched (surge.py), an alert printed, appended to a file and
sent to a webhook when negative messages surge, and all of it exported to Prometheus (metrics.py).

A message is a line: plain text, or a JSON object whose `text_field` holds the text (its other fields are kept
in the scored record). A line with no text to score is counted and skipped, never fatal."""

from __future__ import annotations

import datetime
import json
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from aigc.core.errors import UserError
from aigc.monitoring.follow import Follower
from aigc.monitoring.metrics import MonitorMetrics
from aigc.monitoring.surge import Reading, SurgeRule, SurgeWatch

Batches = Iterator[list[str]]


@dataclass(frozen=True)
class Stream:
    """Where messages come from and how they are read."""

    follow: Path | None = None  # a file to follow; None: standard input
    from_end: bool = False  # start at the followed file's end (only lines written from now on)
    once: bool = False  # stop at the followed file's end rather than wait for more
    text_field: str = "text"  # of a JSON line
    batch: int = 64  # most messages scored at once
    poll: float = 0.2  # seconds between looks at a followed file


def stdin_batches(stream: Stream) -> Batches:
    """Lines of standard input, in batches of what has arrived (a reader thread feeds a queue), to its end."""
    lines: queue.Queue = queue.Queue(maxsize=10 * stream.batch)

    def read() -> None:
        for line in sys.stdin:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, name="aigc-stdin", daemon=True).start()
    while True:
        batch, ended = [lines.get()], False
        while batch[-1] is not None and len(batch) < stream.batch:
            try:
                batch.append(lines.get_nowait())
            except queue.Empty:
                break
        if batch[-1] is None:
            batch, ended = batch[:-1], True
        if batch:
            yield batch
        if ended:
            return


def file_batches(stream: Stream, stop: threading.Event) -> Batches:
    """The followed file's complete lines, in batches, until `stop` is set (or its end, with `once`)."""
    follower = Follower(stream.follow, stream.from_end)
    try:
        while not stop.is_set():
            lines = follower.poll()
            for first in range(0, len(lines), stream.batch):
                yield lines[first : first + stream.batch]
            if not lines and stream.once:
                yield from ([line] for line in follower.rest())
                return
            if not lines:
                stop.wait(stream.poll)
    finally:
        follower.close()


class Monitor:
    """Scores batches of lines with a labelling family's model and watches their negative share."""

    def __init__(self, family, model, sample, negative: str, rule: SurgeRule, metrics: MonitorMetrics,
                 on_alert: Callable[[dict], None], text_field: str = "text"):  # fmt: skip
        self.family, self.model, self.sample = family, model, sample
        self.labels = family.labels(model)
        if negative not in self.labels:
            raise UserError(f"--negative {negative}: not a label of this model ({', '.join(self.labels)})")
        self.negative, self.rule, self.metrics, self.on_alert = negative, rule, metrics, on_alert
        self.text_field = text_field
        self.watch = SurgeWatch(rule)
        metrics.margin.set(rule.margin)

    def score(self, lines: list[str], clock: Callable[[], float] = time.monotonic) -> list[dict]:
        """A record per line with a text: the line's fields, its label and probabilities, and the watch's state."""
        messages = [message for message in map(self.message, lines) if message is not None]
        if not messages:
            return []
        started = time.perf_counter()
        texts = [message[self.text_field] for message in messages]
        probabilities = self.family.classify(self.model, texts, self.sample, batch_size=len(texts))
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        records = []
        for message, row in zip(messages, probabilities.tolist(), strict=True):
            label = self.labels[max(range(len(row)), key=row.__getitem__)]
            self.metrics.messages.labels(label).inc()
            reading = self.watch.add(label == self.negative, clock())
            self.show(reading)
            records.append({**message, "label": label, "probabilities": dict(zip(self.labels, row, strict=True))})
        return records

    def message(self, line: str) -> dict | None:
        """The line as a message: a JSON object with a text, or the line itself as the text; None (counted) when
        there is no text to score."""
        text = line
        if line.lstrip().startswith("{"):
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                message = None
            text = message.get(self.text_field) if isinstance(message, dict) else None
            if isinstance(text, str) and text.strip():
                return message
            self.metrics.unreadable.inc()
            return None
        return {self.text_field: text} if text.strip() else None

    def show(self, reading: Reading) -> None:
        self.metrics.share.labels("messages").set(reading.share)
        self.metrics.share.labels("seconds").set(reading.timed_share)
        self.metrics.baseline.set(reading.baseline)
        self.metrics.alert.set(float(reading.active))
        if reading.changed:
            if reading.active:
                self.metrics.alerts.inc()
            self.on_alert(alert(reading, self.rule, self.negative))


def alert(reading: Reading, rule: SurgeRule, negative: str) -> dict:
    return {
        "alert": "NegativeSentimentSurge",
        "status": "firing" if reading.active else "resolved",
        "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "message": reading.seen,
        "label": negative,
        "share": round(reading.share, 4),
        "baseline": round(reading.baseline, 4),
        "margin": rule.margin,
        "window": rule.window,
    }
