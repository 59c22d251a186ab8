"""Evaluation end to end on the bundled digits set with its shipped extractor (offline, seconds)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from aigc.core.errors import UserError
from aigc.data.datasets import DataConfig, load_dataset
from aigc.evaluation.evaluate import EvalConfig, evaluate
from aigc.evaluation.features import EXTRACTOR_SIZES, ResidualNet, load_extractor
from aigc.evaluation.train_extractor import RECIPES, splits, train_extractor


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the feature cache lives under ~/.cache/aigc


DIGITS = EvalConfig(data="digits", n=1797, metrics="fid,kid,pr,coverage,is")


SHIPPED = [(data, architecture) for architecture in RECIPES for data in sorted(EXTRACTOR_SIZES)]


@pytest.mark.parametrize(("data", "architecture"), SHIPPED)
def test_shipped_extractors_reached_their_required_accuracy(data, architecture):
    extractor = load_extractor(data, architecture=architecture)
    assert extractor.test_accuracy >= RECIPES[architecture][data][1]
    assert extractor.name == f"aigc-{data}-{architecture}-v1" and len(extractor.sha256) == 64


@pytest.mark.parametrize("architecture", sorted(RECIPES))
def test_digits_extractors_classify_their_held_out_images(architecture):
    _, held_out = splits("digits", None)
    _, probs = load_extractor("digits", architecture=architecture)(held_out.images)
    assert (probs.argmax(1) == held_out.labels).double().mean() >= RECIPES[architecture]["digits"][1]


def test_the_second_extractor_trains_deterministically(tmp_path):
    """The script that made the shipped resnet weights, cut to one epoch: twice, the same file to the byte
    (its metadata holds no wall time)."""
    first = train_extractor("digits", None, "resnet", epochs=1, out=tmp_path / "a.safetensors")
    again = train_extractor("digits", None, "resnet", epochs=1, out=tmp_path / "b.safetensors")
    assert first["sha256"] == again["sha256"] and first["seed"] == 1 and first["architecture"] == "resnet"
    assert first["sha256"] != load_extractor("digits", architecture="resnet").sha256  # one epoch, not forty


@pytest.mark.parametrize("channels,size", [(1, 16), (3, 28)])
def test_the_residual_net_gives_features_and_logits_and_every_weight_a_gradient(channels, size):
    torch.manual_seed(0)
    net = ResidualNet(in_channels=channels, num_classes=7)
    images = torch.rand(5, channels, size, size) * 2 - 1
    features, logits = net(images)
    assert features.shape == (5, 128) and logits.shape == (5, 7)
    torch.nn.functional.cross_entropy(logits, torch.arange(5)).backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None and parameter.grad.isfinite().all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_the_two_extractors_are_different_networks():
    first, second = load_extractor("digits"), load_extractor("digits", architecture="resnet")
    assert type(first.net) is not type(second.net) and first.sha256 != second.sha256
    features_1, _ = first(splits("digits", None)[1].images)
    features_2, _ = second(splits("digits", None)[1].images)
    assert features_1.shape == features_2.shape == (297, 128)


def test_real_versus_itself_is_the_floor():
    report = evaluate("real:digits/train", DIGITS)
    assert report["n"] == 1797 and report["reference"] == "digits/train"
    assert report["fid"] == pytest.approx(0.0, abs=1e-6)
    # both sides draw KID subsets from one set, so shared images pull the unbiased estimate slightly below 0
    assert abs(report["kid"]) < 0.02 and report["precision"] > 0.99 and report["recall"] > 0.99
    assert report["fid_2"] == pytest.approx(0.0, abs=1e-6) and report["extractor_2"]["name"] == "aigc-digits-resnet-v1"
    assert report["coverage"]["classes_present"] == 10 and report["coverage"]["normalized_entropy"] > 0.99
    assert report["classifier_score"] > 8
    assert report["extractor"]["name"] == "aigc-digits-cnn-v1"


def test_noise_scores_badly_and_collapses_coverage():
    noise = torch.randint(0, 256, (500, 1, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    report = evaluate(noise, EvalConfig(data="digits", n=500))
    real = evaluate("real:digits/train", EvalConfig(data="digits", n=500))
    assert report["fid"] > 50 * max(real["fid"], 1.0)
    assert report["precision"] < 0.05
    assert report["coverage"]["normalized_entropy"] < 0.6


def test_folder_and_npz_sources_score_like_the_tensor(tmp_path):
    images = load_dataset(DataConfig()).images[:300]
    folder = tmp_path / "pngs"
    folder.mkdir()
    for k, image in enumerate(images):
        Image.fromarray(image[0].numpy()).save(folder / f"{k:06d}.png")
    np.savez(tmp_path / "images.npz", images=images.permute(0, 2, 3, 1).numpy())
    config = EvalConfig(data="digits", n=300, metrics="fid")
    expected = evaluate(images, config)["fid"]
    assert evaluate(folder, config)["fid"] == pytest.approx(expected, rel=1e-9)
    assert evaluate(tmp_path / "images.npz", config)["fid"] == pytest.approx(expected, rel=1e-9)


def test_bad_inputs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no images"):
        evaluate(tmp_path / "empty", EvalConfig(data="digits"))
    np.savez(tmp_path / "labels.npz", labels=np.arange(10))
    with pytest.raises(UserError, match="holds no image array"):
        evaluate(tmp_path / "labels.npz", EvalConfig(data="digits"))
    (tmp_path / "few").mkdir()
    Image.new("L", (16, 16)).save(tmp_path / "few" / "a.png")
    Image.new("L", (16, 16)).save(tmp_path / "few" / "b.png")
    with pytest.raises(UserError, match="fewer than --n 100; pass --n 2"):
        evaluate(tmp_path / "few", EvalConfig(data="digits", n=100))
    with pytest.raises(UserError, match="unknown metric"):
        evaluate(tmp_path / "few", EvalConfig(data="digits", metrics="fid,lpips"))
    with pytest.raises(UserError, match="no aigc feature extractor for 'cifar10'"):
        evaluate(tmp_path / "few", EvalConfig(data="cifar10"))


def test_cli_eval_json(tmp_path):
    env_home = {"HOME": str(tmp_path / "home")}
    import os

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "aigc",
            "eval",
            "real:digits/train",
            "--data",
            "digits",
            "--n",
            "400",
            "--metrics",
            "fid,coverage",
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env_home},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= {"fid", "coverage", "n", "extractor", "reference", "seconds"}
    assert report["extractor"]["sha256"] == load_extractor("digits").sha256


def test_inception_without_torch_fidelity_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # as on a machine without the extra
    with pytest.raises(UserError, match=r"pip install 'aigc\[inception\]'"):
        evaluate("real:digits/train", EvalConfig(data="digits", n=10, features="inception"))


def test_fid_without_the_data_uses_the_shipped_statistics(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_OFFLINE", "1")
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path / "nothing"))
    noise = torch.randint(0, 256, (200, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    report = evaluate(noise, EvalConfig(data="mnist", n=200, metrics="fid"))
    assert report["fid"] > 100 and report["reference"] == "mnist/test"
    with pytest.raises(UserError, match="t10k-images-idx3-ubyte.gz"):  # KID needs the real features
        evaluate(noise, EvalConfig(data="mnist", n=200, metrics="kid"))
