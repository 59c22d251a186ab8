"""A Stable Diffusion directory (diffusers' `save_pretrained` layout) sampled through aigc: tiny random components
built and saved here (no download), drawn by aigc's DDIM and by diffusers' own pipeline from the same starting
latents - the two must agree -, `aigc sample DIR`, the service, and directories aigc cannot read as one-line
errors."""

import json
import shutil

import pytest
import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from tests.families.tiny_clip import MAX_TOKENS, tiny_text_model, tiny_tokenizer

from aigc.cli import main as aigc
from aigc.core.rng import PerSampleNoise
from aigc.families.registry import family, load_model

PROMPT = "a red cat"


def scheduler(prediction: str) -> DDIMScheduler:
    # Stable Diffusion's table; set_alpha_to_one and trailing spacing as aigc's ddim visits it
    return DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=True,
        timestep_spacing="trailing", prediction_type=prediction, steps_offset=1,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """(directory, the diffusers pipeline it was saved from): 16-pixel RGB images, 8x8x4 latents."""
    root = tmp_path_factory.mktemp("sd")
    torch.manual_seed(0)
    text_encoder = tiny_text_model()
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32,
    )  # fmt: skip
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2, block_out_channels=[32, 64], latent_channels=4, norm_num_groups=32,
    )  # fmt: skip
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tiny_tokenizer(root / "files"), unet=unet,
        scheduler=scheduler("epsilon"), safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(root / "pipeline")
    return root / "pipeline", pipe


def with_prediction(directory, prediction: str, out):
    """A copy of the directory whose scheduler says the network predicts `prediction`."""
    shutil.copytree(directory, out)
    path = out / "scheduler" / "scheduler_config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"prediction_type": prediction}))
    return out


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_aigc_draws_what_diffusers_pipeline_draws_from_the_same_latents(pipeline, prediction, tmp_path):
    directory, pipe = pipeline
    model, config = load_model(with_prediction(directory, prediction, tmp_path / "sd"))
    assert (config.image_size, config.channels, model.autoencoder.latent_shape) == (16, 3, (4, 8, 8))
    sample = type(config.sample)(sampler="ddim", steps=4, schedule="trailing", guidance=5.0)
    seeds = [0, 1]
    ours = family("text2image").generate(model, seeds, [PROMPT] * 2, sample)
    latents = PerSampleNoise(seeds).randn((4, 8, 8))  # aigc's first draw for each seed: the starting latents
    pipe.scheduler = scheduler(prediction)
    theirs = pipe(
        [PROMPT] * 2, num_inference_steps=4, guidance_scale=5.0, latents=latents, output_type="pt"
    ).images  # [0, 1]
    assert ours.shape == (2, 3, 16, 16)
    assert (ours.float() / 255 - theirs).abs().max() <= 1.5 / 255  # aigc rounds to 8 bits


def test_sample_and_the_service_draw_from_a_pipeline_directory(pipeline, tmp_path, capsys):
    from fastapi.testclient import TestClient

    from aigc.cli.serve import served_checkpoints
    from aigc.serving.app import create_app
    from aigc.serving.settings import load_settings

    directory, _ = pipeline
    out = tmp_path / "cats.png"
    argv = ["sample", str(directory), "--prompt", PROMPT, "--prompt", "a dog", "--seeds", "0-1", "--steps", "2"]
    assert aigc([*argv, "--out", str(out)]) == 0
    assert out.is_file() and "wrote a grid of 4 images" in capsys.readouterr().out
    served = served_checkpoints([f"sd={directory}"])
    assert served == {"sd": directory}  # `aigc serve sd=DIR` serves the directory as it is
    with TestClient(create_app(load_settings(models=served, burst=100))) as client:
        while client.get("/readyz").status_code != 200:
            pass
        info = client.get("/v1/models").json()["data"][0]
        assert info["conditions"] == "prompts" and info["image_size"] == 16 and info["max_tokens"] == MAX_TOKENS
        reply = client.post("/v1/generate", json={"prompt": PROMPT, "seeds": [0], "format": "json", "steps": 2})
        assert reply.status_code == 200 and len(reply.json()["images"]) == 1
        reply = client.post("/v1/generate", json={"prompt": "a very long prompt indeed", "steps": 2})
        assert reply.status_code == 422 and "tokens; this text encoder reads 16" in reply.json()["detail"]


def edit(directory, out, path: str, change):
    """A copy of the directory with the JSON file `path` changed by `change` (a dict update, or None: deleted)."""
    shutil.copytree(directory, out)
    if change is None:
        shutil.rmtree(out / path.split("/")[0])
    else:
        file = out / path
        file.write_text(json.dumps(json.loads(file.read_text()) | change))
    return out


def test_what_aigc_cannot_read_is_a_one_line_error(pipeline, tmp_path, capsys):
    directory, _ = pipeline
    cases = [
        (directory, ["--prompt", "a cat " * 4], "tokens; this text encoder reads 16"),
        (directory, ["--prompt", " "], "the prompt is empty"),
        (directory, ["--class", "3"], "this model draws what a prompt says; give --prompt"),
        ("index.json", {"_class_name": "StableDiffusionXLPipeline"}, "aigc samples StableDiffusionPipeline"),
        ("scheduler/scheduler_config.json", {"beta_schedule": "squaredcos_cap_v2"}, "beta schedule 'squaredcos"),
        ("scheduler/scheduler_config.json", {"prediction_type": "sample"}, "prediction type 'sample'"),
        ("unet", None, "no unet folder"),
        ("index.json", {"text_encoder": [None, None]}, "no text_encoder folder"),
        ("index.json", {"vae": ["os", "system"]}, "its vae is a os system; aigc reads diffusers and transformers"),
        ("vae/config.json", {"_class_name": "AutoencoderKL", "block_out_channels": [8]}, "vae: unreadable"),
    ]
    for k, (where, change, message) in enumerate(cases):
        if isinstance(change, list):  # flags for the intact directory
            argv = ["sample", str(where), *change]
        else:
            target = edit(directory, tmp_path / str(k), where.replace("index.json", "model_index.json"), change)
            argv = ["sample", str(target), "--prompt", PROMPT]
        capsys.readouterr()
        assert aigc([*argv, "--steps", "1", "--out", str(tmp_path / "x.png")]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and message in err, (argv, err)
