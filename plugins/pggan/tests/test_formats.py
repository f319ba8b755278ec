"""Writers and readers of both formats agree, and the architecture is read from the file."""

from __future__ import annotations

import math

import pytest
import torch

from ganenc_pggan.formats import (
    GAN_ZOO,
    GENFORCE,
    gan_zoo_key,
    genforce_key,
    load_pggan_checkpoint,
    save_gan_zoo,
    save_genforce,
)
from ganenc_pggan.model import PGGANConfig, PGGANGenerator, upsample2x

RANDOM_CONFIGS = [
    ("gan_zoo", PGGANConfig.gan_zoo(z_dim=16, channels=(8,))),
    ("gan_zoo", PGGANConfig.gan_zoo(z_dim=24, channels=(12, 8, 6), leaky_slope=0.1)),
    ("gan_zoo", PGGANConfig.gan_zoo(z_dim=8, channels=(4, 4, 4, 3), final_tanh=True, lod=0.3)),
    ("gan_zoo", PGGANConfig.gan_zoo(z_dim=8, channels=(4, 6), pixel_norm=False)),
    ("gan_zoo", PGGANConfig.gan_zoo(z_dim=8, channels=(4, 6), equalized_lr=False)),
    ("genforce", PGGANConfig.genforce(z_dim=16, channels=(8, 8))),
    ("genforce", PGGANConfig.genforce(z_dim=10, channels=(16, 8, 4, 2))),
    ("genforce", PGGANConfig.genforce(z_dim=8, channels=(4, 4, 4), lod=1.5)),
]


def _random_generator(config: PGGANConfig, seed: int) -> PGGANGenerator:
    torch.manual_seed(seed)
    generator = PGGANGenerator(config).eval()
    with torch.no_grad():  # non-zero biases, so bias handling is exercised
        for name, parameter in generator.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(0, 0.5)
    return generator


@pytest.mark.parametrize(("layout", "config"), RANDOM_CONFIGS)
def test_round_trip_infers_architecture_and_reproduces_outputs(layout, config, tmp_path):
    generator = _random_generator(config, seed=len(config.channels) + config.z_dim)
    path = tmp_path / "model.pth"
    (save_gan_zoo if layout == "gan_zoo" else save_genforce)(generator, path)
    loaded = load_pggan_checkpoint(path)
    assert loaded.format == (GAN_ZOO if layout == "gan_zoo" else GENFORCE)
    assert loaded.generator.config == config
    z = torch.randn(3, config.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = generator(z)
        actual = loaded.generator(z)
    assert expected.shape == (3, 3, config.resolution, config.resolution)
    assert torch.equal(actual, expected)


def test_gan_zoo_shapes_alone_give_the_architecture(tmp_path):
    """A GAN zoo file whose config says nothing still loads: the shapes carry the architecture."""
    generator = _random_generator(PGGANConfig.gan_zoo(z_dim=12, channels=(8, 6, 4)), seed=0)
    save_gan_zoo(generator, tmp_path / "g.pth", config=None)
    ckpt = torch.load(tmp_path / "g.pth", weights_only=True)
    ckpt["config"] = {}
    torch.save(ckpt, tmp_path / "no_config.pth")
    loaded = load_pggan_checkpoint(tmp_path / "no_config.pth").generator
    assert loaded.config == generator.config
    assert loaded.resolution == 16 and loaded.z_dim == 12


def test_key_names_of_both_formats():
    assert gan_zoo_key("blocks.0.project.weight") == "formatLayer.module.weight"
    assert gan_zoo_key("blocks.0.conv.bias") == "groupScale0.0.module.bias"
    assert gan_zoo_key("blocks.3.conv1.weight") == "scaleLayers.2.1.module.weight"
    assert gan_zoo_key("to_rgb.2.bias") == "toRGBLayers.2.module.bias"
    assert genforce_key("blocks.0.project.weight") == "layer0.weight"
    assert genforce_key("blocks.0.conv.weight") == "layer1.weight"
    assert genforce_key("blocks.3.conv0.bias") == "layer6.bias"
    assert genforce_key("blocks.3.conv1.weight") == "layer7.weight"
    assert genforce_key("to_rgb.3.weight") == "output3.weight"


def test_writers_refuse_conventions_their_format_cannot_hold(tmp_path):
    genforce_model = PGGANGenerator(PGGANConfig.genforce(z_dim=4, channels=(4,)))
    gan_zoo_model = PGGANGenerator(PGGANConfig.gan_zoo(z_dim=4, channels=(4,)))
    with pytest.raises(ValueError, match="pytorch_GAN_zoo"):
        save_gan_zoo(genforce_model, tmp_path / "x.pth")
    with pytest.raises(ValueError, match="genforce"):
        save_genforce(gan_zoo_model, tmp_path / "x.pth")
    tanh = PGGANGenerator(PGGANConfig.genforce(z_dim=4, channels=(4,), final_tanh=True))
    with pytest.raises(ValueError, match="genforce"):
        save_genforce(tanh, tmp_path / "x.pth")


def test_lod_blends_with_the_lower_resolution_output():
    """lod 1 = the 2x-upsampled output of the previous scale; lod 0.25 mixes 3:1."""
    base = _random_generator(PGGANConfig.genforce(z_dim=8, channels=(6, 5, 4)), seed=3)
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(0))

    def with_lod(lod: float) -> torch.Tensor:
        generator = PGGANGenerator(PGGANConfig.genforce(z_dim=8, channels=(6, 5, 4), lod=lod))
        generator.load_state_dict(base.state_dict())
        with torch.no_grad():
            return generator(z)

    with torch.no_grad():
        x = base.blocks[1](base.blocks[0](z))
        lower = upsample2x(base.to_rgb[1](x))
        full = base.to_rgb[2](base.blocks[2](x))
        lowest = upsample2x(upsample2x(base.to_rgb[0](base.blocks[0](z))))
    torch.testing.assert_close(with_lod(0.0), full)
    torch.testing.assert_close(with_lod(1.0), lower)
    torch.testing.assert_close(with_lod(0.25), 0.75 * full + 0.25 * lower)
    torch.testing.assert_close(with_lod(2.0), lowest)


def test_equalized_layers_follow_each_format():
    """GAN zoo scales the bias with the He constant; genforce adds it unscaled; rgb gains differ."""
    zoo = PGGANGenerator(PGGANConfig.gan_zoo(z_dim=4, channels=(4,)))
    gen = PGGANGenerator(PGGANConfig.genforce(z_dim=4, channels=(4,)))
    assert zoo.to_rgb[0].scale == pytest.approx(math.sqrt(2 / 4))
    assert gen.to_rgb[0].scale == pytest.approx(1 / math.sqrt(4))
    assert gen.blocks[0].project.scale == pytest.approx(math.sqrt(2 / (4 * 16)))
    x = torch.ones(1, 4, 1, 1)
    for layer in (zoo.to_rgb[0], gen.to_rgb[0]):
        with torch.no_grad():
            layer.weight.zero_()
            layer.bias.fill_(1.0)
    assert torch.allclose(zoo.to_rgb[0](x), torch.full((1, 3, 1, 1), math.sqrt(2 / 4)))
    assert torch.allclose(gen.to_rgb[0](x), torch.ones(1, 3, 1, 1))


def test_invalid_configs_are_rejected():
    with pytest.raises(ValueError, match="lod"):
        PGGANConfig.gan_zoo(z_dim=4, channels=(4, 4), lod=2.0)
    with pytest.raises(ValueError, match="channels"):
        PGGANConfig.gan_zoo(z_dim=4, channels=())
    with pytest.raises(ValueError, match="power of two"):
        PGGANConfig.channels_for(48)
    assert PGGANConfig.channels_for(256) == (512, 512, 512, 512, 256, 128, 64)
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        PGGANGenerator(PGGANConfig.gan_zoo(z_dim=4, channels=(4,)))(torch.zeros(2, 5))
