"""Where training logs go: metrics.jsonl in the run directory, and TensorBoard when it is installed."""

from __future__ import annotations

import json
from pathlib import Path


class Tracker:
    """metrics.jsonl (always) and TensorBoard (when installed)."""

    def __init__(self, run_dir: Path):
        self.file = open(run_dir / "metrics.jsonl", "a")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(run_dir / "tb"))
        except ImportError:
            print("notice: tensorboard not installed, logging to metrics.jsonl only (pip install 'aigc[tensorboard]')")
            self.tensorboard = None

    def log(self, step: int, values: dict) -> None:
        self.file.write(json.dumps({"step": step, **values}) + "\n")
        self.file.flush()
        if self.tensorboard:
            for key, value in values.items():
                self.tensorboard.add_scalar(key, value, step)

    def close(self) -> None:
        self.file.close()
        if self.tensorboard:
            self.tensorboard.close()
