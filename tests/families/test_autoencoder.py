"""`aigc train autoencoder` on the built-in digit scenes, in seconds: a checkpoint of the autoencoder alone with
a snapshot of reconstructions, `aigc eval` (PSNR, MSE, FID of reconstructions), a text2image run that takes
and freezes it, and what an autoencoder cannot do as one-line errors."""

import json

import pytest
import torch
from PIL import Image
from safetensors import safe_open
from tests.conftest import TINY_TEXT2IMAGE

from aigc.cli import main as aigc
from aigc.core.checkpoint import latest_checkpoint

TINY = ["--scenes", "48", "--image-size", "32", "--autoencoder-channels", "8", "--batch", "16",
        "--warmup-kimg", "0.01", "--no-progress"]  # fmt: skip


def tensors(path):
    with safe_open(str(path), framework="pt") as f:
        return {key: f.get_tensor(key) for key in f.keys()}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ae") / "run"
    assert aigc(["train", "autoencoder", *TINY, "--kimg", "0.064", "--snapshot-kimg", "0.032", "--out", str(out)]) == 0
    return out


def test_a_run_holds_the_autoencoder_and_shows_its_reconstructions(run):
    names = tensors(latest_checkpoint(run)).keys()
    assert names and all(name.startswith("autoencoder.") for name in names)
    grid = Image.open(run / "samples" / "000004.png")
    assert grid.height > grid.width / 8  # two rows: held-out scenes above their reconstructions


def test_eval_reports_psnr_and_the_fid_of_reconstructions(run, capsys):
    capsys.readouterr()
    assert aigc(["eval", str(run), "--n", "16", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["reference"] == "scenes:digits/test" and report["n"] == 16
    assert 0 < report["psnr"] < 60 and report["mse"] > 0 and report["fid"] >= 0
    assert aigc(["eval", str(run), "--n", "16", "--metrics", "psnr", "--json"]) == 0
    assert "fid" not in json.loads(capsys.readouterr().out)


def test_a_text2image_run_takes_the_autoencoder_and_freezes_it(run, tmp_path):
    out = tmp_path / "t2i"
    argv = ["train", "text2image", *TINY_TEXT2IMAGE, "--autoencoder", str(run), "--kimg", "0.048"]
    assert aigc([*argv, "--out", str(out)]) == 0
    ours, theirs = tensors(latest_checkpoint(out)), tensors(latest_checkpoint(run))
    assert all(torch.equal(ours[k], v) for k, v in theirs.items() if not k.endswith("latent_scale"))


def test_a_caption_folder_is_judged_on_its_own_images_without_fid(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(4):
        Image.new("RGB", (32, 32), (60 * k, 20, 200 - 40 * k)).save(folder / f"{k}.png")
        (folder / f"{k}.txt").write_text(f"a colour {k}\n")
    out = tmp_path / "run"
    argv = ["train", "autoencoder", "--data", f"captions:{folder}", "--image-size", "32", "--autoencoder-channels", "8"]
    assert aigc([*argv, "--batch", "4", "--kimg", "0.008", "--no-progress", "--out", str(out)]) == 0
    capsys.readouterr()
    assert aigc(["eval", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["reference"] == f"captions:{folder}/train" and report["n"] == 4 and "fid" not in report


def test_what_an_autoencoder_cannot_do_is_a_one_line_error(run, tmp_path, capsys):
    pixels = tmp_path / "pixels"
    argv = ["train", "text2image", *TINY_TEXT2IMAGE, "--autoencoder", "none", "--kimg", "0.016", "--out", str(pixels)]
    assert aigc(argv) == 0
    cases = [
        (["sample", str(run), "--out", str(tmp_path / "x.png")], "an autoencoder reconstructs images and draws none"),
        (["train", "text2image", *TINY_TEXT2IMAGE, "--autoencoder", str(pixels)], "diffuses pixels"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert aigc(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and message in err, (argv, err)
