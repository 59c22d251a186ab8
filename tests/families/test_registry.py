"""Adding a family is adding a package and one registry entry: a toy family defined here, and nowhere in aigc,
gets an `aigc train` subcommand with flags, checkpoints, `aigc sample` with its own setting, and a service
route, without any other module changing. Then the registry's own contracts, over every family."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Literal

import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from torch import nn

from aigc.cli import main as aigc
from aigc.core.checkpoint import latest_checkpoint
from aigc.core.config import Config
from aigc.core.errors import UserError, check_finite
from aigc.families import registry
from aigc.families.family import FORMAT_VERSION
from aigc.families.images import ImageFamily, ImageRunConfig
from aigc.training.ema import EMA
from aigc.training.optim import accumulate_gradients, apply_gradients, make_optimizer


@dataclass(frozen=True)
class ToyModelConfig(Config):
    spread: float = field(default=0.5, metadata={"help": "how far the initial image lies from grey", "min": 0.0})
    class_conditional: bool = False
    image_size: int = 0
    channels: int = 0
    num_classes: int = 0


@dataclass(frozen=True)
class ToySampleConfig(Config):
    temperature: float = field(default=0.1, metadata={"help": "noise added to the mean image", "min": 0.0})


@dataclass(frozen=True)
class ToyRunConfig(ImageRunConfig):
    family: Literal["toy"] = "toy"
    model: ToyModelConfig = ToyModelConfig()
    sample: ToySampleConfig = ToySampleConfig()


class MeanImage(nn.Module):
    """Learns the mean training image; draws it plus `temperature` times Gaussian noise."""

    def __init__(self, config: ToyModelConfig):
        super().__init__()
        shape = (config.channels, config.image_size, config.image_size)
        self.mean = nn.Parameter(torch.full(shape, config.spread))


class ToyTrainer:
    def __init__(self, config, device):
        self.config = config
        self.model = MeanImage(config.model).to(device)
        self.ema = EMA(self.model)
        self.optimizers = {"model": make_optimizer(self.model.parameters(), config.train)}
        self.modules = {"model": self.model, "ema": self.ema.model}

    @property
    def sampling_model(self):
        return self.ema.model

    def step(self, batches, position):
        def losses(batch):
            loss = ((self.model.mean - batch.data) ** 2).mean()
            return loss, {"loss": loss}

        self.optimizers["model"].zero_grad()
        values = accumulate_gradients(batches, losses)
        check_finite("loss", values["loss"], position.step)
        apply_gradients(self.optimizers["model"], self.model, 0.0)
        self.ema.update(self.model, 0.5)
        return values


class ToyFamily(ImageFamily):
    name = "toy"
    help = "the mean image, for the registry's test"
    examples = "examples:\n  aigc train toy --data digits\n"
    run_config = ToyRunConfig
    sample_config = ToySampleConfig
    flag_components = ("data", "model", "train", "sample")
    model_type = MeanImage
    metrics = "fid"

    def trainer(self, config, device, fresh=True):
        return ToyTrainer(config, device)

    def build(self, config):
        return MeanImage(config.model)

    def drawer(self, model, sample):
        def draw(noise, labels):
            return model.mean + sample.temperature * noise.randn(model.mean.shape)

        return draw


@pytest.fixture
def toy(monkeypatch):
    """The one registry entry."""
    monkeypatch.setitem(registry.FAMILIES, "toy", ToyFamily())


TRAIN = ["--data", "digits", "--image-size", "8", "--batch", "16", "--kimg", "0.032", "--no-progress"]


def test_a_new_family_trains_samples_and_is_served(toy, tmp_path, capsys):
    run_dir = tmp_path / "toy"
    assert aigc(["train", "toy", *TRAIN, "--spread", "0.25", "--snapshot-kimg", "0.016", "--out", str(run_dir)]) == 0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["family"] == "toy" and config["model"]["spread"] == 0.25 and config["model"]["image_size"] == 8
    assert latest_checkpoint(run_dir).name == "000002.safetensors"
    assert (run_dir / "samples" / "000002.png").is_file()

    assert aigc(["sample", str(run_dir), "--n", "4", "--temperature", "0", "--out", str(tmp_path / "grid.png")]) == 0
    width, height = Image.open(tmp_path / "grid.png").size
    assert width == height > 16  # a 2 x 2 grid of 8 x 8 images
    model, _ = registry.load_model(run_dir)
    drawn = registry.generate(model, [0, 1], sample=ToySampleConfig(temperature=0.0))
    assert torch.equal(drawn[0], drawn[1])  # the learnt mean image, twice
    assert not torch.equal(drawn[0], registry.generate(model, [0], sample=ToySampleConfig(temperature=1.0))[0])
    capsys.readouterr()
    assert aigc(["sample", str(run_dir), "--steps", "4", "--out", str(tmp_path / "no.png")]) == 2
    assert "steps: not a setting of toy models; drop it" in capsys.readouterr().err
    assert aigc(["train", "toy", *TRAIN, "--temperature", "-1", "--out", str(tmp_path / "bad")]) == 2
    assert "temperature = -1.0: must be at least 0.0" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "checkpoints").exists()

    from aigc.serving.app import create_app
    from aigc.serving.settings import load_settings

    settings = load_settings(models={"toy": latest_checkpoint(run_dir)})
    with TestClient(create_app(settings)) as client:
        while client.get("/readyz").status_code != 200:
            pass
        (info,) = client.get("/v1/models").json()["data"]
        assert info["family"] == "toy" and [s["name"] for s in info["settings"]] == ["temperature"]
        reply = client.post("/v1/generate", json={"seeds": [0, 1], "temperature": 0.0, "format": "json"})
        assert reply.status_code == 200 and len(reply.json()["images"]) == 2
        reply = client.post("/v1/generate", json={"seeds": [0], "temperature": -1.0})
        assert reply.status_code == 422
        body = reply.json()
        assert (body["detail"], body["field"]) == ("temperature = -1.0: must be at least 0.0", "temperature")
        reply = client.post("/v1/generate", json={"seeds": [0], "steps": 4})
        assert reply.status_code == 422 and reply.json()["detail"] == "steps: not a setting of toy models; drop it"


@pytest.mark.parametrize("name", list(registry.FAMILIES))
def test_every_family_states_its_parts(name):
    family = registry.FAMILIES[name]
    config = family.new_config()
    assert config.family == name and isinstance(config.sample, family.sample_config)
    assert registry.from_json_dict(dataclasses.asdict(config), "test") == config  # the JSON round trip
    assert family.flag_components and all(family.sampling_modules)
    for recipe in family.recipes:
        assert family.new_config(recipe).family == name


def test_an_unknown_family_or_format_is_refused():
    with pytest.raises(UserError, match="x.json: unknown family 'video'"):
        registry.from_json_dict({"family": "video", "format_version": FORMAT_VERSION}, "x.json")
    with pytest.raises(UserError, match="newer than this aigc reads"):
        registry.from_json_dict({"family": "gan", "format_version": FORMAT_VERSION + 1}, "x.json")
    with pytest.raises(UserError, match="format None is not one aigc writes"):
        registry.from_json_dict({"family": "gan"}, "x.json")
