"""One TrainConfig and one learning-rate function for every family give each family the learning rate, budget end,
snapshots and evaluations its own config and formula gave before (format 2: `training/optim.py:learning_rate` for
the image families, `families/lm/trainer.py:lr_scale` for the language model, both kept below as references);
the run configs of formats 1 and 2 read as the same values in the family's unit; the command line writes the
amounts as each family's people know them."""

import math
from pathlib import Path

import pytest

from aigc.cli import build_parser
from aigc.cli.train import new_config
from aigc.core.config import from_dict, to_dict
from aigc.core.errors import ConfigError, UserError
from aigc.families.autoencoder.config import AutoencoderRunConfig
from aigc.families.diffusion.config import DiffusionRunConfig
from aigc.families.gan.config import gan_recipe
from aigc.families.lm.config import LMRunConfig
from aigc.families.registry import FAMILIES, family, from_json_dict, load_json
from aigc.families.text2image.config import Text2ImageRunConfig
from aigc.training.config import UNITS, TrainConfig, upgrade_train
from aigc.training.optim import budget_share, learning_rate

# The format-2 defaults, as config.json held them: the image TrainConfig's, the diffusion and conditional GAN
# recipes' changes to it, and the LMTrainConfig's.
IMAGES = {
    "batch": 64, "batch_per_device": None, "lr": 0.002, "warmup_kimg": 5.0, "lr_schedule": "constant", "decay": 0.2,
    "final_lr": 0.0, "weight_decay": 0.0, "grad_clip": 1.0, "ema_halflife_kimg": 50.0, "ema_rampup": 0.05,
    "kimg": None, "minutes": None, "seed": 0, "precision": "auto", "memory_format": "contiguous",
    "snapshot_kimg": 20.0, "grid_size": 64, "eval_every_kimg": None, "eval_n": 1000, "threads": None,
}  # fmt: skip
DIFFUSION = {**IMAGES, "lr_schedule": "wsd"}
GAN = {
    **IMAGES, "warmup_kimg": 0.0, "grad_clip": 0.0, "memory_format": "channels_last", "lr": 4e-4, "batch": 32,
    "ema_halflife_kimg": 10.0, "lr_schedule": "wsd",
}  # fmt: skip
LM = {
    "batch": 32, "batch_per_device": None, "optimizer": "muon", "lr": 0.004, "schedule": "wsd", "final_lr": 0.1,
    "decay": 0.3, "warmup_tokens": 50000, "weight_decay": 0.5, "grad_clip": 1.0, "tokens": None, "minutes": None,
    "seed": 0, "precision": "auto", "snapshot_tokens": 2000000, "samples": 4, "eval_every": None,
    "eval_tokens": 100000, "threads": None,
}  # fmt: skip


def old_schedule_scale(schedule: str, done: float, decay: float, final: float) -> float:
    if schedule == "cosine":
        return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * done))
    if schedule == "wsd":
        into_decay = max(0.0, done - (1 - decay)) / decay
        return 1 - (1 - final) * into_decay
    return 1.0


def old_done(limit, minutes, seen: int, seconds: float) -> float:
    shares = ([seen / limit] if limit is not None else []) + ([seconds / (minutes * 60)] if minutes is not None else [])
    return min(1.0, max(shares, default=0.0))


def old_image_rate(c: dict, warmed: int, seen: int, seconds: float) -> float:
    """training/optim.py:learning_rate of format 2, on an image config."""
    done = old_done(None if c["kimg"] is None else c["kimg"] * 1000, c["minutes"], seen, seconds)
    warm = min(1.0, warmed / (c["warmup_kimg"] * 1000)) if c["warmup_kimg"] > 0 else 1.0
    return c["lr"] * warm * old_schedule_scale(c["lr_schedule"], done, c["decay"], c["final_lr"])


def old_lm_rate(c: dict, seen: int, seconds: float) -> float:
    """families/lm/trainer.py: tc.lr * lr_scale(tc, seen, seconds) of format 2."""
    warm = min(1.0, seen / c["warmup_tokens"]) if c["warmup_tokens"] else 1.0
    done = old_done(c["tokens"], c["minutes"], seen, seconds)
    return c["lr"] * (warm * old_schedule_scale(c["schedule"], done, c["decay"], c["final_lr"]))


def read(old: dict) -> TrainConfig:
    return from_dict(TrainConfig, upgrade_train(old))


def new_rate(train: TrainConfig, warmed: int, seen: int, seconds: float) -> float:
    return learning_rate(train, warmed, budget_share(train, seen, seconds))


def test_the_families_default_train_configs_are_those_of_format_2():
    assert DiffusionRunConfig().train == read(DIFFUSION)
    assert gan_recipe("conditional").train == read(GAN)
    assert Text2ImageRunConfig().train == AutoencoderRunConfig().train == read(IMAGES)
    assert LMRunConfig().train == read(LM)


@pytest.mark.parametrize("old", [IMAGES, DIFFUSION, GAN], ids=["images", "diffusion", "gan"])
@pytest.mark.parametrize("budget", [{"kimg": 30.0}, {"minutes": 10.0}, {"kimg": 3.0, "warmup_kimg": 2.0}])
def test_image_runs_keep_their_learning_rate_at_every_point(old, budget):
    old = {**old, **budget}
    train = read(old)
    for seen in (0, 16, 1000, 1999, 2500, 5000, 5008, 2400, 2700, 24000, 26000, 29984, 30000):
        for seconds in (0.0, 30.0, 450.0, 599.0, 600.0):
            for warmed in (seen, max(0, seen - 1000)):  # text2image's denoiser warms up from its stage's start
                assert new_rate(train, warmed, seen, seconds) == old_image_rate(old, warmed, seen, seconds)


@pytest.mark.parametrize(
    "changes",
    [{"tokens": 1_000_000}, {"minutes": 10.0}, {"tokens": 60_000}, {"tokens": 1_000_000, "schedule": "cosine"}],
    ids=["tokens", "minutes", "short", "cosine"],
)
def test_language_model_runs_keep_their_learning_rate_at_every_point(changes):
    """Exactly, but where the run is still warming up when the rate already decays (a cosine, a short run): there
    the two formulas multiply the same three factors in another order, and the rate may differ in its last bits."""
    old = {**LM, **changes}
    train = read(old)
    for seen in (0, 4096, 25_000, 44_000, 49_999, 50_000, 500_000, 700_000, 800_000, 999_424, 1_000_000):
        for seconds in (0.0, 60.0, 420.0, 540.0, 600.0):
            rate, expected = new_rate(train, seen, seen, seconds), old_lm_rate(old, seen, seconds)
            warming = seen < old["warmup_tokens"]
            decaying = old_schedule_scale(old["schedule"], budget_share(train, seen, seconds), 0.3, 0.1) < 1
            if warming and decaying:
                assert rate == pytest.approx(expected, rel=5e-16, abs=0)
            else:
                assert rate == expected, (seen, seconds)


@pytest.mark.parametrize(
    ("old", "limit", "snapshot", "evaluation"),
    [
        ({**IMAGES, "kimg": 0.064, "snapshot_kimg": 0.032, "eval_every_kimg": 0.016}, 0.064 * 1000, 0.032 * 1000, 16.0),
        ({**LM, "tokens": 3072, "snapshot_tokens": 1024, "eval_every": 512}, 3072, 1024, 512),
    ],
    ids=["images", "tokens"],
)
def test_budgets_snapshots_and_evaluations_end_where_they_did(old, limit, snapshot, evaluation):
    """Format 2 compared `seen` with kimg * 1000 (images) or tokens, and so does today's budget in units."""
    train = read(old)
    assert (train.budget, train.snapshot_every, train.eval_every) == (limit, snapshot, evaluation)


def test_every_family_counts_a_unit_people_can_write():
    for entry in FAMILIES.values():
        unit = UNITS[entry.unit]
        assert set(unit.amounts) >= {"budget", "warmup", "snapshot_every", "eval_every", "eval_n"}, entry.name
        assert entry.new_config().train.budget is None  # the command line's --minutes default applies


def test_the_amounts_of_a_unit_are_written_as_people_know_them():
    images, tokens = UNITS["img"], UNITS["tok"]
    assert images.units({"budget": 0.064, "eval_n": 50}) == {"budget": 64.0, "eval_n": 50}
    assert tokens.units({"budget": 5_000_000, "warmup": 0}) == {"budget": 5_000_000.0, "warmup": 0.0}
    assert images.amounts["snapshot_every"].written(20_000.0) == 20.0
    with pytest.raises(ValueError, match=r"^kimg = -1.0: must be greater than 0.0$"):
        images.units({"budget": -1.0})
    with pytest.raises(ValueError, match=r"^eval_tokens = 1: must be at least 2$"):
        tokens.units({"eval_n": 1})
    assert TrainConfig(budget=30_000).describe_budget("img") == "30 kimg"
    assert TrainConfig(budget=5_000_000).describe_budget("tok") == "5,000,000 tokens"


@pytest.mark.parametrize(
    ("run_config", "old"), [(DiffusionRunConfig, DIFFUSION), (LMRunConfig, LM)], ids=["diffusion", "lm"]
)
def test_a_run_config_of_format_2_reads_as_today_s(run_config, old):
    data = {**to_dict(run_config()), "format_version": 2, "train": old}
    assert from_json_dict(data, "config.json") == run_config()


def test_a_release_0_1_run_reads_in_images():
    gan = load_json(Path(__file__).parents[1] / "golden" / "release-0.1.0" / "gan" / "config.json")
    assert (gan.train.budget, gan.train.snapshot_every, gan.train.ema_halflife, gan.train.warmup) == (
        0.064 * 1000,
        20.0 * 1000,
        10.0 * 1000,
        0.0,
    )
    assert gan.train.lr_schedule == "constant" and gan.format_version == 3


def parsed(*argv: str):
    args = build_parser().parse_args(["train", *argv])
    return new_config(family(args.family), args).train


def test_the_flags_keep_their_names_and_meanings_in_each_family_s_unit():
    images = parsed(
        "diffusion", "--kimg", "0.064", "--warmup-kimg", "0.01", "--snapshot-kimg", "0.032", "--eval-every", "0.016",
        "--eval-n", "50", "--ema-halflife-kimg", "10",
    )  # fmt: skip
    assert (images.budget, images.warmup, images.snapshot_every, images.eval_every) == (64.0, 10.0, 32.0, 16.0)
    assert (images.eval_n, images.ema_halflife, images.minutes) == (50, 10_000.0, None)
    tokens = parsed(
        "lm", "--tokens", "5M", "--warmup-tokens", "1k", "--snapshot-tokens", "2k", "--eval-every", "512",
        "--eval-tokens", "300", "--schedule", "cosine",
    )  # fmt: skip
    assert (tokens.budget, tokens.warmup, tokens.snapshot_every, tokens.eval_every) == (5e6, 1000, 2000, 512)
    assert (tokens.eval_n, tokens.lr_schedule, tokens.optimizer) == (300, "cosine", "muon")
    assert parsed("lm", "--lr-schedule", "constant").lr_schedule == "constant"
    assert parsed("gan").minutes == 10.0  # no budget given: the default minutes


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["lm", "--ema-halflife-kimg", "1"],
            "unrecognized arguments: --ema-halflife-kimg",
        ),  # a language model keeps none
        (["diffusion", "--tokens", "1M"], "unrecognized arguments: --tokens"),
        (["diffusion", "--optimizer", "muon"], "optimizer = 'muon': this model trains with adamw"),
        (["gan", "--weight-decay", "0.1"], "weight_decay = 0.1: a GAN trains without weight decay"),
        (["lm", "--memory-format", "channels_last"], "memory_format = 'channels_last': applies to convolutional"),
        (["lm", "--tokens", "0"], "tokens = 0: must be greater than 0.0"),
    ],
)
def test_flags_a_family_cannot_use_are_refused(argv, message):
    with pytest.raises(UserError, match=message):
        parsed(*argv)


@pytest.mark.parametrize("value", [{"x": 1}, "5", True])
def test_an_old_amount_that_is_not_a_number_is_one_line_naming_it(value):
    with pytest.raises(ConfigError, match=r"^kimg = .*: must be a number$"):
        upgrade_train({"kimg": value})
