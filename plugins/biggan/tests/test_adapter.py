"""The BigGAN adapter's contract: latents, truncation, targets, geometry, input errors."""

from __future__ import annotations

import pytest
import torch

import ganenc
import ganenc.testing
from ganenc.adapters import GeneratorAdapter
from ganenc_biggan.adapter import REFERENCE_TRUNCATION, BigGANAdapter, truncated_normal


def test_is_a_generator_adapter(tiny_biggan):
    assert isinstance(tiny_biggan, BigGANAdapter) and isinstance(tiny_biggan, GeneratorAdapter)
    assert tiny_biggan.family == "biggan"
    assert (tiny_biggan.resolution, tiny_biggan.z_dim, tiny_biggan.num_classes) == (32, 16, 10)
    assert tiny_biggan.default_truncation == REFERENCE_TRUNCATION == 0.4


def test_geometry(tiny_biggan):
    geometry = tiny_biggan.geometry()
    assert geometry.family == "biggan" and geometry.resolution == 32
    assert geometry.encoder_latents == {"z": (16,), "class": (10,)}
    assert geometry.extra["z_dim"] == 16 and geometry.extra["num_classes"] == 10
    assert type(geometry).from_dict(geometry.to_dict()) == geometry


def test_sample_latents_reproducible_truncated_and_one_hot(tiny_biggan):
    first = tiny_biggan.sample_latents(64, seed=3)
    again = tiny_biggan.sample_latents(64, seed=3)
    other = tiny_biggan.sample_latents(64, seed=4)
    assert torch.equal(first["z"], again["z"]) and torch.equal(first["class"], again["class"])
    assert not torch.equal(first["z"], other["z"])
    assert first["z"].shape == (64, 16) and first["z"].dtype == torch.float32
    assert first["z"].abs().max() <= 2 * 0.4  # truncnorm(-2, 2) times the default truncation
    assert first["class"].shape == (64, 10)
    assert torch.equal(first["class"].sum(dim=1), torch.ones(64))
    assert set(first["class"].unique().tolist()) == {0.0, 1.0}
    assert first["class"].argmax(dim=1).unique().numel() > 3  # classes are drawn at random

    full = tiny_biggan.sample_latents(64, seed=3, truncation=1.0)
    torch.testing.assert_close(full["z"] * 0.4, first["z"])
    given = tiny_biggan.sample_latents(3, seed=0, classes=[2, 7, 9])
    assert given["class"].argmax(dim=1).tolist() == [2, 7, 9]
    same = tiny_biggan.sample_latents(2, seed=0, classes=5)
    assert same["class"].argmax(dim=1).tolist() == [5, 5]
    with pytest.raises(ValueError, match="class indices"):
        tiny_biggan.sample_latents(1, classes=[10])


def test_truncated_normal_stays_in_bounds():
    values = truncated_normal((20000,), torch.Generator().manual_seed(0))
    assert values.abs().max() <= 2.0
    assert 0.75 < values.std() < 0.9  # truncnorm(-2, 2) has std 0.88, wider than any clipping


def test_synthesize_shapes_and_class_encodings(tiny_biggan):
    latents = tiny_biggan.sample_latents(3, seed=1, classes=[0, 4, 9])
    images = tiny_biggan.synthesize(latents)
    assert images.shape == (3, 3, 32, 32) and images.dtype == torch.float32
    assert torch.isfinite(images).all() and images.std() > 0.01

    indices = {"z": latents["z"], "class": torch.tensor([0, 4, 9])}
    torch.testing.assert_close(tiny_biggan.synthesize(indices), images)

    logits = torch.randn(3, 10, generator=torch.Generator().manual_seed(0))
    soft = torch.softmax(logits, dim=1)
    from_logits = tiny_biggan.synthesize({"z": latents["z"], "class_logits": logits})
    torch.testing.assert_close(
        from_logits, tiny_biggan.synthesize({"z": latents["z"], "class": soft})
    )
    assert (from_logits - images).abs().max() > 1e-3  # the class vector matters


def test_truncation_selects_statistics(tiny_biggan):
    latents = tiny_biggan.sample_latents(2, seed=2)
    default = tiny_biggan.synthesize(latents)
    torch.testing.assert_close(tiny_biggan.synthesize(latents, truncation=0.4), default)
    assert (tiny_biggan.synthesize(latents, truncation=0.7) - default).abs().max() > 1e-3
    for bad in (0.0, 1.01):
        with pytest.raises(ValueError, match=r"\(0, 1\]"):
            tiny_biggan.synthesize(latents, truncation=bad)
    with pytest.raises(ValueError, match="truncation = -0.1: Input should be greater"):
        tiny_biggan.synthesize(latents, truncation=-0.1)  # every family's limit comes first
    with pytest.raises(ValueError, match="truncation_layers"):
        tiny_biggan.synthesize(latents, truncation_layers=4)


def test_encoder_targets_resynthesize_the_same_images(tiny_biggan):
    latents = tiny_biggan.sample_latents(2, seed=7, truncation=0.7)
    for key_latents in (latents, {"z": latents["z"], "class": latents["class"].argmax(dim=1)}):
        targets = tiny_biggan.encoder_targets(key_latents, truncation=0.7)
        assert set(targets) == {"z", "class"}
        assert targets["class"].shape == (2, 10) and targets["class"].is_floating_point()
        torch.testing.assert_close(
            tiny_biggan.synthesize(targets, truncation=0.7),
            tiny_biggan.synthesize(latents, truncation=0.7),
        )
    # With the default truncation, the base-class contract holds without arguments.
    latents = tiny_biggan.sample_latents(2, seed=8)
    torch.testing.assert_close(
        tiny_biggan.synthesize(tiny_biggan.encoder_targets(latents)),
        tiny_biggan.synthesize(latents),
    )
    logits = torch.randn(2, 10)
    targets = tiny_biggan.encoder_targets({"z": latents["z"], "class_logits": logits})
    torch.testing.assert_close(targets["class"], torch.softmax(logits, dim=1))


def test_gradients_reach_the_latents(tiny_biggan):
    latents = tiny_biggan.sample_latents(2, seed=0)
    z = latents["z"].clone().requires_grad_(True)
    logits = torch.zeros(2, 10, requires_grad=True)
    tiny_biggan.synthesize({"z": z, "class_logits": logits}).square().mean().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert logits.grad is not None and logits.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("latents", "error", "match"),
    [
        ({"z": torch.zeros(2, 16)}, ValueError, "exactly one of"),
        (
            {
                "z": torch.zeros(2, 16),
                "class": torch.zeros(2, 10),
                "class_logits": torch.zeros(2, 10),
            },
            ValueError,
            "exactly one of",
        ),
        ({"w": torch.zeros(2, 16), "class": torch.zeros(2, 10)}, ValueError, "got keys"),
        ({"z": torch.zeros(2, 15), "class": torch.zeros(2, 10)}, ValueError, r"\[N, 16\]"),
        ({"z": torch.zeros(2, 16), "class": torch.zeros(2, 11)}, ValueError, r"\[2, 10\]"),
        ({"z": torch.zeros(2, 16), "class": torch.zeros(3, 10)}, ValueError, r"\[2, 10\]"),
        ({"z": torch.zeros(2, 16), "class": torch.tensor([1, 2, 3])}, ValueError, "indices"),
        ({"z": torch.zeros(2, 16), "class": torch.tensor([1, 10])}, ValueError, r"\[0, 10\)"),
        (
            {"z": torch.zeros(2, 16, dtype=torch.long), "class": torch.zeros(2, 10)},
            TypeError,
            "float",
        ),
    ],
)
def test_bad_latents(tiny_biggan, latents, error, match):
    with pytest.raises(error, match=match):
        tiny_biggan.synthesize(latents)
    with pytest.raises(error, match=match):
        tiny_biggan.encoder_targets(latents)


def test_generic_generator_checks(tiny_biggan):
    check_generator = getattr(ganenc.testing, "check_generator", None)
    if check_generator is None:
        pytest.skip("ganenc.testing.check_generator is not available yet")
    check_generator(tiny_biggan)


def test_random_generator_is_reproducible(tiny_options):
    first = ganenc.load_generator("biggan", **tiny_options, seed=1)
    again = ganenc.load_generator("biggan", **tiny_options, seed=1)
    other = ganenc.load_generator("biggan", **tiny_options, seed=2)
    latents = first.sample_latents(1, seed=0)
    torch.testing.assert_close(first.synthesize(latents), again.synthesize(latents), rtol=0, atol=0)
    assert not torch.equal(first.synthesize(latents), other.synthesize(latents))


#: a generator of its own (the shared tiny_biggan must not be changed)
FRESH_OPTIONS = {"resolution": 32, "channel_width": 4, "z_dim": 16, "num_classes": 10}


def test_samples_follow_the_truncation_they_are_synthesized_with():
    """ganenc sample --truncation 1 and training at 0.8 drew z at 0.4 (the default) while the
    batch norm ran at 1 or 0.8; the reference scales z by the same t."""
    generator = ganenc.load_generator("biggan", **FRESH_OPTIONS)
    at_default = generator.sample_latents(8, seed=1)["z"]
    generator.follow_truncation(1.0)
    followed = generator.sample_latents(8, seed=1)["z"]
    torch.testing.assert_close(followed, at_default / REFERENCE_TRUNCATION)
    torch.testing.assert_close(followed, generator.sample_latents(8, seed=1, truncation=1.0)["z"])
    with pytest.raises(ganenc.ConfigError):
        generator.follow_truncation(1.5)  # BigGAN's range is (0, 1]
    generator.follow_truncation(None)
    torch.testing.assert_close(generator.sample_latents(8, seed=1)["z"], at_default)
    ganenc.testing.check_generator(generator)  # the contract still holds


def test_the_sample_command_draws_z_at_its_truncation(tmp_path):
    from click.testing import CliRunner

    from ganenc.cli.main import cli

    options = [x for key, value in FRESH_OPTIONS.items() for x in ("-O", f"{key}={value}")]
    out = tmp_path / "s.png"
    result = CliRunner().invoke(
        cli,
        ["sample", "--gan", "biggan", "--checkpoint", "random", *options, "-n", "32"]
        + ["--truncation", "1", "--save-latents", "--out", str(out), "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    z = torch.load(tmp_path / "s.latents.pt", weights_only=True)["latents"]["z"]
    assert z.abs().max() > 1.2  # t * truncnorm(-2, 2) at t = 1, not at 0.4 (|z| <= 0.8)
