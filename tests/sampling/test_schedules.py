import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

from aigc.core.errors import UserError
from aigc.models.precond import PrecondConfig, vp_sigmas
from aigc.sampling.schedules import discrete_timesteps, karras_sigmas


def test_karras_schedule_pinned_values():
    sigmas = karras_sigmas(5, 0.002, 80.0)
    expected = torch.tensor([80.0, 17.527832, 2.515219, 0.1697528, 0.002, 0.0], dtype=torch.float64)
    assert torch.allclose(sigmas, expected, rtol=1e-5)


def test_vp_table_pinned_values():
    sigmas = vp_sigmas(PrecondConfig(kind="vp"))
    assert sigmas.shape == (1000,)
    assert sigmas[0].item() == pytest.approx(0.0100005, rel=1e-5)  # sqrt(beta_0 / (1 - beta_0))
    assert sigmas[-1].item() == pytest.approx(157.4070, rel=1e-4)


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("steps", [1, 10, 50, 999])
def test_ddim_spacings_match_diffusers(spacing, steps):
    scheduler = DDIMScheduler(timestep_spacing=spacing)
    scheduler.set_timesteps(steps)
    assert discrete_timesteps(steps, 1000, spacing).tolist() == scheduler.timesteps.tolist()


@pytest.mark.parametrize("steps", [1, 7, 20])
def test_linspace_matches_dpm_solver(steps):
    scheduler = DPMSolverMultistepScheduler()
    scheduler.set_timesteps(steps)
    assert discrete_timesteps(steps, 1000, "linspace").tolist() == scheduler.timesteps.tolist()


def test_unknown_spacing():
    with pytest.raises(UserError, match="unknown timestep spacing"):
        discrete_timesteps(10, 1000, "cosine")
