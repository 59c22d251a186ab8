"""`aigc report RUN_DIR`: one self-contained HTML page about a run - its config, curves (losses, learning rate,
images or tokens per second, in-loop FID and class coverage, or validation loss), the samples of every snapshot
(a grid, or texts) on a slider, the latest metrics, and the machines it trained on. Images are embedded, so the
file can be mailed or attached as it is. It reads only the run directory's files, so it works on a run still
training (a half-written last line is skipped).

Plots need matplotlib (`pip install 'aigc[report]'`).
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

from aigc.core.checkpoint import CHECKPOINT_NAME, checkpoints_newest_first
from aigc.core.config import to_json
from aigc.core.errors import UserError
from aigc.core.io import atomic_write_text
from aigc.families.registry import family_of, load_json

EVALUATION_KEYS = ("fid", "kid", "classes_present", "class_entropy", "val_loss", "bits_per_byte")
SAMPLE_SUFFIXES = (".png", ".txt")  # what a family's snapshot writes: a grid, texts


@dataclass
class Run:
    directory: Path
    config: object  # the run config
    metrics: list[dict]  # metrics.jsonl, in order
    environments: list[dict]  # environment.jsonl: one per training session
    samples: list[tuple[int, Path]]  # (step, grid or texts) of each snapshot

    @property
    def family(self):
        return family_of(self.config)

    def seen_at(self, step: int) -> int:
        """How much a run had seen (images, tokens) at `step`."""
        return step * self.config.train.batch * self.family.example_size(self.config)


def read_jsonl(path: Path) -> list[dict]:
    """The complete JSON lines of a file that may be being appended to."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the line being written right now
    return rows


def read_run(run_dir: Path) -> Run:
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir} is not a run directory (no config.json); pass the --out of an aigc train run")
    samples = sorted(
        (int(path.stem), path)
        for path in (run_dir / "samples").glob("*")
        if path.stem.isdigit() and path.suffix in SAMPLE_SUFFIXES
    )
    return Run(
        run_dir,
        load_json(run_dir / "config.json"),
        read_jsonl(run_dir / "metrics.jsonl"),
        read_jsonl(run_dir / "environment.jsonl"),
        samples,
    )


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write the report (default: RUN_DIR/report.html) and return its path."""
    run = read_run(run_dir)
    out = Path(out) if out else run.directory / "report.html"
    atomic_write_text(out, render(run))
    return out


def render(run: Run) -> str:
    plots = figures(run)
    sections = [
        f"<h1>{html.escape(run.directory.name)}</h1>",
        f"<p class=lead>{html.escape(summary(run))}</p>",
        metrics_table(run),
        "".join(
            f"<figure><img alt='{html.escape(t)}' src='{png}'><figcaption>{t}</figcaption></figure>" for t, png in plots
        ),
        snapshots(run),
        environment_table(run),
        "<h2>Config</h2><details><summary>the resolved config.json</summary><pre>"
        + html.escape(to_json(run.config))
        + "</pre></details>",
    ]
    return PAGE.replace("{title}", html.escape(run.directory.name)).replace("{body}", "\n".join(sections))


def summary(run: Run) -> str:
    """What kind of run, and how far it has come against its budget."""
    config, family = run.config, run.family
    steps = [int(CHECKPOINT_NAME.match(p.name).group(1)) for p in checkpoints_newest_first(run.directory)]
    logged = [row["step"] for row in run.metrics if "step" in row]
    seen = run.seen_at(max(logged + steps, default=0))
    seconds = max([row["train_seconds"] for row in run.metrics if "train_seconds" in row], default=0)
    trained = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
    latest = f"latest checkpoint at step {max(steps)}" if steps else "no checkpoint yet"
    return (
        f"{family.describe(config)}: {family.amount(seen)} seen, "
        f"{trained} of training logged, of a budget of {config.train.describe_budget(family.unit)}; {latest}."
    )


def metrics_table(run: Run) -> str:
    """The latest value of every logged quantity, and the best in-loop value when the run was evaluated."""
    latest: dict[str, float] = {}
    for row in run.metrics:
        latest.update({k: v for k, v in row.items() if isinstance(v, (int, float))})
    metric = run.family.selection_metric
    values = [row[metric] for row in run.metrics if metric in row]
    if values:
        latest[f"best {metric}"] = min(values)
    if not latest:
        return "<p>No metrics logged yet.</p>"
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{v:,}</td></tr>"
        if isinstance(v, int)
        else f"<tr><th>{html.escape(k)}</th><td>{v:.4g}</td></tr>"
        for k, v in latest.items()
    )
    return f"<h2>Latest</h2><table>{cells}</table>"


def figures(run: Run) -> list[tuple[str, str]]:
    """(title, PNG data URL) of each curve the metrics hold."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        raise UserError("aigc report draws its curves with matplotlib: pip install 'aigc[report]'") from None
    family = run.family
    axis, metric = family.progress_key, family.selection_metric
    training = [row for row in run.metrics if axis in row and not any(k in row for k in EVALUATION_KEYS)]
    evaluated = [row for row in run.metrics if metric in row]
    losses = sorted({k for row in training for k in row if k.startswith("loss") or k == "r1"})
    panels = [
        ("Losses", training, losses, "log"),
        ("Learning rate", training, ["lr"], "linear"),
        (f"Training {family.unit} / s", training, [f"{family.unit}_per_s"], "linear"),
        (f"{metric} (in-loop)", evaluated, [metric, "class_entropy"], "linear"),
    ]
    plots = []
    for title, rows, keys, scale in panels:
        keys = [k for k in keys if any(k in row for row in rows)]
        if not keys:
            continue
        figure, axes = plt.subplots(figsize=(5, 3), dpi=100)
        twin = None
        for k in keys:
            target = axes
            if k == "class_entropy":  # on its own 0..1 axis beside FID
                twin = target = axes.twinx()
                target.set_ylim(0, 1.02)
            points = [(row[axis], row[k]) for row in rows if k in row]
            marker = "o" if len(points) < 20 else None  # a short run's few points stay visible
            color = None if target is axes else "tab:orange"
            target.plot(*zip(*points, strict=True), label=k, color=color, marker=marker)
        values = [row[k] for row in rows for k in keys if k in row]
        axes.set_yscale(scale if min(values) > 0 else "linear")  # a hinge or logistic loss can go negative
        axes.set_xlabel(axis)
        axes.set_title(title)
        handles = axes.get_legend_handles_labels()
        if twin:
            twin_handles = twin.get_legend_handles_labels()
            handles = (handles[0] + twin_handles[0], handles[1] + twin_handles[1])
        axes.legend(*handles, fontsize=8)
        axes.grid(alpha=0.3)
        buffer = io.BytesIO()
        figure.tight_layout()
        figure.savefig(buffer, format="png")
        plt.close(figure)
        plots.append((title, data_url(buffer.getvalue())))
    return plots


def snapshots(run: Run) -> str:
    """The samples of every snapshot (grids, or texts): a slider over them, the newest shown first."""
    if not run.samples:
        return "<h2>Samples</h2><p>No snapshot yet.</p>"
    shown = []
    for i, (step, path) in enumerate(run.samples):
        tags = f"class=snap data-step='{step}' data-seen='{html.escape(run.family.amount(run.seen_at(step)))}'"
        hidden = "" if i == len(run.samples) - 1 else " hidden"
        if path.suffix == ".png":
            shown.append(f"<img {tags} alt='step {step}' src='{data_url(path.read_bytes())}'{hidden}>")
        else:
            shown.append(f"<pre {tags}{hidden}>{html.escape(path.read_text(errors='replace'))}</pre>")
    images = "".join(shown)
    last = len(run.samples) - 1
    return (
        "<h2>Samples</h2><p>Fixed seeds at each snapshot: <input id=snapshot type=range min=0 "
        f"max={last} value={last}> <span id=snapshot-label></span></p><div id=grids>{images}</div>"
    )


def environment_table(run: Run) -> str:
    if not run.environments:
        return "<h2>Machine</h2><p>Not recorded (a run from before aigc recorded environment.jsonl).</p>"
    keys = list(run.environments[0])
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(session.get(k, '')))}</td>" for k in keys) + "</tr>"
        for session in run.environments
    )
    return f"<h2>Machine (one row per training session)</h2><table class=wide><tr>{head}</tr>{rows}</table>"


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - aigc report</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 64rem; padding: 0 1rem; color: #222; }
.lead { color: #444; } figure { display: inline-block; width: 48%; margin: .5%; } figure img { width: 100%; }
figcaption { display: none; }
table { border-collapse: collapse; margin: .5rem 0; } th, td { padding: .2rem .6rem; border-bottom: 1px solid #eee;
text-align: left; font-size: .9rem; } table.wide { display: block; overflow-x: auto; }
img.snap { image-rendering: pixelated; max-width: 100%; border: 1px solid #ddd; }
pre.snap { white-space: pre-wrap; }
pre { background: #f6f6f6; padding: 1rem; overflow-x: auto; font-size: .8rem; }
</style></head><body>
{body}
<script>
const slider = document.getElementById("snapshot");
function show() {
  const snaps = [...document.querySelectorAll(".snap")];
  snaps.forEach((g, i) => { g.hidden = i !== Number(slider.value); });
  const g = snaps[Number(slider.value)];
  document.getElementById("snapshot-label").textContent = `step ${g.dataset.step} (${g.dataset.seen})`;
}
if (slider) { slider.addEventListener("input", show); show(); }
</script>
</body></html>
"""
