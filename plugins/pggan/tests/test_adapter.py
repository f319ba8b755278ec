"""The pggan adapter keeps ganenc's generator contract."""

from __future__ import annotations

import pytest
import torch

import ganenc
from ganenc import ConfigError
from ganenc.adapters import GeneratorAdapter
from ganenc.geometry import GeneratorGeometry
from ganenc_pggan.adapter import PGGANAdapter, PGGANOptions, load_pggan
from ganenc_pggan.formats import save_genforce
from ganenc_pggan.model import PGGANConfig, PGGANGenerator

TINY = {"resolution": 16, "z_dim": 16, "fmaps_base": 64, "fmaps_max": 8}


@pytest.fixture(scope="module")
def tiny() -> PGGANAdapter:
    return load_pggan(**TINY, seed=0)


def test_registered_factory_builds_a_random_generator():
    adapter = ganenc.load_generator("pggan", **TINY, seed=0)
    assert isinstance(adapter, PGGANAdapter) and isinstance(adapter, GeneratorAdapter)
    assert adapter.family == "pggan"
    assert (adapter.resolution, adapter.z_dim) == (16, 16)
    assert adapter.config.channels == (8, 8, 4)
    assert not adapter.training
    assert not any(p.requires_grad for p in adapter.parameters())
    genforce = ganenc.load_generator("pggan", **TINY, layout="genforce")
    assert genforce.config.projection == "conv"


def test_contract_check(tiny):
    from ganenc.testing import check_generator

    check_generator(tiny)


def test_geometry(tiny):
    assert tiny.geometry() == GeneratorGeometry(
        family="pggan", resolution=16, encoder_latents={"z": (16,)}, extra={"z_dim": 16}
    )


def test_sample_latents_are_seeded_standard_normal(tiny):
    a = tiny.sample_latents(4, seed=7)
    b = tiny.sample_latents(4, seed=7)
    c = tiny.sample_latents(4, seed=8)
    assert set(a) == {"z"} and a["z"].shape == (4, 16) and a["z"].dtype == torch.float32
    assert torch.equal(a["z"], b["z"]) and not torch.equal(a["z"], c["z"])
    expected = torch.randn(4, 16, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a["z"], expected)
    assert tiny.sample_latents(2, seed=1, device="cpu")["z"].device.type == "cpu"
    many = tiny.sample_latents(2000, seed=0)["z"]
    assert abs(many.mean().item()) < 0.02 and abs(many.std().item() - 1) < 0.02


def test_random_weights_follow_the_seed():
    z = {"z": torch.randn(2, 16, generator=torch.Generator().manual_seed(0))}
    one = load_pggan(**TINY, seed=3).synthesize(z)
    assert torch.equal(one, load_pggan(**TINY, seed=3).synthesize(z))
    assert not torch.equal(one, load_pggan(**TINY, seed=4).synthesize(z))


def test_synthesize_and_truncation(tiny):
    latents = tiny.sample_latents(3, seed=0)
    images = tiny.synthesize(latents)
    assert images.shape == (3, 3, 16, 16) and images.dtype == torch.float32
    assert torch.equal(images, tiny.generator(latents["z"]))
    for psi in (1.0, 0.7, 0.0):
        targets = tiny.encoder_targets(latents, truncation=psi)
        assert set(targets) == {"z"}
        torch.testing.assert_close(targets["z"], psi * latents["z"])
        assert torch.equal(tiny.synthesize(targets), tiny.synthesize(latents, truncation=psi))
    # z has no layers: a per-layer truncation is refused, not silently ignored
    with pytest.raises(ConfigError, match="no per-layer truncation"):
        tiny.synthesize(latents, truncation=0.7, truncation_layers=4)
    # z is pixel-normalised first, so scaling it by psi > 0 leaves the image (almost) unchanged.
    torch.testing.assert_close(tiny.synthesize(latents, truncation=0.5), images)
    zero = tiny.synthesize(latents, truncation=0.0)
    assert torch.allclose(zero, zero[:1].expand_as(zero))


def test_truncation_changes_images_without_pixel_norm():
    generator = PGGANGenerator(PGGANConfig.gan_zoo(z_dim=8, channels=(4, 4), pixel_norm=False))
    adapter = PGGANAdapter(generator).freeze()
    latents = adapter.sample_latents(2, seed=0)
    assert not torch.allclose(adapter.synthesize(latents, 0.5), adapter.synthesize(latents))


def test_gradients_reach_z(tiny):
    z = tiny.sample_latents(2, seed=0)["z"].requires_grad_(True)
    tiny.synthesize({"z": z}).square().mean().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_accepts_z_shaped_like_gan_zoo_and_float64(tiny):
    z = tiny.sample_latents(2, seed=0)["z"]
    images = tiny.synthesize({"z": z})
    torch.testing.assert_close(tiny.synthesize({"z": z[:, :, None, None]}), images)
    torch.testing.assert_close(tiny.synthesize({"z": z.double()}), images)


@pytest.mark.parametrize(
    ("latents", "error", "match"),
    [
        ({"w": torch.zeros(2, 16)}, ValueError, "got keys \\['w'\\]"),
        ({"z": torch.zeros(2, 16), "class": torch.zeros(2, 3)}, ValueError, "got keys"),
        ({"z": torch.zeros(2, 15)}, ValueError, r"\[N, 16\], got \[2, 15\]"),
        ({"z": torch.zeros(16)}, ValueError, r"\[N, 16\]"),
        ({"z": torch.zeros(2, 16, dtype=torch.long)}, TypeError, "floating-point"),
        ({"z": [0.0] * 16}, TypeError, "tensor"),
        (torch.zeros(2, 16), TypeError, "dict"),
    ],
)
def test_wrong_latents_are_explained(tiny, latents, error, match):
    with pytest.raises(error, match=match):
        tiny.synthesize(latents)


def test_wrong_call_arguments(tiny):
    latents = tiny.sample_latents(1, seed=0)
    with pytest.raises(ValueError, match="noise_mode"):
        tiny.synthesize(latents, noise_mode="bogus")
    with pytest.raises(ConfigError, match="truncation = '0.7': give a number"):
        tiny.synthesize(latents, truncation="0.7")
    with pytest.raises(ValueError, match="finite"):
        tiny.encoder_targets(latents, truncation=float("nan"))


def test_options_are_validated():
    with pytest.raises(ConfigError, match="resolution = 48"):
        ganenc.load_generator("pggan", resolution=48)
    with pytest.raises(ConfigError, match="unknown setting 'channels'"):
        ganenc.load_generator("pggan", channels=8)
    with pytest.raises(ConfigError, match="layout"):
        load_pggan(layout="stylegan")
    assert PGGANOptions().model_dump() == {
        "checkpoint": None,
        "resolution": 256,
        "z_dim": 512,
        "fmaps_base": 16384,
        "fmaps_max": 512,
        "layout": "gan_zoo",
        "averaged": True,
        "seed": 0,
    }


def test_checkpoint_gives_the_architecture_and_contradicting_options_are_refused(tmp_path):
    generator = PGGANGenerator(PGGANConfig.genforce(z_dim=8, channels=(4, 4)))
    save_genforce(generator, tmp_path / "g.pth")
    with pytest.raises(ConfigError, match=r"resolution=64 \(the file gives 8\)"):
        ganenc.load_generator("pggan", checkpoint=tmp_path / "g.pth", resolution=64)
    with pytest.raises(ConfigError, match=r"fmaps_max=4 \(used only for random weights\)"):
        ganenc.load_generator("pggan", checkpoint=tmp_path / "g.pth", fmaps_max=4)
    # options that restate the file (a config written for it) are fine
    adapter = ganenc.load_generator("pggan", checkpoint=tmp_path / "g.pth", resolution=8, z_dim=8)
    assert (adapter.resolution, adapter.z_dim) == (8, 8)
    assert adapter.checkpoint == str(tmp_path / "g.pth")
    assert adapter.geometry().encoder_latents == {"z": (8,)}


def test_a_random_generator_is_the_same_at_every_load():
    """seed defaulted to None: each load drew other weights, so sample, invert, edit at
    strength 0 and --resume each met another generator than the run was trained on."""
    import ganenc

    options = {"resolution": 8, "fmaps_base": 64, "fmaps_max": 8, "z_dim": 8}
    first, second = (ganenc.load_generator("pggan", **options) for _ in range(2))
    latents = first.sample_latents(2, seed=0)
    assert torch.equal(first.synthesize(latents), second.synthesize(latents))
