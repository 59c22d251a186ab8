"""`aigc monitor`: a classifier run over a live stream of messages - standard input, or a file it follows as
`tail -F` does - with Prometheus metrics, and an alert (printed, appended to --alerts, POSTed to --webhook) when
the share of negative messages surges over its running baseline."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = """examples:
  tail -F news.txt | aigc monitor runs/phrasebank-classifier --metrics-port 9108
  aigc monitor runs/phrasebank-classifier --follow messages.jsonl --text-field body --window 200 --margin 0.2 \\
      --webhook https://hooks.example.com/risk --alerts alerts.jsonl --out scored.jsonl
  aigc monitor runs/phrasebank-classifier --follow day.jsonl --once --out scored.jsonl   # a file, then stop
"""


def register(commands) -> None:
    from aigc.cli.options import add_command

    parser = add_command(commands, "monitor", "label a stream of texts and alert on a surge of one label", EXAMPLES)
    parser.add_argument("model", type=Path, help="classifier run directory (newest checkpoint) or checkpoint file")
    stream = parser.add_argument_group("the stream")
    stream.add_argument("--follow", type=Path, help="a file to follow as it grows (default: standard input)")
    stream.add_argument("--from-end", action="store_true", help="--follow: only lines written from now on")
    stream.add_argument("--once", action="store_true", help="--follow: stop at the file's end")
    stream.add_argument("--text-field", default="text", help="the field of a JSON line that holds the text")
    stream.add_argument("--batch", type=int, default=64, help="most messages scored at once")
    watch = parser.add_argument_group("the alert")
    watch.add_argument("--negative", default="negative", help="the label whose share is watched")
    watch.add_argument("--window", type=int, default=100, help="messages in the watched share")
    watch.add_argument("--window-seconds", type=float, default=300.0, help="seconds of the share reported by time")
    watch.add_argument("--baseline", type=int, default=2000, help="horizon of the running baseline, in messages")
    watch.add_argument("--margin", type=float, default=0.15, help="fire when the share exceeds the baseline by this")
    watch.add_argument("--warmup", type=int, default=200, help="messages seen before any alert")
    out = parser.add_argument_group("outputs")
    out.add_argument("--alerts", type=Path, help="append each alert (fired, resolved) as a JSON line")
    out.add_argument("--out", type=Path, help="append each scored message as a JSON line")
    out.add_argument("--webhook", help="POST each alert as JSON to this URL (3 tries; never stops the scoring)")
    out.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port (0: off)")
    out.add_argument("--metrics-host", default="127.0.0.1", help="address of the metrics endpoint")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.set_defaults(run=run)


def run(args) -> int:
    import json
    import threading

    from aigc.core.device import resolve_device
    from aigc.core.errors import UserError
    from aigc.families.registry import family_of, load_model
    from aigc.monitoring.metrics import MonitorMetrics
    from aigc.monitoring.monitor import Monitor, Stream, file_batches, stdin_batches

    rule = checked_rule(args)
    if args.follow is not None and args.follow.is_dir():
        raise UserError(f"--follow {args.follow} is a folder; give the file to follow")
    if args.follow is None and (args.from_end or args.once):
        raise UserError("--from-end and --once apply to --follow FILE; drop them or give the file")
    model, config = load_model(args.model, resolve_device(args.device))
    family = family_of(config)
    if family.modality != "labels":
        raise UserError(f"{args.model} is a {family.name} run, which generates {family.modality}; give a classifier")
    metrics = MonitorMetrics()
    webhook = start_webhook(args.webhook, metrics)
    if args.metrics_port:
        serve_metrics(metrics, args.metrics_host, args.metrics_port)

    def on_alert(event: dict) -> None:
        print(json.dumps(event), flush=True)
        if args.alerts:
            append_lines(args.alerts, [event])
        if webhook is not None:
            webhook.send(event)

    monitor = Monitor(family, model, config.sample, args.negative, rule, metrics, on_alert, args.text_field)
    stream = Stream(args.follow, args.from_end, args.once, args.text_field, args.batch)
    batches = stdin_batches(stream) if args.follow is None else file_batches(stream, threading.Event())
    try:
        for lines in batches:
            records = monitor.score(lines)
            if args.out and records:
                append_lines(args.out, records)
    finally:
        if webhook is not None:
            webhook.close()
    return 0


def checked_rule(args):
    from aigc.core.errors import UserError
    from aigc.monitoring.surge import SurgeRule

    if args.batch < 1 or args.window < 1 or args.baseline < 1 or args.warmup < 0:
        raise UserError("--batch, --window and --baseline must be positive, --warmup at least 0")
    if not 0 < args.margin < 1 or args.window_seconds <= 0:
        raise UserError("--margin must lie between 0 and 1, --window-seconds above 0")
    return SurgeRule(args.window, args.window_seconds, args.baseline, args.margin, max(args.warmup, args.window + 1))


def start_webhook(url: str | None, metrics):
    from aigc.core.errors import UserError
    from aigc.monitoring.webhook import Webhook

    if url is None:
        return None
    if not url.startswith(("http://", "https://")):
        raise UserError(f"--webhook {url}: give an http:// or https:// URL")
    return Webhook(url, metrics.webhook_failures.inc)


def serve_metrics(metrics, host: str, port: int) -> None:
    from prometheus_client import start_http_server

    from aigc.core.errors import UserError

    try:
        start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as error:
        raise UserError(f"--metrics-port {port}: cannot listen on {host}:{port} ({error.strerror})") from None


def append_lines(path: Path, rows: list[dict]) -> None:
    """Append JSON lines, flushed, so that a reader (or a restart) sees every line whole."""
    import json

    from aigc.core.errors import UserError

    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(row) + "\n" for row in rows))
    except OSError as error:
        raise UserError(f"{path}: cannot write ({error.strerror})") from None
