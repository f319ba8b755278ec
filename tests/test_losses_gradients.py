"""Regression test for the reference's worst defect: detached image losses.

Its default training script detached every image loss, so the encoder learned
only from the latent regression.  Here every image-loss term, on every
attention level (whole, AT1, AT2, from both croppers), and every latent term
must send a non-zero, finite gradient to EVERY parameter of an encoder,
through a generator.  The encoder and generator are tiny stand-ins.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ganenc
from ganenc.cropping import attention_pairs
from ganenc.features import RandomFeatureWeightsWarning
from ganenc.losses.composite import CompositeLoss, LossSettings
from ganenc.losses.perceptual import LPIPSLoss
from ganenc.losses.terms import CosineLoss, MSELoss, SSIMLoss

SIZE = 32
LATENT = 16


class TinyEncoder(nn.Module):
    """Image -> {"w": [N, LATENT], "const": [N, 4, 2, 2]}: every parameter used, no dead units."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.to_w = nn.Linear(8 * 8 * 8, LATENT)
        self.to_const = nn.Conv2d(8, 4, 1)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        h = F.leaky_relu(self.conv1(images), 0.2)
        h = F.leaky_relu(self.conv2(h), 0.2)
        return {"w": self.to_w(h.flatten(1)), "const": F.adaptive_avg_pool2d(self.to_const(h), 2)}


class TinyGenerator(nn.Module):
    """Frozen, differentiable: latents -> [N, 3, SIZE, SIZE] images in (-1, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(LATENT, 8 * 8 * 8)
        self.const = nn.Conv2d(4, 8, 1)
        self.conv = nn.Conv2d(8, 3, 3, padding=1)
        self.requires_grad_(False)

    def forward(self, latents: dict[str, torch.Tensor]) -> torch.Tensor:
        h = self.fc(latents["w"]).view(-1, 8, 8, 8)
        h = h + F.interpolate(self.const(latents["const"]), size=8, mode="nearest")
        h = F.interpolate(F.leaky_relu(h, 0.2), size=SIZE, mode="bilinear", align_corners=False)
        return torch.tanh(self.conv(h))


class TinyClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return TinyEncoder(), TinyGenerator()


@pytest.fixture(scope="module")
def target() -> torch.Tensor:
    """Dim noise with one bright square per image, so Grad-CAM boxes are real sub-crops."""
    images = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 0.2 - 0.8
    images[0, :, 4:14, 6:16] = 0.9
    images[1, :, 18:28, 14:24] = 0.9
    return images


@pytest.fixture(scope="module")
def image_terms():
    with pytest.warns(RandomFeatureWeightsWarning):
        lpips = LPIPSLoss("vgg", feature_weights="random")  # explicit smoke-test opt-in
    return {"mse": MSELoss(), "cosine": CosineLoss(), "ssim": SSIMLoss(), "lpips": lpips}


@pytest.fixture(scope="module")
def croppers():
    torch.manual_seed(0)
    gradcam = ganenc.create(
        "cropper",
        "gradcam",
        classifier=TinyClassifier(),
        classifier_size=None,
        min_fraction=(0.5, 0.25),
    )
    return {"center": ganenc.create("cropper", "center"), "gradcam": gradcam}


def assert_every_parameter_gets_gradient(encoder: nn.Module, what: str) -> None:
    for name, parameter in encoder.named_parameters():
        grad = parameter.grad
        assert grad is not None, f"{what}: no gradient reaches encoder.{name}"
        assert torch.isfinite(grad).all(), f"{what}: non-finite gradient in encoder.{name}"
        assert grad.abs().sum() > 0, f"{what}: zero gradient in encoder.{name}"


LEVELS = [("center", 0), ("center", 1), ("center", 2), ("gradcam", 1), ("gradcam", 2)]


@pytest.mark.parametrize("term_name", ["mse", "cosine", "ssim", "lpips"])
@pytest.mark.parametrize(("cropper_name", "level"), LEVELS)
def test_every_image_term_on_every_level_trains_every_encoder_parameter(
    models, target, image_terms, croppers, term_name, cropper_name, level
):
    encoder, generator = models
    encoder.zero_grad(set_to_none=True)
    reconstruction = generator(encoder(target))
    if level > 0:  # a real crop of every image, not the whole image again
        boxes = croppers[cropper_name].boxes(target)[level - 1]
        assert bool(((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) < SIZE**2).all())
    pair = attention_pairs(croppers[cropper_name], target, reconstruction)[level]
    loss = image_terms[term_name](pair.reconstruction, pair.target)
    loss.backward()
    assert_every_parameter_gets_gradient(encoder, f"{term_name} on {cropper_name} {pair.name}")


@pytest.mark.parametrize("term", [MSELoss(), CosineLoss()], ids=["latent_mse", "latent_cosine"])
def test_latent_terms_train_every_encoder_parameter(models, target, term):
    encoder, generator = models
    encoder.zero_grad(set_to_none=True)
    with torch.no_grad():
        true_latents = {"w": torch.randn(2, LATENT), "const": torch.randn(2, 4, 2, 2)}
        images = generator(true_latents)
    predicted = encoder(images)
    sum(term(predicted[key], true_latents[key]) for key in predicted).backward()
    assert_every_parameter_gets_gradient(encoder, "latent term")


def test_composite_loss_and_each_of_its_levels_train_every_parameter(
    models, target, image_terms, croppers
):
    encoder, generator = models
    with pytest.warns(RandomFeatureWeightsWarning):
        loss = CompositeLoss(LossSettings(feature_weights="random"))
    predicted = encoder(target)
    reconstruction = generator(predicted)
    true_latents = {key: torch.randn_like(value) for key, value in predicted.items()}
    total, parts = loss(
        reconstruction,
        target,
        cropper=croppers["center"],
        predicted_latents=predicted,
        target_latents=true_latents,
    )
    for name in ("whole", "at1", "at2", "latent", "total"):
        encoder.zero_grad(set_to_none=True)
        parts[name].backward(retain_graph=True)
        assert_every_parameter_gets_gradient(encoder, f"composite part {name!r}")


def test_the_check_catches_a_detached_loss(models, target):
    """The reference's bug, reproduced on purpose: the assertion must fire."""
    encoder, generator = models
    encoder.zero_grad(set_to_none=True)
    reconstruction = generator(encoder(target))
    frozen = reconstruction.detach().requires_grad_(True)  # what the reference effectively did
    MSELoss()(frozen, target).backward()
    with pytest.raises(AssertionError, match="no gradient"):
        assert_every_parameter_gets_gradient(encoder, "detached")
