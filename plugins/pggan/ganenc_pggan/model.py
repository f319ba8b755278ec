"""The Progressive GAN generator (Karras et al., ICLR 2018) in plain PyTorch.

One network covers both public checkpoint formats: pytorch_GAN_zoo
(``formatLayer`` / ``groupScale0`` / ``scaleLayers`` / ``toRGBLayers``) and
genforce (``layer{i}`` / ``output{i}`` / ``lod``).  The two compute the same
function up to three numerical conventions, which :class:`PGGANConfig` names
explicitly instead of hiding behind a format flag:

* the latent projection: a dense layer reshaped to 4x4 (GAN zoo) or a 4x4
  convolution with padding 3 applied to ``z`` viewed as ``[N, z_dim, 1, 1]``
  (genforce, i.e. the TF dense layer with its kernel flipped);
* whether the equalized-learning-rate constant also scales the bias
  (GAN zoo computes ``(conv(x, W) + b) * c``, genforce ``conv(x, W * c) + b``);
* the gain of the to-RGB layers (``sqrt(2)`` in GAN zoo, ``1`` in genforce).

Layer order (pixel norm written PN, eps 1e-8)::

    z -> PN -> project -> lrelu -> PN -> conv3x3 -> lrelu -> PN          (4x4 block)
      -> [upsample x2 -> (conv3x3 -> lrelu -> PN) x 2] per further scale
      -> to-RGB 1x1 of the last scale (blended with the previous scale's
         upsampled to-RGB output while ``lod`` > 0) -> optional tanh

genforce normalises the *input* of every layer rather than the output; that
is the same sequence, with a second PN of already normalised tensors that is a
numerical no-op.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Projection = Literal["dense", "conv"]

#: Gain of the hidden layers' He constant, ``sqrt(2) / sqrt(fan_in)``.
HE_GAIN = math.sqrt(2.0)


@dataclass(frozen=True)
class PGGANConfig:
    """Architecture and numerical conventions of a PGGAN generator.

    ``channels`` lists the feature channels at 4, 8, ..., ``resolution`` px,
    so ``resolution == 4 * 2 ** (len(channels) - 1)``.  ``lod`` is the level of
    detail of progressive growing: 0 is the fully grown network; a fractional
    value blends in the upsampled output of the next lower resolution with
    weight ``lod`` (GAN zoo's ``alpha``), an integer ``k`` outputs resolution
    ``resolution / 2**k`` upsampled to full size.
    """

    z_dim: int = 512
    channels: tuple[int, ...] = (512, 512, 512, 512, 256, 128, 64)
    image_channels: int = 3
    projection: Projection = "dense"
    scale_bias: bool = True
    rgb_gain: float = HE_GAIN
    equalized_lr: bool = True
    pixel_norm: bool = True
    leaky_slope: float = 0.2
    final_tanh: bool = False
    lod: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if not self.channels or any(c < 1 for c in self.channels):
            raise ValueError(f"channels must be positive, got {self.channels}")
        if self.z_dim < 1 or self.image_channels < 1:
            raise ValueError("z_dim and image_channels must be positive")
        if self.projection not in ("dense", "conv"):
            raise ValueError(f"projection must be 'dense' or 'conv', got {self.projection!r}")
        if not 0.0 <= self.lod <= len(self.channels) - 1:
            raise ValueError(f"lod must lie in [0, {len(self.channels) - 1}], got {self.lod}")

    @property
    def resolution(self) -> int:
        return 4 * 2 ** (len(self.channels) - 1)

    @staticmethod
    def channels_for(
        resolution: int, fmaps_base: int = 16384, fmaps_max: int = 512
    ) -> tuple[int, ...]:
        """``min(fmaps_base // res, fmaps_max)`` per resolution 4..``resolution``.

        The defaults give the public 256/512/1024 px models of both formats
        (512 channels up to 32 px, then halving).
        """
        if resolution < 4 or resolution & (resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 4, got {resolution}")
        steps = int(math.log2(resolution)) - 1
        return tuple(max(1, min(fmaps_base // (4 * 2**i), fmaps_max)) for i in range(steps))

    @classmethod
    def gan_zoo(cls, z_dim: int = 512, channels: tuple[int, ...] = (512,), **kwargs) -> PGGANConfig:
        """pytorch_GAN_zoo conventions: dense projection, scaled bias, to-RGB gain sqrt(2)."""
        return cls(
            z_dim=z_dim,
            channels=channels,
            projection="dense",
            scale_bias=True,
            rgb_gain=HE_GAIN,
            **kwargs,
        )

    @classmethod
    def genforce(
        cls, z_dim: int = 512, channels: tuple[int, ...] = (512,), **kwargs
    ) -> PGGANConfig:
        """genforce conventions: 4x4 conv projection, unscaled bias, to-RGB gain 1."""
        return cls(
            z_dim=z_dim,
            channels=channels,
            projection="conv",
            scale_bias=False,
            rgb_gain=1.0,
            **kwargs,
        )


class PixelNorm(nn.Module):
    """Normalise every pixel's feature vector to unit root-mean-square."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour upsampling by 2 (each pixel becomes a 2x2 block)."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


class _Equalized(nn.Module):
    """Weights stored N(0, 1)-scaled and multiplied by ``gain / sqrt(fan_in)`` at run time.

    Deliberately not :class:`ganenc.nn.EqualizedLinear`/``EqualizedConv2d``: those
    scale the weight (``op(x, W * c, b)``), while pytorch_GAN_zoo files need the
    whole output scaled (``op(x, W, b) * c``, which also scales the bias and rounds
    differently, so the exact fixture tests would drift), and PGGAN also needs
    unequalized layers and genforce's 4x4 projection (even kernel, padding 3), which the core
    layers do not have.  Only the genforce convention equals the core's layers.
    """

    def __init__(
        self,
        weight_shape: tuple[int, ...],
        *,
        gain: float,
        equalized: bool,
        scale_bias: bool,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(weight_shape))
        self.bias = nn.Parameter(torch.zeros(weight_shape[0]))
        fan_in = math.prod(weight_shape[1:])
        self.scale = gain / math.sqrt(fan_in) if equalized else 1.0
        self.scale_bias = scale_bias

    def _apply_scaled(self, op, x: torch.Tensor) -> torch.Tensor:
        if self.scale_bias:
            # GAN zoo: the layer runs unscaled and its whole output (bias included) is scaled.
            return op(x, self.weight, self.bias) * self.scale
        return op(x, self.weight * self.scale, self.bias)


class EqualizedConv2d(_Equalized):
    """Conv2d with the equalized learning rate of PGGAN (stride 1)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int = 0,
        *,
        gain: float = HE_GAIN,
        equalized: bool = True,
        scale_bias: bool = False,
    ) -> None:
        super().__init__(
            (out_channels, in_channels, kernel_size, kernel_size),
            gain=gain,
            equalized=equalized,
            scale_bias=scale_bias,
        )
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply_scaled(lambda t, w, b: F.conv2d(t, w, b, padding=self.padding), x)


class EqualizedLinear(_Equalized):
    """Linear layer with the equalized learning rate of PGGAN."""

    # Deliberately alike: only the parameter list matches another signature; the bodies differ
    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        gain: float = HE_GAIN,
        equalized: bool = True,
        scale_bias: bool = False,
    ) -> None:
        super().__init__(
            (out_features, in_features), gain=gain, equalized=equalized, scale_bias=scale_bias
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply_scaled(F.linear, x)


class _Block(nn.Module):
    """Shared pieces of the two block kinds: activation and optional pixel norm."""

    def __init__(self, config: PGGANConfig) -> None:
        super().__init__()
        self.norm: nn.Module = PixelNorm() if config.pixel_norm else nn.Identity()
        self.negative_slope = config.leaky_slope

    def _activate(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(F.leaky_relu(x, self.negative_slope))

    @staticmethod
    def _conv(config: PGGANConfig, cin: int, cout: int) -> EqualizedConv2d:
        return EqualizedConv2d(
            cin, cout, 3, padding=1, equalized=config.equalized_lr, scale_bias=config.scale_bias
        )


class InitialBlock(_Block):
    """z -> 4x4 features: latent projection, then one 3x3 conv."""

    def __init__(self, config: PGGANConfig) -> None:
        super().__init__(config)
        channels = config.channels[0]
        self.channels = channels
        self.projection = config.projection
        common = {"equalized": config.equalized_lr, "scale_bias": config.scale_bias}
        if config.projection == "dense":
            self.project: nn.Module = EqualizedLinear(config.z_dim, 16 * channels, **common)
        else:
            self.project = EqualizedConv2d(config.z_dim, channels, 4, padding=3, **common)
        self.conv = self._conv(config, channels, channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = self.norm(z)
        if self.projection == "dense":
            x = self.project(z).view(z.shape[0], self.channels, 4, 4)
        else:
            x = self.project(z.view(z.shape[0], z.shape[1], 1, 1))
        x = self._activate(x)
        return self._activate(self.conv(x))


class UpBlock(_Block):
    """Double the resolution: nearest upsample, then two 3x3 convs."""

    def __init__(self, config: PGGANConfig, in_channels: int, out_channels: int) -> None:
        super().__init__(config)
        self.conv0 = self._conv(config, in_channels, out_channels)
        self.conv1 = self._conv(config, out_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._activate(self.conv0(upsample2x(x)))
        return self._activate(self.conv1(x))


class PGGANGenerator(nn.Module):
    """The PGGAN generator: ``z [N, z_dim]`` -> image ``[N, C, H, W]`` (raw, not clamped).

    Build it from a :class:`PGGANConfig`, or with :meth:`from_resolution` for a
    randomly initialised one.  Checkpoints are read by :mod:`ganenc_pggan.formats`.
    """

    def __init__(self, config: PGGANConfig) -> None:
        super().__init__()
        self.config = config
        channels = config.channels
        self.blocks = nn.ModuleList([InitialBlock(config)])
        for cin, cout in zip(channels[:-1], channels[1:], strict=True):
            self.blocks.append(UpBlock(config, cin, cout))
        self.to_rgb = nn.ModuleList(
            EqualizedConv2d(
                c,
                config.image_channels,
                1,
                gain=config.rgb_gain,
                equalized=config.equalized_lr,
                scale_bias=config.scale_bias,
            )
            for c in channels
        )

    @classmethod
    def from_resolution(
        cls,
        resolution: int,
        z_dim: int = 512,
        fmaps_base: int = 16384,
        fmaps_max: int = 512,
        layout: Literal["gan_zoo", "genforce"] = "gan_zoo",
        seed: int | None = None,
    ) -> PGGANGenerator:
        """A randomly initialised generator (weights N(0, 1), biases 0) in one format's conventions."""
        if layout not in ("gan_zoo", "genforce"):
            raise ValueError(f"layout must be 'gan_zoo' or 'genforce', got {layout!r}")
        channels = PGGANConfig.channels_for(resolution, fmaps_base, fmaps_max)
        preset = PGGANConfig.gan_zoo if layout == "gan_zoo" else PGGANConfig.genforce
        config = preset(z_dim=z_dim, channels=channels)
        if seed is None:
            return cls(config)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(config)

    @property
    def resolution(self) -> int:
        return self.config.resolution

    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim == 4 and z.shape[2:] == (1, 1):
            z = z.flatten(1)
        if z.ndim != 2 or z.shape[1] != self.config.z_dim:
            raise ValueError(f"z must have shape [N, {self.config.z_dim}], got {list(z.shape)}")
        lod = self.config.lod
        last = len(self.blocks) - 1
        x = z
        image: torch.Tensor | None = None
        for index, (block, to_rgb) in enumerate(zip(self.blocks, self.to_rgb, strict=True)):
            block_lod = last - index  # the lod at which this block is the output resolution
            if lod >= block_lod + 1:  # still growing: this block is not trained yet
                image = upsample2x(image)
                continue
            x = block(x)
            if lod > block_lod:  # fading in: blend with the previous resolution
                weight = math.ceil(lod) - lod
                image = to_rgb(x) * weight + upsample2x(image) * (1.0 - weight)
            elif lod > block_lod - 1:
                image = to_rgb(x)
        if self.config.final_tanh:
            image = torch.tanh(image)
        return image
