"""The parts of latent diffusion: the autoencoder's shapes and its KL term, the text encoder's padding, and a
U-Net that actually reads the prompt (another prompt, another output; the empty prompt is the unconditional
branch guidance uses)."""

import dataclasses

import torch

from aigc.models.autoencoder import Autoencoder, AutoencoderConfig
from aigc.models.latent_diffusion import PromptedUNet
from aigc.models.precond import Denoiser, PrecondConfig
from aigc.models.text_encoder import TextEncoder, to_ids
from aigc.models.transformer import TransformerConfig
from aigc.models.unet import PRESETS, UNet
from aigc.sampling.guidance import conditioned


def test_the_autoencoder_maps_images_to_latents_4x_smaller_and_back():
    torch.manual_seed(0)
    ae = Autoencoder(AutoencoderConfig(channels=8), 32, 1)
    images = torch.rand(3, 1, 32, 32) * 2 - 1
    latents = ae.encode(images)
    assert latents.shape == (3, 4, 8, 8) and ae.latent_shape == (4, 8, 8)
    assert ae.decode(latents).shape == images.shape
    ae.latent_scale.fill_(2.0)  # scaled latents: encode divides by the scale, decode multiplies it back
    assert torch.allclose(ae.encode(images) * 2, latents, atol=1e-6)


def test_the_kl_term_is_in_the_loss_and_pulls_towards_the_prior():
    torch.manual_seed(0)
    ae = Autoencoder(AutoencoderConfig(channels=8, kl_weight=1.0), 32, 1)
    images = torch.rand(2, 1, 32, 32) * 2 - 1
    total, terms = ae.loss(images, torch.Generator().manual_seed(0))
    assert terms["kl"] > 0 and torch.isclose(total, terms["reconstruction"] + terms["kl"])
    without = dataclasses.replace(ae.config, kl_weight=0.0)
    ae.config = without
    total0, terms0 = ae.loss(images, torch.Generator().manual_seed(0))
    assert torch.isclose(total0, terms0["reconstruction"])
    total.backward()  # the KL term reaches the encoder
    assert ae.encoder[-1].weight.grad.abs().sum() > 0


def prompted(vocab: int = 12) -> Denoiser:
    torch.manual_seed(0)
    text = TextEncoder(TransformerConfig(width=32, layers=1, heads=2, context=17, vocab_size=vocab))
    unet = UNet(PRESETS["tiny"], 8, 4, context_dim=32)
    for module in unet.modules():  # zero-initialised output projections would hide the prompt at first
        if hasattr(module, "proj"):
            torch.nn.init.normal_(module.proj.weight, std=0.1)
    torch.nn.init.normal_(unet.head[-1].weight, std=0.1)
    return Denoiser(PromptedUNet(text, unet), PrecondConfig()).eval()


def test_another_prompt_gives_another_output_and_the_empty_prompt_is_the_unconditional_branch():
    denoiser = prompted()
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        a = denoiser(x, 1.0, to_ids([[1, 2, 3], [1, 2, 3]], 16))
        b = denoiser(x, 1.0, to_ids([[4, 5], [4, 5]], 16))
        empty = denoiser(x, 1.0, to_ids([[], []], 16))
        unconditional = denoiser(x, 1.0, None)
        guided = conditioned(denoiser, to_ids([[1, 2, 3], [1, 2, 3]], 16), 3.0)(x, 1.0)
    assert not torch.allclose(a, b, atol=1e-4)
    assert torch.allclose(empty, unconditional, atol=1e-6)
    assert torch.allclose(guided, unconditional + 3.0 * (a - unconditional), atol=1e-4)


def test_padding_changes_no_prompt_s_encoding():
    encoder = prompted().net.text.eval()
    with torch.no_grad():
        short, short_real = encoder(to_ids([[1, 2, 3]], 4))
        long, long_real = encoder(to_ids([[1, 2, 3]], 16))
    assert short_real.sum() == long_real.sum() == 4  # the begin vector and three tokens
    assert torch.allclose(short[:, :4], long[:, :4], atol=1e-6)
