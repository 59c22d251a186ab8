"""`aigc monitor` on a classifier of good and bad reviews: a replay of held-out texts with a burst of bad ones
injected fires the alert within the window after the burst and never on the clean replay; every line is scored
once from a followed file or standard input; a dead webhook never stops the scoring, a flaky one gets the alert."""

import http.server
import json
import random
import subprocess
import sys
import threading

import pytest

from aigc.cli import main as aigc
from aigc.families.registry import FAMILIES, load_model
from aigc.monitoring.metrics import MonitorMetrics
from aigc.monitoring.monitor import Monitor
from aigc.monitoring.surge import SurgeRule
from aigc.monitoring.webhook import Webhook
from conftest import ANIMALS

RULE = ["--negative", "bad", "--window", "20", "--warmup", "60", "--margin", "0.3"]


def review(i, verdict):
    return f"line {i}: the {ANIMALS[i % 7]} jumps, {verdict} {ANIMALS[(5 * i) % 7]} {i % 11} times."


def replay(burst_at=None, n=240, seed=0):
    """Mostly good reviews (a bad one in ten), with 25 bad ones from `burst_at`."""
    rng = random.Random(seed)
    lines = [review(i, "bad" if rng.random() < 0.1 else "good") for i in range(n)]
    if burst_at is not None:
        lines[burst_at : burst_at + 25] = [review(i, "bad") for i in range(25)]
    return lines


def monitor_of(classifier_run, alerts):
    model, config = load_model(classifier_run)
    rule = SurgeRule(window=20, warmup=60, margin=0.3, baseline=500)
    return Monitor(FAMILIES["classifier"], model, config.sample, "bad", rule, MonitorMetrics(), alerts.append)


def test_a_burst_fires_the_alert_within_the_window_and_a_clean_replay_never(classifier_run):
    alerts = []
    monitor = monitor_of(classifier_run, alerts)
    lines = replay()
    records = [r for first in range(0, len(lines), 32) for r in monitor.score(lines[first : first + 32])]
    assert len(records) == len(lines) and alerts == []
    burst = replay(burst_at=150)
    alerts.clear()
    monitor = monitor_of(classifier_run, alerts)
    for first in range(0, len(burst), 32):
        monitor.score(burst[first : first + 32])
    assert [a["status"] for a in alerts] == ["firing", "resolved"]
    assert 150 < alerts[0]["message"] <= 150 + 20 and alerts[0]["share"] > alerts[0]["baseline"] + 0.3


def test_json_lines_keep_their_fields_and_lines_without_text_are_counted(classifier_run):
    monitor = monitor_of(classifier_run, [])
    lines = [json.dumps({"id": 7, "text": review(1, "good")}), '{"id": 8}', "{not json", "   "]
    records = monitor.score(lines)
    assert [(r["id"], r["label"]) for r in records] == [(7, "good")]
    assert monitor.metrics.unreadable._value.get() == 2


def test_a_followed_file_is_scored_once_line_by_line(classifier_run, tmp_path, capsys):
    stream = tmp_path / "stream.jsonl"
    lines = replay(burst_at=150)
    stream.write_text("".join(json.dumps({"n": i, "text": text}) + "\n" for i, text in enumerate(lines)))
    args = ["monitor", str(classifier_run), "--follow", str(stream), "--once", *RULE]
    args += ["--out", str(tmp_path / "scored.jsonl"), "--alerts", str(tmp_path / "alerts.jsonl"), "--batch", "16"]
    assert aigc(args) == 0
    scored = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert [row["n"] for row in scored] == list(range(len(lines)))
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert alerts[0]["status"] == "firing" and json.loads(capsys.readouterr().out.splitlines()[0]) == alerts[0]


def test_standard_input_is_scored_to_its_end(classifier_run, tmp_path):
    text = "\n".join(replay(n=70)) + "\n"
    command = [sys.executable, "-m", "aigc", "monitor", str(classifier_run), *RULE, "--out", str(tmp_path / "o.jsonl")]
    result = subprocess.run(command, input=text, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 70


class Flaky(http.server.BaseHTTPRequestHandler):
    """Answers 500 to the first POST, then 200; keeps what it took."""

    taken: list = []
    calls = 0

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls += 1
        ok = type(self).calls > 1
        if ok:
            type(self).taken.append(body)
        self.send_response(200 if ok else 500)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_flaky_webhook_gets_the_alert_and_a_dead_one_is_counted():
    server = http.server.HTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    failures = []
    flaky = Webhook(f"http://127.0.0.1:{server.server_port}/hook", lambda: failures.append(1), pause=0.01)
    flaky.send({"alert": "NegativeSentimentSurge"})
    flaky.close()
    server.shutdown()
    assert Flaky.taken == [{"alert": "NegativeSentimentSurge"}] and failures == []
    dead = Webhook(f"http://127.0.0.1:{server.server_port}/hook", lambda: failures.append(1), timeout=0.5, pause=0.01)
    dead.send({"alert": "NegativeSentimentSurge"})
    dead.close()
    assert failures == [1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--once"], "--from-end and --once apply to --follow FILE"),
        (["--follow", "/tmp"], "--follow /tmp is a folder; give the file to follow"),
        (["--margin", "2"], "--margin must lie between 0 and 1"),
        (["--negative", "awful"], "--negative awful: not a label of this model (bad, good)"),
        (["--webhook", "hooks.example.com"], "give an http:// or https:// URL"),
    ],
)
def test_bad_flags_are_one_line(classifier_run, args, message, capsys):
    assert aigc(["monitor", str(classifier_run), *args]) == 2
    assert message in capsys.readouterr().err
