import dataclasses

import pytest
import torch
from torch import nn

from aigc.core.errors import UserError
from aigc.families.gan.config import gan_recipe
from aigc.models.gan import (
    ARCHITECTURES,
    GANModelConfig,
    build_discriminator,
    build_generator,
    start_resolution,
)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("size", [8, 16, 28, 32, 64])
def test_every_generator_and_discriminator_fits_every_size(architecture, size):
    for channels, classes in ((1, 0), (3, 5)):
        config = GANModelConfig(
            generator=architecture,
            discriminator=architecture,
            z_dim=16,
            width=8,
            class_conditional=classes > 0,
            image_size=size,
            channels=channels,
            num_classes=classes,
        )
        labels = torch.tensor([0, 4]) if classes else None
        x = build_generator(config)(torch.randn(2, 16), labels)
        assert x.shape == (2, channels, size, size)
        assert x.abs().max() <= 1
        assert build_discriminator(config)(x, labels).shape == (2,)


def test_start_resolution_halves_while_even():
    assert [start_resolution(s) for s in (28, 32, 64, 16, 48)] == [(7, 2), (4, 3), (4, 4), (4, 2), (3, 4)]


def test_seed_recipe_is_the_tutorials_mlp_layer_by_layer():
    """G: Linear 100-256-256-784 + Tanh; D: Linear 784-256-256-1 + Sigmoid; LeakyReLU(0.2) in between."""
    config = dataclasses.replace(gan_recipe("seed").model, image_size=28, channels=1)
    G = build_generator(config)
    layers = [m for m in G.body if not isinstance(m, nn.Unflatten)]
    assert [type(m) for m in layers] == [nn.Linear, nn.LeakyReLU, nn.Linear, nn.LeakyReLU, nn.Linear, nn.Tanh]
    assert [(m.in_features, m.out_features) for m in layers if isinstance(m, nn.Linear)] == [
        (100, 256),
        (256, 256),
        (256, 784),
    ]
    assert all(m.negative_slope == 0.2 for m in layers if isinstance(m, nn.LeakyReLU))
    D = build_discriminator(config, probability_output=True)
    layers = [m for m in D.trunk if not isinstance(m, nn.Flatten)] + [D.head, D.sigmoid]
    assert [type(m) for m in layers] == [nn.Linear, nn.LeakyReLU, nn.Linear, nn.LeakyReLU, nn.Linear, nn.Sigmoid]
    assert [(m.in_features, m.out_features) for m in layers if isinstance(m, nn.Linear)] == [
        (784, 256),
        (256, 256),
        (256, 1),
    ]
    assert all(m.negative_slope == 0.2 for m in layers if isinstance(m, nn.LeakyReLU))
    assert D.embed is None and G.embed is None
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    assert sum(p.numel() for p in D.parameters()) == 784 * 256 + 256 + 256 * 256 + 256 + 256 + 1
    # At 16 pixels only the pixel-facing layers follow the image.
    small = dataclasses.replace(config, image_size=16)
    assert build_generator(small).body[4].out_features == 256
    assert build_discriminator(small).trunk[1].in_features == 256


def test_spectral_norm_bounds_every_d_layer_and_makes_d_scale_invariant():
    config = GANModelConfig(
        "dcgan", "resnet", z_dim=16, width=8, class_conditional=True, image_size=16, channels=1, num_classes=3
    )
    D = build_discriminator(config).train()
    x, labels = torch.randn(4, 1, 16, 16), torch.tensor([0, 1, 2, 0])
    for _ in range(30):  # each training-mode forward pass runs one power iteration
        D(x, labels)
    normalised = [m for m in D.modules() if hasattr(m, "parametrizations")]
    assert len(normalised) == sum(isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)) for m in D.modules())
    for module in normalised:
        weight = module.weight.detach().flatten(1)
        assert float(torch.linalg.matrix_norm(weight, ord=2)) == pytest.approx(1.0, rel=0.05)
    # Scaling the raw weights leaves D unchanged (the gradient sees the normalised weight, not the raw one).
    D.eval()
    before = D(x, labels)
    with torch.no_grad():
        for module in normalised:
            module.parametrizations.weight.original.mul_(10)
    assert torch.allclose(D(x, labels), before, atol=1e-4)


def test_without_spectral_norm_raw_weights_are_used():
    config = GANModelConfig("dcgan", "dcgan", z_dim=16, width=8, spectral_norm=False, image_size=16, channels=1)
    D = build_discriminator(config)
    assert not any(hasattr(m, "parametrizations") for m in D.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in D.modules())  # plain DCGAN keeps BatchNorm in D
    convs = [m for m in [*D.modules(), *build_generator(config).modules()] if isinstance(m, nn.modules.conv._ConvNd)]
    assert convs and all(abs(float(m.weight.detach().std()) - 0.02) < 0.004 for m in convs)  # DCGAN's N(0, 0.02) init


def test_unknown_architecture_and_tiny_images_are_user_errors():
    with pytest.raises(UserError, match="generator = 'vit': choose one of mlp, dcgan, resnet"):
        GANModelConfig(generator="vit", image_size=16, channels=1)
    with pytest.raises(UserError, match="too small"):
        build_discriminator(GANModelConfig(image_size=4, channels=1))
