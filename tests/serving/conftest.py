import dataclasses

import pytest
from tests.training.test_checkpoint import TINY

from aigc.config import gan_recipe
from aigc.data.datasets import DataConfig
from aigc.training.loop import train


@pytest.fixture(scope="session")
def diffusion_run(tmp_path_factory):
    """A class-conditional 8x8 digits diffusion run (10 classes), a few steps old."""
    run_dir = tmp_path_factory.mktemp("served") / "digits"
    train(TINY, run_dir, progress=False)
    return run_dir


@pytest.fixture(scope="session")
def gan_run(tmp_path_factory):
    """An unconditional 8x8 digits GAN run of the stable recipe, a few steps old."""
    base = gan_recipe("stable")
    config = dataclasses.replace(
        base,
        data=DataConfig(name="digits", image_size=8),
        model=dataclasses.replace(base.model, width=8, z_dim=8),
        train=dataclasses.replace(base.train, batch=16, kimg=0.064, snapshot_kimg=0.032, grid_size=4),
    )
    run_dir = tmp_path_factory.mktemp("served") / "gan"
    train(config, run_dir, progress=False)
    return run_dir
