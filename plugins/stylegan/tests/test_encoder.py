"""The StyleGAN adaptive-block encoder: shapes, w+ layout, determinism, gradients, save/load."""

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
from ganenc_stylegan.encoder import StyleGANEncoder, StyleGANEncoderOptions

torch.set_num_threads(1)

TINY = {"start_channels": 8, "max_channels": 16}


def stylegan_geometry(resolution: int, num_ws: int | None = None, w_dim: int = 32, const: int = 16):
    num_ws = 2 * int(math.log2(resolution)) - 2 if num_ws is None else num_ws
    latents = {"w_plus": (num_ws, w_dim), "const": (const, 4, 4)}
    return GeneratorGeometry("stylegan2", resolution, latents)


class StandInGenerator(GeneratorAdapter):
    """A differentiable toy generator: every latent -> linear -> 8x8 image, upsampled."""

    family = "stylegan2"

    def __init__(self, geometry: GeneratorGeometry) -> None:
        super().__init__()
        self._geometry = geometry
        self.resolution = geometry.resolution
        self.maps = nn.ModuleDict(
            {
                key: nn.Linear(math.prod(shape), 3 * 8 * 8)
                for key, shape in geometry.encoder_latents.items()
            }
        )

    def geometry(self) -> GeneratorGeometry:
        return self._geometry

    def sample_latents(self, n, seed=None, device=None):
        source = seeded_generator(seed)
        shapes = self._geometry.encoder_latents
        return {key: torch.randn(n, *shape, generator=source) for key, shape in shapes.items()}

    def synthesize(self, latents, truncation=1.0, truncation_layers=None, noise_mode="const"):
        small = sum(self.maps[key](latents[key].flatten(1)) for key in self.maps)
        image = F.interpolate(small.view(-1, 3, 8, 8), size=self.resolution, mode="bilinear")
        return torch.tanh(image)

    def encoder_targets(self, latents, truncation=1.0, truncation_layers=None):
        return dict(latents)


def images(n: int, resolution: int, seed: int = 0) -> torch.Tensor:
    return (
        torch.rand(n, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed)) * 2
        - 1
    )


@pytest.mark.parametrize("resolution", [32, 64])
@pytest.mark.parametrize("const_channels", [16, 24])
def test_output_keys_and_shapes(resolution, const_channels):
    geometry = stylegan_geometry(resolution, const=const_channels)
    encoder = ganenc.build_encoder(geometry, **TINY)
    assert isinstance(encoder, StyleGANEncoder)
    assert (encoder.const_projection is None) == (const_channels == 16)
    check_encoder(encoder, StandInGenerator(geometry))
    out = encoder.eval()(images(2, resolution))
    num_ws = 2 * int(math.log2(resolution)) - 2
    assert out["w_plus"].shape == (2, num_ws, 32)
    assert out["const"].shape == (2, const_channels, 4, 4)


def test_geometry_without_const_gives_only_w_plus():
    geometry = GeneratorGeometry("stylegan1", 32, {"w_plus": (8, 32)})
    encoder = ganenc.build_encoder(geometry, **TINY).eval()
    assert set(encoder(images(1, 32))) == {"w_plus"}


def test_const_estimate_is_the_final_4x4_features():
    encoder = ganenc.build_encoder(stylegan_geometry(32), **TINY).eval()
    x = images(2, 32)
    assert torch.equal(encoder(x)["const"], encoder.trunk(x).features)


def test_paper_size_at_1024_without_running_it():
    geometry = GeneratorGeometry("stylegan2", 1024, {"w_plus": (18, 512), "const": (512, 4, 4)})
    encoder = ganenc.build_encoder(geometry)
    count = sum(p.numel() for p in encoder.parameters())
    assert abs(count - 24.28e6) / 24.28e6 < 0.10, count
    assert encoder.trunk.num_blocks == 9 and encoder.trunk.style_layers == 18
    assert encoder.trunk.widths[0] == 16 and encoder.const_projection is None


def test_fewer_w_plus_layers_keep_the_coarsest_codes():
    full = ganenc.build_encoder(stylegan_geometry(32), **TINY).eval()
    short = ganenc.build_encoder(stylegan_geometry(32, num_ws=6), **TINY).eval()
    short.load_state_dict(full.state_dict(), strict=False)
    x = images(2, 32)
    assert short(x)["w_plus"].shape == (2, 6, 32)
    assert torch.equal(short(x)["w_plus"], full(x)["w_plus"][:, :6])


def test_more_w_plus_layers_repeat_the_finest_code():
    full = ganenc.build_encoder(stylegan_geometry(32), **TINY).eval()
    long = ganenc.build_encoder(stylegan_geometry(32, num_ws=11), **TINY).eval()
    long.load_state_dict(full.state_dict())
    x = images(2, 32)
    w_long, w_full = long(x)["w_plus"], full(x)["w_plus"]
    assert w_long.shape == (2, 11, 32)
    assert torch.equal(w_long[:, :8], w_full)
    for layer in range(8, 11):
        assert torch.equal(w_long[:, layer], w_full[:, 7])


def test_deterministic_in_eval_and_noisy_in_training():
    encoder = ganenc.build_encoder(stylegan_geometry(32), **TINY)
    with torch.no_grad():
        for module in encoder.modules():
            if type(module).__name__ == "LearnedNoise":
                module.weight.fill_(0.5)
    x = images(2, 32)
    encoder.train()
    assert not torch.equal(encoder(x)["w_plus"], encoder(x)["w_plus"])
    encoder.eval()
    first, second = encoder(x), encoder(x)
    for key in first:
        assert torch.equal(first[key], second[key])


def test_different_images_give_different_codes():
    encoder = ganenc.build_encoder(stylegan_geometry(32), **TINY).eval()
    a, b = encoder(images(1, 32, seed=1)), encoder(images(1, 32, seed=2))
    assert not torch.allclose(a["w_plus"], b["w_plus"])
    assert not torch.allclose(a["const"], b["const"])


@pytest.mark.parametrize("blur", [False, True])
@pytest.mark.parametrize("const_channels", [16, 24])
def test_gradients_reach_every_parameter_through_a_generator(blur, const_channels):
    torch.manual_seed(0)
    geometry = stylegan_geometry(32, const=const_channels)
    encoder = ganenc.build_encoder(geometry, blur=blur, **TINY).train()
    generator = StandInGenerator(geometry).freeze()
    x = images(2, 32)
    loss = F.mse_loss(generator.synthesize(encoder(x)), x)
    loss.backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None, f"{name} gets no gradient"
        assert parameter.grad.abs().sum() > 0, f"{name} gets a zero gradient"


def test_forward_takes_only_images_and_an_unused_condition():
    encoder = ganenc.build_encoder(stylegan_geometry(32), **TINY)
    assert list(inspect.signature(encoder.forward).parameters) == ["images", "condition"]
    with pytest.raises(ValueError, match="unconditional"):
        encoder(images(1, 32), torch.tensor([0]))


def test_options_are_validated():
    with pytest.raises(ConfigError, match="unknown setting"):
        ganenc.build_encoder(stylegan_geometry(32), channels=8)
    with pytest.raises(ConfigError, match="start_channels"):
        ganenc.build_encoder(stylegan_geometry(32), start_channels=0)
    with pytest.raises(ConfigError, match="power of two"):
        ganenc.build_encoder(GeneratorGeometry("stylegan2", 48, {"w_plus": (8, 32)}))
    with pytest.raises(ConfigError, match="w_plus"):
        ganenc.build_encoder(GeneratorGeometry("stylegan2", 32, {"z": (32,)}))
    assert StyleGANEncoderOptions().max_channels == 512


def test_save_and_load_round_trip(tmp_path):
    geometry = stylegan_geometry(32, const=24)
    encoder = ganenc.build_encoder(geometry, blur=True, **TINY)
    with torch.no_grad():  # move every parameter away from its initial value
        for parameter in encoder.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    path = ganenc.save_encoder(encoder, tmp_path / "encoder.pt")
    loaded = ganenc.load_encoder(path)
    assert isinstance(loaded, StyleGANEncoder) and loaded.trunk.blocks[0].blur is not None
    x = images(2, 32)
    expected, found = encoder.eval()(x), loaded.eval()(x)
    for key in expected:
        assert torch.equal(expected[key], found[key])


REAL_TINY = {"resolution": 32, "z_dim": 32, "w_dim": 32, "mapping_layers": 2, "channel_max": 32}


@pytest.mark.parametrize("family", ["stylegan1", "stylegan2"])
def test_through_the_real_generator(family):
    pytest.importorskip("ganenc_stylegan.adapter")
    generator = ganenc.load_generator(family, **REAL_TINY).freeze()
    encoder = ganenc.build_encoder(generator, **TINY)
    check_encoder(encoder, generator)
    x = images(2, 32)
    encoder.train()
    F.mse_loss(generator.synthesize(encoder(x)), x).backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_a_few_adam_steps_reduce_the_reconstruction_error():
    pytest.importorskip("ganenc_stylegan.adapter")
    torch.manual_seed(0)
    generator = ganenc.load_generator("stylegan2", **REAL_TINY).freeze()
    encoder = ganenc.build_encoder(generator, **TINY).train()
    with torch.no_grad():
        target = generator.synthesize(
            generator.encoder_targets(generator.sample_latents(2, seed=3))
        )
    optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-3, betas=(0.0, 0.99))
    losses = []
    for _ in range(4):
        loss = F.mse_loss(generator.synthesize(encoder(target)), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.95 * losses[0], losses
