import copy

import pytest
import torch

from aigc.core.checkpoint import latest_checkpoint, load_state, save_checkpoint, state_path
from aigc.core.errors import UserError
from aigc.data.datasets import DataConfig
from aigc.families.diffusion.config import DiffusionRunConfig as RunConfig
from aigc.families.registry import generate, load_checkpoint, load_model
from aigc.models.diffusion import ModelConfig
from aigc.runs import train
from aigc.training.config import TrainConfig

TINY = RunConfig(
    data=DataConfig(name="digits", image_size=8),
    model=ModelConfig(preset="tiny"),
    train=TrainConfig(batch=16, budget=64, snapshot_every=32, grid_size=4, lr=1e-3, warmup=10),
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    train(TINY, run_dir, progress=False)
    return run_dir


def test_run_directory_layout(tiny_run):
    assert (tiny_run / "config.json").is_file() and (tiny_run / "metrics.jsonl").is_file()
    names = sorted(p.name for p in (tiny_run / "checkpoints").iterdir())
    assert names == [
        "000002.safetensors",
        "000002.state.safetensors",
        "000004.safetensors",
        "000004.state.safetensors",
    ]
    assert sorted(p.name for p in (tiny_run / "samples").iterdir()) == ["000002.png", "000004.png"]


def test_save_load_round_trip_gives_identical_outputs(tiny_run, tmp_path):
    model, config = load_model(tiny_run)
    before = generate(model, [0, 1, 2], sample=config.sample)
    checkpoint = load_checkpoint(latest_checkpoint(tiny_run))
    modules = {"model": model, "ema": copy.deepcopy(model)}
    path = save_checkpoint(tmp_path, config, modules, 7, checkpoint.seen, {"train_seconds": 1.0})
    reloaded, _ = load_model(path)
    assert torch.equal(generate(reloaded, [0, 1, 2], sample=config.sample), before)
    for a, b in zip(model.state_dict().values(), reloaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_truncated_checkpoint_is_refused_and_skipped(tiny_run, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    newest = run / "checkpoints" / "000004.safetensors"
    newest.write_bytes(newest.read_bytes()[:1000])
    with pytest.raises(UserError, match="not a readable safetensors checkpoint"):
        load_checkpoint(newest)
    assert latest_checkpoint(run).name == "000002.safetensors"  # the torn file is never picked


def test_checkpoint_without_state_is_not_resumable(tiny_run, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    state_path(run / "checkpoints" / "000004.safetensors").unlink()
    assert latest_checkpoint(run, need_state=True).name == "000002.safetensors"
    assert latest_checkpoint(run).name == "000004.safetensors"  # still fine for sampling


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"hello world, not safetensors")
    with pytest.raises(UserError, match="not a readable safetensors"):
        load_checkpoint(tmp_path / "x.safetensors")
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "foreign.safetensors")
    with pytest.raises(UserError, match="not an aigc checkpoint"):
        load_checkpoint(tmp_path / "foreign.safetensors")


def test_train_state_round_trips_optimizer_and_counters(tiny_run):
    state = load_state(latest_checkpoint(tiny_run))
    assert state["train_seconds"] > 0 and state["best"] == float("inf")
    assert len(state["optimizers"]["model"]["state"]) > 0


def test_checkpoint_from_an_incompatible_config_is_refused(tiny_run, tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    source = latest_checkpoint(tiny_run)
    with safe_open(str(source), framework="pt") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    config = json.loads(metadata["config"])
    config["model"]["unet"]["channels"] = 32  # the weights no longer fit the model the config describes
    save_file(tensors, tmp_path / "wide.safetensors", metadata={**metadata, "config": json.dumps(config)})
    with pytest.raises(UserError, match="incompatible"):
        load_model(tmp_path / "wide.safetensors")
    config["model"]["unet"]["depth"] = 3  # a field this version does not know
    save_file(tensors, tmp_path / "future.safetensors", metadata={**metadata, "config": json.dumps(config)})
    with pytest.raises(UserError, match="unknown field"):
        load_model(tmp_path / "future.safetensors")


def test_a_checkpoint_short_of_its_last_bytes_is_skipped_by_its_header_alone(tiny_run, tmp_path, monkeypatch):
    import shutil

    from aigc.core import checkpoint

    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    newest = run / "checkpoints" / "000004.safetensors"
    newest.write_bytes(newest.read_bytes()[:-100])  # the header intact, the last tensor short
    tensors_read, real_open = [], checkpoint.safe_open

    class CountingOpen:
        """safe_open, counting the tensors read through it."""

        def __init__(self, *args, **kwargs):
            self.file = real_open(*args, **kwargs)

        def __enter__(self):
            handle = self.handle = self.file.__enter__()
            return type("Handle", (), {"metadata": handle.metadata, "keys": handle.keys, "get_tensor": self.count})()

        def __exit__(self, *exc):
            return self.file.__exit__(*exc)

        def count(self, key):
            tensors_read.append(key)
            return self.handle.get_tensor(key)

    with monkeypatch.context() as patch:
        patch.setattr(checkpoint, "safe_open", CountingOpen)
        assert latest_checkpoint(run, need_state=True).name == "000002.safetensors"
        assert tensors_read == []  # the choice read headers only
        checkpoint.read_checkpoint(run / "checkpoints" / "000002.safetensors")
        assert len(tensors_read) > 10  # ... and the counter does see a load


def test_resume_reads_checkpoint_and_state_once(tiny_run, tmp_path, monkeypatch):
    import dataclasses
    import shutil

    from aigc.core import checkpoint
    from aigc.training import loop

    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    calls = {"read_checkpoint": 0, "load_state": 0, "get_tensor": 0}

    def counted(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(loop, "read_checkpoint", counted("read_checkpoint", checkpoint.read_checkpoint))
    monkeypatch.setattr(loop, "load_state", counted("load_state", checkpoint.load_state))
    config = dataclasses.replace(TINY, train=dataclasses.replace(TINY.train, budget=None))
    outcome = train(config, run, resume=True, more={"budget": 16}, progress=False)
    assert outcome.seen == 64 + 16 and calls["read_checkpoint"] == 1 and calls["load_state"] == 1
