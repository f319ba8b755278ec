"""Small building blocks of the adaptive encoder block.

Each layer here is shared by the encoders of every GAN family: the learned
per-channel noise, the [1, 2, 1] blur, the "inverted AdaIN" style head, the
conditional batch norm and the class embedding that drives it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .equalized import LEAKY_SLOPE, RELU_GAIN, EqualizedConv2d, EqualizedLinear


def channel_statistics(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-channel mean and standard deviation of ``x`` ``[N, C, H, W]`` as ``[N, 2C]``.

    These are the statistics AdaIN writes into a generator's feature maps, so a
    linear map of them estimates the style code (``eps`` keeps the gradient of
    the square root finite on constant maps).
    """
    mean = x.mean(dim=(2, 3))
    std = (x.var(dim=(2, 3), unbiased=False) + eps).sqrt()
    return torch.cat((mean, std), dim=1)


class StyleHead(nn.Module):
    """Inverted AdaIN: channel mean and std -> equalized ``Linear(2C -> style_dim, gain 1)``."""

    def __init__(self, channels: int, style_dim: int) -> None:
        super().__init__()
        self.linear = EqualizedLinear(2 * channels, style_dim, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(channel_statistics(x))


class LearnedNoise(nn.Module):
    """Adds ``weight[c] * noise`` with one N(0, 1) map per sample, shared by the channels.

    The weight starts at 0.  Noise is drawn only in training mode; in eval mode
    the layer adds its expected value (nothing), so inference is deterministic.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        return x + self.weight * noise


class Blur(nn.Module):
    """Depthwise ``[1, 2, 1] x [1, 2, 1] / 16`` low-pass filter, size preserving (zero padding)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = (taps[:, None] * taps[None, :]) / 16.0
        self.channels = channels
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel.to(x.dtype), padding=1, groups=self.channels)


class FromRGB(nn.Module):
    """Equalized 1x1 conv from image channels to features, then LeakyReLU(0.2)."""

    def __init__(self, image_channels: int, channels: int) -> None:
        super().__init__()
        self.conv = EqualizedConv2d(image_channels, channels, 1, gain=RELU_GAIN)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv(images), LEAKY_SLOPE)


def class_vector(condition: torch.Tensor, num_classes: int) -> torch.Tensor:
    """A class condition as a float ``[N, num_classes]`` vector.

    Accepts integer labels ``[N]`` (made one-hot) or one-hot / soft vectors
    ``[N, num_classes]`` (returned as float).
    """
    if not condition.is_floating_point():
        if condition.dim() != 1:
            raise ValueError(
                f"integer class labels must have shape [N], got {tuple(condition.shape)}"
            )
        if condition.numel() and (condition.min() < 0 or condition.max() >= num_classes):
            raise ValueError(
                f"class labels must lie in [0, {num_classes}), got {condition.tolist()}"
            )
        return F.one_hot(condition.long(), num_classes).float()
    if condition.dim() != 2 or condition.shape[1] != num_classes:
        raise ValueError(
            f"a class vector must have shape [N, {num_classes}], got {tuple(condition.shape)}"
        )
    return condition


class ClassEmbedding(nn.Module):
    """Class vector ``[N, num_classes]`` -> embedding ``[N, dim]`` (equalized, no bias)."""

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.linear = EqualizedLinear(num_classes, dim, gain=1.0, bias=False)

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        return self.linear(class_vector(condition, self.num_classes).to(self.linear.weight.dtype))


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose per-channel gain and bias come from a condition embedding.

    ``y = BN(x) * (1 + gain(e)) + bias(e)`` with ``BN`` without affine
    parameters (batch statistics in training, running statistics in eval mode,
    hence deterministic inference) and ``gain``, ``bias`` equalized linear maps
    of the embedding ``e`` ``[N, embedding_dim]``.
    """

    def __init__(self, channels: int, embedding_dim: int, eps: float = 1e-4) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, eps=eps, affine=False)
        self.gain = EqualizedLinear(embedding_dim, channels, gain=1.0, bias=False)
        self.bias = EqualizedLinear(embedding_dim, channels, gain=1.0, bias=False)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        gain = 1.0 + self.gain(embedding)[:, :, None, None]
        bias = self.bias(embedding)[:, :, None, None]
        return self.norm(x) * gain + bias
