"""What every benchmark shares: aigc run as a user runs it, timed MNIST training runs, and scoring with the shipped
MNIST extractor. Results go to benchmarks/results/."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"
RUNS = Path("runs")
SAMPLING_BATCH = 250  # images per forward pass whenever a benchmark generates


def machine() -> dict:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def cpu_model() -> str | None:
    """The CPU's name as Linux reports it: two x86_64 machines here differed in what bf16 gains (1.52x and 1.15x,
    docs/benchmarks.md, "Training throughput"), which the architecture alone does not say."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return None
    names = [
        line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
    ]
    return names[0] if names else None


def resident_mib(pid: int, field: str = "VmRSS") -> float | None:
    """A process's resident memory (VmRSS) or its peak so far (VmHWM), MiB; None once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    line = next((line for line in status.splitlines() if line.startswith(field + ":")), None)
    return int(line.split()[1]) / 1024 if line else None


def launcher(processes: int = 1) -> list[str]:
    """The command line that starts aigc: itself, or torchrun with `processes` processes on this machine."""
    if processes == 1:
        return [sys.executable, "-m", "aigc"]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(processes),
        "-m",
        "aigc",
    ]


def monitored(*args, processes: int = 1) -> tuple[str, dict]:
    """Run an aigc command as a user would; its stdout and its memory: peak RSS, and RSS at 10% and at the end of
    its wall time (growth between the two is a leak). Under torchrun (`processes` > 1) the memory is torchrun's."""
    trace, peak = [], 0.0
    with subprocess.Popen([*launcher(processes), *map(str, args)], stdout=subprocess.PIPE, text=True) as child:
        while True:
            try:
                stdout, _ = child.communicate(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                rss, hwm = resident_mib(child.pid), resident_mib(child.pid, "VmHWM")
                if rss is not None:
                    trace.append(rss)
                    peak = max(peak, hwm or rss)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, child.args)
    memory = {"peak_rss_mib": round(peak)}
    if trace:
        memory |= {"rss_mib_at_10pct": round(trace[len(trace) // 10]), "rss_mib_at_end": round(trace[-1])}
    return stdout, memory


def aigc(*args) -> str:
    return monitored(*args)[0]


def train_on_mnist(run: Path, minutes: float, data_dir: str, *method_and_flags, processes: int = 1) -> dict:
    """Train for `minutes` of wall-clock time; the last metrics.jsonl record (kimg, img_per_s, ...) and memory.
    The run's loss curve is kept in results/curves/ for the tutorial's figures."""
    _, memory = monitored(
        "train", *method_and_flags, "--data", "mnist", "--data-dir", data_dir,
        "--minutes", minutes, "--out", run, "--overwrite", "--no-progress", processes=processes,
    )  # fmt: skip
    save_curve(run)
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1]) | memory


def save_curve(run: Path, points: int = 300) -> Path:
    """The losses against kimg of a run's metrics.jsonl, thinned to about `points` rows."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [{k: v for k, v in row.items() if k == "kimg" or k.startswith("loss")} for row in rows if "kimg" in row]
    rows = [row for row in rows if len(row) > 1][:: max(1, len(rows) // points)]
    path = RESULTS / "curves" / f"{run.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"run": run.name, "config": json.loads((run / "config.json").read_text()), "rows": rows}) + "\n"
    )
    return path


def save_npz(images: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=images)
    return path


def score(source: Path, data_dir: str, n: int, *flags) -> tuple[dict, dict]:
    """`aigc eval` of a run or an .npz against the MNIST test split (with `flags`: sample settings): the figures
    the tables of docs/benchmarks.md quote, and the extractors and reference split that make them comparable."""
    report = json.loads(aigc("eval", source, "--data", "mnist", "--data-dir", data_dir, "--n", n, *flags, "--json"))
    figures = {
        "fid": round(report["fid"], 2),
        "kid": round(report["kid"], 3),
        "precision": report["precision"],
        "recall": report["recall"],
        "classes_present": report["coverage"]["classes_present"],
        "class_entropy": round(report["coverage"]["normalized_entropy"], 3),
        "fid_2": round(report["fid_2"], 2),
        "precision_2": report["precision_2"],
        "recall_2": report["recall_2"],
    }
    extractors = {"extractor": report["extractor"], "extractor_2": report["extractor_2"]}
    return figures, {**extractors, "reference": report["reference"]}
