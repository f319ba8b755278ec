"""Layers with an equalized learning rate (Karras et al., PGGAN).

Weights are stored as N(0, 1) samples and multiplied at run time by
``gain / sqrt(fan_in)``, so every parameter moves at the same speed under Adam
whatever the layer's width.  The encoders use these layers everywhere: conv
layers with gain ``sqrt(2)`` (LeakyReLU follows), style heads with gain 1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: Gain of a layer followed by a (leaky) ReLU.
RELU_GAIN = math.sqrt(2.0)

#: Slope of every LeakyReLU in the encoders (and after ``EqualizedLinear(activation=True)``).
LEAKY_SLOPE = 0.2


class EqualizedLinear(nn.Module):
    """``y = x @ (W * gain * lr_mul / sqrt(in_features)).T + b * lr_mul``, W stored N(0, 1) / lr_mul.

    The one equalized dense layer of ganenc: the encoders use it with the
    defaults, the StyleGAN generators with ``lr_mul`` (mapping networks learn
    100x slower), ``bias_init`` (style affines start at 1) and ``activation``
    (leaky ReLU 0.2 times ``sqrt(2)``).  Parameters are ``weight`` and ``bias``,
    the key names of every checkpoint layout that ganenc reads.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        gain: float = 1.0,
        bias: bool = True,
        lr_mul: float = 1.0,
        bias_init: float = 0.0,
        activation: bool = False,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"EqualizedLinear needs positive sizes, got {in_features}, {out_features}"
            )
        self.in_features = in_features
        self.out_features = out_features
        self.gain = float(gain)
        self.lr_mul = float(lr_mul)
        self.scale = self.gain / math.sqrt(in_features) * self.lr_mul
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / self.lr_mul)
        self.bias = (
            nn.Parameter(torch.full((out_features,), float(bias_init) / self.lr_mul))
            if bias
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias
        if bias is not None and self.lr_mul != 1.0:
            bias = bias * self.lr_mul
        out = F.linear(x, self.weight * self.scale, bias)
        return F.leaky_relu(out, LEAKY_SLOPE) * RELU_GAIN if self.activation else out

    def extra_repr(self) -> str:
        extra = f", lr_mul={self.lr_mul:g}" if self.lr_mul != 1.0 else ""
        extra += ", activation=lrelu" if self.activation else ""
        return (
            f"in_features={self.in_features}, out_features={self.out_features},"
            f" gain={self.gain:.4g}, bias={self.bias is not None}{extra}"
        )


class EqualizedConv2d(nn.Module):
    """A stride-1 convolution with "same" padding and run-time weight scaling.

    ``fan_in = in_channels * kernel_size ** 2``; the default gain ``sqrt(2)``
    suits a LeakyReLU after it.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        gain: float = RELU_GAIN,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd (same padding), got {kernel_size}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.gain = float(gain)
        self.scale = self.gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.kernel_size // 2)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size},"
            f" gain={self.gain:.4g}, bias={self.bias is not None}"
        )
