"""Equalized layers and the small building blocks of the adaptive encoder block."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ganenc.nn import (
    Blur,
    ClassEmbedding,
    ConditionalBatchNorm2d,
    EqualizedConv2d,
    EqualizedLinear,
    LearnedNoise,
    StyleHead,
    channel_statistics,
    class_vector,
)

torch.set_num_threads(1)


def test_equalized_linear_scales_unit_weights_at_run_time():
    torch.manual_seed(0)
    layer = EqualizedLinear(400, 300, gain=1.0)
    # Stored weights are N(0, 1) whatever the width; the bias starts at zero.
    assert abs(layer.weight.std().item() - 1.0) < 0.02
    assert torch.equal(layer.bias, torch.zeros(300))
    x = torch.randn(5, 400)
    expected = x @ (layer.weight / math.sqrt(400)).T
    assert torch.allclose(layer(x), expected, atol=1e-5)
    # Unit-variance input keeps about unit variance with gain 1.
    out = layer(torch.randn(2000, 400))
    assert abs(out.std().item() - 1.0) < 0.1


def test_equalized_linear_gain_and_no_bias():
    layer = EqualizedLinear(16, 4, gain=2.0, bias=False)
    assert layer.bias is None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    x = torch.randn(3, 16)
    assert torch.allclose(layer(x), x @ (layer.weight * 2.0 / 4.0).T, atol=1e-6)


def test_equalized_conv_uses_fan_in_of_the_kernel_and_same_padding():
    torch.manual_seed(1)
    conv = EqualizedConv2d(8, 6, 3)
    assert conv.scale == pytest.approx(math.sqrt(2.0) / math.sqrt(8 * 9))
    x = torch.randn(2, 8, 7, 7)
    expected = F.conv2d(x, conv.weight * conv.scale, conv.bias, padding=1)
    out = conv(x)
    assert out.shape == (2, 6, 7, 7)
    assert torch.allclose(out, expected, atol=1e-6)
    with pytest.raises(ValueError, match="odd"):
        EqualizedConv2d(3, 3, 2)


def test_channel_statistics_are_mean_and_std_and_differentiable_on_constant_maps():
    x = torch.randn(2, 3, 5, 5)
    stats = channel_statistics(x)
    assert stats.shape == (2, 6)
    assert torch.allclose(stats[:, :3], x.mean(dim=(2, 3)), atol=1e-6)
    assert torch.allclose(stats[:, 3:], x.std(dim=(2, 3), unbiased=False), atol=1e-4)
    flat = torch.ones(1, 2, 4, 4, requires_grad=True)
    channel_statistics(flat).sum().backward()
    assert torch.isfinite(flat.grad).all()


def test_style_head_maps_statistics_with_unit_gain():
    head = StyleHead(4, 7)
    assert head.linear.in_features == 8 and head.linear.gain == 1.0
    x = torch.randn(3, 4, 6, 6)
    assert torch.allclose(head(x), head.linear(channel_statistics(x)))


def test_learned_noise_starts_at_zero_and_is_random_only_in_training():
    noise = LearnedNoise(4)
    assert torch.equal(noise.weight, torch.zeros(1, 4, 1, 1))
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(noise.train()(x), x)  # zero weight: nothing added
    with torch.no_grad():
        noise.weight.fill_(1.0)
    first, second = noise(x), noise(x)
    assert not torch.equal(first, second)
    # One noise map per sample, shared by all channels.
    diff = first - x
    assert torch.allclose(diff[:, 0], diff[:, 3])
    noise.eval()
    assert torch.equal(noise(x), x)


def test_blur_is_normalised_and_not_saved():
    blur = Blur(3)
    assert "kernel" not in blur.state_dict()
    assert blur.kernel.shape == (3, 1, 3, 3)
    assert blur.kernel[0, 0].sum().item() == pytest.approx(1.0)
    x = torch.ones(1, 3, 6, 6)
    out = blur(x)
    assert out.shape == x.shape
    assert torch.allclose(out[:, :, 1:-1, 1:-1], x[:, :, 1:-1, 1:-1])
    spike = torch.zeros(1, 3, 5, 5)
    spike[:, :, 2, 2] = 16.0
    assert torch.allclose(
        blur(spike)[0, 0, 1:4, 1:4], torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]])
    )


def test_class_vector_accepts_labels_and_vectors_and_rejects_bad_shapes():
    one_hot = class_vector(torch.tensor([2, 0]), 4)
    assert torch.equal(one_hot, torch.tensor([[0.0, 0, 1, 0], [1, 0, 0, 0]]))
    soft = torch.full((2, 4), 0.25)
    assert class_vector(soft, 4) is soft
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        class_vector(torch.zeros(2, 5), 4)
    with pytest.raises(ValueError, match="lie in"):
        class_vector(torch.tensor([4]), 4)
    with pytest.raises(ValueError, match=r"shape \[N\]"):
        class_vector(torch.zeros(2, 4, dtype=torch.long), 4)


def test_class_embedding_of_labels_equals_embedding_of_one_hot():
    embed = ClassEmbedding(5, 3)
    labels = torch.tensor([4, 1])
    assert torch.allclose(embed(labels), embed(F.one_hot(labels, 5).float()))


def test_conditional_batch_norm_depends_on_the_embedding_and_uses_running_stats_in_eval():
    torch.manual_seed(0)
    norm = ConditionalBatchNorm2d(4, embedding_dim=3)
    x = torch.randn(6, 4, 5, 5) * 3 + 1
    zero = torch.zeros(6, 3)
    out = norm.train()(x, zero)
    # Zero embedding: a plain batch norm over (N, H, W).
    assert torch.allclose(out.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-5)
    assert torch.allclose(out.std(dim=(0, 2, 3), unbiased=False), torch.ones(4), atol=1e-3)
    other = norm(x, torch.randn(6, 3))
    assert not torch.allclose(out, other)
    norm.eval()
    single = norm(x[:1], zero[:1])
    assert torch.allclose(single, norm(x, zero)[:1], atol=1e-6)  # no batch dependence


def test_equalized_linear_with_lr_mul_bias_init_and_activation_is_stylegans_dense_layer():
    torch.manual_seed(0)
    layer = EqualizedLinear(4, 3, lr_mul=0.01, bias_init=1.0, activation=True)
    assert sorted(layer.state_dict()) == ["bias", "weight"]  # checkpoint key names
    assert torch.allclose(layer.bias, torch.full((3,), 100.0))  # stored bias_init / lr_mul
    x = torch.randn(2, 4)
    weight = layer.weight * 0.01 / math.sqrt(4)
    expected = F.leaky_relu(x @ weight.T + layer.bias * 0.01, 0.2) * math.sqrt(2)
    assert torch.allclose(layer(x), expected, atol=1e-6)
