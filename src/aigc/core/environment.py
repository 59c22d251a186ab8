"""What a run ran on: hardware and versions, recorded in the run directory so that its numbers can be compared
(the report shows them)."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

import torch

import aigc


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_environment(device: torch.device, world_size: int, precision: str) -> dict:
    """This process's hardware, software and parallelism, with the time it started."""
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if device.type == "cuda" else []
    return {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": str(device.type),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpus": gpus,
        "processes": world_size,
        "precision": precision,
        "aigc": aigc.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
