"""Data parallelism as a user launches it: `torchrun --nproc-per-node 2 -m aigc ...` on CPU (gloo), against one
process that accumulates the same global batch in the same two micro-batches."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from aigc.core import distributed
from aigc.core.checkpoint import latest_checkpoint
from aigc.core.errors import UserError
from aigc.families.registry import load_checkpoint
from aigc.training.config import TrainConfig
from aigc.training.optim import split_batch

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "aigc"]
ALONE = [sys.executable, "-m", "aigc"]
# One thread per process on both sides, so both run the same kernels; fp32, so the comparison can be tight.
TINY = ["--data", "digits", "--image-size", "8", "--batch", "16", "--snapshot-kimg", "0.032", "--threads", "1"]
DIFFUSION = ["train", "diffusion", *TINY, "--preset", "tiny", "--precision", "fp32", "--no-progress"]
GAN = ["train", "gan", *TINY, "--width", "8", "--z-dim", "8", "--precision", "fp32", "--no-progress"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", distributed.TIMEOUT_ENV: "60", "PYTHONUNBUFFERED": "1"}


def launch(launcher: list[str], *args) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*launcher, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def assert_same_parameters(a: Path, b: Path) -> None:
    """Every trained weight and the EMA agree; BatchNorm's running statistics may not (two ranks average theirs,
    one process updates its own twice)."""
    first, second = load_checkpoint(latest_checkpoint(a)), load_checkpoint(latest_checkpoint(b))
    assert first.step == second.step and first.seen == second.seen
    for name, weights in first.modules.items():
        for key, value in weights.items():
            if key.rsplit(".", 1)[-1] not in ("running_mean", "running_var", "num_batches_tracked"):
                assert torch.allclose(value, second.modules[name][key], rtol=1e-5, atol=1e-6), (name, key)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The same diffusion run, with an in-loop evaluation, made by 2 processes and by 1 process with
    --batch-per-device 8."""
    root = tmp_path_factory.mktemp("ddp")
    flags = ["--kimg", "0.032", "--eval-every", "0.032", "--eval-n", "21"]
    two = launch(TORCHRUN, *DIFFUSION, *flags, "--out", root / "two")
    launch(ALONE, *DIFFUSION, *flags, "--batch-per-device", "8", "--out", root / "one")
    return root / "two", root / "one", two


def test_two_processes_train_like_one_that_accumulates_the_same_global_batch(pair):
    two, one, result = pair
    assert_same_parameters(two, one)
    assert result.stdout.count("done:") == 1  # only rank 0 reports, and writes
    assert len(list((two / "tb").iterdir())) == 1
    names = sorted(p.name for p in (two / "checkpoints").iterdir())
    assert names == ["000002.safetensors", "000002.state.safetensors", "best.safetensors"]
    assert json.loads((two / "config.json").read_text())["train"]["batch_per_device"] == 8
    logged = [[json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (two, one)]
    in_loop = [[row for row in rows if "fid" in row] for rows in logged]
    assert len(in_loop[0]) == len(in_loop[1]) == 1  # one evaluation, logged once
    assert in_loop[0][0]["fid"] == pytest.approx(in_loop[1][0]["fid"], rel=1e-5)


def test_resume_under_two_processes_continues_like_one(pair):
    two, one, _ = pair
    resumed = launch(TORCHRUN, "train", "diffusion", "--resume", two, "--kimg", "0.032", "--no-progress")
    assert resumed.stdout.count("resuming") == 1
    launch(ALONE, "train", "diffusion", "--resume", one, "--kimg", "0.032", "--no-progress")
    assert load_checkpoint(latest_checkpoint(two)).step == 4
    assert_same_parameters(two, one)


def test_two_processes_evaluate_like_one(pair):
    two, _, _ = pair
    scored = [
        json.loads(launch(launcher, "eval", two, "-n", "31", "--metrics", "fid,kid,coverage", "--json").stdout)
        for launcher in (TORCHRUN, ALONE)
    ]
    assert scored[0]["fid"] == pytest.approx(scored[1]["fid"], rel=1e-5)
    assert scored[0]["kid"] == pytest.approx(scored[1]["kid"], rel=1e-4, abs=1e-6)
    assert scored[0]["coverage"]["histogram"] == scored[1]["coverage"]["histogram"]


def test_a_gan_with_r1_and_augmentation_trains_alike_on_two_processes(tmp_path):
    flags = ["--no-spectral-norm", "--r1-every", "1", "--augment", "translation,cutout", "--kimg", "0.032"]
    launch(TORCHRUN, *GAN, *flags, "--out", tmp_path / "two")
    launch(ALONE, *GAN, *flags, "--batch-per-device", "8", "--out", tmp_path / "one")
    assert_same_parameters(tmp_path / "two", tmp_path / "one")


def test_a_language_model_with_muon_and_validation_trains_alike_on_two_processes(tmp_path):
    from tests.conftest import write_lm_text

    text = write_lm_text(tmp_path / "text.txt")
    model = ["--width", "32", "--layers", "2", "--heads", "2", "--context", "32", "--batch", "8", "--threads", "1"]
    budget = ["--tokens", "1k", "--eval-every", "512", "--eval-tokens", "300", "--precision", "fp32", "--no-progress"]
    lm = ["train", "lm", "--data", f"text:{text}", *model, *budget]
    launch(TORCHRUN, *lm, "--out", tmp_path / "two")
    launch(ALONE, *lm, "--batch-per-device", "4", "--out", tmp_path / "one")
    assert_same_parameters(tmp_path / "two", tmp_path / "one")
    losses = [
        [
            json.loads(line)["val_loss"]
            for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()
            if "val_loss" in line
        ]
        for run in ("two", "one")
    ]
    assert len(losses[0]) == 2 and losses[0] == pytest.approx(losses[1], rel=1e-5)


def start(out: Path, *flags) -> subprocess.Popen:
    """A 2-process training job that runs until stopped; returns once rank 0 has written its config."""
    command = [*TORCHRUN, *DIFFUSION, "--kimg", "1000", "--out", str(out), *flags]
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.time() + 120
    while not (out / "config.json").is_file():
        assert time.time() < deadline and job.poll() is None, job.communicate()[1][-3000:]
        time.sleep(0.2)
    time.sleep(2)  # a few steps
    return job


def test_sigterm_to_the_job_stops_every_rank_and_rank_0_checkpoints(tmp_path):
    job = start(tmp_path / "run", "--snapshot-kimg", "1000")
    job.send_signal(signal.SIGTERM)
    _, stderr = job.communicate(timeout=120)
    assert "stopped by SIGTERM" in stderr
    checkpoint = load_checkpoint(latest_checkpoint(tmp_path / "run"))
    assert checkpoint.step > 0 and checkpoint.seen == 16 * checkpoint.step


def test_a_killed_process_fails_the_job_within_bounded_time(tmp_path):
    job = start(tmp_path / "run")
    os.kill(worker(job.pid, rank=1), signal.SIGKILL)
    started = time.time()
    _, stderr = job.communicate(timeout=120)
    assert job.returncode != 0
    assert time.time() - started < 60, stderr[-3000:]
    assert "rank 0: error: lost contact with the other processes" in stderr


def worker(launcher_pid: int, rank: int) -> int:
    """The pid of the torchrun worker of `rank` (a child of the launcher with RANK=rank in its environment)."""
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environment = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if parent == launcher_pid and f"RANK={rank}".encode() in environment:
            return int(entry.name)
    raise AssertionError(f"no worker of rank {rank} under pid {launcher_pid}")


def test_without_a_process_group_the_helpers_are_the_identity():
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    assert distributed.shard(range(5, 12)) == range(5, 12)
    rows = torch.arange(6.0).reshape(3, 2)
    assert distributed.gather(rows, 3) is rows
    assert distributed.mean(torch.tensor([1.0, 3.0])).tolist() == [1.0, 3.0]
    seeds = {distributed.stream_seed(0, step, 0, shard) for step in range(3) for shard in range(3)}
    assert len(seeds) == 9 and distributed.stream_seed(0, 1, 0, 2) == distributed.stream_seed(0, 1, 0, 2)


def test_the_global_batch_splits_into_micro_batches_or_says_why_not():
    assert split_batch(TrainConfig(batch=64), 2) == (32, 1)
    assert split_batch(TrainConfig(batch=64, batch_per_device=8), 2) == (8, 4)
    with pytest.raises(UserError, match="does not split over 3 processes"):
        split_batch(TrainConfig(batch=64), 3)
    with pytest.raises(UserError, match="use a divisor of 32"):
        split_batch(TrainConfig(batch=64, batch_per_device=12), 2)
