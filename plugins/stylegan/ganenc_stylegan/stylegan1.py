"""StyleGAN (v1) generator in pure PyTorch, compatible with genforce ``.pth`` checkpoints.

The network follows the official StyleGAN (Karras et al. 2019) as converted by
genforce (``models/stylegan_generator.py``), whose model zoo holds the public
StyleGAN1 weights (FFHQ, CelebA-HQ, LSUN, cars, cats...).  The module tree is our
own; :func:`stylegan1_from_genforce` and :func:`stylegan1_to_genforce` translate
between our state-dict keys and genforce's.

Numerics that must match the reference exactly:

* equalized learning rate: weights are stored unscaled and multiplied at run time
  by ``gain / sqrt(fan_in) * lr_mul`` (gain sqrt(2) for the mapping and the 3x3
  convolutions, 1 for ToRGB, and ``1 / sqrt(w_dim)`` for the style affines); in the
  mapping network ``lr_mul`` (0.01) also scales the bias;
* a synthesis layer runs (nearest upsample + conv, or the fused up-convolution at
  resolution >= 128) -> conv -> blur (upsampling layers only) -> noise -> bias ->
  leaky ReLU 0.2 -> instance norm (eps 1e-8) -> ``x * (scale + 1) + shift``;
* only the ToRGB of the final resolution contributes to the image; the image is
  returned raw (no tanh, no clamping), roughly in [-1, 1].

Truncation is left to the caller (the adapter): genforce computes
``w_avg + psi * (w - w_avg)`` on the layers with index ``< trunc_layers`` of the
per-layer ``w+`` code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganenc.adapters import check_noise_mode
from ganenc.checkpoints import build_checked, identify_checkpoint
from ganenc.errors import CheckpointError, ConfigError
from ganenc.nn import EqualizedLinear  # the one equalized dense layer (keys weight, bias)

from .stylegan2 import AverageWGenerator

__all__ = [
    "AdaIN",
    "Blur",
    "EqualizedConv2d",
    "EqualizedLinear",
    "FusedUpsampleConv2d",
    "MappingNetwork",
    "NoiseInjection",
    "StyleGAN1Config",
    "StyleGAN1Generator",
    "SynthesisLayer",
    "SynthesisNetwork",
    "ToRGB",
    "stylegan1_config_from_genforce",
    "stylegan1_from_genforce",
    "stylegan1_to_genforce",
]

INIT_RESOLUTION = 4
MIN_RESOLUTION = 8
MAX_RESOLUTION = 1024
LRELU_SLOPE = 0.2
NORM_EPS = 1e-8
HE_GAIN = math.sqrt(2.0)


def _is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


# Deliberately alike: each generator's config lists its own published defaults
@dataclass
class StyleGAN1Config:
    """Architecture of a StyleGAN1 generator; the defaults are the official FFHQ model.

    ``fused_scale_min_res`` is the first resolution whose upsampling layer uses the
    fused up-convolution (genforce's ``fused_scale="auto"`` = 128, as in the official
    TensorFlow code); set it to 8 to fuse every upsampling layer or above
    ``resolution`` to fuse none.  Feature maps at resolution ``r`` are
    ``min(fmaps_base // r, fmaps_max)``.
    """

    resolution: int = 1024
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_fmaps: int = 512
    mapping_lr_mul: float = 0.01
    fmaps_base: int = 16 << 10
    fmaps_max: int = 512
    fused_scale_min_res: int = 128
    image_channels: int = 3
    final_tanh: bool = False

    def __post_init__(self) -> None:
        if (
            not isinstance(self.resolution, int)
            or not _is_power_of_two(self.resolution)
            or not MIN_RESOLUTION <= self.resolution <= MAX_RESOLUTION
        ):
            raise ConfigError(
                f"StyleGAN1 resolution must be a power of two in "
                f"[{MIN_RESOLUTION}, {MAX_RESOLUTION}], got {self.resolution!r}"
            )
        for name in ("z_dim", "w_dim", "mapping_layers", "mapping_fmaps", "image_channels"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"StyleGAN1 {name} must be >= 1, got {getattr(self, name)!r}")
        if self.mapping_lr_mul <= 0:
            raise ConfigError(f"StyleGAN1 mapping_lr_mul must be > 0, got {self.mapping_lr_mul!r}")
        smallest = min(self.channels(res) for res in self.resolutions)
        if smallest < 1:
            raise ConfigError(
                f"StyleGAN1 fmaps_base={self.fmaps_base} / fmaps_max={self.fmaps_max} give no "
                f"feature maps at resolution {self.resolution}"
            )

    @property
    def resolutions(self) -> list[int]:
        """Block resolutions from 4 up to ``resolution``."""
        count = int(math.log2(self.resolution)) - 1
        return [INIT_RESOLUTION << block for block in range(count)]

    @property
    def num_ws(self) -> int:
        """Number of synthesis layers, i.e. entries of the ``w+`` code (2 per resolution)."""
        return 2 * len(self.resolutions)

    def channels(self, resolution: int) -> int:
        """Feature maps of the layers at ``resolution``."""
        return min(self.fmaps_base // resolution, self.fmaps_max)

    def is_fused(self, resolution: int) -> bool:
        """Whether the upsampling layer into ``resolution`` uses the fused up-convolution."""
        return resolution > INIT_RESOLUTION and resolution >= self.fused_scale_min_res


# --------------------------------------------------------------------------- building blocks


class EqualizedConv2d(nn.Module):
    """Bias-free 'same' convolution with equalized learning rate."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, gain: float = HE_GAIN
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2

    def scaled_weight(self) -> torch.Tensor:
        return self.weight * self.weight_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.scaled_weight(), padding=self.padding)


class FusedUpsampleConv2d(EqualizedConv2d):
    """Nearest 2x upsampling and a 3x3 convolution fused into one transposed convolution.

    As in the official code: the 3x3 kernel is zero-padded to 5x5 and summed over
    its four 2x2 shifts into a 4x4 kernel, applied with stride 2 and padding 1.
    That equals nearest upsampling + 3x3 convolution with the kernel flipped
    spatially, so it is not interchangeable with the unfused path for the same
    stored weights.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = F.pad(self.scaled_weight(), (1, 1, 1, 1))
        weight = (
            weight[:, :, 1:, 1:]
            + weight[:, :, :-1, 1:]
            + weight[:, :, 1:, :-1]
            + weight[:, :, :-1, :-1]
        )
        return F.conv_transpose2d(x, weight.transpose(0, 1), stride=2, padding=1)


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")


class Blur(nn.Module):
    """Depthwise [1, 2, 1] x [1, 2, 1] / 16 low-pass filter after each upsampling conv.

    The kernel is a buffer because genforce stores it in the checkpoint.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(taps, taps)
        kernel = kernel / kernel.sum()
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel.to(x.dtype), padding=1, groups=x.shape[1])


class NoiseInjection(nn.Module):
    """Adds single-channel spatial noise scaled per channel.

    ``"const"`` uses the checkpoint's fixed noise map (deterministic), ``"random"``
    draws a fresh map per sample, ``"none"`` adds nothing.
    """

    def __init__(self, channels: int, resolution: int) -> None:
        super().__init__()
        self.register_buffer("noise", torch.randn(1, 1, resolution, resolution))
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        if noise_mode == "none":
            return x
        if noise_mode == "random":
            noise = torch.randn(
                x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype
            )
        else:
            noise = self.noise.to(x.dtype)
        return x + noise * self.weight.view(1, -1, 1, 1)


def instance_norm(x: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """Per-sample, per-channel normalisation over space (eps 1e-8, not torch's 1e-5)."""
    x = x - x.mean(dim=(2, 3), keepdim=True)
    return x / torch.sqrt(x.square().mean(dim=(2, 3), keepdim=True) + eps)


def pixel_norm(x: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """Normalise each latent vector to unit root mean square (the mapping's input)."""
    return x / torch.sqrt(x.square().mean(dim=1, keepdim=True) + eps)


class AdaIN(nn.Module):
    """Instance norm, then a per-channel scale and shift predicted from ``w``.

    ``style = w @ (weight / sqrt(w_dim)).T + bias`` gives ``[scale, shift]``; the
    output is ``x * (scale + 1) + shift``.
    """

    def __init__(self, channels: int, w_dim: int) -> None:
        super().__init__()
        self.channels = channels
        self.weight = nn.Parameter(torch.randn(2 * channels, w_dim))
        self.bias = nn.Parameter(torch.zeros(2 * channels))
        self.weight_scale = 1.0 / math.sqrt(w_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = F.linear(w, self.weight * self.weight_scale, self.bias)
        scale, shift = style.view(-1, 2, self.channels, 1, 1).unbind(dim=1)
        return instance_norm(x) * (scale + 1) + shift


class SynthesisLayer(nn.Module):
    """One styled layer: [upsample] conv [blur] -> noise -> bias -> lrelu -> AdaIN.

    ``conv`` is ``None`` for the first layer, whose input is the learned 4x4 constant.
    """

    # Deliberately alike: only the parameter list matches another signature; the bodies differ
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        resolution: int,
        w_dim: int,
        *,
        first: bool = False,
        upsample: bool = False,
        fused: bool = False,
    ) -> None:
        super().__init__()
        self.upsample: nn.Module | None = None
        self.conv: EqualizedConv2d | None = None
        self.blur: Blur | None = None
        if not first:
            if upsample and fused:
                self.conv = FusedUpsampleConv2d(in_channels, out_channels)
            else:
                self.conv = EqualizedConv2d(in_channels, out_channels)
                if upsample:
                    self.upsample = Upsample()
            if upsample:
                self.blur = Blur(out_channels)
        self.noise = NoiseInjection(out_channels, resolution)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.style = AdaIN(out_channels, w_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        if self.upsample is not None:
            x = self.upsample(x)
        if self.conv is not None:
            x = self.conv(x)
        if self.blur is not None:
            x = self.blur(x)
        x = self.noise(x, noise_mode)
        x = F.leaky_relu(x + self.bias.view(1, -1, 1, 1), LRELU_SLOPE)
        return self.style(x, w)


class ToRGB(nn.Module):
    """1x1 equalized convolution (gain 1) with bias to image channels."""

    def __init__(self, in_channels: int, image_channels: int) -> None:
        super().__init__()
        self.conv = EqualizedConv2d(in_channels, image_channels, kernel_size=1, gain=1.0)
        self.bias = nn.Parameter(torch.zeros(image_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.bias.view(1, -1, 1, 1)


class MappingNetwork(nn.Module):
    """z -> w: pixel norm, then dense layers each followed by leaky ReLU (the last too)."""

    def __init__(self, config: StyleGAN1Config) -> None:
        super().__init__()
        dims = [config.z_dim] + [config.mapping_fmaps] * (config.mapping_layers - 1)
        dims.append(config.w_dim)
        self.layers = nn.ModuleList(
            EqualizedLinear(dims[i], dims[i + 1], gain=HE_GAIN, lr_mul=config.mapping_lr_mul)
            for i in range(config.mapping_layers)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(z)
        for layer in self.layers:
            x = F.leaky_relu(layer(x), LRELU_SLOPE)
        return x


class SynthesisNetwork(nn.Module):
    """w+ -> image: the learned 4x4 constant, two styled layers per resolution, ToRGB.

    ``to_rgb`` keeps one ToRGB per resolution because the checkpoints hold them
    (progressive training); only the last one is used.
    """

    def __init__(self, config: StyleGAN1Config) -> None:
        super().__init__()
        self.config = config
        first_channels = config.channels(INIT_RESOLUTION)
        self.const = nn.Parameter(torch.ones(1, first_channels, INIT_RESOLUTION, INIT_RESOLUTION))
        layers: list[SynthesisLayer] = []
        to_rgb: list[ToRGB] = []
        in_channels = first_channels
        for res in config.resolutions:
            channels = config.channels(res)
            if res == INIT_RESOLUTION:
                layers.append(SynthesisLayer(in_channels, channels, res, config.w_dim, first=True))
            else:
                layers.append(
                    SynthesisLayer(
                        in_channels,
                        channels,
                        res,
                        config.w_dim,
                        upsample=True,
                        fused=config.is_fused(res),
                    )
                )
            layers.append(SynthesisLayer(channels, channels, res, config.w_dim))
            to_rgb.append(ToRGB(channels, config.image_channels))
            in_channels = channels
        self.layers = nn.ModuleList(layers)
        self.to_rgb = nn.ModuleList(to_rgb)

    # Deliberately alike: only the parameter list matches another signature; the bodies differ
    def forward(
        self,
        w_plus: torch.Tensor,
        noise_mode: str = "const",
        const: torch.Tensor | None = None,
    ) -> torch.Tensor:
        check_noise_mode(noise_mode)
        batch = w_plus.shape[0]
        if const is None:
            x = self.const.expand(batch, -1, -1, -1)
        else:
            expected = tuple(self.const.shape[1:])
            if const.dim() == 3:
                const = const.unsqueeze(0)
            if const.dim() != 4 or tuple(const.shape[1:]) != expected:
                raise ConfigError(
                    f"const must have shape [N, {', '.join(map(str, expected))}], "
                    f"got {list(const.shape)}"
                )
            x = const.expand(batch, -1, -1, -1) if const.shape[0] == 1 else const
        for index, layer in enumerate(self.layers):
            x = layer(x, w_plus[:, index], noise_mode)
        image = self.to_rgb[-1](x)
        return torch.tanh(image) if self.config.final_tanh else image


class StyleGAN1Generator(AverageWGenerator, nn.Module):
    """The StyleGAN1 generator: ``mapping`` (z -> w) and ``synthesis`` (w+ -> image).

    ``w_avg`` is the checkpoint's average w (``truncation.w_avg`` in genforce),
    meaningful only when ``has_w_avg`` (a randomly initialised model has zeros).
    Truncation is applied by the caller, not here (``set_w_avg`` and the
    z -> image ``forward`` come from :class:`~ganenc_stylegan.stylegan2.AverageWGenerator`).
    """

    def __init__(self, config: StyleGAN1Config | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else StyleGAN1Config()
        self.z_dim = self.config.z_dim
        self.w_dim = self.config.w_dim
        self.num_ws = self.config.num_ws
        self.resolution = self.config.resolution
        self.mapping_network = MappingNetwork(self.config)
        self.synthesis_network = SynthesisNetwork(self.config)
        self.const_shape = tuple(self.synthesis_network.const.shape[1:])
        self.register_buffer("w_avg", torch.zeros(self.config.w_dim))
        self.has_w_avg = False

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """``z [N, z_dim]`` -> ``w [N, w_dim]`` (z is pixel-normalised first)."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ConfigError(f"z must have shape [N, {self.z_dim}], got {list(z.shape)}")
        return self.mapping_network(z)

    # Deliberately alike: only the parameter list matches another signature; the bodies differ
    def synthesis(
        self,
        w_plus: torch.Tensor,
        noise_mode: str = "const",
        const: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``w+ [N, num_ws, w_dim]`` -> raw image ``[N, C, R, R]``.

        A ``[N, w_dim]`` w is broadcast to every layer.  ``const`` (``[N or 1, C, 4, 4]``)
        replaces the learned constant input, e.g. with an encoder's estimate.
        """
        if w_plus.dim() == 2:
            w_plus = w_plus.unsqueeze(1).expand(-1, self.num_ws, -1)
        if w_plus.dim() != 3 or tuple(w_plus.shape[1:]) != (self.num_ws, self.w_dim):
            raise ConfigError(
                f"w_plus must have shape [N, {self.num_ws}, {self.w_dim}], got {list(w_plus.shape)}"
            )
        return self.synthesis_network(w_plus, noise_mode=noise_mode, const=const)


# --------------------------------------------------------------------------- genforce format

_LOD_KEY = "synthesis.lod"

# Our state-dict key -> genforce's key (module names differ, tensors are identical).
_KEY_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"^w_avg$", "truncation.w_avg"),
        (r"^mapping_network\.layers\.(\d+)\.(weight|bias)$", r"mapping.dense\1.\2"),
        (r"^synthesis_network\.const$", "synthesis.layer0.const"),
        (r"^synthesis_network\.layers\.(\d+)\.conv\.weight$", r"synthesis.layer\1.weight"),
        (r"^synthesis_network\.layers\.(\d+)\.bias$", r"synthesis.layer\1.bias"),
        (
            r"^synthesis_network\.layers\.(\d+)\.noise\.(noise|weight)$",
            r"synthesis.layer\1.apply_noise.\2",
        ),
        (
            r"^synthesis_network\.layers\.(\d+)\.(style|blur)\.(weight|bias|kernel)$",
            r"synthesis.layer\1.\2.\3",
        ),
        (r"^synthesis_network\.to_rgb\.(\d+)\.conv\.weight$", r"synthesis.output\1.weight"),
        (r"^synthesis_network\.to_rgb\.(\d+)\.bias$", r"synthesis.output\1.bias"),
    )
)


def _genforce_key(key: str) -> str:
    for pattern, replacement in _KEY_RULES:
        if pattern.match(key):
            return pattern.sub(replacement, key)
    raise KeyError(f"no genforce name for StyleGAN1 state-dict key {key!r}")


def _name_list(keys: set[str] | list[str], limit: int = 8) -> str:
    ordered = sorted(keys)
    text = ", ".join(ordered[:limit])
    return text + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")


def _check_state_dict(state_dict: object) -> Mapping[str, torch.Tensor]:
    if not isinstance(state_dict, Mapping) or not state_dict:
        raise CheckpointError(
            "expected a genforce StyleGAN1 generator state dict (a non-empty dict of tensors), "
            f"got {type(state_dict).__name__}"
        )
    bad = [str(key) for key, value in state_dict.items() if not isinstance(value, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"genforce StyleGAN1 state dict holds non-tensor entries: {_name_list(bad)}"
        )
    return state_dict


def _require(state_dict: Mapping[str, torch.Tensor], key: str, ndim: int) -> torch.Tensor:
    if key not in state_dict:
        raise CheckpointError(
            f"not a genforce StyleGAN1 generator state dict: missing {key!r}"
            + _family_hint(state_dict)
        )
    tensor = state_dict[key]
    if tensor.dim() != ndim:
        raise CheckpointError(
            f"genforce StyleGAN1 entry {key!r} has shape {list(tensor.shape)}, "
            f"expected {ndim} dimensions"
        )
    return tensor


def _family_hint(state_dict: Mapping[str, torch.Tensor]) -> str:
    keys = set(state_dict)
    if "synthesis.early_layer.const" in keys:
        return " (this looks like a genforce StyleGAN2 generator: use the stylegan2 family)"
    if any(key.startswith(("style.", "convs.", "to_rgbs.")) for key in keys):
        return " (this looks like a rosinality StyleGAN2 generator: use the stylegan2 family)"
    other = identify_checkpoint({"generator": dict(state_dict)})  # another plugin's family
    if other is not None and other.gan != "stylegan1":
        return f" (this looks like {other.description}: use --gan {other.gan})"
    return ""


def _infer_fmaps(channels: dict[int, int]) -> tuple[int, int]:
    """``(fmaps_base, fmaps_max)`` reproducing ``channels`` via ``min(base // res, max)``."""
    fmaps_max = channels[INIT_RESOLUTION]
    largest = max(channels)
    candidates = [count * res for res, count in channels.items() if count < fmaps_max]
    candidates.append(fmaps_max * largest)
    for fmaps_base in candidates:
        if all(min(fmaps_base // res, fmaps_max) == count for res, count in channels.items()):
            return fmaps_base, fmaps_max
    layout = ", ".join(f"{res}: {count}" for res, count in sorted(channels.items()))
    raise CheckpointError(
        "unsupported StyleGAN1 layout: feature maps per resolution "
        f"({layout}) do not follow min(fmaps_base // res, fmaps_max)"
    )


def stylegan1_config_from_genforce(state_dict: Mapping[str, torch.Tensor]) -> StyleGAN1Config:
    """Infer the architecture from a genforce ``StyleGANGenerator`` state dict's shapes.

    ``mapping_lr_mul`` (0.01), ``final_tanh`` (False) and the fused-scale threshold
    (128) leave no trace in the tensors; they take genforce's defaults, which every
    model of its zoo uses.  Unsupported variants (conditional, non-constant input,
    per-channel noise, unrepeated w) raise :class:`~ganenc.errors.CheckpointError`.
    """
    state_dict = _check_state_dict(state_dict)
    if "mapping.label_weight" in state_dict:
        raise CheckpointError(
            "unsupported genforce StyleGAN1 checkpoint: class-conditional generators "
            "(mapping.label_weight) are not supported"
        )
    mapping_layers = 0
    while f"mapping.dense{mapping_layers}.weight" in state_dict:
        mapping_layers += 1
    first = _require(state_dict, "mapping.dense0.weight", 2)
    last = _require(state_dict, f"mapping.dense{mapping_layers - 1}.weight", 2)
    z_dim, w_dim = int(first.shape[1]), int(last.shape[0])
    mapping_fmaps = int(first.shape[0]) if mapping_layers > 1 else 512

    w_avg = _require(state_dict, "truncation.w_avg", 1)
    if w_avg.shape[0] != w_dim:
        raise CheckpointError(
            f"unsupported genforce StyleGAN1 checkpoint: truncation.w_avg has {w_avg.shape[0]} "
            f"values for w_dim {w_dim} (only repeat_w=True generators are supported)"
        )
    if "synthesis.layer0.weight" in state_dict and "synthesis.layer0.const" not in state_dict:
        raise CheckpointError(
            "unsupported genforce StyleGAN1 checkpoint: const_input=False "
            "(synthesis.layer0.weight instead of synthesis.layer0.const)" + _family_hint(state_dict)
        )
    _require(state_dict, "synthesis.layer0.const", 4)

    num_layers = 0
    while f"synthesis.layer{num_layers}.bias" in state_dict:
        num_layers += 1
    if num_layers < 4 or num_layers % 2:
        raise CheckpointError(
            f"not a genforce StyleGAN1 generator state dict: found {num_layers} synthesis layers "
            "(expected an even number >= 4)"
        )
    resolution = INIT_RESOLUTION << (num_layers // 2 - 1)
    if resolution > MAX_RESOLUTION:
        raise CheckpointError(
            f"unsupported genforce StyleGAN1 checkpoint: resolution {resolution} "
            f"(at most {MAX_RESOLUTION})"
        )
    channels: dict[int, int] = {}
    for block in range(num_layers // 2):
        res = INIT_RESOLUTION << block
        channels[res] = int(_require(state_dict, f"synthesis.layer{2 * block}.bias", 1).shape[0])
    noise = _require(state_dict, f"synthesis.layer{num_layers - 1}.apply_noise.noise", 4)
    if tuple(noise.shape) != (1, 1, resolution, resolution):
        raise CheckpointError(
            "unsupported genforce StyleGAN1 checkpoint: noise buffer "
            f"synthesis.layer{num_layers - 1}.apply_noise.noise has shape {list(noise.shape)}, "
            f"expected [1, 1, {resolution}, {resolution}] (only noise_type='spatial' is supported)"
        )
    to_rgb = _require(state_dict, f"synthesis.output{num_layers // 2 - 1}.weight", 4)
    fmaps_base, fmaps_max = _infer_fmaps(channels)
    return StyleGAN1Config(
        resolution=resolution,
        z_dim=z_dim,
        w_dim=w_dim,
        mapping_layers=mapping_layers,
        mapping_fmaps=mapping_fmaps,
        fmaps_base=fmaps_base,
        fmaps_max=fmaps_max,
        image_channels=int(to_rgb.shape[0]),
    )


def stylegan1_from_genforce(state_dict: Mapping[str, torch.Tensor]) -> StyleGAN1Generator:
    """Build a :class:`StyleGAN1Generator` from a genforce generator state dict (strict).

    ``state_dict`` is the inner dict (``generator_smooth``, else ``generator``).
    Unknown, missing or mis-shaped entries raise :class:`~ganenc.errors.CheckpointError`
    naming them.  ``w_avg`` comes from ``truncation.w_avg``.
    """
    state_dict = _check_state_dict(state_dict)
    config = stylegan1_config_from_genforce(state_dict)
    model = build_checked(lambda: StyleGAN1Generator(config), "the genforce StyleGAN1 file")
    ours = model.state_dict()
    names = {_genforce_key(key): key for key in ours}
    expected = set(names) | {_LOD_KEY}
    given = set(state_dict)
    missing, unexpected = expected - given, given - expected
    # Deliberately alike: a two-sided mismatch message; other sides and wording than pair_folders'
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_name_list(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_name_list(unexpected)}")
        raise CheckpointError(
            f"genforce StyleGAN1 state dict does not match the inferred {model.resolution}px "
            "architecture; " + "; ".join(parts)
        )
    mismatched = [
        f"{theirs} {list(state_dict[theirs].shape)} (expected {list(ours[key].shape)})"
        for theirs, key in names.items()
        if state_dict[theirs].shape != ours[key].shape
    ]
    if mismatched:
        raise CheckpointError(
            "genforce StyleGAN1 state dict has entries of unexpected shape: "
            + _name_list(mismatched, limit=5)
        )
    lod = state_dict[_LOD_KEY]
    if lod.numel() != 1 or float(lod) != 0.0:
        raise CheckpointError(
            f"unsupported genforce StyleGAN1 checkpoint: synthesis.lod is {lod.tolist()} "
            "(a progressive-growing snapshot; only fully grown generators, lod 0, are supported)"
        )
    model.load_state_dict({key: state_dict[theirs] for theirs, key in names.items()}, strict=True)
    model.has_w_avg = True  # w_avg was loaded from truncation.w_avg
    return model


def stylegan1_to_genforce(model: StyleGAN1Generator) -> dict[str, torch.Tensor]:
    """The genforce ``StyleGANGenerator`` state dict of ``model`` (inverse of loading)."""
    state = {
        _genforce_key(key): tensor.detach().clone() for key, tensor in model.state_dict().items()
    }
    state[_LOD_KEY] = torch.zeros((), dtype=model.w_avg.dtype, device=model.w_avg.device)
    return state
