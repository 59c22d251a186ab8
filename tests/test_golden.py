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
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_numbers(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same_numbers, a, b))
    if isinstance(a, float):
        return math.isclose(a, b, rel_tol=1e-9)
    return a == b


def test_golden_runs_reproduce(tmp_path, recorded):
    produced = outputs(tmp_path)
    for name in recorded:
        for part in ("checkpoint", "tensors", "samples"):
            assert produced[name][part] == recorded[name][part], f"{name}: {part} changed"
        assert same_numbers(produced[name]["eval"], recorded[name]["eval"]), (name, produced[name]["eval"])


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
