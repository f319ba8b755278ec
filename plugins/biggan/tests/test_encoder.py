"""The BigGAN adaptive-block encoder: conditional batch norm, z and class heads, no leak of z."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ganenc
from ganenc.adapters import GeneratorAdapter, seeded_generator
from ganenc.errors import ConfigError
from ganenc.geometry import GeneratorGeometry
from ganenc.nn import ConditionalBatchNorm2d
from ganenc.testing import check_encoder
from ganenc_biggan.encoder import BigGANEncoder, BigGANEncoderOptions

torch.set_num_threads(1)

TINY = {"start_channels": 8, "max_channels": 16, "embedding_dim": 8, "hidden_features": 16}
NUM_CLASSES = 10


def biggan_geometry(resolution: int = 32, z_dim: int = 16) -> GeneratorGeometry:
    return GeneratorGeometry("biggan", resolution, {"z": (z_dim,), "class": (NUM_CLASSES,)})


class StandInGenerator(GeneratorAdapter):
    """A differentiable toy generator: (z, class vector) -> linear -> 8x8 image, upsampled."""

    family = "biggan"

    def __init__(self, geometry: GeneratorGeometry) -> None:
        super().__init__()
        self._geometry = geometry
        self.resolution = geometry.resolution
        z_dim = geometry.encoder_latents["z"][0]
        self.from_z = nn.Linear(z_dim, 3 * 8 * 8)
        self.from_class = nn.Linear(NUM_CLASSES, 3 * 8 * 8)

    def geometry(self) -> GeneratorGeometry:
        return self._geometry

    def sample_latents(self, n, seed=None, device=None):
        source = seeded_generator(seed)
        z = torch.randn(n, self._geometry.encoder_latents["z"][0], generator=source)
        labels = torch.randint(0, NUM_CLASSES, (n,), generator=source)
        return {"z": z, "class": F.one_hot(labels, NUM_CLASSES).float()}

    def synthesize(self, latents, truncation=1.0, truncation_layers=None, noise_mode="const"):
        small = self.from_z(latents["z"]) + self.from_class(latents["class"])
        image = F.interpolate(small.view(-1, 3, 8, 8), size=self.resolution, mode="bilinear")
        return torch.tanh(image)

    def encoder_targets(self, latents, truncation=1.0, truncation_layers=None):
        return dict(latents)


def images(n: int, resolution: int = 32, seed: int = 0) -> torch.Tensor:
    source = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, resolution, resolution, generator=source) * 2 - 1


def trained_a_little(encoder: BigGANEncoder) -> BigGANEncoder:
    """Move the weights off their initial values and fill the batch-norm running statistics."""
    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
        encoder.train()
        encoder(images(4, encoder.geometry.resolution, seed=9))
    return encoder.eval()


@pytest.mark.parametrize("resolution", [32, 64])
def test_outputs_z_and_class_probabilities(resolution):
    geometry = biggan_geometry(resolution)
    encoder = ganenc.build_encoder(geometry, **TINY)
    assert isinstance(encoder, BigGANEncoder)
    check_encoder(encoder, StandInGenerator(geometry))
    out = encoder.eval()(images(3, resolution))
    assert set(out) == {"z", "class"}
    assert out["z"].shape == (3, 16) and out["class"].shape == (3, NUM_CLASSES)
    assert torch.allclose(out["class"].sum(dim=1), torch.ones(3))
    assert (out["class"] >= 0).all()


def test_class_is_the_softmax_of_the_logits():
    encoder = trained_a_little(ganenc.build_encoder(biggan_geometry(), **TINY))
    x = images(2)
    logits = encoder.class_logits(x)
    assert logits.shape == (2, NUM_CLASSES)
    assert torch.allclose(encoder(x)["class"], logits.softmax(dim=1))
    latents, same_logits = encoder.encode_with_logits(x)
    assert torch.equal(same_logits, logits) and torch.equal(latents["z"], encoder(x)["z"])
    # Usable for a cross-entropy loss.
    loss = F.cross_entropy(logits, torch.tensor([1, 2]))
    assert torch.isfinite(loss)


def test_blocks_use_conditional_batch_norm_and_have_no_styles_or_noise():
    encoder = ganenc.build_encoder(biggan_geometry(), **TINY)
    norms = [m for m in encoder.modules() if isinstance(m, ConditionalBatchNorm2d)]
    assert len(norms) == 2 * encoder.trunk.num_blocks - 1  # the 4x4 block has one conv
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in encoder.modules())
    names = [name for name, _ in encoder.named_parameters()]
    assert not [name for name in names if "style" in name or "noise" in name]
    assert encoder.hidden.in_features == 16 * 4 * 4 and encoder.hidden.out_features == 16


def test_the_encoder_cannot_receive_z():
    encoder = ganenc.build_encoder(biggan_geometry(), **TINY)
    for method in (encoder.forward, encoder.class_logits, encoder.encode_with_logits):
        assert list(inspect.signature(method).parameters) == ["images", "condition"]
    # A stated condition is a class (labels or a class vector), never a generator input.
    with pytest.raises(ValueError, match=r"\[N, 10\]"):
        encoder(images(2), torch.randn(2, 16 + NUM_CLASSES))


def test_stated_class_drives_the_conditional_norms():
    encoder = trained_a_little(ganenc.build_encoder(biggan_geometry(), **TINY))
    x = images(2)
    free = encoder(x)
    as_three = encoder(x, torch.tensor([3, 3]))
    as_five = encoder(x, torch.tensor([5, 5]))
    assert not torch.allclose(as_three["z"], as_five["z"])
    assert not torch.allclose(free["z"], as_three["z"])
    one_hot = F.one_hot(torch.tensor([3, 3]), NUM_CLASSES).float()
    assert torch.allclose(encoder(x, one_hot)["z"], as_three["z"], atol=1e-6)
    with pytest.raises(ValueError, match="rows"):
        encoder(x, torch.tensor([3]))


def test_deterministic_in_eval_and_per_sample():
    encoder = trained_a_little(ganenc.build_encoder(biggan_geometry(), **TINY))
    x = images(3)
    first, second = encoder(x), encoder(x)
    for key in first:
        assert torch.equal(first[key], second[key])
    # Eval-mode batch norm uses running statistics: a sample's code ignores the batch.
    alone = encoder(x[:1])
    assert torch.allclose(alone["z"], first["z"][:1], atol=1e-5)
    different = encoder(images(1, seed=5))
    assert not torch.allclose(different["z"], alone["z"])


def test_gradients_reach_every_parameter_with_and_without_a_stated_class():
    torch.manual_seed(0)
    geometry = biggan_geometry()
    encoder = ganenc.build_encoder(geometry, **TINY).train()
    generator = StandInGenerator(geometry).freeze()
    x = images(2)
    unconditional = F.mse_loss(generator.synthesize(encoder(x)), x)
    conditional = F.mse_loss(generator.synthesize(encoder(x, torch.tensor([1, 7]))), x)
    (unconditional + conditional).backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None, f"{name} gets no gradient"
        assert parameter.grad.abs().sum() > 0, f"{name} gets a zero gradient"


def test_condition_dropout_replaces_the_class_in_training_only():
    encoder = trained_a_little(
        ganenc.build_encoder(biggan_geometry(), condition_dropout=1.0, **TINY)
    )
    labels = torch.tensor([2, 4])
    x = images(2)
    encoder.eval()
    assert not torch.allclose(encoder(x, labels)["z"], encoder(x)["z"])
    encoder.train()
    with torch.no_grad():
        assert torch.allclose(encoder(x, labels)["z"], encoder(x)["z"])


def test_options_are_validated():
    with pytest.raises(ConfigError, match="condition_dropout"):
        ganenc.build_encoder(biggan_geometry(), condition_dropout=1.5)
    with pytest.raises(ConfigError, match="unknown setting 'blur'"):
        ganenc.build_encoder(biggan_geometry(), blur=True)
    with pytest.raises(ConfigError, match="'class'"):
        BigGANEncoder(GeneratorGeometry("biggan", 32, {"z": (16,)}))
    assert BigGANEncoderOptions().hidden_features == 256


def test_paper_layout_at_128():
    geometry = GeneratorGeometry("biggan", 128, {"z": (128,), "class": (1000,)})
    encoder = ganenc.build_encoder(geometry)
    assert encoder.trunk.widths == [128, 256, 512, 512, 512, 512]  # Table 10, 6 blocks
    assert (encoder.hidden.in_features, encoder.hidden.out_features) == (512 * 16, 256)
    assert (encoder.to_z.in_features, encoder.to_z.out_features) == (256, 128)
    assert encoder.to_class.out_features == 1000


def test_save_and_load_round_trip(tmp_path):
    encoder = trained_a_little(ganenc.build_encoder(biggan_geometry(), **TINY))
    loaded = ganenc.load_encoder(ganenc.save_encoder(encoder, tmp_path / "e.pt")).eval()
    assert isinstance(loaded, BigGANEncoder)
    x = images(2)
    for condition in (None, torch.tensor([0, 9])):
        expected, found = encoder(x, condition), loaded(x, condition)
        for key in expected:
            assert torch.equal(expected[key], found[key])


def test_through_the_real_biggan_generator():
    pytest.importorskip("ganenc_biggan.adapter")
    tiny_generator = {"resolution": 32, "channel_width": 4, "z_dim": 16, "num_classes": NUM_CLASSES}
    generator = ganenc.load_generator("biggan", **tiny_generator).freeze()
    encoder = ganenc.build_encoder(generator, **TINY)
    check_encoder(encoder, generator)
    x = images(2)
    encoder.train()
    unconditional = F.mse_loss(generator.synthesize(encoder(x)), x)
    conditional = F.mse_loss(generator.synthesize(encoder(x, torch.tensor([1, 7]))), x)
    (unconditional + conditional).backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
