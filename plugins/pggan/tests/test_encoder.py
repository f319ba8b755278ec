"""The PGGAN adaptive-block encoder: z from the image, determinism, gradients, save/load."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ganenc
from ganenc.adapters import GeneratorAdapter, seeded_generator
from ganenc.errors import ConfigError
from ganenc.geometry import GeneratorGeometry
from ganenc.testing import check_encoder
from ganenc_pggan.encoder import PGGANEncoder, PGGANEncoderOptions

torch.set_num_threads(1)

TINY = {"start_channels": 8, "max_channels": 16}


def pggan_geometry(resolution: int = 32, z_dim: int = 24) -> GeneratorGeometry:
    return GeneratorGeometry("pggan", resolution, {"z": (z_dim,)})


class StandInGenerator(GeneratorAdapter):
    """A differentiable toy generator: z -> linear -> 8x8 image, upsampled."""

    family = "pggan"

    def __init__(self, geometry: GeneratorGeometry) -> None:
        super().__init__()
        self._geometry = geometry
        self.resolution = geometry.resolution
        self.map = nn.Linear(math.prod(geometry.encoder_latents["z"]), 3 * 8 * 8)

    def geometry(self) -> GeneratorGeometry:
        return self._geometry

    def sample_latents(self, n, seed=None, device=None):
        shape = self._geometry.encoder_latents["z"]
        return {"z": torch.randn(n, *shape, generator=seeded_generator(seed))}

    def synthesize(self, latents, truncation=1.0, truncation_layers=None, noise_mode="const"):
        small = self.map(latents["z"]).view(-1, 3, 8, 8)
        return torch.tanh(F.interpolate(small, size=self.resolution, mode="bilinear"))

    def encoder_targets(self, latents, truncation=1.0, truncation_layers=None):
        return dict(latents)


def images(n: int, resolution: int = 32, seed: int = 0) -> torch.Tensor:
    source = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, resolution, resolution, generator=source) * 2 - 1


@pytest.mark.parametrize("resolution", [32, 64])
def test_output_is_z_of_the_geometry(resolution):
    geometry = pggan_geometry(resolution)
    encoder = ganenc.build_encoder(geometry, **TINY)
    assert isinstance(encoder, PGGANEncoder)
    check_encoder(encoder, StandInGenerator(geometry))
    out = encoder.eval()(images(3, resolution))
    assert set(out) == {"z"} and out["z"].shape == (3, 24)


def test_no_style_heads_and_no_noise():
    encoder = ganenc.build_encoder(pggan_geometry(), **TINY)
    names = [name for name, _ in encoder.named_parameters()]
    assert not [name for name in names if "style" in name or "noise" in name]
    assert encoder.to_z.in_features == 16 * 4 * 4


def test_z_depends_on_the_image():
    encoder = ganenc.build_encoder(pggan_geometry(), **TINY).eval()
    z1, z2 = encoder(images(1, seed=1))["z"], encoder(images(1, seed=2))["z"]
    assert not torch.allclose(z1, z2)
    assert z1.std() > 0  # not a constant vector either
    again = encoder(images(1, seed=1))["z"]
    assert torch.equal(z1, again)


def test_gradient_of_z_reaches_the_first_layer():
    encoder = ganenc.build_encoder(pggan_geometry(), **TINY).eval()
    x = images(2).requires_grad_(True)
    encoder(x)["z"].pow(2).sum().backward()
    assert encoder.trunk.from_rgb.conv.weight.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0


def test_gradients_reach_every_parameter_through_a_generator():
    geometry = pggan_geometry()
    encoder = ganenc.build_encoder(geometry, **TINY).train()
    generator = StandInGenerator(geometry).freeze()
    x = images(2)
    F.mse_loss(generator.synthesize(encoder(x)), x).backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None, f"{name} gets no gradient"
        assert parameter.grad.abs().sum() > 0, f"{name} gets a zero gradient"


def test_training_mode_is_deterministic_too_without_noise():
    encoder = ganenc.build_encoder(pggan_geometry(), **TINY).train()
    x = images(2)
    assert torch.equal(encoder(x)["z"], encoder(x)["z"])


def test_forward_takes_only_images_and_an_unused_condition():
    encoder = ganenc.build_encoder(pggan_geometry(), **TINY)
    assert list(inspect.signature(encoder.forward).parameters) == ["images", "condition"]
    with pytest.raises(ValueError, match="unconditional"):
        encoder(images(1), torch.tensor([0]))


def test_options_and_geometry_are_validated():
    with pytest.raises(ConfigError, match="unknown setting 'blur'"):
        ganenc.build_encoder(pggan_geometry(), blur=True)
    with pytest.raises(ConfigError, match="max_channels"):
        ganenc.build_encoder(pggan_geometry(), max_channels=0)
    with pytest.raises(ConfigError, match="'z'"):
        PGGANEncoder(GeneratorGeometry("pggan", 32, {"w_plus": (8, 32)}))
    assert PGGANEncoderOptions().start_channels is None


def test_paper_size_at_1024():
    encoder = ganenc.build_encoder(GeneratorGeometry("pggan", 1024, {"z": (512,)}))
    assert encoder.trunk.widths == [16, 32, 64, 128, 256, 512, 512, 512, 512]
    assert (encoder.to_z.in_features, encoder.to_z.out_features) == (512 * 16, 512)


def test_save_and_load_round_trip(tmp_path):
    encoder = ganenc.build_encoder(pggan_geometry(), **TINY)
    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    loaded = ganenc.load_encoder(ganenc.save_encoder(encoder, tmp_path / "e.pt"))
    assert isinstance(loaded, PGGANEncoder)
    x = images(2)
    assert torch.equal(encoder.eval()(x)["z"], loaded.eval()(x)["z"])


def test_through_the_real_pggan_generator():
    pytest.importorskip("ganenc_pggan.adapter")
    generator = ganenc.load_generator("pggan", resolution=32, z_dim=32, fmaps_max=32).freeze()
    encoder = ganenc.build_encoder(generator, **TINY)
    check_encoder(encoder, generator)
    x = images(2)
    encoder.train()
    F.mse_loss(generator.synthesize(encoder(x)), x).backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
