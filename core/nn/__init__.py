"""Neural-network building blocks shared by the encoders of every GAN family.

- :mod:`ganenc.nn.equalized`: equalized-learning-rate ``Linear`` and ``Conv2d``;
- :mod:`ganenc.nn.layers`: learned noise, blur, style head, conditional batch
  norm, class embedding;
- :mod:`ganenc.nn.adaptive`: the paper's adaptive block and the encoder trunk
  (from-RGB + ``log2(R) - 1`` blocks down to 4x4) built from it.
"""

from __future__ import annotations

from .adaptive import (
    AdaptiveBlock,
    AdaptiveEncoderOptions,
    AdaptiveEncoderTrunk,
    TrunkOutput,
    adaptive_widths,
    check_images,
    check_resolution,
)
from .equalized import RELU_GAIN, EqualizedConv2d, EqualizedLinear
from .layers import (
    LEAKY_SLOPE,
    Blur,
    ClassEmbedding,
    ConditionalBatchNorm2d,
    FromRGB,
    LearnedNoise,
    StyleHead,
    channel_statistics,
    class_vector,
)

__all__ = [
    "LEAKY_SLOPE",
    "RELU_GAIN",
    "AdaptiveBlock",
    "AdaptiveEncoderOptions",
    "AdaptiveEncoderTrunk",
    "Blur",
    "ClassEmbedding",
    "ConditionalBatchNorm2d",
    "EqualizedConv2d",
    "EqualizedLinear",
    "FromRGB",
    "LearnedNoise",
    "StyleHead",
    "TrunkOutput",
    "adaptive_widths",
    "channel_statistics",
    "check_images",
    "check_resolution",
    "class_vector",
]
