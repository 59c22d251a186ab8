import pytest
import torch

from aigc.core.errors import UserError
from aigc.models.diffusion import ModelConfig, build_denoiser
from aigc.models.precond import Denoiser, PrecondConfig
from aigc.models.unet import PRESETS, UNet, default_preset


@pytest.mark.parametrize(
    ("preset", "size", "channels"),
    [
        ("tiny", 8, 1),
        ("s16", 16, 1),
        ("s28", 28, 1),
        ("s32", 32, 3),
        ("s64", 64, 3),
    ],
)
@pytest.mark.parametrize("num_classes", [0, 10])
def test_unet_shapes(preset, size, channels, num_classes):
    net = UNet(PRESETS[preset], size, channels, num_classes)
    x = torch.randn(2, channels, size, size)
    labels = torch.tensor([0, num_classes]) if num_classes else None  # num_classes is the null class
    assert net(x, torch.randn(2), labels).shape == x.shape


def test_default_presets_by_size():
    assert [default_preset(s) for s in (8, 16, 28, 32, 64, 128)] == ["s16", "s16", "s28", "s32", "s64", "s64"]


def test_sizes_the_unet_cannot_take():
    with pytest.raises(UserError, match="image size 30 does not fit"):
        UNet(PRESETS["s28"], 30, 1)
    with pytest.raises(UserError, match="preset = 'huge': choose one of tiny, s16"):
        build_denoiser(ModelConfig(preset="huge", image_size=16, channels=1))


def test_edm_denoiser_is_identity_at_zero_noise_and_mean_at_high_noise():
    denoiser = Denoiser(UNet(PRESETS["tiny"], 8, 1), PrecondConfig())
    x = torch.randn(3, 1, 8, 8)
    assert torch.allclose(denoiser(x, 1e-6), x, atol=1e-5)  # c_skip -> 1, c_out -> 0
    # zero-initialised output: D = c_skip * x, which shrinks to the data mean 0 as sigma grows
    assert denoiser(x * 1000, 1000.0).abs().max() < 0.3


def test_vp_sigma_to_timestep_is_exact_on_the_table():
    denoiser = Denoiser(UNet(PRESETS["tiny"], 8, 1), PrecondConfig(kind="vp"))
    table = denoiser.timestep_sigmas
    t = denoiser.sigma_to_timestep(table[[0, 1, 500, 999]])
    assert t.tolist() == [0.0, 1.0, 500.0, 999.0]
    mid = denoiser.sigma_to_timestep((table[10] * table[11]).sqrt()[None])
    assert 10 < mid.item() < 11
