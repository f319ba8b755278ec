"""The paper's "adaptive block" and the encoder trunk built from it.

One block (input ``x`` with ``c`` channels, output ``c_out``)::

    w1 = style_head_1(x)                       # optional: mean/std -> Linear(2c -> w_dim)
    h  = lrelu(bias_1 + noise_1(conv3x3(norm_1(x))))          # c -> c
    w2 = style_head_2(h)                       # optional
    h  = avgpool2(lrelu(bias_2 + noise_2(conv3x3(blur?(norm_2(h))))))   # c -> c_out
    r  = conv1x1(avgpool2(x))                  # 1x1 conv only where c != c_out
    out = 0.111 * h + 0.889 * r

The final block (at 4x4) stops after the first conv and keeps ``c`` channels;
its output estimates StyleGAN's constant input.  ``norm`` is an instance norm
(StyleGAN, PGGAN) or a conditional batch norm driven by a class embedding
(BigGAN); style heads and noise are switched off for PGGAN and BigGAN.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..config import Settings
from ..errors import ConfigError
from .equalized import RELU_GAIN, EqualizedConv2d
from .layers import LEAKY_SLOPE, Blur, ConditionalBatchNorm2d, FromRGB, LearnedNoise, StyleHead

#: Weights of the block output and of its residual bypass (reference encoder).
BLOCK_WEIGHT = 0.111
RESIDUAL_WEIGHT = 0.889

#: ``start_channels * resolution`` of the paper's Table 9/10 (64 at 256, 32 at 512, 16 at 1024).
WIDTH_RESOLUTION_PRODUCT = 16384

NORMS = ("instance", "conditional_batch")


class AdaptiveEncoderOptions(Settings):
    """Options every adaptive-block encoder shares; a family's options model subclasses it."""

    start_channels: int | None = Field(
        default=None,
        ge=1,
        description=f"width of the first block; None: the paper's rule {WIDTH_RESOLUTION_PRODUCT}"
        " / resolution (64 at 256, 32 at 512, 16 at 1024), capped at max_channels",
    )
    max_channels: int = Field(
        default=512, ge=1, description="widths double per block up to this many channels"
    )


class _ContiguousGradient(torch.autograd.Function):
    """Identity whose backward hands on a contiguous (NCHW) gradient.

    On the CPU, PyTorch's instance norm computes a wrong input gradient for a
    batch of one when the incoming gradient is channels-last (found by the
    channels-last benchmark; 4.7 absolute error on unit-sized values).  A
    contiguous gradient passes through unchanged at no cost.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        return grad.contiguous()


def check_resolution(resolution: int) -> int:
    """``log2(resolution)`` for a power of two >= 8; :class:`ConfigError` otherwise."""
    if not isinstance(resolution, int) or resolution < 8 or resolution & (resolution - 1):
        raise ConfigError(f"encoder resolution must be a power of two >= 8, got {resolution!r}")
    return int(math.log2(resolution))


def adaptive_widths(
    resolution: int, start_channels: int | None = None, max_channels: int = 512
) -> list[int]:
    """Input channels of every block, highest resolution first (``log2(R) - 1`` blocks).

    Channels start at ``start_channels`` and double per block up to
    ``max_channels``.  ``None`` follows the paper's Table 9/10 rule
    ``start = 16384 / R`` (16 at 1024, 32 at 512, 64 at 256, 128 at 128, and
    by extension 256 at 64, 512 at 32), capped at ``max_channels``.  The last
    entry is also the width of the final 4x4 feature map.
    """
    blocks = check_resolution(resolution) - 1
    if max_channels < 1:
        raise ConfigError(f"max_channels must be >= 1, got {max_channels}")
    if start_channels is None:
        start_channels = max(1, WIDTH_RESOLUTION_PRODUCT // resolution)
    if start_channels < 1:
        raise ConfigError(f"start_channels must be >= 1, got {start_channels}")
    widths = [min(start_channels, max_channels)]
    for _ in range(blocks - 1):
        widths.append(min(widths[-1] * 2, max_channels))
    return widths


def check_images(images: torch.Tensor, resolution: int, channels: int = 3) -> None:
    """``ValueError`` naming the expected shape unless ``images`` is ``[N, channels, R, R]``."""
    if (
        not isinstance(images, torch.Tensor)
        or images.dim() != 4
        or images.shape[1] != channels
        or images.shape[2] != resolution
        or images.shape[3] != resolution
    ):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(
            f"the encoder expects images of shape [N, {channels}, {resolution}, {resolution}]"
            f" in [-1, 1], got {shape}"
        )


class AdaptiveBlock(nn.Module):
    """One adaptive encoder block (see the module docstring).

    ``final=True`` builds the 4x4 block: no second conv, no down-sampling,
    output width ``in_channels``.  ``style_heads`` says which of the two style
    heads to build (used only with ``style_dim``); ``forward`` returns ``None``
    for a head that is absent.
    """

    # Deliberately alike: only the parameter list matches another signature; the bodies differ
    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        *,
        final: bool = False,
        style_dim: int | None = None,
        style_heads: tuple[bool, bool] = (True, True),
        noise: bool = True,
        norm: str = "instance",
        embedding_dim: int | None = None,
        blur: bool = False,
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if norm == "conditional_batch" and not embedding_dim:
            raise ValueError("a conditional batch norm needs embedding_dim")
        out_channels = in_channels if final or out_channels is None else out_channels
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.final = final
        self.norm_kind = norm

        with_head_1 = style_dim is not None and style_heads[0]
        with_head_2 = style_dim is not None and style_heads[1]
        self.style_1 = StyleHead(in_channels, style_dim) if with_head_1 else None
        self.norm_1 = self._make_norm(in_channels, embedding_dim)
        self.conv_1 = EqualizedConv2d(in_channels, in_channels, 3, gain=RELU_GAIN, bias=False)
        self.noise_1 = LearnedNoise(in_channels) if noise else None
        self.bias_1 = nn.Parameter(torch.zeros(1, in_channels, 1, 1))
        self.style_2 = StyleHead(in_channels, style_dim) if with_head_2 else None
        if final:
            self.norm_2 = self.blur = self.conv_2 = self.noise_2 = self.bias_2 = None
            self.bypass = None
        else:
            self.norm_2 = self._make_norm(in_channels, embedding_dim)
            self.blur = Blur(in_channels) if blur else None
            self.conv_2 = EqualizedConv2d(in_channels, out_channels, 3, gain=RELU_GAIN, bias=False)
            self.noise_2 = LearnedNoise(out_channels) if noise else None
            self.bias_2 = nn.Parameter(torch.zeros(1, out_channels, 1, 1))
            # A linear projection (no activation after it): gain 1.
            self.bypass = (
                EqualizedConv2d(in_channels, out_channels, 1, gain=1.0)
                if in_channels != out_channels
                else None
            )

    def _make_norm(self, channels: int, embedding_dim: int | None) -> nn.Module:
        if self.norm_kind == "instance":
            return nn.InstanceNorm2d(channels, affine=False, eps=1e-8)
        return ConditionalBatchNorm2d(channels, embedding_dim)

    def _normalize(
        self, norm: nn.Module, x: torch.Tensor, embedding: torch.Tensor | None
    ) -> torch.Tensor:
        if self.norm_kind == "instance":
            return _ContiguousGradient.apply(norm(x))
        if embedding is None:
            raise ValueError("this block uses a conditional batch norm: pass a class embedding")
        return norm(x, embedding)

    def forward(
        self, x: torch.Tensor, embedding: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """``(features, w1, w2)``: down-sampled features and the two style estimates."""
        w1 = self.style_1(x) if self.style_1 is not None else None
        h = self.conv_1(self._normalize(self.norm_1, x, embedding))
        if self.noise_1 is not None:
            h = self.noise_1(h)
        h = F.leaky_relu(h + self.bias_1, LEAKY_SLOPE)
        w2 = self.style_2(h) if self.style_2 is not None else None
        residual = x
        if not self.final:
            h = self._normalize(self.norm_2, h, embedding)
            if self.blur is not None:
                h = self.blur(h)
            h = self.conv_2(h)
            if self.noise_2 is not None:
                h = self.noise_2(h)
            h = F.avg_pool2d(F.leaky_relu(h + self.bias_2, LEAKY_SLOPE), 2)
            residual = F.avg_pool2d(residual, 2)
            if self.bypass is not None:
                residual = self.bypass(residual)
        return BLOCK_WEIGHT * h + RESIDUAL_WEIGHT * residual, w1, w2


class TrunkOutput(NamedTuple):
    """What the trunk returns: the 4x4 features and the stacked style codes."""

    features: torch.Tensor  # [N, C, 4, 4]
    styles: torch.Tensor | None  # [N, style_layers, style_dim], lowest resolution first


class AdaptiveEncoderTrunk(nn.Module):
    """From-RGB, then ``log2(R) - 1`` adaptive blocks down to a 4x4 feature map.

    With ``style_dim`` the blocks carry style heads, and the style codes are
    stacked in a generator's layer order: ``(w2, w1)`` of the 4x4 block at
    layers 0 and 1, then ``(w2, w1)`` of the 8x8 block, and so on up to the
    first (full-resolution) block.  ``style_layers`` (default ``2 * blocks``)
    keeps only the first layers of that order; heads of dropped layers are not
    built, so every parameter of the trunk takes part in the output.

    ``gradient_checkpointing = True`` keeps only each block's input during the
    forward pass and recomputes the block in the backward pass (same values
    and gradients, the encoder's noise redrawn identically): at 1024 px the
    full-resolution activations are most of the encoder's memory.  Blocks
    with a batch norm in training mode are not checkpointed (recomputing them
    would update the running statistics twice).
    """

    # Deliberately alike: only the parameter list matches another signature; the bodies differ
    def __init__(
        self,
        resolution: int,
        *,
        image_channels: int = 3,
        start_channels: int | None = None,
        max_channels: int = 512,
        style_dim: int | None = None,
        style_layers: int | None = None,
        noise: bool = True,
        norm: str = "instance",
        embedding_dim: int | None = None,
        blur: bool = False,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.image_channels = image_channels
        self.widths = adaptive_widths(resolution, start_channels, max_channels)
        self.num_blocks = len(self.widths)
        self.out_channels = self.widths[-1]
        self.style_dim = style_dim
        self.gradient_checkpointing = False
        if style_dim is None:
            self.style_layers = 0
        else:
            most = 2 * self.num_blocks
            self.style_layers = most if style_layers is None else style_layers
            if not 1 <= self.style_layers <= most:
                raise ConfigError(
                    f"style_layers must lie in [1, {most}] at {resolution} px, got {style_layers}"
                )
        self.from_rgb = FromRGB(image_channels, self.widths[0])
        self.blocks = nn.ModuleList()
        for index, width in enumerate(self.widths):
            final = index == self.num_blocks - 1
            out = width if final else self.widths[index + 1]
            layer_w2, layer_w1 = self._layers_of_block(index)
            self.blocks.append(
                AdaptiveBlock(
                    width,
                    out,
                    final=final,
                    style_dim=style_dim,
                    style_heads=(layer_w1 < self.style_layers, layer_w2 < self.style_layers),
                    noise=noise,
                    norm=norm,
                    embedding_dim=embedding_dim,
                    blur=blur,
                )
            )

    def _checkpoint(self, block: AdaptiveBlock) -> bool:
        if not self.gradient_checkpointing or not torch.is_grad_enabled():
            return False
        return not (block.training and block.norm_kind == "conditional_batch")

    def _layers_of_block(self, index: int) -> tuple[int, int]:
        """w+ layer indices of block ``index``'s (w2, w1); block 0 is the full-resolution one."""
        base = 2 * (self.num_blocks - 1 - index)
        return base, base + 1

    def forward(self, images: torch.Tensor, embedding: torch.Tensor | None = None) -> TrunkOutput:
        check_images(images, self.resolution, self.image_channels)
        x = self.from_rgb(images)
        codes: dict[int, torch.Tensor] = {}
        for index, block in enumerate(self.blocks):
            if self._checkpoint(block):
                x, w1, w2 = checkpoint(block, x, embedding, use_reentrant=False)
            else:
                x, w1, w2 = block(x, embedding)
            layer_w2, layer_w1 = self._layers_of_block(index)
            if w2 is not None:
                codes[layer_w2] = w2
            if w1 is not None:
                codes[layer_w1] = w1
        styles = None
        if self.style_layers:
            styles = torch.stack([codes[layer] for layer in range(self.style_layers)], dim=1)
        return TrunkOutput(x, styles)
