import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aigc.core.checkpoint import latest_checkpoint, load_state
from aigc.core.errors import Diverged, UserError
from aigc.data.augment import cutout, diff_augment, parse_policy, translation
from aigc.data.datasets import DataConfig
from aigc.families.gan import trainer as gan
from aigc.families.gan.config import gan_recipe
from aigc.families.registry import load_checkpoint
from aigc.runs import train
from aigc.training.batch import Batch
from aigc.training.loop import Position


def tiny(recipe: str = "stable", kimg: float = 0.064, **adversarial):
    config = gan_recipe(recipe)
    return dataclasses.replace(
        config,
        data=DataConfig(name="digits", image_size=8),
        model=dataclasses.replace(config.model, z_dim=8, width=8),
        adversarial=dataclasses.replace(config.adversarial, **{"r1_every": 2, **adversarial}),
        train=dataclasses.replace(config.train, batch=16, budget=kimg * 1000, snapshot_every=32, grid_size=4),
    )


def one_batch() -> list[Batch]:
    images = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return [Batch(images, None, torch.Generator().manual_seed(1))]


def test_bce_on_probabilities_equals_logistic_on_logits():
    real, fake = torch.randn(8), torch.randn(8)
    assert torch.allclose(gan.d_loss("bce", real.sigmoid(), fake.sigmoid()), gan.d_loss("logistic", real, fake))
    assert torch.allclose(gan.g_loss("bce", fake.sigmoid()), gan.g_loss("logistic", fake))


def test_hinge_loss_is_zero_beyond_the_margins():
    assert gan.d_loss("hinge", torch.full((4,), 1.5), torch.full((4,), -2.0)) == 0
    assert gan.d_loss("hinge", torch.zeros(4), torch.zeros(4)) == 2
    assert gan.g_loss("hinge", torch.full((4,), 3.0)) == -3


def test_r1_penalty_is_the_squared_input_gradient_and_differentiable():
    """For D(x) = <w, x> + b, grad_x D = w, so R1 = |w|^2 and dR1/dw = 2w."""
    D = nn.Sequential(nn.Flatten(), nn.Linear(12, 1))
    penalty = gan.r1_penalty(torch.randn(5, 3, 2, 2), lambda x: D(x).squeeze(1))
    w = D[1].weight
    assert torch.allclose(penalty, w.square().sum())
    (grad,) = torch.autograd.grad(penalty, w)
    assert torch.allclose(grad, 2 * w)


def test_r1_changes_the_discriminator_update_on_its_steps():
    def d_after_one_step(gamma):
        config = tiny(r1_gamma=gamma, r1_every=1, augment="none")
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, image_size=8, channels=1))
        torch.manual_seed(0)
        trainer = gan.GANTrainer(config, torch.device("cpu"))
        values = trainer.step(one_batch(), Position())
        return values, [p.detach().clone() for p in trainer.discriminator.parameters()]

    plain, plain_d = d_after_one_step(0.0)
    penalised, penalised_d = d_after_one_step(10.0)
    assert "r1" not in plain and penalised["r1"] > 0
    assert plain["loss_d"] == penalised["loss_d"]  # same batch, same D before the update
    assert any(not torch.equal(a, b) for a, b in zip(plain_d, penalised_d, strict=True))


def conditional_step(weight: float, n: int = 16):
    """One step of a 3-class GAN with mode-seeking weight `weight` on a micro-batch of `n` images: its values
    and G's weights after it."""
    config = tiny(mode_seeking=weight, augment="none")
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, image_size=8, channels=1, num_classes=3)
    )
    torch.manual_seed(0)
    trainer = gan.GANTrainer(config, torch.device("cpu"))
    (batch,) = one_batch()
    labels = torch.arange(n) % 3
    values = trainer.step([Batch(batch.data[:n], labels, batch.generator)], Position())
    return values, [p.detach().clone() for p in trainer.generator.parameters()]


def test_mode_seeking_adds_a_term_to_g_alone_and_changes_its_update():
    plain, plain_g = conditional_step(0.0)
    seeking, seeking_g = conditional_step(1.0)
    assert "mode_seeking" not in plain and seeking["mode_seeking"] > 0
    assert plain["loss_d"] == seeking["loss_d"]  # D's update does not see the term
    assert any(not torch.equal(a, b) for a, b in zip(plain_g, seeking_g, strict=True))


def test_mode_seeking_on_a_micro_batch_of_one_takes_the_plain_loss():
    """--batch-per-device 1: no pair to form, so no term (it was NaN, and the run stopped as diverged)."""
    values, weights = conditional_step(1.0, n=1)
    assert "mode_seeking" not in values and math.isfinite(values["loss_g"])
    assert all(w.isfinite().all() for w in weights)


def test_bf16_runs_the_networks_in_bf16_and_keeps_losses_and_weights_in_float32():
    def one_step(precision):
        config = tiny(r1_every=1)
        config = dataclasses.replace(
            config,
            model=dataclasses.replace(config.model, image_size=8, channels=1),
            train=dataclasses.replace(config.train, precision=precision),
        )
        torch.manual_seed(0)
        trainer = gan.GANTrainer(config, torch.device("cpu"))
        dtypes = []
        trainer.discriminator.trunk.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
        values = trainer.step(one_batch(), Position())
        return values, dtypes, trainer

    exact, exact_dtypes, _ = one_step("fp32")
    fast, fast_dtypes, trainer = one_step("bf16")
    assert set(exact_dtypes) == {torch.float32} and set(fast_dtypes) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in trainer.generator.parameters())
    assert fast.keys() == exact.keys() == {"loss_d", "r1", "loss_g", "lr"}
    for key in exact:
        assert fast[key] == pytest.approx(exact[key], rel=0.05, abs=1e-3)


def test_diff_augment_is_differentiable_deterministic_and_keeps_shape():
    x = torch.randn(6, 3, 16, 16, requires_grad=True)
    policy = parse_policy("translation,cutout,color")
    a = diff_augment(x, policy, torch.Generator().manual_seed(0))
    b = diff_augment(x, policy, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert parse_policy("none") == () and parse_policy("") == ()
    with pytest.raises(UserError, match="unknown augmentation 'blur'"):
        parse_policy("translation,blur")


def test_translation_shifts_whole_images_and_cutout_zeroes_a_square():
    x = torch.zeros(32, 1, 16, 16)
    x[:, :, 7:9, 7:9] = 1  # a 2x2 dot in the middle survives any shift of at most 2 pixels
    moved = translation(x, torch.Generator().manual_seed(0))
    assert torch.equal(moved.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))
    assert not torch.equal(moved, x)
    holes = cutout(torch.ones(32, 1, 16, 16), torch.Generator().manual_seed(0))
    zeroed = (holes == 0).sum(dim=(1, 2, 3))
    assert zeroed.max() == 64 and 0 < zeroed.min() < 64  # an 8x8 square, clipped at the borders


@pytest.mark.parametrize("recipe", ["seed", "stable"])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, recipe):
    train(tiny(recipe), tmp_path / "straight", progress=False)
    train(tiny(recipe, kimg=0.032), tmp_path / "split", progress=False)
    train(tiny(recipe), tmp_path / "split", resume=True, progress=False)
    a = load_checkpoint(latest_checkpoint(tmp_path / "straight"))
    b = load_checkpoint(latest_checkpoint(tmp_path / "split"))
    assert a.step == b.step == 4
    assert a.modules.keys() == {"generator", "discriminator", "ema"}
    for name, weights in a.modules.items():
        for key, value in weights.items():
            assert torch.equal(value, b.modules[name][key]), (name, key)


def test_a_nan_loss_stops_with_a_checkpoint_of_the_last_good_state(tmp_path, monkeypatch):
    real_d_loss = gan.d_loss

    def poisoned(kind, real, fake):
        poisoned.calls += 1
        loss = real_d_loss(kind, real, fake)
        return loss * float("nan") if poisoned.calls == 3 else loss

    poisoned.calls = 0
    monkeypatch.setattr(gan, "d_loss", poisoned)
    with pytest.raises(Diverged, match=r"discriminator loss became nan at step 2; the last good state is .*000002"):
        train(tiny(kimg=1), tmp_path / "run", progress=False)
    path = latest_checkpoint(tmp_path / "run", need_state=True)
    checkpoint = load_checkpoint(path)
    assert checkpoint.step == 2 and load_state(path)["train_seconds"] > 0
    assert all(torch.isfinite(v).all() for weights in checkpoint.modules.values() for v in weights.values())


def test_a_collapsed_discriminator_stops_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(gan, "d_loss", lambda kind, real, fake: 0 * (real.sum() + fake.sum()))
    with pytest.raises(Diverged, match="stayed below 0.001 for 3 steps up to step 2"):
        train(tiny(kimg=1, collapse_steps=3), tmp_path / "run", progress=False)
    assert load_checkpoint(latest_checkpoint(tmp_path / "run")).step == 2  # the state before the step that tripped


def test_softplus_logistic_loss_is_finite_for_huge_logits():
    assert torch.isfinite(gan.d_loss("logistic", torch.tensor([1e4]), torch.tensor([-1e4])))
    assert F.softplus(torch.tensor(1e4)) == 1e4


def test_in_loop_evaluation_logs_fid_and_class_coverage(tmp_path, monkeypatch):
    import json

    from aigc.families.registry import load_model

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = tiny()
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, eval_every=32, eval_n=20))
    train(config, tmp_path / "run", progress=False)
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evaluations = [entry for entry in logged if "fid" in entry]
    assert len(evaluations) == 2
    assert all(e["fid"] > 0 and 1 <= e["classes_present"] <= 10 and "class_entropy" in e for e in evaluations)
    generator, _ = load_model(tmp_path / "run" / "checkpoints" / "best.safetensors")
    assert generator.z_dim == 8
