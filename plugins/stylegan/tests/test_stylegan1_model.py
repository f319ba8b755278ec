"""StyleGAN1 model behaviour: config inference round trips, loader errors, noise and const."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganenc.errors import CheckpointError, ConfigError
from ganenc_stylegan.stylegan1 import (
    FusedUpsampleConv2d,
    StyleGAN1Config,
    StyleGAN1Generator,
    stylegan1_config_from_genforce,
    stylegan1_from_genforce,
    stylegan1_to_genforce,
)

SMALL_CONFIGS = {
    "32px": StyleGAN1Config(
        resolution=32,
        z_dim=32,
        w_dim=48,
        mapping_layers=3,
        mapping_fmaps=40,
        fmaps_base=256,
        fmaps_max=32,
    ),
    "64px": StyleGAN1Config(
        resolution=64,
        z_dim=64,
        w_dim=64,
        mapping_layers=2,
        mapping_fmaps=64,
        fmaps_base=512,
        fmaps_max=16,
        image_channels=1,
    ),
}


def randomized(config: StyleGAN1Config, seed: int = 0) -> StyleGAN1Generator:
    """A generator whose every tensor is random, so no entry can be mixed up unnoticed."""
    torch.manual_seed(seed)
    model = StyleGAN1Generator(config).eval()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not name.endswith("blur.kernel"):
                tensor.copy_(torch.randn_like(tensor) * (0.3 if tensor.dim() == 1 else 1.0))
    return model


@pytest.fixture(scope="module")
def small() -> StyleGAN1Generator:
    return randomized(SMALL_CONFIGS["32px"])


@pytest.mark.parametrize("name", list(SMALL_CONFIGS))
def test_genforce_round_trip_infers_config_and_reproduces_outputs(name: str) -> None:
    config = SMALL_CONFIGS[name]
    model = randomized(config)
    state = stylegan1_to_genforce(model)
    assert stylegan1_config_from_genforce(state) == config
    loaded = stylegan1_from_genforce(state).eval()
    assert loaded.has_w_avg and not model.has_w_avg
    z = torch.randn(2, config.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        w = model.mapping(z)
        assert torch.equal(loaded.mapping(z), w)
        w_plus = w.unsqueeze(1).repeat(1, model.num_ws, 1) + 0.1 * torch.randn(
            2, model.num_ws, config.w_dim
        )
        image = model.synthesis(w_plus)
        assert torch.equal(loaded.synthesis(w_plus), image)
    resolution = config.resolution
    assert image.shape == (2, config.image_channels, resolution, resolution)


def test_exported_keys_are_genforce_names(small: StyleGAN1Generator) -> None:
    state = stylegan1_to_genforce(small)
    num_ws = small.num_ws
    assert "truncation.w_avg" in state and "synthesis.lod" in state
    assert "synthesis.layer0.const" in state and "synthesis.layer0.weight" not in state
    assert {f"mapping.dense{i}.weight" for i in range(3)} <= set(state)
    assert f"synthesis.layer{num_ws - 1}.apply_noise.noise" in state
    assert [k for k in state if k.endswith("blur.kernel")] == [
        f"synthesis.layer{i}.blur.kernel" for i in range(2, num_ws, 2)
    ]
    assert {f"synthesis.output{k}.weight" for k in range(num_ws // 2)} <= set(state)


def test_default_config_is_official_ffhq() -> None:
    config = StyleGAN1Config(resolution=256)
    assert config.num_ws == 14
    assert [config.channels(r) for r in config.resolutions] == [512, 512, 512, 512, 256, 128, 64]
    assert [r for r in config.resolutions if config.is_fused(r)] == [128, 256]
    assert (config.z_dim, config.w_dim, config.mapping_layers) == (512, 512, 8)
    assert config.mapping_lr_mul == 0.01
    full = StyleGAN1Config()
    assert full.resolution == 1024 and full.num_ws == 18 and full.channels(1024) == 16


@pytest.mark.parametrize("resolution", [4, 48, 2048, 100])
def test_invalid_resolution_is_a_config_error(resolution: int) -> None:
    with pytest.raises(ConfigError, match="resolution"):
        StyleGAN1Config(resolution=resolution)


def test_interface_attributes(small: StyleGAN1Generator) -> None:
    config = small.config
    assert (small.z_dim, small.w_dim, small.num_ws, small.resolution) == (32, 48, 8, 32)
    assert small.const_shape == (config.channels(4), 4, 4)
    assert small.w_avg.shape == (48,)


def test_missing_and_unexpected_keys_are_named(small: StyleGAN1Generator) -> None:
    state = stylegan1_to_genforce(small)
    del state["synthesis.layer3.style.bias"]
    state["synthesis.layer3.extra"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as info:
        stylegan1_from_genforce(state)
    message = str(info.value)
    assert "missing keys: synthesis.layer3.style.bias" in message
    assert "unexpected keys: synthesis.layer3.extra" in message


def test_wrong_shape_is_named(small: StyleGAN1Generator) -> None:
    state = stylegan1_to_genforce(small)
    state["synthesis.layer5.weight"] = state["synthesis.layer5.weight"][:, :-1]
    with pytest.raises(CheckpointError, match=r"synthesis\.layer5\.weight"):
        stylegan1_from_genforce(state)


def test_progressive_snapshot_is_refused(small: StyleGAN1Generator) -> None:
    state = stylegan1_to_genforce(small)
    state["synthesis.lod"] = torch.tensor(1.5)
    with pytest.raises(CheckpointError, match="lod"):
        stylegan1_from_genforce(state)


def test_other_families_and_variants_are_refused(small: StyleGAN1Generator) -> None:
    with pytest.raises(CheckpointError, match="stylegan2"):
        stylegan1_from_genforce(
            {
                "synthesis.early_layer.const": torch.zeros(1, 8, 4, 4),
                "truncation.w_avg": torch.zeros(8),
            }
        )
    with pytest.raises(CheckpointError, match="rosinality"):
        stylegan1_from_genforce(
            {"style.1.weight": torch.zeros(4, 4), "conv1.conv.weight": torch.zeros(1)}
        )
    with pytest.raises(CheckpointError, match="dict"):
        stylegan1_from_genforce([torch.zeros(1)])  # type: ignore[arg-type]
    conditional = stylegan1_to_genforce(small) | {"mapping.label_weight": torch.zeros(10, 32)}
    with pytest.raises(CheckpointError, match="conditional"):
        stylegan1_from_genforce(conditional)
    channel_noise = stylegan1_to_genforce(small)
    channel_noise["synthesis.layer7.apply_noise.noise"] = torch.zeros(1, 8, 1, 1)
    with pytest.raises(CheckpointError, match="spatial"):
        stylegan1_from_genforce(channel_noise)
    per_layer_avg = stylegan1_to_genforce(small)
    per_layer_avg["truncation.w_avg"] = torch.zeros(8 * 48)
    with pytest.raises(CheckpointError, match="repeat_w"):
        stylegan1_from_genforce(per_layer_avg)


def test_noise_modes(small: StyleGAN1Generator) -> None:
    w_plus = torch.randn(2, small.num_ws, small.w_dim)
    with torch.no_grad():
        const_a, const_b = small.synthesis(w_plus), small.synthesis(w_plus, noise_mode="const")
        random_a = small.synthesis(w_plus, noise_mode="random")
        random_b = small.synthesis(w_plus, noise_mode="random")
        silent = small.synthesis(w_plus, noise_mode="none")
    assert torch.equal(const_a, const_b)
    assert not torch.allclose(random_a, random_b)
    assert not torch.allclose(random_a, const_a)
    muted = randomized(small.config)
    with torch.no_grad():
        for layer in muted.synthesis_network.layers:
            layer.noise.weight.zero_()
        assert torch.allclose(muted.synthesis(w_plus, noise_mode="const"), silent, atol=1e-6)
    with pytest.raises(ConfigError, match="noise_mode"):
        small.synthesis(w_plus, noise_mode="fixed")


def test_const_replaces_the_learned_input(small: StyleGAN1Generator) -> None:
    w_plus = torch.randn(3, small.num_ws, small.w_dim)
    learned = small.synthesis_network.const
    with torch.no_grad():
        reference = small.synthesis(w_plus)
        assert torch.equal(small.synthesis(w_plus, const=learned.expand(3, -1, -1, -1)), reference)
        assert torch.equal(small.synthesis(w_plus, const=learned[0]), reference)
        other = torch.randn(3, *small.const_shape)
        changed = small.synthesis(w_plus, const=other)
        assert not torch.allclose(changed, reference)
        assert torch.allclose(
            small.synthesis(w_plus[1:2], const=other[1:2]), changed[1:2], atol=1e-5
        )
    with pytest.raises(ConfigError, match="const"):
        small.synthesis(w_plus, const=torch.zeros(3, 7, 4, 4))


def test_w_broadcast_and_shape_checks(small: StyleGAN1Generator) -> None:
    w = torch.randn(2, small.w_dim)
    with torch.no_grad():
        broadcast = small.synthesis(w)
        assert torch.equal(broadcast, small.synthesis(w.unsqueeze(1).repeat(1, small.num_ws, 1)))
        assert torch.equal(
            small(torch.zeros(1, small.z_dim) + 1.0),
            small.synthesis(small.mapping(torch.ones(1, small.z_dim))),
        )
    with pytest.raises(ConfigError, match="w_plus"):
        small.synthesis(torch.randn(2, small.num_ws - 1, small.w_dim))
    with pytest.raises(ConfigError, match="z must"):
        small.mapping(torch.randn(2, small.z_dim + 1))


def test_mapping_normalises_z(small: StyleGAN1Generator) -> None:
    z = torch.randn(2, small.z_dim)
    with torch.no_grad():
        assert torch.allclose(small.mapping(z), small.mapping(5.0 * z), atol=1e-5)


def test_gradients_reach_w_plus_and_const(small: StyleGAN1Generator) -> None:
    w_plus = torch.randn(1, small.num_ws, small.w_dim, requires_grad=True)
    const = torch.randn(1, *small.const_shape, requires_grad=True)
    small.synthesis(w_plus, const=const).square().mean().backward()
    assert w_plus.grad is not None and bool((w_plus.grad.abs().sum(dim=2) > 0).all())
    assert const.grad is not None and const.grad.abs().sum() > 0


def test_fused_upconv_is_upsample_then_flipped_conv() -> None:
    torch.manual_seed(0)
    fused = FusedUpsampleConv2d(3, 5)
    x = torch.randn(2, 3, 6, 6)
    upsampled = F.interpolate(x, scale_factor=2, mode="nearest")
    expected = F.conv2d(upsampled, fused.scaled_weight().flip(2, 3), padding=1)
    with torch.no_grad():
        actual = fused(x)
    assert actual.shape == (2, 5, 12, 12)
    assert torch.allclose(actual, expected, atol=1e-5)
    assert not torch.allclose(
        actual, F.conv2d(upsampled, fused.scaled_weight(), padding=1), atol=1e-2
    )


def test_forward_truncation_and_set_w_avg() -> None:
    model = randomized(SMALL_CONFIGS["32px"])
    average = torch.randn(model.w_dim)
    model.set_w_avg(average)
    assert model.has_w_avg and torch.equal(model.w_avg, average)
    z = torch.randn(2, model.z_dim)
    with torch.no_grad():
        w_plus = model.mapping(z).unsqueeze(1).repeat(1, model.num_ws, 1)
        partial = w_plus.clone()
        partial[:, :3] = average + 0.5 * (w_plus[:, :3] - average)
        assert torch.allclose(model(z, 0.5, 3), model.synthesis(partial), atol=1e-6)
        everything = average + 0.5 * (w_plus - average)
        assert torch.allclose(model(z, 0.5), model.synthesis(everything), atol=1e-6)
        assert torch.equal(model(z, 1.0, 3), model.synthesis(w_plus))
