"""When negative messages surge: the share of negative messages over the last N messages (and over the last T
seconds, reported beside it) against its running baseline; an alert fires when the share exceeds the baseline by
a margin, and resolves when it falls back under half that margin (so a share hovering at the threshold does not
fire and resolve message after message).

The baseline is the mean of the negative indicator of the messages that have left the window: a plain mean
until `baseline` messages have, an exponential moving average of that horizon after. Only messages that left
the window count, so a burst inside it does not raise the baseline it is compared with. No alert fires before
`warmup` messages (a share of 3 messages in 5 says little)."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SurgeRule:
    window: int = 100  # messages in the share that is watched
    seconds: float = 300.0  # the share over time, reported beside it
    baseline: int = 2000  # the horizon of the running baseline, in messages
    margin: float = 0.15  # how far the share may rise over the baseline before the alert fires
    warmup: int = 200  # messages seen before any alert (at least the window and one message past it)


@dataclass(frozen=True)
class Reading:
    """The state after a message: the shares, the baseline, and whether the alert is on and changed."""

    seen: int
    share: float  # negative share of the last `window` messages
    timed_share: float  # negative share of the messages of the last `seconds`
    baseline: float
    active: bool
    changed: bool  # the alert fired or resolved with this message


@dataclass
class SurgeWatch:
    """The window, the baseline and the alert of one stream, message by message."""

    rule: SurgeRule
    recent: collections.deque = field(default_factory=collections.deque)  # negative flags of the window
    timed: collections.deque = field(default_factory=collections.deque)  # (time, negative) of the last seconds
    negatives: int = 0  # of `recent`
    timed_negatives: int = 0  # of `timed`
    baseline: float = 0.0
    left: int = 0  # messages that left the window (the baseline's)
    seen: int = 0
    active: bool = False

    def add(self, negative: bool, at: float) -> Reading:
        """Count one message (negative or not) that arrived at `at` (seconds, of any one clock)."""
        self.seen += 1
        self.recent.append(negative)
        self.negatives += negative
        if len(self.recent) > self.rule.window:
            self.leave(self.recent.popleft())
        self.timed.append((at, negative))
        self.timed_negatives += negative
        while self.timed[0][0] < at - self.rule.seconds:
            self.timed_negatives -= self.timed.popleft()[1]
        share = self.negatives / len(self.recent)
        if self.seen >= self.rule.warmup and self.left:
            over = share - self.baseline
            surging = over > self.rule.margin if not self.active else over >= self.rule.margin / 2
        else:
            surging = False
        changed, self.active = surging != self.active, surging
        return Reading(self.seen, share, self.timed_negatives / len(self.timed), self.baseline, surging, changed)

    def leave(self, negative: bool) -> None:
        """A message leaves the window and joins the baseline."""
        self.negatives -= negative
        self.left += 1
        self.baseline += (float(negative) - self.baseline) / min(self.left, self.rule.baseline)
