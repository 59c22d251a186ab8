"""Bad config values are refused up front, with the same one-line message from every entry point: `aigc train`
(before any checkpoint is written), `aigc sample`, `aigc eval`, and the service (a 422 naming the field)."""

import math

import pytest
from fastapi.testclient import TestClient

from aigc.cli import main as aigc
from aigc.core.checkpoint import latest_checkpoint
from aigc.core.config import check_value
from aigc.core.errors import ConfigError
from aigc.families.diffusion.config import DiffusionSampleConfig
from aigc.training.config import TrainConfig

TINY = ["--data", "digits", "--image-size", "8", "--preset", "tiny", "--batch", "16", "--kimg", "0.016"]
STEPS_0 = "steps = 0: must lie in 1..1000"
GUIDANCE_NAN = "guidance = nan: must be a finite number"
SCHEDULE = "schedule = 'linspace': applies to vp (DDPM) models; use karras"

TRAIN_CASES = [
    ("diffusion", ["--steps", "0"], STEPS_0),
    ("diffusion", ["--lr", "nan"], "lr = nan: must be a finite number"),
    ("diffusion", ["--lr", "inf"], "lr = inf: must be a finite number"),
    ("diffusion", ["--lr", "0"], "lr = 0.0: must be greater than 0.0"),
    ("diffusion", ["--batch", "0"], "batch = 0: must be at least 1"),
    ("diffusion", ["--kimg", "-1"], "kimg = -1.0: must be greater than 0.0"),
    ("diffusion", ["--schedule", "linspace"], SCHEDULE),
    ("diffusion", ["--guidance", "nan"], GUIDANCE_NAN),
    ("diffusion", ["--label-dropout", "1"], "label_dropout = 1.0: must be less than 1.0"),
    ("diffusion", ["--eval-every", "0"], "eval_every_kimg = 0.0: must be greater than 0.0"),
    ("gan", ["--lr-d", "0"], "lr_d = 0.0: must be greater than 0.0"),
    ("gan", ["--beta1", "1"], "beta1 = 1.0: must be less than 1.0"),
    ("gan", ["--truncation", "0.01"], "truncation = 0.01: must be at least 0.05"),
    ("gan", ["--augment", "warp"], "augment = 'warp': unknown augmentation 'warp'"),
    ("gan", ["--z-dim", "0"], "z_dim = 0: must be at least 1"),
]


@pytest.mark.parametrize("family, flags, message", TRAIN_CASES)
def test_train_refuses_before_any_work(family, flags, message, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert aigc(["train", family, *TINY[:4], "--kimg", "0.016", *flags, "--out", str(run_dir), "--no-progress"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: {message}") and "\n" not in error
    assert not (run_dir / "checkpoints").exists()


SAMPLE_CASES = [
    (["--steps", "0"], STEPS_0),
    (["--steps", "1001"], "steps = 1001: must lie in 1..1000"),
    (["--guidance", "nan"], GUIDANCE_NAN),
    (["--guidance=-inf"], "guidance = -inf: must be a finite number"),
    (["--sampler", "lms"], "sampler = 'lms': choose one of euler, heun, dpmpp-2m, ddim, ddpm"),
    (["--schedule", "linspace"], SCHEDULE),
    (["--truncation", "0.5"], "truncation: not a setting of diffusion models; drop it"),
]


@pytest.mark.parametrize("flags, message", SAMPLE_CASES)
def test_sample_and_eval_refuse_the_same_values(diffusion_run, flags, message, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert aigc(["sample", str(diffusion_run), "--n", "4", *flags, "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().startswith(f"error: {message}")
    assert not out.exists()
    assert aigc(["eval", str(diffusion_run), "--n", "8", *flags]) == 2
    assert capsys.readouterr().err.strip().startswith(f"error: {message}")


@pytest.mark.parametrize(
    "flags, message",
    [(["--n", "1"], "n = 1: must be at least 2"), (["--metrics", "fid,bleu"], "metrics = 'fid,bleu': unknown metric")],
)
def test_eval_refuses_its_own_bad_values(diffusion_run, flags, message, capsys):
    assert aigc(["eval", str(diffusion_run), *flags]) == 2
    assert capsys.readouterr().err.strip().startswith(f"error: {message}")


@pytest.mark.parametrize(
    "body, message, field",
    [
        ({"steps": 0}, STEPS_0, "steps"),
        ({"guidance": math.nan}, GUIDANCE_NAN, "guidance"),
        ({"guidance": -math.inf}, "guidance = -inf: must be a finite number", "guidance"),
        ({"sampler": "lms"}, "sampler = 'lms': choose one of euler, heun, dpmpp-2m, ddim, ddpm", "sampler"),
        ({"schedule": "linspace"}, SCHEDULE, "schedule"),
        ({"steps": 101}, "steps = 101: this server allows at most 100", "steps"),
    ],
)
def test_the_service_answers_the_same_message_as_a_422(diffusion_run, body, message, field):
    from aigc.serving.app import create_app
    from aigc.serving.settings import load_settings

    settings = load_settings(models={"digits": latest_checkpoint(diffusion_run)})
    with TestClient(create_app(settings)) as client:
        while client.get("/readyz").status_code != 200:
            pass
        reply = client.post("/v1/generate", content=_json({"n": 2, **body}))
        assert reply.status_code == 422
        error = {"message": message, "type": "invalid_request_error", "param": field, "code": None}  # OpenAI's shape
        assert reply.json() == {"detail": message, "field": field, "error": error}


def _json(body: dict) -> str:
    import json

    return json.dumps(body)  # allows NaN and Infinity, as Python and JavaScript clients send them


def test_configs_check_themselves_when_built_in_code():
    with pytest.raises(ConfigError, match="steps = 0"):
        DiffusionSampleConfig(steps=0)
    with pytest.raises(ConfigError, match="batch = 2.5: must be a whole number"):
        TrainConfig(batch=2.5)
    with pytest.raises(ConfigError, match="precision = 'fp16': choose one of auto, fp32, bf16"):
        TrainConfig(precision="fp16")
    with pytest.raises(ConfigError, match="must be true or false"):
        check_value("flip", 1, bool, {})
    assert TrainConfig(budget=1).budget == 1  # an int where a float goes is a float's value


def test_resume_refuses_a_budget_that_adds_nothing(tmp_path, capsys):
    import shutil
    from pathlib import Path

    run_dir = tmp_path / "gan"
    shutil.copytree(Path(__file__).parent / "golden" / "release-0.1.0" / "gan", run_dir)
    assert aigc(["train", "gan", "--resume", str(run_dir), "--kimg", "0", "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == "error: kimg = 0.0: must be greater than 0.0"
    assert aigc(["train", "gan", "--resume", str(run_dir), "--threads", "0", "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == "error: threads = 0: must be at least 1"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir())[-1] == "000004.state.safetensors"
