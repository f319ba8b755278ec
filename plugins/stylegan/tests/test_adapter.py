"""The StyleGAN adapter: options, latents, truncation, encoder targets, both families."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import ganenc
from ganenc.errors import ConfigError
from ganenc.testing import check_generator
from ganenc_stylegan.adapter import (
    StyleGAN1Options,
    StyleGAN2Options,
    StyleGANAdapter,
    load_stylegan1,
    load_stylegan2,
)

TINY = dict(resolution=32, channel_base=256, channel_max=16, z_dim=16, w_dim=16, mapping_layers=2)
HAS_STYLEGAN1 = importlib.util.find_spec("ganenc_stylegan.stylegan1") is not None
needs_stylegan1 = pytest.mark.skipif(not HAS_STYLEGAN1, reason="stylegan1.py not there yet")


@pytest.fixture(scope="module")
def g() -> StyleGANAdapter:
    adapter = ganenc.load_generator("stylegan2", **TINY)
    with torch.no_grad():  # noise and biases away from zero, so every input matters
        for name, param in adapter.model.named_parameters():
            if name.endswith("noise_strength") or name.endswith(".bias"):
                param.add_(
                    0.3 * torch.randn(param.shape, generator=torch.Generator().manual_seed(7))
                )
    return adapter


# -- options -------------------------------------------------------------------------------


@pytest.mark.parametrize("resolution", [16, 48, 100, 2048, 0])
def test_resolution_must_be_a_power_of_two_from_32_to_1024(resolution) -> None:
    with pytest.raises(ConfigError, match="power of two from 32 to 1024"):
        ganenc.load_generator("stylegan2", resolution=resolution)
    with pytest.raises(ConfigError, match="power of two from 32 to 1024"):
        load_stylegan1(resolution=resolution)


def test_options_models() -> None:
    options = StyleGAN2Options(checkpoint=Path("/x/ffhq.pt"))
    assert options.checkpoint == "/x/ffhq.pt" and options.resolution == 256
    assert StyleGAN1Options().checkpoint is None
    with pytest.raises(ValueError):
        StyleGAN2Options(channel_multiplier=0)
    with pytest.raises(ConfigError, match="unknown setting 'channel_multiplier'"):
        ganenc.load_generator("stylegan1", channel_multiplier=2)


def test_random_initialisation_is_reproducible_from_the_seed() -> None:
    a, b = load_stylegan2(**TINY), load_stylegan2(**TINY)
    c = load_stylegan2(**TINY, seed=1)
    latents = a.sample_latents(2, seed=0)
    with torch.no_grad():
        assert torch.equal(a.synthesize(latents), b.synthesize(latents))
        assert not torch.allclose(a.synthesize(latents), c.synthesize(latents))


def test_architecture_knobs_shape_a_random_generator() -> None:
    g = ganenc.load_generator("stylegan2", resolution=64, z_dim=8, w_dim=12, channel_max=8)
    assert (g.resolution, g.num_ws, g.z_dim, g.w_dim, g.const_shape) == (64, 10, 8, 12, (8, 4, 4))
    assert g.family == "stylegan2" and not g.model.training
    assert all(not p.requires_grad for p in g.parameters())


# -- the adapter contract ------------------------------------------------------------------


def test_contract_checks_of_ganenc_testing(g) -> None:
    check_generator(g)


def test_geometry(g) -> None:
    geometry = g.geometry()
    assert geometry.family == "stylegan2" and geometry.resolution == 32
    assert geometry.encoder_latents == {"w_plus": (8, 16), "const": (16, 4, 4)}
    assert geometry.extra == {"z_dim": 16, "w_dim": 16, "num_ws": 8}


def test_sample_latents_is_seeded(g) -> None:
    a, b, c = g.sample_latents(3, seed=5), g.sample_latents(3, seed=5), g.sample_latents(3, seed=6)
    assert set(a) == {"z"} and a["z"].shape == (3, 16) and a["z"].dtype == torch.float32
    assert torch.equal(a["z"], b["z"]) and not torch.equal(a["z"], c["z"])
    assert not torch.equal(g.sample_latents(3)["z"], g.sample_latents(3)["z"])


@torch.no_grad()
def test_z_w_and_w_plus_give_the_same_image(g) -> None:
    z = g.sample_latents(2, seed=0)["z"]
    w = g.mapping(z)
    assert w.shape == (2, g.w_dim)
    from_z = g.synthesize({"z": z})
    assert from_z.dtype == torch.float32 and from_z.shape == (2, 3, 32, 32)
    torch.testing.assert_close(g.synthesize({"w": w}), from_z, atol=0, rtol=0)
    w_plus = w[:, None].repeat(1, g.num_ws, 1)
    torch.testing.assert_close(g.synthesize({"w_plus": w_plus}), from_z, atol=0, rtol=0)


@torch.no_grad()
def test_truncation_pulls_the_first_layers_toward_w_avg(g) -> None:
    z = g.sample_latents(2, seed=1)["z"]
    w_plus = g.mapping(z)[:, None].repeat(1, g.num_ws, 1)
    avg = g.w_avg
    full = g.encoder_targets({"z": z}, truncation=0.6)["w_plus"]
    torch.testing.assert_close(full, avg + 0.6 * (w_plus - avg))
    partial = g.encoder_targets({"z": z}, truncation=0.6, truncation_layers=3)["w_plus"]
    torch.testing.assert_close(partial[:, :3], full[:, :3])
    torch.testing.assert_close(partial[:, 3:], w_plus[:, 3:])
    at_avg = g.synthesize({"z": z}, truncation=0.0)
    torch.testing.assert_close(at_avg, g.synthesize({"w": avg.expand(2, -1)}))
    none = g.encoder_targets({"z": z}, truncation=0.6, truncation_layers=0)["w_plus"]
    torch.testing.assert_close(none, w_plus)
    with pytest.raises(ConfigError, match="truncation_layers"):
        g.synthesize({"z": z}, truncation=0.5, truncation_layers=-1)


@pytest.mark.parametrize(("psi", "layers"), [(1.0, None), (0.7, None), (0.5, 3)])
@pytest.mark.parametrize("key", ["z", "w", "w_plus"])
@torch.no_grad()
def test_encoder_targets_reproduce_the_image(g, psi, layers, key) -> None:
    z = g.sample_latents(2, seed=2)["z"]
    latents = {"z": z, "w": g.mapping(z), "w_plus": torch.randn(2, g.num_ws, g.w_dim)}
    latents = {key: latents[key]}
    targets = g.encoder_targets(latents, truncation=psi, truncation_layers=layers)
    assert set(targets) == {"w_plus", "const"}
    assert targets["w_plus"].shape == (2, g.num_ws, g.w_dim)
    assert targets["const"].shape == (2, *g.const_shape)
    expected = g.synthesize(latents, truncation=psi, truncation_layers=layers)
    torch.testing.assert_close(g.synthesize(targets), expected, atol=1e-6, rtol=0)


@torch.no_grad()
def test_const_in_latents_replaces_the_constant_and_passes_through_targets(g) -> None:
    z = g.sample_latents(2, seed=3)["z"]
    const = torch.randn(2, *g.const_shape)
    image = g.synthesize({"z": z, "const": const})
    assert not torch.allclose(image, g.synthesize({"z": z}))
    targets = g.encoder_targets({"z": z, "const": const}, truncation=0.7)
    assert torch.equal(targets["const"], const)
    expected = g.synthesize({"z": z, "const": const}, truncation=0.7)
    torch.testing.assert_close(g.synthesize(targets), expected, atol=1e-6, rtol=0)


def test_noise_modes(g) -> None:
    latents = g.sample_latents(2, seed=4)
    with torch.no_grad():
        const = g.synthesize(latents)
        assert torch.equal(const, g.synthesize(latents, noise_mode="const"))
        random_a = g.synthesize(latents, noise_mode="random")
        random_b = g.synthesize(latents, noise_mode="random")
    assert not torch.allclose(random_a, random_b) and not torch.allclose(random_a, const)
    with pytest.raises(ConfigError, match="noise_mode"):
        g.synthesize(latents, noise_mode="fixed")


@pytest.mark.parametrize(
    ("latents", "match"),
    [
        ({"z": torch.zeros(2, 17)}, r"'z'.*\[N, 16\]"),
        ({"w": torch.zeros(2, 16, 1)}, r"'w'.*\[N, 16\]"),
        ({"w_plus": torch.zeros(2, 7, 16)}, r"'w_plus'.*\[N, 8, 16\]"),
        ({"z": torch.zeros(2, 16), "const": torch.zeros(2, 8, 4, 4)}, r"'const'.*\[N, 16, 4, 4\]"),
        ({"z": torch.zeros(2, 16), "const": torch.zeros(3, 16, 4, 4)}, "batch"),
        ({"class": torch.zeros(2, 10)}, "unknown latent key"),
        ({"z": torch.zeros(2, 16), "w": torch.zeros(2, 16)}, "exactly one"),
        ({}, "exactly one"),
        ({"z": [0.0] * 16}, "must be a tensor"),
    ],
)
def test_bad_latents_are_clear_errors(g, latents, match) -> None:
    with pytest.raises(ConfigError, match=match):
        g.synthesize(latents)
    assert issubclass(ConfigError, ValueError)


def test_gradients_flow_from_the_image_to_the_latents(g) -> None:
    w_plus = torch.randn(2, g.num_ws, g.w_dim, requires_grad=True)
    const = torch.randn(2, *g.const_shape, requires_grad=True)
    g.synthesize({"w_plus": w_plus, "const": const}, truncation=0.7).mean().backward()
    assert w_plus.grad.abs().sum() > 0 and const.grad.abs().sum() > 0


# -- StyleGAN1 through the same adapter ----------------------------------------------------


@needs_stylegan1
def test_stylegan1_random_generator_keeps_the_contract() -> None:
    g = ganenc.load_generator("stylegan", resolution=32, z_dim=16, w_dim=16, channel_max=16)
    assert g.family == "stylegan1"
    assert g.geometry().encoder_latents == {"w_plus": (8, 16), "const": (16, 4, 4)}
    check_generator(g)
    with torch.no_grad():
        z = g.sample_latents(2, seed=0)["z"]
        targets = g.encoder_targets({"z": z}, truncation=0.7, truncation_layers=4)
        expected = g.synthesize({"z": z}, truncation=0.7, truncation_layers=4)
        torch.testing.assert_close(g.synthesize(targets), expected, atol=1e-6, rtol=0)


@needs_stylegan1
@torch.no_grad()
def test_stylegan1_genforce_fixture_loads_through_the_adapter(tmp_path) -> None:
    from ganenc.testing.fixtures import build_state_dict, load_manifest

    folder = Path(__file__).parent / "fixtures" / "stylegan1_genforce"
    if not (folder / "manifest.json").exists():
        pytest.skip("stylegan1_genforce fixture not copied yet")
    manifest = load_manifest(folder / "manifest.json")
    torch.save({"generator_smooth": build_state_dict(manifest)}, tmp_path / "sg1.pth")
    g = ganenc.load_generator("stylegan1", tmp_path / "sg1.pth")
    cases = torch.load(folder / "cases.pt", weights_only=True)
    tolerance = manifest["tolerance"]["max_abs"]
    image = g.synthesize({"z": cases["z"]}, truncation=0.5, truncation_layers=3)
    assert (image - cases["d_image"]).abs().max() < tolerance["d_image"]
    with pytest.raises(ganenc.CheckpointError, match="--gan stylegan1"):
        ganenc.load_generator("stylegan2", tmp_path / "sg1.pth")
