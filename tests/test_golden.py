"""Behaviour does not change under refactoring: the golden runs reproduce their recorded digests and numbers, and
checkpoints written by release 0.1.0 still sample the same images and resume."""

import hashlib
import json
import math
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "golden"))
from outputs import RECORDED, aigc, outputs  # noqa: E402

RELEASE = Path(__file__).parent / "golden" / "release-0.1.0"


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(RECORDED.read_text())


def same_numbers(a, b) -> bool:
    """Equal but for float rounding, which differs between CPUs (vector units, BLAS kernels)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_numbers(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same_numbers, a, b))
    if isinstance(a, float):
        return math.isclose(a, b, rel_tol=1e-6)
    return a == b


def same_tensors(a: dict, b: dict, tolerance: float = 1e-4) -> bool:
    """Summaries [norm, projection, projection] within `tolerance` of the norm: training the same steps with
    another thread count moves them by under 1e-6 of it; a change to the training moves them by about its size."""
    return a.keys() == b.keys() and all(
        abs(x - y) <= tolerance * a[key][0] for key in a for x, y in zip(a[key], b[key], strict=True)
    )


def test_golden_runs_reproduce(tmp_path, recorded):
    produced = outputs(tmp_path)
    for name in recorded:
        assert produced[name]["checkpoint"] == recorded[name]["checkpoint"], f"{name}: checkpoint changed"
        assert same_tensors(produced[name]["tensors"], recorded[name]["tensors"]), f"{name}: tensors changed"
        assert produced[name]["samples"] == recorded[name]["samples"], f"{name}: samples changed"
        assert same_numbers(produced[name]["eval"], recorded[name]["eval"]), (name, produced[name]["eval"])


def test_a_tensor_changed_by_a_thousandth_is_noticed(recorded):
    tensors = recorded["gan"]["tensors"]
    key = next(iter(tensors))
    assert same_tensors(tensors, tensors)
    assert not same_tensors(tensors, tensors | {key: [value * 1.001 for value in tensors[key]]})


@pytest.mark.parametrize("name", ["diffusion", "gan"])
def test_release_checkpoints_sample_the_same_images(name, tmp_path, recorded):
    aigc("sample", RELEASE / name, "--seeds", "0-15", "--out", f"{tmp_path}/", "--device", "cpu")
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(tmp_path.glob("*.png"))}
    assert digests == recorded[name]["samples"]


def test_release_checkpoint_resumes(tmp_path):
    run_dir = tmp_path / "gan"
    shutil.copytree(RELEASE / "gan", run_dir)
    aigc("train", "gan", "--resume", run_dir, "--kimg", "0.032", "--no-progress")
    assert (run_dir / "checkpoints" / "000006.safetensors").is_file()
