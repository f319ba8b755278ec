"""The StyleGAN2 model itself: configurations, building blocks, the common model interface."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganenc.errors import ConfigError
from ganenc_stylegan.stylegan2 import (
    ModulatedConv2d,
    StyleGAN2Config,
    StyleGAN2Generator,
    Upsample,
    fir_kernel,
    upfirdn2d,
)


def tiny(**overrides) -> StyleGAN2Generator:
    fields = dict(resolution=32, z_dim=16, w_dim=16, mapping_layers=2, channel_base=256)
    fields.update(overrides)
    fields.setdefault("channel_max", 16)
    torch.manual_seed(0)
    model = StyleGAN2Generator(StyleGAN2Config(**fields)).eval()
    with torch.no_grad():  # non-zero noise strengths and biases, so every path shows
        for name, param in model.named_parameters():
            if name.endswith("noise_strength") or name.endswith(".bias"):
                param.add_(torch.randn_like(param) * 0.3)
    return model


@pytest.mark.parametrize(
    ("fields", "num_ws", "channels"),
    [
        (dict(resolution=32, channel_multiplier=1), 8, {4: 16, 8: 16, 16: 16, 32: 8}),
        (dict(resolution=64, channel_multiplier=1, channel_max=8), 10, {4: 8, 32: 8, 64: 4}),
        (dict(resolution=64, z_dim=12, w_dim=20, mapping_layers=1), 10, {4: 16, 64: 8}),
    ],
)
def test_configurations_build_with_the_right_sizes(fields, num_ws, channels) -> None:
    model = tiny(**fields)
    config = model.config
    assert model.num_ws == config.num_ws == num_ws
    for res, expected in channels.items():
        assert config.channels_at(res) == expected
    assert model.const_shape == (channels[4], 4, 4)
    z = torch.randn(2, model.z_dim)
    w = model.mapping(z)
    assert w.shape == (2, model.w_dim)
    image = model.synthesis(w[:, None].repeat(1, model.num_ws, 1))
    assert image.shape == (2, 3, model.resolution, model.resolution)
    assert torch.isfinite(image).all()
    assert len(model.mapping.layers) == config.mapping_layers
    assert model.mapping.layers[0].weight.shape[1] == model.z_dim


def test_config_F_defaults_match_the_published_channel_counts() -> None:
    config = StyleGAN2Config(resolution=1024)
    assert [config.channels_at(r) for r in config.resolutions] == [
        512, 512, 512, 512, 512, 256, 128, 64, 32
    ]  # fmt: skip
    assert config.num_ws == 18
    assert StyleGAN2Config(resolution=256).num_ws == 14


@pytest.mark.parametrize(
    "fields",
    [dict(resolution=48), dict(resolution=2), dict(z_dim=0), dict(channel_max=0)],
)
def test_invalid_configurations_are_refused(fields) -> None:
    with pytest.raises(ConfigError):
        StyleGAN2Config(**fields)


def test_upsample_equals_a_strided_transposed_convolution() -> None:
    """Zero insertion + padding (2, 1) + FIR with gain 4, checked against another formulation."""
    x = torch.randn(2, 3, 5, 5)
    ours = Upsample((1, 3, 3, 1))(x)
    kernel = fir_kernel((1, 3, 3, 1), 4.0)[None, None]
    other = F.conv_transpose2d(x.reshape(6, 1, 5, 5), kernel, stride=2, padding=1)
    assert ours.shape == (2, 3, 10, 10)
    torch.testing.assert_close(ours, other.reshape(2, 3, 10, 10), atol=1e-6, rtol=0)


def test_fir_filter_keeps_a_constant_image_constant_inside() -> None:
    x = torch.full((1, 1, 8, 8), 2.5)
    out = upfirdn2d(x, fir_kernel((1, 3, 3, 1), 4.0), up=2, pad=(2, 1))
    torch.testing.assert_close(out[..., 3:-3, 3:-3], torch.full_like(out[..., 3:-3, 3:-3], 2.5))


def test_modulated_conv_batches_like_a_per_sample_convolution() -> None:
    torch.manual_seed(1)
    conv = ModulatedConv2d(4, 6, 3, w_dim=5)
    x, w = torch.randn(3, 4, 8, 8), torch.randn(3, 5)
    out = conv(x, w)
    for i in range(3):
        style = conv.affine(w[i : i + 1])[0]
        weight = conv.weight * conv.weight_gain * style[None, :, None, None]
        weight = weight / weight.pow(2).sum(dim=[1, 2, 3], keepdim=True).add(1e-8).sqrt()
        expected = F.conv2d(x[i : i + 1], weight, padding=1)
        torch.testing.assert_close(out[i : i + 1], expected, atol=1e-5, rtol=1e-5)


def test_upsampling_conv_doubles_the_resolution() -> None:
    conv = ModulatedConv2d(4, 6, 3, w_dim=5, upsample=True)
    assert conv(torch.randn(2, 4, 8, 8), torch.randn(2, 5)).shape == (2, 6, 16, 16)


def test_samples_do_not_influence_each_other() -> None:
    model = tiny()
    w_plus = torch.randn(3, model.num_ws, model.w_dim)
    with torch.no_grad():
        batch = model.synthesis(w_plus)
        single = torch.cat([model.synthesis(w_plus[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=1e-5)


def test_noise_modes() -> None:
    model = tiny()
    w_plus = torch.randn(2, model.num_ws, model.w_dim)
    with torch.no_grad():
        const_a = model.synthesis(w_plus, noise_mode="const")
        const_b = model.synthesis(w_plus, noise_mode="const")
        random_a = model.synthesis(w_plus, noise_mode="random")
        random_b = model.synthesis(w_plus, noise_mode="random")
        none = model.synthesis(w_plus, noise_mode="none")
    assert torch.equal(const_a, const_b)
    assert not torch.allclose(random_a, random_b)
    assert not torch.allclose(none, const_a)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("noise_strength"):
                param.zero_()
        torch.testing.assert_close(model.synthesis(w_plus, noise_mode="random"), none)
    with pytest.raises(ConfigError, match="noise_mode"):
        model.synthesis(w_plus, noise_mode="fixed")


def test_const_replaces_the_learned_constant() -> None:
    model = tiny()
    w_plus = torch.randn(2, model.num_ws, model.w_dim)
    learned = model.synthesis.const.detach().expand(2, -1, -1, -1).clone()
    with torch.no_grad():
        default = model.synthesis(w_plus)
        assert torch.equal(model.synthesis(w_plus, const=learned), default)
        other = model.synthesis(w_plus, const=torch.randn_like(learned))
    assert not torch.allclose(other, default)
    with pytest.raises(ConfigError, match="const"):
        model.synthesis(w_plus, const=torch.randn(2, 3, 4, 4))
    with pytest.raises(ConfigError, match="w_plus"):
        model.synthesis(torch.randn(2, model.num_ws + 1, model.w_dim))


def test_each_layer_reads_its_own_w() -> None:
    """Changing w number i changes the image (all num_ws entries are used)."""
    model = tiny()
    w_plus = torch.randn(1, model.num_ws, model.w_dim)
    with torch.no_grad():
        base = model.synthesis(w_plus)
        for i in range(model.num_ws):
            changed = w_plus.clone()
            changed[:, i] += 1.0
            assert not torch.allclose(model.synthesis(changed), base), f"w[{i}] unused"


def test_gradients_reach_w_plus_and_const() -> None:
    model = tiny().requires_grad_(False)
    w_plus = torch.randn(2, model.num_ws, model.w_dim, requires_grad=True)
    const = torch.randn(2, *model.const_shape, requires_grad=True)
    model.synthesis(w_plus, const=const).square().mean().backward()
    assert w_plus.grad is not None and w_plus.grad.abs().sum() > 0
    assert const.grad is not None and const.grad.abs().sum() > 0


def test_forward_truncation_pulls_toward_w_avg() -> None:
    model = tiny()
    model.set_w_avg(torch.randn(model.w_dim))
    assert model.has_w_avg
    z = torch.randn(2, model.z_dim)
    with torch.no_grad():
        at_avg = model(z, truncation=0.0)
        expected = model.synthesis(model.w_avg.expand(2, model.num_ws, -1))
    torch.testing.assert_close(at_avg, expected)
