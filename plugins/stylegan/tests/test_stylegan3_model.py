"""The StyleGAN3 model itself: derived geometry, filter design, random generators, the adapter
contract, the encoder built for it and the unchanged training pipeline."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import ganenc
from ganenc.errors import ConfigError
from ganenc.testing import check_encoder, check_generator
from ganenc.testing.fixtures import build_state_dict, load_manifest
from ganenc_stylegan.adapter import StyleGAN3Adapter, StyleGAN3Options
from ganenc_stylegan.encoder import StyleGANEncoder
from ganenc_stylegan.stylegan3 import (
    StyleGAN3Config,
    StyleGAN3Generator,
    design_lowpass_filter,
    stylegan3_config_from_kwargs,
    upfirdn2d,
)

torch.set_num_threads(1)

ROOT = Path(__file__).parent / "fixtures" / "stylegan3_nvidia_pkl"
MANIFESTS = {
    "T": load_manifest(ROOT / "manifest.json"),
    "R": load_manifest(ROOT / "stylegan3_r" / "manifest.json"),
}
TINY = dict(resolution=32, channel_base=256, channel_max=16, z_dim=16, w_dim=16)


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_geometry_from_kwargs_matches_nvidia_layer_by_layer(name):
    manifest = MANIFESTS[name]
    config = stylegan3_config_from_kwargs(manifest["config"], "fixture")
    derived = manifest["derived"]
    assert config.num_ws == derived["num_ws"] == 16
    spec = config.input_spec()
    assert (spec.channels, [spec.size] * 2) == (
        derived["input"]["channels"],
        derived["input"]["size"],
    )
    assert (spec.sampling_rate, spec.bandwidth) == (
        derived["input"]["sampling_rate"],
        derived["input"]["bandwidth"],
    )
    layers = config.layer_specs()
    assert len(layers) == len(derived["layers"]) == 15
    for ours, theirs in zip(layers, derived["layers"], strict=True):
        assert ours.name == theirs["name"]
        for field in ("in_channels", "out_channels", "up_factor", "down_factor", "up_taps"):
            assert getattr(ours, field) == theirs[field], (ours.name, field)
        for field in ("down_taps", "down_radial", "conv_kernel", "is_torgb"):
            assert getattr(ours, field) == theirs[field], (ours.name, field)
        assert ours.is_critically_sampled == theirs["is_critically_sampled"]
        assert list(ours.padding) == theirs["padding"], ours.name
        assert [ours.in_size] * 2 == theirs["in_size"] and [ours.out_size] * 2 == theirs["out_size"]
        for field in (
            "in_sampling_rate",
            "out_sampling_rate",
            "tmp_sampling_rate",
            "in_cutoff",
            "out_cutoff",
            "in_half_width",
            "out_half_width",
        ):
            assert math.isclose(getattr(ours, field), theirs[field], rel_tol=1e-12), field


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_designed_filters_equal_the_ones_nvidia_stored(name):
    """Random generators get the same windowed-sinc / jinc filters a real file carries."""
    manifest = MANIFESTS[name]
    config = stylegan3_config_from_kwargs(manifest["config"], "fixture")
    fresh = StyleGAN3Generator(config).state_dict()
    stored = build_state_dict(manifest)
    filters = [key for key in stored if key.endswith("_filter")]
    assert len(filters) == 28
    radial = [key for key in filters if stored[key].ndim == 2]
    assert len(radial) == (12 if name == "R" else 0)
    for key in filters:
        assert fresh[key].shape == stored[key].shape, key
        torch.testing.assert_close(fresh[key], stored[key], atol=1e-7, rtol=0)
    assert design_lowpass_filter(1, 2.0, 4.0, 16.0) is None


def test_upfirdn2d_is_zero_insertion_padding_and_filtering():
    x = torch.arange(1.0, 5.0).view(1, 1, 1, 4).expand(1, 2, 4, 4).contiguous()
    same = upfirdn2d(x, torch.tensor([1.0]), padding=(0, 0, 0, 0))
    assert torch.equal(same, x)
    up = upfirdn2d(x, torch.tensor([1.0]), up=2, gain=1.0)
    assert up.shape == (1, 2, 8, 8) and torch.equal(up[..., ::2, ::2], x)
    assert up[..., 1::2, :].abs().sum() == 0 and up[..., :, 1::2].abs().sum() == 0
    cropped = upfirdn2d(x, None, padding=(-1, 0, 0, -2))
    assert torch.equal(cropped, x[..., :2, 1:])
    box = upfirdn2d(x, torch.tensor([0.5, 0.5]), down=2)  # means of pairs along x, then y
    assert torch.equal(box[0, 1], torch.tensor([[1.5, 3.5], [1.5, 3.5]]))
    assert torch.equal(upfirdn2d(x, torch.tensor([1.0, 0.0])), x[..., 1:, 1:])  # convolution


def test_public_model_geometry_and_options():
    """num_ws is 16 at every resolution; the names and channel counts follow NVIDIA's rules."""
    for resolution in (256, 512, 1024):
        t = StyleGAN3Config(resolution=resolution)
        assert t.num_ws == 16
        names = [spec.name for spec in t.layer_specs()]
        assert names[0] == "L0_36_512" and names[-1] == f"L14_{resolution}_3"
    r = StyleGAN3Config(resolution=1024, channel_base=65536, channel_max=1024, conv_kernel=1)
    assert r.layer_specs()[0].name == "L0_36_1024"
    with pytest.raises(ConfigError, match="power of two"):
        StyleGAN3Config(resolution=100)
    with pytest.raises(ConfigError):
        ganenc.load_generator("stylegan3", config="x", **TINY)
    assert StyleGAN3Options().mapping_layers == 2


@pytest.fixture(scope="module")
def tiny() -> StyleGAN3Adapter:
    return ganenc.load_generator("stylegan3", **TINY)


def test_random_generator_keeps_the_adapter_contract(tiny):
    assert isinstance(tiny, StyleGAN3Adapter) and tiny.family == "stylegan3"
    check_generator(tiny)
    assert tiny.geometry().encoder_latents == {"w_plus": (16, 16)}
    again = ganenc.load_generator("stylegan3", **TINY)
    again.w_avg  # noqa: B018 - estimated at the first truncation, as check_generator's did on tiny
    for (key, a), b in zip(tiny.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), key  # seeded
    r = ganenc.load_generator("stylegan3", config="r", **TINY)
    assert r.model.config.conv_kernel == 1 and r.model.config.use_radial_filters
    with torch.no_grad():
        assert r.synthesize(r.sample_latents(2, seed=0)).shape == (2, 3, 32, 32)


@torch.no_grad()
def test_truncation_and_w_avg_of_a_random_generator(tiny):
    latents = tiny.sample_latents(2, seed=3)
    w = tiny.mapping(latents["z"])
    targets = tiny.encoder_targets(latents, truncation=0.5, truncation_layers=4)
    avg = tiny.w_avg
    assert tiny.model.has_w_avg and avg.abs().sum() > 0
    torch.testing.assert_close(
        targets["w_plus"][:, :4], (avg + 0.5 * (w - avg))[:, None].expand(-1, 4, -1)
    )
    torch.testing.assert_close(targets["w_plus"][:, 4:], w[:, None].expand(-1, 12, -1))
    direct = tiny.synthesize(latents, truncation=0.5, truncation_layers=4)
    assert torch.equal(tiny.synthesize(targets), direct)


def test_encoder_for_stylegan3_outputs_w_plus_in_generator_order(tiny):
    encoder = ganenc.build_encoder(tiny.geometry(), start_channels=8, max_channels=16)
    assert isinstance(encoder, StyleGANEncoder) and encoder.const_shape is None
    check_encoder(encoder, tiny)
    out = encoder.eval()(torch.zeros(2, 3, 32, 32))
    assert set(out) == {"w_plus"} and out["w_plus"].shape == (2, 16, 16)
    big = StyleGANEncoder(
        ganenc.load_generator("stylegan3", **{**TINY, "resolution": 64}).geometry(),
        start_channels=8,
        max_channels=16,
    )
    assert big.trunk.style_layers == 10  # 5 blocks at 64 px; at 1024 px 16 of 18 codes are used


def test_the_training_pipeline_trains_a_stylegan3_encoder_unchanged(tmp_path):
    from ganenc.training.pretrain import pretrain
    from ganenc.training.settings import TrainSettings

    settings = TrainSettings(
        gan="stylegan3",
        generator_options=dict(TINY),
        encoder_options={"start_channels": 8, "max_channels": 16},
        attention="center",
        loss={"image_terms": {"mse": 1.0}},
        iterations=2,
        batch_size=2,
        out=tmp_path / "run",
        progress=False,
        val_samples=2,
        checkpoint_every=2,
        image_every=2,
        log_every=1,
    )
    run = pretrain(settings)
    encoder = ganenc.load_encoder(run / "encoder.pt")
    assert encoder.ganenc_meta["geometry"]["family"] == "stylegan3"
    assert encoder.ganenc_meta["geometry"]["encoder_latents"] == {"w_plus": [16, 16]}
