"""Loss terms and the composite loss: registrations, the paper's defaults, values, settings."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from pytorch_msssim import ssim as reference_ssim

import ganenc
from ganenc.errors import ConfigError, UnknownComponentError, WeightsNotFoundError
from ganenc.features import RandomFeatureWeightsWarning
from ganenc.losses.composite import CompositeLoss, LossSettings
from ganenc.losses.perceptual import LPIPSLoss, lpips_linear_weights_path
from ganenc.losses.terms import CosineLoss, MSELoss, SSIMLoss
from ganenc.metrics import ssim as ssim_metric
from ganenc.testing import check_loss

CORE = Path(ganenc.__file__).parent


def _images(seed: int, size: int = 32, n: int = 2) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture(scope="module")
def random_lpips() -> LPIPSLoss:
    with pytest.warns(RandomFeatureWeightsWarning):
        return LPIPSLoss("vgg", feature_weights="random")


def test_terms_are_registered_with_domain_and_pooling():
    registry = ganenc.get_registry()
    expected = {
        "mse": ("image", False),
        "cosine": ("image", False),
        "ssim": ("image", True),
        "lpips": ("image", True),
        "latent_mse": ("latent", False),
        "latent_cosine": ("latent", False),
    }
    for name, (domain, pool) in expected.items():
        spec = registry.get("loss", name)
        assert spec.metadata["domain"] == domain
        assert bool(spec.metadata.get("pool", False)) == pool
        assert isinstance(spec.factory, str)  # lazy: listing imports no torch


def test_composite_defaults_are_the_papers():
    settings = LossSettings()
    assert settings.image_terms == {"mse": 5.0, "cosine": 3.0, "ssim": 1.0, "lpips": 2.0}
    assert settings.latent_terms == {"latent_mse": 5.0, "latent_cosine": 3.0}
    assert settings.latent_scale == 0.01
    assert settings.resolved_attention_weights == (1.0, 5.0, 9.0)  # Strategy 2
    assert LossSettings(attention_strategy=1).resolved_attention_weights == (1.0, 1.0, 1.0)
    assert LossSettings(attention_weights=[1, 2]).resolved_attention_weights == (1.0, 2.0)
    assert settings.pool_above == 256


def test_every_term_meets_the_loss_contract(random_lpips):
    for term in (MSELoss(), CosineLoss(), SSIMLoss(), random_lpips):
        check_loss(term, shape=(2, 3, 32, 32))


def test_mse_and_cosine_values():
    target = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    assert float(CosineLoss()(target, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(CosineLoss()(-target, target)) == pytest.approx(2.0, abs=1e-6)
    assert float(CosineLoss()(2 * target, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(MSELoss()(target + 1, target)) == pytest.approx(1.0)


def test_ssim_matches_pytorch_msssim_with_the_papers_window():
    a, b = _images(0), _images(1)
    expected = 1 - reference_ssim(
        a + 1, b + 1, data_range=2.0, win_size=11, win_sigma=1.5, K=(0.01, 0.03)
    )
    assert torch.allclose(SSIMLoss()(a, b), expected)
    assert float(SSIMLoss()(a, a)) == pytest.approx(0.0, abs=1e-5)
    # the number eval reports (SSIM of the images as displayed, in [0, 1]) is the loss's;
    # on the signed values it was 0.97 for a 0.99 reconstruction
    close = (a + 0.05 * _images(2)).clamp(-1, 1)
    assert float(1 - SSIMLoss()(close, a)) == pytest.approx(
        float(ssim_metric(close, a).mean()), abs=1e-5
    )


@pytest.mark.parametrize("size", [64, 8, 5])
def test_the_ssim_metric_is_skimages(size):
    """torchmetrics' averaged the padded border in and kept an 11-wide window on 8 px
    images: 0.03 off skimage at 64 px; 5 px images were a raw RuntimeError."""
    from skimage.metrics import structural_similarity

    a, b = _images(0, size=size), _images(1, size=size)
    b = (a + 0.3 * b).clamp(-1, 1)
    expected = [
        structural_similarity(
            ((x + 1) / 2).double().numpy(),
            ((y + 1) / 2).double().numpy(),
            channel_axis=0,
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            win_size=min(11, size if size % 2 else size - 1),
        )
        for x, y in zip(b, a, strict=True)
    ]
    # below 11 pixels the two libraries cut the Gaussian window differently (2e-3 at 5 px)
    assert ssim_metric(b, a).tolist() == pytest.approx(expected, abs=1e-5 if size > 11 else 5e-3)


def test_ssim_shrinks_its_window_for_small_images_and_refuses_tiny_ones():
    term = SSIMLoss()
    assert term.window_for(32, 32) == 11
    assert term.window_for(8, 9) == 7
    assert term.window_for(4, 4) == 3
    a, b = _images(0, size=8), _images(1, size=8)
    expected = 1 - reference_ssim(a + 1, b + 1, data_range=2.0, win_size=7, win_sigma=1.5)
    assert torch.allclose(term(a, b), expected)
    with pytest.raises(ValueError, match="at least 3x3"):
        term(_images(0, size=2), _images(1, size=2))
    with pytest.raises(ConfigError, match="odd"):
        ganenc.create("loss", "ssim", win_size=10)


def test_lpips_identical_is_zero_and_stays_frozen_in_eval(random_lpips):
    a = _images(0)
    assert float(random_lpips(a, a)) == pytest.approx(0.0, abs=1e-6)
    random_lpips.train()
    assert not random_lpips.model.training
    assert not any(p.requires_grad for p in random_lpips.parameters())


def test_lpips_linear_layers_come_from_the_lpips_package(random_lpips):
    shipped = torch.load(lpips_linear_weights_path("vgg"), map_location="cpu", weights_only=True)
    for key, value in shipped.items():
        assert torch.equal(random_lpips.model.state_dict()[key], value)


def test_lpips_loads_its_trunk_from_an_explicit_torchvision_file(tmp_path):
    import torchvision

    torch.manual_seed(0)
    trunk = torchvision.models.alexnet().features
    state = {f"features.{key}": value for key, value in trunk.state_dict().items()}
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(state, path)
    term = LPIPSLoss("alex", feature_weights=str(path))
    assert torch.equal(term.model.net.slice1[0].weight, state["features.0.weight"])
    assert torch.equal(getattr(term.model.net.slice5, "10").bias, state["features.10.bias"])


def test_lpips_without_weights_offline_fails_fast_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("GANENC_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(WeightsNotFoundError) as info:
        ganenc.create("loss", "lpips")
    assert time.monotonic() - start < 5
    assert str(tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth") in str(info.value)
    with pytest.raises(WeightsNotFoundError, match="alexnet-owt-7be5be79.pth"):
        ganenc.create("loss", "lpips", net="alex")


def test_composite_total_is_the_weighted_sum_of_its_parts(random_lpips):
    with pytest.warns(RandomFeatureWeightsWarning):
        loss = CompositeLoss(LossSettings(feature_weights="random", pool_above=16))
    loss.terms["image_lpips"] = random_lpips  # share the module-scoped one (same options)
    target, reconstruction = _images(0), _images(1)
    latents_t = {"w_plus": torch.randn(2, 4, 8), "const": torch.randn(2, 8, 2, 2)}
    latents_p = {key: value + 0.3 * torch.randn_like(value) for key, value in latents_t.items()}
    boxes = [torch.tensor([[4, 0, 28, 32]] * 2), torch.tensor([[5, 5, 27, 27]] * 2)]
    total, parts = loss(
        reconstruction,
        target,
        boxes=boxes,
        predicted_latents=latents_p,
        target_latents=latents_t,
    )
    weights = {"mse": 5, "cosine": 3, "ssim": 1, "lpips": 2}
    for level in ("whole", "at1", "at2"):
        level_sum = sum(w * parts[f"{level}/{name}"] for name, w in weights.items())
        assert torch.allclose(parts[level], level_sum)
    image = parts["whole"] + 5 * parts["at1"] + 9 * parts["at2"]
    assert torch.allclose(parts["image"], image)
    latent = 0.01 * sum(
        5 * parts[f"latent/{key}/latent_mse"] + 3 * parts[f"latent/{key}/latent_cosine"]
        for key in ("w_plus", "const")
    )
    assert torch.allclose(parts["latent"], latent)
    assert torch.allclose(total, image + latent) and parts["total"] is total
    # pooling: 32 px images are average-pooled once (pool_above=16) before SSIM, not before MSE
    pooled = (F.avg_pool2d(reconstruction, 2), F.avg_pool2d(target, 2))
    assert torch.allclose(parts["whole/ssim"], SSIMLoss()(*pooled))
    assert torch.allclose(parts["whole/mse"], F.mse_loss(reconstruction, target))


def test_pooling_halves_while_taller_than_the_limit():
    loss = CompositeLoss(image_terms={"mse": 1.0}, latent_terms={})
    assert loss.pooled(torch.zeros(1, 3, 1024, 1024)).shape[-1] == 256
    assert loss.pooled(torch.zeros(1, 3, 512, 512)).shape[-1] == 256
    assert loss.pooled(torch.zeros(1, 3, 256, 256)).shape[-1] == 256
    assert (
        CompositeLoss(image_terms={"mse": 1.0}, pool_above=None)
        .pooled(torch.zeros(1, 3, 64, 64))
        .shape[-1]
        == 64
    )


def test_composite_settings_errors():
    with pytest.raises(ConfigError, match="compares latents"):
        CompositeLoss(image_terms={"latent_mse": 1.0}, latent_terms={})
    with pytest.raises(UnknownComponentError, match="no loss named"):
        CompositeLoss(image_terms={"nope": 1.0})
    with pytest.raises(ConfigError, match="term_options"):
        CompositeLoss(term_options={"ssim": {"win_size": 7}}, image_terms={"mse": 1.0})
    with pytest.raises(ConfigError, match="unknown setting"):
        CompositeLoss(image_terms={"ssim": 1.0}, latent_terms={}, term_options={"ssim": {"x": 1}})
    with pytest.raises(ConfigError, match="finite and >= 0"):
        CompositeLoss({"image_terms": {"mse": -1.0}})
    loss = CompositeLoss(image_terms={"mse": 1.0}, latent_terms={}, attention_weights=[1.0, 2.0])
    three_levels = [torch.tensor([[0, 0, 8, 8]] * 2)] * 2
    with pytest.raises(ConfigError, match="2 attention levels"):
        loss(_images(0), _images(1), boxes=three_levels)
    with pytest.raises(ValueError, match="different keys"):
        CompositeLoss(image_terms={"mse": 1.0}).latent_loss({"w": torch.zeros(1)}, {})


def test_term_options_reach_the_terms():
    loss = CompositeLoss(
        image_terms={"ssim": 1.0}, latent_terms={}, term_options={"ssim": {"win_size": 7}}
    )
    assert loss.terms["image_ssim"].win_size == 7


def test_no_detach_and_no_numpy_on_the_loss_path():
    sources = [*sorted((CORE / "losses").glob("*.py")), CORE / "cropping.py"]
    for path in sources:
        text = path.read_text()
        assert ".detach(" not in text, f"{path.name} detaches"
        assert not re.search(r"import numpy|\.numpy\(|from numpy", text), f"{path.name} uses numpy"


def test_a_loss_of_only_zero_weights_is_refused():
    """It trained with loss 0.0 and an encoder that never moved, without a word."""
    from ganenc.losses.options import LossSettings

    with pytest.raises(ValueError, match="every loss weight is 0"):
        LossSettings(image_terms={"mse": 0}, latent_terms={"latent_mse": 0})
    LossSettings(image_terms={"mse": 0}, latent_terms={"latent_mse": 1})  # one is enough


def test_the_ssim_metric_of_identical_images_is_one():
    """In float32 it was 0.99998 beside a PSNR of inf."""
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert ssim_metric(images, images).tolist() == [1.0, 1.0]
