"""The surge watch: a clean stream never alerts, a burst of negative messages fires within the window after it
begins, the alert resolves once the burst has passed, and the share over time counts the last seconds only."""

import random

from aigc.monitoring.surge import SurgeRule, SurgeWatch

RULE = SurgeRule(window=100, seconds=10.0, baseline=500, margin=0.2, warmup=200)


def replay(flags, rule=RULE):
    watch = SurgeWatch(rule)
    return [watch.add(negative, at=i * 0.1) for i, negative in enumerate(flags)]


def clean(n, share=0.2, seed=0):
    rng = random.Random(seed)
    return [rng.random() < share for _ in range(n)]


def test_a_clean_stream_never_alerts():
    for seed in range(5):
        assert not any(reading.changed for reading in replay(clean(3000, seed=seed)))


def test_a_burst_fires_within_the_window_and_resolves_after_it():
    flags = clean(1000) + [True] * 60 + clean(400, seed=1)
    readings = replay(flags)
    fired = [r.seen for r in readings if r.changed and r.active]
    resolved = [r.seen for r in readings if r.changed and not r.active]
    assert len(fired) == 1 and 1000 < fired[0] <= 1000 + RULE.window
    assert len(resolved) == 1 and 1060 < resolved[0] <= 1060 + RULE.window
    assert abs(readings[999].baseline - 0.2) < 0.05  # the burst has not raised the baseline it is compared with


def test_no_alert_before_the_warmup():
    readings = replay([True] * 30 + [False] * 70 + [True] * 50, SurgeRule(window=20, warmup=200))
    assert not any(r.active for r in readings)


def test_the_share_over_time_counts_the_last_seconds():
    watch = SurgeWatch(SurgeRule(window=1000, seconds=1.0))
    for i in range(10):
        watch.add(True, at=i * 0.01)
    reading = watch.add(False, at=5.0)  # the ten negatives are 5 seconds old
    assert reading.timed_share == 0.0 and reading.share == 10 / 11
