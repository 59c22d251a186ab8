import pytest
import torch

from aigc.core.errors import UserError
from aigc.data.datasets import DataConfig
from aigc.families.diffusion.config import DEFAULT_GUIDANCE, DiffusionRunConfig
from aigc.families.diffusion.config import DiffusionSampleConfig as SampleConfig
from aigc.families.registry import family_of, generate
from aigc.models.diffusion import ModelConfig, build_denoiser
from aigc.models.precond import PrecondConfig
from aigc.sampling.samplers import SAMPLERS


def tiny_model(num_classes=0, kind="edm"):
    torch.manual_seed(0)
    config = ModelConfig(
        preset="tiny", image_size=8, channels=1, num_classes=num_classes, precond=PrecondConfig(kind=kind)
    )
    model = build_denoiser(config).eval()
    with torch.no_grad():  # the zero-initialised output layer would make every image the same
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_image_k_is_the_same_at_any_batch_size(sampler):
    model = tiny_model(num_classes=3)
    sample = SampleConfig(sampler=sampler, steps=4)
    seeds = [5, 9, 2, 7, 11]
    whole = generate(model, seeds, sample=sample, batch_size=5)
    assert whole.shape == (5, 1, 8, 8) and whole.dtype == torch.uint8
    assert torch.equal(generate(model, seeds, sample=sample, batch_size=2), whole)
    assert torch.equal(generate(model, [9], [9 % 3], sample=sample), whole[1:2])
    assert not torch.equal(whole[0], whole[1])


def test_vp_model_samples_with_every_schedule():
    model = tiny_model(kind="vp")
    for schedule in ("karras", "linspace", "leading", "trailing"):
        images = generate(model, [0, 1], sample=SampleConfig(steps=3, schedule=schedule))
        assert images.shape == (2, 1, 8, 8)


def test_guidance_changes_images_and_labels_matter():
    model = tiny_model(num_classes=3)
    plain = generate(model, [0, 1], [1, 1], SampleConfig(steps=3, guidance=1.0))
    guided = generate(model, [0, 1], [1, 1], SampleConfig(steps=3, guidance=3.0))
    other = generate(model, [0, 1], [2, 2], SampleConfig(steps=3, guidance=1.0))
    assert not torch.equal(plain, guided) and not torch.equal(plain, other)


def test_unset_guidance_is_the_default_scale_for_classes_and_none_without():
    conditional, unconditional = tiny_model(num_classes=3), tiny_model()
    unset = generate(conditional, [0, 1], sample=SampleConfig(steps=3))
    assert torch.equal(unset, generate(conditional, [0, 1], sample=SampleConfig(steps=3, guidance=DEFAULT_GUIDANCE)))
    assert not torch.equal(unset, generate(conditional, [0, 1], sample=SampleConfig(steps=3, guidance=1.0)))
    plain = generate(unconditional, [0, 1], sample=SampleConfig(steps=3))
    assert torch.equal(plain, generate(unconditional, [0, 1], sample=SampleConfig(steps=3, guidance=1.0)))


@pytest.mark.parametrize(
    ("classes", "guidance", "sampler"),
    [(3, None, "euler"), (3, 2.0, "euler"), (3, 1.0, "dpmpp-2m"), (0, None, "dpmpp-2m")],
)
def test_unset_sampler_is_euler_when_guided_and_dpmpp_2m_when_not(classes, guidance, sampler):
    model = tiny_model(num_classes=classes)
    unset = generate(model, [0, 1], sample=SampleConfig(steps=3, guidance=guidance))
    assert torch.equal(unset, generate(model, [0, 1], sample=SampleConfig(steps=3, guidance=guidance, sampler=sampler)))
    other = {"euler": "dpmpp-2m", "dpmpp-2m": "euler"}[sampler]
    assert not torch.equal(
        unset, generate(model, [0, 1], sample=SampleConfig(steps=3, guidance=guidance, sampler=other))
    )


@pytest.mark.parametrize(
    ("conditional", "guidance", "recorded"),
    [(True, None, (DEFAULT_GUIDANCE, "euler")), (True, 1.0, (1.0, "dpmpp-2m")), (False, None, (1.0, "dpmpp-2m"))],
)
def test_a_run_records_the_guidance_and_sampler_it_draws_with(conditional, guidance, recorded):
    config = DiffusionRunConfig(
        data=DataConfig(name="digits", image_size=8),
        model=ModelConfig(preset="tiny", class_conditional=conditional),
        sample=SampleConfig(guidance=guidance),
    )
    config, _ = family_of(config).training_data(config)
    assert (config.sample.guidance, config.sample.sampler) == recorded


def test_user_errors():
    conditional, unconditional = tiny_model(num_classes=3), tiny_model()
    with pytest.raises(UserError, match="classes 0..2"):
        generate(conditional, [0], [3])
    with pytest.raises(UserError, match="unconditional"):
        generate(unconditional, [0], [0])
    with pytest.raises(UserError, match="guidance needs a class-conditional"):
        generate(unconditional, [0], sample=SampleConfig(guidance=2.0))
    with pytest.raises(UserError, match="schedule 'leading' needs a vp"):
        generate(unconditional, [0], sample=SampleConfig(schedule="leading"))
