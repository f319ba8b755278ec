"""StyleGAN2 config-F generator in plain PyTorch (no compiled extension; CPU and CUDA).

The network follows Karras et al., "Analyzing and Improving the Image Quality of
StyleGAN" (config F): a mapping network (pixel-normalised z through equalised
dense layers with leaky ReLU), and a synthesis network that starts from a
learned 4x4 constant and, per resolution, runs an upsampling modulated 3x3
convolution, a second modulated 3x3 convolution (both demodulated, with noise
injection, bias and leaky ReLU) and a modulated, non-demodulated 1x1 ToRGB whose
output is added to the upsampled image of the previous resolution ("skip"
generator).  Upsampling and blurring are FIR filters applied with ``F.conv2d``.

Numerics follow the reference implementations (equalised learning rate, leaky
ReLU 0.2 times sqrt(2), demodulation eps 1e-8, (1, 3, 3, 1) filters with gain 4),
so converted checkpoints reproduce their reference outputs to float32 noise.

Internal conventions (the readers in :mod:`ganenc_stylegan.checkpoints` convert to
and from the public formats):

- the affine ("modulation") bias is stored WITH the +1 of the reference, as in
  rosinality files (genforce files store it without);
- the weight of an upsampling convolution is used directly by
  ``F.conv_transpose2d``, as in rosinality files (genforce/TF store it flipped).

Common model interface shared with :class:`ganenc_stylegan.stylegan1.StyleGAN1Generator`:
``z_dim``, ``w_dim``, ``num_ws``, ``resolution``, ``const_shape``, buffer
``w_avg`` with attribute ``has_w_avg``, ``mapping(z) -> w`` and
``synthesis(w_plus, noise_mode="const", const=None) -> image``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ganenc.adapters import check_noise_mode
from ganenc.errors import ConfigError
from ganenc.nn import EqualizedLinear  # the one equalized dense layer (keys weight, bias)

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
DEMODULATION_EPS = 1e-8


def is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


# Deliberately alike: each generator's config lists its own published defaults
@dataclass
class StyleGAN2Config:
    """Architecture of a StyleGAN2 generator.

    Channels at resolution ``r`` are ``min(channel_max, channel_base * channel_multiplier // r)``
    unless ``channels`` lists them explicitly (``{4: 512, 8: 512, ...}``, as the
    loaders do after reading a file).  With the defaults this gives config F:
    512 channels up to 32 px, then 512, 256, 128, 64, 32 at 64 ... 1024 px.
    ``mapping_hidden`` defaults to ``w_dim``.  ``conv_clamp`` (NVIDIA's files:
    256) clamps every layer's output to ``[-conv_clamp, conv_clamp]``; ``None``
    (rosinality, genforce) clamps nothing.
    """

    resolution: int = 256
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_hidden: int | None = None
    mapping_lr_mul: float = 0.01
    channel_base: int = 16384
    channel_multiplier: int = 2
    channel_max: int = 512
    channels: dict[int, int] | None = field(default=None)
    blur_kernel: tuple[int, ...] = (1, 3, 3, 1)
    conv_clamp: float | None = None

    def __post_init__(self) -> None:
        if not is_power_of_two(self.resolution) or self.resolution < 4:
            raise ConfigError(
                f"StyleGAN2 resolution must be a power of two >= 4, got {self.resolution}"
            )
        for name in ("z_dim", "w_dim", "mapping_layers", "channel_base", "channel_multiplier"):
            if getattr(self, name) < 1:
                raise ConfigError(f"StyleGAN2 {name} must be >= 1, got {getattr(self, name)}")
        if self.channel_max < 1:
            raise ConfigError(f"StyleGAN2 channel_max must be >= 1, got {self.channel_max}")
        if self.channels is not None:
            self.channels = {int(k): int(v) for k, v in self.channels.items()}
            missing = [r for r in self.resolutions if r not in self.channels]
            if missing:
                raise ConfigError(f"StyleGAN2 channels lacks resolutions {missing}")
        self.blur_kernel = tuple(int(t) for t in self.blur_kernel)
        if self.conv_clamp is not None:
            if not self.conv_clamp > 0:
                raise ConfigError(
                    f"StyleGAN2 conv_clamp must be > 0 or None, got {self.conv_clamp}"
                )
            self.conv_clamp = float(self.conv_clamp)

    @property
    def log2_resolution(self) -> int:
        return int(math.log2(self.resolution))

    @property
    def resolutions(self) -> list[int]:
        """4, 8, ..., resolution: one synthesis block each."""
        return [2**i for i in range(2, self.log2_resolution + 1)]

    @property
    def num_ws(self) -> int:
        """Number of w vectors the synthesis consumes (one per conv, plus the last ToRGB)."""
        return 2 * self.log2_resolution - 2

    @property
    def hidden_dim(self) -> int:
        return self.mapping_hidden if self.mapping_hidden is not None else self.w_dim

    def channels_at(self, resolution: int) -> int:
        if self.channels is not None:
            return self.channels[resolution]
        return max(
            1, min(self.channel_max, self.channel_base * self.channel_multiplier // resolution)
        )


# -- building blocks --------------------------------------------------------------------


def leaky_relu_gain(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU 0.2 scaled by sqrt(2), keeping activations at unit variance."""
    return F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN


def truncate_w_plus(
    w_plus: torch.Tensor, w_avg: torch.Tensor, truncation: float, layers: int | None = None
) -> torch.Tensor:
    """The truncation trick: ``w_avg + psi * (w - w_avg)`` on the first ``layers`` of ``w_plus``.

    ``layers=None`` truncates all of them.  One implementation for the StyleGAN1
    and StyleGAN2 models and the adapter of every StyleGAN family.
    """
    if float(truncation) == 1.0 or layers == 0:
        return w_plus
    layers = w_plus.shape[1] if layers is None else layers
    avg = w_avg.to(w_plus)
    head = avg + float(truncation) * (w_plus[:, :layers] - avg)
    return torch.cat([head, w_plus[:, layers:]], dim=1)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pixel norm of the mapping input: each z scaled to unit mean square."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def fir_kernel(taps: Sequence[int], gain: float = 1.0) -> torch.Tensor:
    """Separable 2D FIR kernel from 1D taps, normalised to sum ``gain``."""
    k = torch.tensor(list(taps), dtype=torch.float32)
    k2 = torch.outer(k, k)
    return k2 / k2.sum() * gain


def upfirdn2d(
    x: torch.Tensor, kernel: torch.Tensor, up: int = 1, pad: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """Zero-insertion upsampling by ``up``, padding, then a true 2D convolution with ``kernel``.

    ``pad`` is (before, after), the same on both axes.  Each channel is
    filtered independently by one depthwise ``F.conv2d`` (``groups=c``): the
    same result as a one-channel convolution over ``n * c`` images, whose
    backward pass is about 20x slower on the CPU.
    """
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    weight = kernel.flip([0, 1]).to(dtype=x.dtype)[None, None].expand(c, 1, *kernel.shape)
    return F.conv2d(x, weight, groups=c)


class Blur(nn.Module):
    """FIR low-pass filter (no resampling), used after the transposed convolution."""

    def __init__(self, taps: Sequence[int], pad: tuple[int, int], gain: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("kernel", fir_kernel(taps, gain), persistent=False)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x upsampling of the skip image: zero insertion, then the FIR filter with gain 4."""

    def __init__(self, taps: Sequence[int], factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", fir_kernel(taps, factor**2), persistent=False)
        p = len(taps) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class MappingNetwork(nn.Module):
    """z -> w: pixel norm, then ``num_layers`` equalised dense layers with leaky ReLU."""

    def __init__(
        self,
        z_dim: int,
        w_dim: int,
        num_layers: int = 8,
        hidden_dim: int | None = None,
        lr_mul: float = 0.01,
    ) -> None:
        super().__init__()
        hidden_dim = hidden_dim or w_dim
        dims = [z_dim] + [hidden_dim] * (num_layers - 1) + [w_dim]
        self.layers = nn.ModuleList(
            EqualizedLinear(dims[i], dims[i + 1], lr_mul=lr_mul, activation=True)
            for i in range(num_layers)
        )
        self.z_dim = z_dim
        self.w_dim = w_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = normalize_2nd_moment(z)
        for layer in self.layers:
            x = layer(x)
        return x


class ModulatedConv2d(nn.Module):
    """Convolution whose weights are scaled per input channel by a style from w.

    The style is an affine map of w (bias initialised to 1).  With
    ``demodulate`` each output filter is renormalised to unit norm.  ``upsample=True`` doubles the resolution
    with a stride-2 transposed convolution followed by the FIR blur.
    """

    # Deliberately alike: only the parameter list matches another signature; the bodies differ
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        w_dim: int,
        *,
        demodulate: bool = True,
        upsample: bool = False,
        blur_kernel: Sequence[int] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.upsample = upsample
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), gain=4.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # Modulation scales the input channels and demodulation the output channels of
        # one shared convolution: the same result as a per-sample weight in a grouped
        # convolution, 2-20x faster (forward and backward) on the CPU and as NVIDIA's
        # training path does it.  The demodulation norms are one matrix product.
        styles = self.affine(w)
        weight = self.weight * self.weight_gain
        x = x * styles[:, :, None, None].to(x.dtype)
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        else:
            out = F.conv2d(x, weight, padding=self.kernel_size // 2)
        if self.demodulate:
            norms = styles.square() @ weight.square().sum(dim=[2, 3]).t()
            out = out * torch.rsqrt(norms + DEMODULATION_EPS)[:, :, None, None].to(out.dtype)
        return out


def clamp_output(x: torch.Tensor, clamp: float | None) -> torch.Tensor:
    """``x`` clamped to ``[-clamp, clamp]`` (NVIDIA's ``conv_clamp``); unchanged for ``None``."""
    return x if clamp is None else x.clamp(-clamp, clamp)


class StyledConv(nn.Module):
    """Modulated 3x3 conv, then noise (buffer times a learned strength), bias and leaky ReLU.

    ``noise`` is the fixed per-layer noise image stored in checkpoints, used
    with ``noise_mode="const"``; ``"random"`` draws fresh noise per sample and
    ``"none"`` leaves the noise out.
    """

    # Deliberately alike: only the parameter list matches another signature; the bodies differ
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        *,
        upsample: bool = False,
        blur_kernel: Sequence[int] = (1, 3, 3, 1),
        clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channels, out_channels, 3, w_dim, upsample=upsample, blur_kernel=blur_kernel
        )
        self.resolution = resolution
        self.clamp = clamp
        self.register_buffer("noise", torch.randn(1, 1, resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        out = self.conv(x, w)
        if noise_mode == "random":
            noise = torch.randn(
                out.shape[0],
                1,
                self.resolution,
                self.resolution,
                device=out.device,
                dtype=out.dtype,
            )
        elif noise_mode == "none":
            noise = None
        else:
            noise = self.noise.to(out.dtype)
        if noise is not None:
            out = out + self.noise_strength * noise
        return clamp_output(leaky_relu_gain(out + self.bias.view(1, -1, 1, 1)), self.clamp)


class ToRGB(nn.Module):
    """Modulated 1x1 conv to RGB, no demodulation, plus bias."""

    def __init__(
        self, in_channels: int, w_dim: int, image_channels: int = 3, clamp: float | None = None
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, image_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(image_channels))
        self.clamp = clamp

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return clamp_output(self.conv(x, w) + self.bias.view(1, -1, 1, 1), self.clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator.

    The 4x4 block runs one conv on the constant; every later block runs an
    upsampling conv and a plain conv.  Each block's ToRGB output is added to
    the upsampled image of the block before.  Block ``b`` reads
    ``w_plus[:, w_indices]``: convs use indices 2b-1 and 2b (0 for the 4x4
    block), the ToRGB uses 2b+1, which the next block's first conv shares.
    """

    # Deliberately alike: only the parameter list matches another signature; the bodies differ
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        *,
        blur_kernel: Sequence[int] = (1, 3, 3, 1),
        clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.first = resolution == 4
        if self.first:
            self.convs = nn.ModuleList(
                [StyledConv(in_channels, out_channels, w_dim, resolution, clamp=clamp)]
            )
            self.conv_w_indices = [0]
            self.rgb_w_index = 1
        else:
            level = int(math.log2(resolution)) - 2
            self.convs = nn.ModuleList(
                [
                    StyledConv(
                        in_channels,
                        out_channels,
                        w_dim,
                        resolution,
                        upsample=True,
                        blur_kernel=blur_kernel,
                        clamp=clamp,
                    ),
                    StyledConv(out_channels, out_channels, w_dim, resolution, clamp=clamp),
                ]
            )
            self.conv_w_indices = [2 * level - 1, 2 * level]
            self.rgb_w_index = 2 * level + 1
            self.upsample = Upsample(blur_kernel)
        self.to_rgb = ToRGB(out_channels, w_dim, clamp=clamp)

    def forward(
        self,
        x: torch.Tensor,
        image: torch.Tensor | None,
        w_plus: torch.Tensor,
        noise_mode: str = "const",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        for conv, index in zip(self.convs, self.conv_w_indices, strict=True):
            x = conv(x, w_plus[:, index], noise_mode)
        rgb = self.to_rgb(x, w_plus[:, self.rgb_w_index])
        if image is not None:
            rgb = rgb + self.upsample(image)
        return x, rgb


class SynthesisNetwork(nn.Module):
    """w+ ``[N, num_ws, w_dim]`` -> image ``[N, 3, R, R]``, from a learned 4x4 constant."""

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.resolution = config.resolution
        self.w_dim = config.w_dim
        self.num_ws = config.num_ws
        c4 = config.channels_at(4)
        self.const = nn.Parameter(torch.randn(1, c4, 4, 4))
        blocks = []
        previous = c4
        for res in config.resolutions:
            channels = config.channels_at(res)
            blocks.append(
                SynthesisBlock(
                    previous,
                    channels,
                    config.w_dim,
                    res,
                    blur_kernel=config.blur_kernel,
                    clamp=config.conv_clamp,
                )
            )
            previous = channels
        self.blocks = nn.ModuleList(blocks)

    @property
    def const_shape(self) -> tuple[int, int, int]:
        return tuple(self.const.shape[1:])  # type: ignore[return-value]

    def forward(
        self,
        w_plus: torch.Tensor,
        noise_mode: str = "const",
        const: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Image ``[N, 3, R, R]`` from ``w_plus`` (a ``[N, w_dim]`` w is used for every layer).

        ``const`` (``[N or 1, C, 4, 4]``) replaces the learned constant input.
        """
        if w_plus.ndim == 2:
            w_plus = w_plus[:, None].expand(-1, self.num_ws, -1)
        if w_plus.ndim != 3 or tuple(w_plus.shape[1:]) != (self.num_ws, self.w_dim):
            raise ConfigError(
                f"w_plus must have shape [N, {self.num_ws}, {self.w_dim}], got {list(w_plus.shape)}"
            )
        check_noise_mode(noise_mode)
        n = w_plus.shape[0]
        if const is None:
            x = self.const.expand(n, -1, -1, -1)
        else:
            if (
                const.ndim != 4
                or const.shape[0] not in (1, n)
                or tuple(const.shape[1:]) != self.const_shape
            ):
                raise ConfigError(
                    f"const must have shape [{n}, {', '.join(map(str, self.const_shape))}],"
                    f" got {list(const.shape)}"
                )
            x = const.expand(n, -1, -1, -1)
        image = None
        for block in self.blocks:
            x, image = block(x, image, w_plus, noise_mode)
        assert image is not None
        return image


class AverageWGenerator:
    """What the StyleGAN1 and StyleGAN2 generators share: ``w_avg`` and the z -> image call.

    Mixed into ``nn.Module`` subclasses that have ``mapping`` (z -> w),
    ``synthesis`` (w+ -> image), ``num_ws``, ``w_dim`` and a ``w_avg`` buffer.
    """

    w_avg: torch.Tensor
    has_w_avg: bool

    def set_w_avg(self, w_avg: torch.Tensor) -> None:
        """Store the average w (shape ``[w_dim]``) and mark it as known."""
        with torch.no_grad():
            self.w_avg.copy_(w_avg.reshape(self.w_dim).to(self.w_avg))
        self.has_w_avg = True

    def forward(
        self,
        z: torch.Tensor,
        truncation: float = 1.0,
        truncation_layers: int | None = None,
        noise_mode: str = "const",
    ) -> torch.Tensor:
        """z -> image, with the truncation trick toward ``w_avg`` on the first layers.

        Truncation ``w_avg + truncation * (w - w_avg)`` on the first
        ``truncation_layers`` layers (``None``: all); genforce's ``trunc_layers`` is
        the same count, except that its ``None`` means no truncation.
        """
        w_plus = self.mapping(z)[:, None].repeat(1, self.num_ws, 1)
        w_plus = truncate_w_plus(w_plus, self.w_avg, truncation, truncation_layers)
        return self.synthesis(w_plus, noise_mode=noise_mode)


class StyleGAN2Generator(AverageWGenerator, nn.Module):
    """StyleGAN2 config-F generator: ``mapping`` (z -> w) and ``synthesis`` (w+ -> image).

    ``w_avg`` is the average w used by the truncation trick; ``has_w_avg`` says
    whether it holds a real value (from the checkpoint or estimated) rather
    than the zeros of a fresh model.
    """

    def __init__(self, config: StyleGAN2Config | None = None) -> None:
        super().__init__()
        config = config or StyleGAN2Config()
        self.config = config
        self.z_dim = config.z_dim
        self.w_dim = config.w_dim
        self.num_ws = config.num_ws
        self.resolution = config.resolution
        self.mapping = MappingNetwork(
            config.z_dim,
            config.w_dim,
            config.mapping_layers,
            config.hidden_dim,
            config.mapping_lr_mul,
        )
        self.synthesis = SynthesisNetwork(config)
        self.register_buffer("w_avg", torch.zeros(config.w_dim))
        self.has_w_avg = False

    @property
    def const_shape(self) -> tuple[int, int, int]:
        return self.synthesis.const_shape
