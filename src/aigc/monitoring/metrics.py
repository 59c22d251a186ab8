"""What `aigc monitor` exports to Prometheus: messages by label, the negative share over the message window and
over the time window, its baseline, whether the alert is on, and what could not be read or delivered. The
alerting rules shipped in deploy/prometheus/ read these names."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class MonitorMetrics:
    def __init__(self):
        self.registry = r = CollectorRegistry()
        self.messages = Counter("aigc_monitor_messages", "messages scored, by the label given", ["label"], registry=r)
        self.share = Gauge(
            "aigc_monitor_negative_share",
            "share of negative messages: over the last N messages (window=messages) or seconds (window=seconds)",
            ["window"],
            registry=r,
        )
        self.baseline = Gauge(
            "aigc_monitor_negative_baseline", "the running baseline of the negative share", registry=r
        )
        self.margin = Gauge(
            "aigc_monitor_alert_margin", "how far over the baseline the share fires the alert", registry=r
        )
        self.alert = Gauge("aigc_monitor_alert", "1 while negative messages surge, else 0", registry=r)
        self.alerts = Counter("aigc_monitor_alerts", "alerts fired", registry=r)
        self.unreadable = Counter("aigc_monitor_unreadable_lines", "lines without a text to score", registry=r)
        self.webhook_failures = Counter(
            "aigc_monitor_webhook_failures", "alerts the webhook did not take after every try", registry=r
        )
        self.batch_seconds = Histogram(
            "aigc_monitor_batch_seconds", "time to score one batch of messages", registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )  # fmt: skip
