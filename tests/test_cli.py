"""The CLI through a subprocess, as a user runs it: a tiny train -> sample, resume, and each user error."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

TINY = [
    "--data",
    "digits",
    "--image-size",
    "8",
    "--preset",
    "tiny",
    "--batch",
    "16",
    "--snapshot-kimg",
    "0.032",
    "--no-progress",
]


def aigc(*args, cwd=None, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "aigc", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        timeout=300,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    aigc("train", "diffusion", *TINY, "--kimg", "0.064", "--out", out)
    return out


GAN_TINY = ["--data", "digits", "--image-size", "8", "--width", "8", "--z-dim", "8", "--batch", "16", "--no-progress"]


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "gan"
    aigc("train", "gan", *GAN_TINY, "--conditional", "--snapshot-kimg", "0.032", "--kimg", "0.064", "--out", out)
    return out


def test_gan_train_sample_eval(gan_run, tmp_path, monkeypatch):
    import json

    config = json.loads((gan_run / "config.json").read_text())
    assert config["family"] == "gan" and config["recipe"] == "conditional" and config["model"]["num_classes"] == 10
    assert sorted(p.name for p in (gan_run / "samples").iterdir()) == ["000002.png", "000004.png"]
    aigc("sample", gan_run, "--n", "16", "--truncation", "0.8", "--out", tmp_path / "grid.png")
    width, height = Image.open(tmp_path / "grid.png").size
    assert width == height > 4 * 8
    aigc("sample", gan_run, "--seeds", "3,7", "--class", "2", "--out", str(tmp_path / "each") + "/")
    assert Image.open(tmp_path / "each" / "000007.png").size == (8, 8)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    result = aigc("eval", gan_run, "--n", "20", "--metrics", "fid,coverage", "--truncation", "1.5", "--json")
    report = json.loads(result.stdout)
    assert report["sampling"] == {"truncation": 1.5, "seeds": "0-19"} and report["fid"] > 0
    resumed = aigc("train", "gan", "--resume", gan_run, "--kimg", "0.016", "--recipe", "conditional", "--no-progress")
    assert "resuming" in resumed.stdout


def test_an_optimized_run_is_an_ordinary_run(run_dir, tmp_path, monkeypatch):
    out = tmp_path / "bf16"
    made = aigc("compress", run_dir, "--quantize", "bf16", "--out", out)
    assert made.stdout.startswith(f"wrote {out}/checkpoints/000004.safetensors")
    aigc("sample", out, "--n", "4", "--steps", "2", "--out", tmp_path / "grid.png")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert "fid" in aigc("eval", out, "--n", "20", "--metrics", "fid", "--steps", "2").stdout
    again = aigc("compress", run_dir, "--prune", "0.3", "--out", out, check=False)
    assert again.returncode == 2 and "already holds files; choose another --out or pass --overwrite" in again.stderr
    inside = aigc("compress", out, "--prune", "0.3", "--out", out, "--overwrite", check=False)
    assert inside.returncode == 2 and "holds the model being compressed" in inside.stderr


def test_each_gan_recipe_trains(tmp_path):
    for recipe in ("seed", "dcgan"):
        aigc("train", "gan", "--recipe", recipe, *GAN_TINY, "--kimg", "0.032", "--out", tmp_path / recipe)
        assert (tmp_path / recipe / "checkpoints" / "000002.safetensors").is_file()


def test_gan_on_a_folder_of_colour_photos(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    (tmp_path / "photos").mkdir()
    for k in range(20):
        Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(tmp_path / "photos" / f"{k}.jpg")
    photos = f"folder:{tmp_path / 'photos'}"
    flags = ["--image-size", "16", "--width", "8", "--batch", "8", "--kimg", "0.016", "--no-progress"]
    trained = aigc("train", "gan", "--data", photos, *flags, "--out", tmp_path / "run")
    assert "the data has no labels; the GAN trains unconditionally" in trained.stderr  # the default recipe's classes
    assert '"num_classes": 0' in (tmp_path / "run" / "config.json").read_text()
    aigc("sample", tmp_path / "run", "--seeds", "0", "--out", str(tmp_path / "out") + "/")
    assert Image.open(tmp_path / "out" / "000000.png").size == (16, 16)
    assert Image.open(tmp_path / "out" / "000000.png").mode == "RGB"


def test_train_then_sample_a_grid_and_per_seed_files(run_dir, tmp_path):
    result = aigc(
        "sample",
        run_dir,
        "--n",
        "6",
        "--seeds",
        "0-5",
        "--sampler",
        "heun",
        "--steps",
        "3",
        "--out",
        tmp_path / "grid.png",
    )
    assert "wrote a grid of 6 images" in result.stdout
    assert Image.open(tmp_path / "grid.png").size[0] > 8 * 3
    checkpoint = run_dir / "checkpoints" / "000002.safetensors"
    aigc("sample", checkpoint, "--seeds", "3,7", "--out", str(tmp_path / "each") + "/")
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == ["000003.png", "000007.png"]
    assert Image.open(tmp_path / "each" / "000003.png").size == (8, 8)
    aigc("sample", run_dir, "--class", "7", "--guidance", "2.0", "--n", "4", "--out", tmp_path / "sevens.png")


def test_resume_extends_the_budget(run_dir, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    result = aigc("train", "diffusion", "--data", "digits", "--resume", run, "--kimg", "0.032", "--no-progress")
    assert "resuming" in result.stdout and (run / "checkpoints" / "000006.safetensors").is_file()


def test_sigint_writes_a_checkpoint_and_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "aigc", "train", "diffusion", *TINY, "--kimg", "1000", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not (out / "checkpoints").is_dir() or not any((out / "checkpoints").iterdir()):
        assert time.time() < deadline and process.poll() is None
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert f"resume with: aigc train diffusion --resume {out}" in stderr
    aigc("train", "diffusion", "--resume", out, "--kimg", "0.016", "--no-progress")


ERRORS = [
    (["train", "diffusion", "--data", "imagenet"], "unknown data set 'imagenet'"),
    (["train", "diffusion", "--data", "mnist", "--data-dir", "{tmp}/nothing"], "train-images-idx3-ubyte.gz"),
    (
        ["train", "diffusion", "--data", "digits", "--image-size", "30", "--out", "{tmp}/r"],
        "image size 30 does not fit",
    ),
    (["train", "diffusion", "--preset", "huge", "--out", "{tmp}/r"], "preset = 'huge': choose one of tiny"),
    (["train", "diffusion", "--sampler", "lms"], "sampler = 'lms': choose one of euler"),
    (["train", "diffusion", "--resume", "{tmp}/none"], "not a run directory"),
    (["train", "diffusion", "--resume", "{run}", "--data", "mnist"], "--data cannot change on --resume"),
    (["train", "diffusion", "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "gan", "--recipe", "wgan"], "invalid choice: 'wgan'"),
    (["train", "gan", "--loss", "wasserstein"], "loss = 'wasserstein': choose one of bce, logistic, hinge"),
    (["train", "gan", "--augment", "blur"], "unknown augmentation 'blur'"),
    (["train", "gan", "--generator", "vit", "--out", "{tmp}/r"], "generator = 'vit': choose one of mlp, dcgan, resnet"),
    (["train", "gan", "--truncation", "0"], "truncation = 0.0: must be at least 0.05"),
    (["train", "gan", "--optimizer", "muon", "--out", "{tmp}/r"], "optimizer = 'muon': this model trains with adamw"),
    (["train", "gan", "--resume", "{run}"], "is a diffusion run; resume it with aigc train diffusion"),
    (["train", "diffusion", "--steps", "3", "--truncation", "1"], "unrecognized arguments: --truncation"),
    (["sample", "{run}", "--truncation", "0.5"], "truncation: not a setting of diffusion models"),
    (["sample", "{tmp}/missing.safetensors"], "does not exist"),
    (["sample", "{tmp}/garbage.safetensors"], "not a readable safetensors checkpoint"),
    (["sample", "{tmp}/truncated.safetensors"], "not a readable safetensors checkpoint"),
    (["train", "diffusion", "--data", "folder:{tmp}/pics", "--image-size", "16"], "cannot decode image"),
    (["sample", "{run}", "--class", "10"], "classes 0..9"),
    (["sample", "{run}", "--n", "0"], "--n 0 out of range"),
    (["sample", "{run}", "--steps", "5000"], "steps = 5000: must lie in 1..1000"),
    (["sample", "{run}", "--sampler", "lms"], "sampler = 'lms': choose one of euler"),
    (["sample", "{run}", "--out", "{tmp}/grid.jpg"], "name a .png file"),
    (["sample", "{run}", "--out", "/proc/forbidden/grid.png"], "cannot create /proc/forbidden"),
    (["sample", "{run}", "--seeds", "a-b"], "bad --seeds"),
    (["eval", "{tmp}/pics"], "pass --data NAME"),
    (["eval", "real:digits/val", "--data", "digits"], "unknown split 'val'"),
    (["eval", "{run}", "--metrics", "fid,lpips"], "unknown metric"),
    (["eval", "real:cifar10/test", "--data", "cifar10"], "no aigc feature extractor for 'cifar10'"),
    (["serve", "{tmp}/none"], "none does not exist; pass a run directory"),
    (["serve", "{run}", "{run}"], "two models are named 'run'; name them apart with NAME=PATH"),
    (["serve", "a b={run}"], "model name 'a b'"),
    (["serve", "{run}", "--host", "0.0.0.0"], "no API keys are set; give --api-keys FILE, or --insecure-public"),
    (["serve", "{run}", "--api-keys", "{tmp}/nokeys.txt"], "cannot read it"),
    (["serve", "{run}", "--api-keys", "{tmp}/pics/bad.png"], "expected a 64-digit sha256 hex hash"),
    (["serve", "{run}", "--queue-size", "0"], "serve setting queue_size"),
    (["keys", "add", "{tmp}/k.txt", "--name", "two words"], "--name 'two words'"),
    (["train", "classifier", "--data", "csv:{tmp}/missing.csv"], "missing.csv does not exist"),
    (["train", "classifier", "--data", "phrasebank:90agree"], "phrasebank:90agree: unknown agreement level"),
    (["train", "classifier", "--init", "{run}", "--out", "{tmp}/r"], "is a diffusion run; give a language model"),
    (["classify", "{run}", "--text", "up"], "is a diffusion run, which generates images; give a classifier"),
    (["compress", "{run}", "--out", "{tmp}/o"], "nothing to do"),
    (
        ["compress", "{run}", "--quantize", "int4", "--out", "{tmp}/o"],
        "quantize = 'int4': choose one of none, int8, bf16",
    ),
]


@pytest.mark.parametrize(("args", "message"), ERRORS, ids=[e[1][:30] for e in ERRORS])
def test_user_errors_are_one_line_and_exit_2(args, message, run_dir, tmp_path, monkeypatch):
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00" * 100)
    checkpoint = (run_dir / "checkpoints" / "000004.safetensors").read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(checkpoint[: len(checkpoint) // 2])
    (tmp_path / "pics").mkdir()
    Image.new("L", (20, 20)).save(tmp_path / "pics" / "ok.png")
    (tmp_path / "pics" / "bad.png").write_bytes(b"not a png")
    (tmp_path / "flat").mkdir()
    Image.new("L", (16, 16)).save(tmp_path / "flat" / "a.png")
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIGC_OFFLINE", "1")
    args = [a.format(tmp=tmp_path, run=run_dir) for a in args]
    result = aigc(*args, cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and message in lines[-1], result.stderr
    assert "Traceback" not in result.stderr


def test_train_help_lists_only_the_flags_the_family_uses_and_amounts_as_written():
    gan, lm = aigc("train", "gan", "--help").stdout, aigc("train", "lm", "--help").stdout
    assert "--optimizer" not in gan and "--weight-decay" not in gan and "--memory-format" in gan
    assert "--optimizer" in lm and "--memory-format" not in lm
    assert "(default: 50000)" in " ".join(lm.split())  # --warmup-tokens, not 50000.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "5"], "steps: not a setting of gan models"),
        (["--guidance", "2"], "guidance: not a setting of gan models"),
        (["--class", "12"], "classes 0..9"),
    ],
)
def test_gan_sampling_errors(gan_run, tmp_path, args, message):
    result = aigc("sample", gan_run, *args, "--out", tmp_path / "x.png", check=False)
    assert result.returncode == 2 and message in result.stderr.strip().splitlines()[-1], result.stderr


def test_data_list(tmp_path):
    result = aigc("data", "list", "--data-dir", tmp_path)
    assert "digits" in result.stdout and str(Path(tmp_path) / "mnist") in result.stdout


def test_eval_a_run_scores_against_its_own_data(run_dir, tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    result = aigc("eval", run_dir, "--n", "20", "--metrics", "fid,coverage", "--steps", "3", "--json")
    report = json.loads(result.stdout)
    assert report["reference"] == "digits/train" and report["n"] == 20
    assert report["sampling"]["steps"] == 3 and report["fid"] > 0
    assert sum(report["coverage"]["histogram"]) == 20
    table = aigc("eval", run_dir, "--n", "20", "--metrics", "fid", "--steps", "3").stdout
    assert "aigc-digits-cnn-v1" in table and "fid" in table


def test_a_refused_data_set_loses_no_run(run_dir, tmp_path):
    """--overwrite replaces a run only once the new one's data is read: a bad file leaves the old run whole, and a
    new --out is not even created."""
    kept = tmp_path / "kept"
    shutil.copytree(run_dir, kept)
    before = sorted(p.relative_to(kept) for p in kept.rglob("*"))
    (tmp_path / "bad.csv").write_text("text;label\nfine;a\n")
    result = aigc("train", "classifier", "--data", f"csv:{tmp_path / 'bad.csv'}", "--out", kept, "--overwrite",
                  check=False)  # fmt: skip
    assert result.returncode == 2 and "--delimiter ';'" in result.stderr
    assert sorted(p.relative_to(kept) for p in kept.rglob("*")) == before
    result = aigc("train", "classifier", "--data", f"csv:{tmp_path / 'bad.csv'}", "--out", tmp_path / "new",
                  check=False)  # fmt: skip
    assert result.returncode == 2 and not (tmp_path / "new").exists()
