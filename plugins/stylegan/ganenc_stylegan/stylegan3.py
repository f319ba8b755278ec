"""StyleGAN3 ("alias-free") generator in plain PyTorch, configs T and R (CPU and CUDA).

The network follows Karras et al., "Alias-Free Generative Adversarial Networks"
(2021).  A mapping network turns z into w (two layers in the public models).
The synthesis network starts from Fourier features: sinusoids of fixed
frequencies and phases, rotated and translated by an affine map of ``ws[0]``
and by the user ``transform`` buffer, faded out near the band limit.  Fourteen
modulated convolutions follow (3x3 in config T, 1x1 in config R), each
wrapped in a "filtered leaky ReLU": upsample with a windowed-sinc low-pass
filter, apply the nonlinearity at the higher rate, clamp, low-pass again and
downsample.  A 1x1 ToRGB layer and a fixed output scale end the network.

The layer geometry (sampling rates, cutoffs, transition bands, sizes,
channels, paddings, filters) follows from a few hyperparameters
(:class:`StyleGAN3Config`, see :meth:`StyleGAN3Config.layer_specs`), exactly
as NVIDIA derives it, so a random generator is a faithful StyleGAN3 and a
file's geometry can be checked.  Parameter and buffer names equal those of
NVIDIA's ``networks_stylegan3.Generator`` (``synthesis.L3_36_512.weight``,
``mapping.w_avg``...), so its ``G_ema`` tensors load as they are.

Computation is float32 throughout, i.e. NVIDIA's ``force_fp32=True``.  The
filtered leaky ReLU is the straightforward composition of NVIDIA's reference
path (no compiled op).  ``magnitude_ema`` (the running input magnitude of each
layer, tracked during NVIDIA's training) only sets each layer's input gain
here: the generator is never trained.

Common model interface shared with the other StyleGAN models of this plugin:
``z_dim``, ``w_dim``, ``num_ws``, ``resolution``, ``w_avg`` with
``has_w_avg``, ``mapping(z) -> w`` and ``synthesis(ws, noise_mode="const") ->
image``.  StyleGAN3 has no 4x4 constant (``const_shape`` is ``None``) and no
noise inputs (``noise_mode`` is accepted and has no effect, as in NVIDIA's code).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganenc.adapters import check_noise_mode
from ganenc.checkpoints import build_checked
from ganenc.errors import CheckpointError, ConfigError

from .stylegan2 import EqualizedLinear, is_power_of_two, normalize_2nd_moment

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
DEMODULATION_EPS = 1e-8

# ----------------------------------------------------------------------------------------
# Configuration and the derived layer geometry.


@dataclass(frozen=True)
class LayerSpec:
    """Geometry of one synthesis layer (``L{index}_{out_size}_{out_channels}``)."""

    index: int
    is_torgb: bool
    is_critically_sampled: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: float
    out_sampling_rate: float
    tmp_sampling_rate: float
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    conv_kernel: int
    up_factor: int
    down_factor: int
    up_taps: int
    down_taps: int
    down_radial: bool
    padding: tuple[int, int, int, int]  # x0, x1, y0, y1

    @property
    def name(self) -> str:
        return f"L{self.index}_{self.out_size}_{self.out_channels}"


@dataclass(frozen=True)
class InputSpec:
    """Geometry of the Fourier-feature input."""

    channels: int
    size: int
    sampling_rate: float
    bandwidth: float


# Deliberately alike: each generator's config lists its own published defaults
@dataclass
class StyleGAN3Config:
    """Architecture of a StyleGAN3 generator; the defaults are NVIDIA's config T.

    Config R is ``conv_kernel=1, use_radial_filters=True`` (NVIDIA's public R
    models also double ``channel_base``/``channel_max`` to 65536/1024).
    """

    resolution: int = 256
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 2
    mapping_lr_mul: float = 0.01
    channel_base: int = 32768
    channel_max: int = 512
    num_layers: int = 14
    num_critical: int = 2
    first_cutoff: float = 2.0
    first_stopband: float = 2**2.1
    last_stopband_rel: float = 2**0.3
    margin_size: int = 10
    output_scale: float = 0.25
    conv_kernel: int = 3
    filter_size: int = 6
    lrelu_upsampling: float = 2.0
    use_radial_filters: bool = False
    conv_clamp: float | None = 256.0
    image_channels: int = 3

    def __post_init__(self) -> None:
        if not is_power_of_two(self.resolution) or self.resolution < 8:
            raise ConfigError(
                f"StyleGAN3 resolution must be a power of two >= 8, got {self.resolution}"
            )
        for name in (
            "z_dim",
            "w_dim",
            "mapping_layers",
            "channel_base",
            "channel_max",
            "conv_kernel",
            "filter_size",
            "image_channels",
        ):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"StyleGAN3 {name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.num_critical < self.num_layers:
            raise ConfigError(
                f"StyleGAN3 needs 0 <= num_critical < num_layers, got {self.num_critical}"
                f" and {self.num_layers}"
            )
        if self.conv_clamp is not None:
            self.conv_clamp = float(self.conv_clamp)

    @property
    def num_ws(self) -> int:
        """One w for the input, one per layer, one for the ToRGB: ``num_layers + 2``."""
        return self.num_layers + 2

    def _schedule(self) -> tuple[list[float], list[float], list[float], list[int], list[int]]:
        """Per-layer cutoffs, sampling rates, half widths, sizes and channels (0..num_layers)."""
        n, res = self.num_layers, self.resolution
        last_cutoff = res / 2
        last_stopband = last_cutoff * self.last_stopband_rel
        exponents = [min(i / (n - self.num_critical), 1.0) for i in range(n + 1)]
        cutoffs = [self.first_cutoff * (last_cutoff / self.first_cutoff) ** e for e in exponents]
        stopbands = [
            self.first_stopband * (last_stopband / self.first_stopband) ** e for e in exponents
        ]
        rates = [2.0 ** math.ceil(math.log2(min(s * 2, res))) for s in stopbands]
        half_widths = [
            max(s, rate / 2) - c for s, rate, c in zip(stopbands, rates, cutoffs, strict=True)
        ]
        sizes = [int(rate) + self.margin_size * 2 for rate in rates]
        sizes[-2:] = [res, res]
        channels = [int(round(min((self.channel_base / 2) / c, self.channel_max))) for c in cutoffs]
        channels[-1] = self.image_channels
        return cutoffs, rates, half_widths, sizes, channels

    def input_spec(self) -> InputSpec:
        cutoffs, rates, _, sizes, channels = self._schedule()
        return InputSpec(channels[0], sizes[0], rates[0], cutoffs[0])

    def layer_specs(self) -> list[LayerSpec]:
        """The ``num_layers + 1`` synthesis layers (the last is the ToRGB), as NVIDIA builds them."""
        cutoffs, rates, half_widths, sizes, channels = self._schedule()
        specs = []
        for idx in range(self.num_layers + 1):
            prev = max(idx - 1, 0)
            is_torgb = idx == self.num_layers
            critical = idx >= self.num_layers - self.num_critical
            kernel = 1 if is_torgb else self.conv_kernel
            tmp_rate = max(rates[prev], rates[idx]) * (1 if is_torgb else self.lrelu_upsampling)
            up = int(round(tmp_rate / rates[prev]))
            down = int(round(tmp_rate / rates[idx]))
            up_taps = self.filter_size * up if up > 1 and not is_torgb else 1
            down_taps = self.filter_size * down if down > 1 and not is_torgb else 1
            # Padding: output size before downsampling, minus the upsampled conv output,
            # plus what the two filters consume; lo/hi split as NVIDIA's symmetric layout.
            pad_total = (sizes[idx] - 1) * down + 1
            pad_total -= (sizes[prev] + kernel - 1) * up
            pad_total += up_taps + down_taps - 2
            pad_lo = (pad_total + up) // 2
            pad_hi = pad_total - pad_lo
            specs.append(
                LayerSpec(
                    index=idx,
                    is_torgb=is_torgb,
                    is_critically_sampled=critical,
                    in_channels=channels[prev],
                    out_channels=channels[idx],
                    in_size=sizes[prev],
                    out_size=sizes[idx],
                    in_sampling_rate=rates[prev],
                    out_sampling_rate=rates[idx],
                    tmp_sampling_rate=tmp_rate,
                    in_cutoff=cutoffs[prev],
                    out_cutoff=cutoffs[idx],
                    in_half_width=half_widths[prev],
                    out_half_width=half_widths[idx],
                    conv_kernel=kernel,
                    up_factor=up,
                    down_factor=down,
                    up_taps=up_taps,
                    down_taps=down_taps,
                    down_radial=self.use_radial_filters and not critical,
                    padding=(pad_lo, pad_hi, pad_lo, pad_hi),
                )
            )
        return specs


# ----------------------------------------------------------------------------------------
# Filters.


def _kaiser_beta(numtaps: int, width: float) -> float:
    """Kaiser window beta for ``numtaps`` taps and a transition ``width`` (fraction of Nyquist)."""
    attenuation = 2.285 * (numtaps - 1) * math.pi * width + 7.95
    if attenuation > 50:
        return 0.1102 * (attenuation - 8.7)
    if attenuation > 21:
        return 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21)
    return 0.0


def _kaiser_window(numtaps: int, beta: float) -> torch.Tensor:
    """The symmetric Kaiser window, float64."""
    n = torch.arange(numtaps, dtype=torch.float64)
    ratio = 2 * n / (numtaps - 1) - 1 if numtaps > 1 else n
    arg = beta * torch.sqrt((1 - ratio**2).clamp(min=0))
    return torch.special.i0(arg) / torch.special.i0(torch.tensor(beta, dtype=torch.float64))


def design_lowpass_filter(
    numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False
) -> torch.Tensor | None:
    """Kaiser-windowed low-pass filter (float32), normalised to unit DC gain.

    Separable 1-D taps (windowed sinc), or with ``radial`` a radially symmetric
    2-D ``[numtaps, numtaps]`` filter (windowed jinc).  ``None`` for one tap.
    """
    if numtaps == 1:
        return None
    nyquist = fs / 2
    beta = _kaiser_beta(numtaps, width / nyquist)
    window = _kaiser_window(numtaps, beta)
    if not radial:
        m = torch.arange(numtaps, dtype=torch.float64) - (numtaps - 1) / 2
        taps = (cutoff / nyquist) * torch.sinc((cutoff / nyquist) * m) * window
        return (taps / taps.sum()).to(torch.float32)
    x = (torch.arange(numtaps, dtype=torch.float64) - (numtaps - 1) / 2) / fs
    r = torch.hypot(x[None, :], x[:, None])
    pr = math.pi * r
    safe = torch.where(r > 0, pr, torch.ones_like(pr))
    jinc = torch.where(r > 0, torch.special.bessel_j1(2 * cutoff * safe) / safe, cutoff)
    taps = jinc * torch.outer(window, window)
    return (taps / taps.sum()).to(torch.float32)


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int = 1,
    down: int = 1,
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative crops), FIR-filter, keep every ``down``-th sample.

    ``f`` is 1-D (separable: along x, then y, each scaled by ``sqrt(gain)``) or
    2-D (scaled by ``gain``); ``padding`` is ``(x0, x1, y0, y1)``.
    """
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x0, x1, y0, y1 = padding
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0) : x.shape[2] - max(-y1, 0), max(-x0, 0) : x.shape[3] - max(-x1, 0)]
    if f is None:
        return x[:, :, ::down, ::down] if down > 1 else x
    # Depthwise convolutions (one group per channel): much faster on CPU than folding
    # the channels into the batch.
    f = f.to(dtype=x.dtype).flip(list(range(f.ndim)))
    if f.ndim == 1:
        f = f * math.sqrt(gain)
        x = F.conv2d(x, f.view(1, 1, 1, -1).expand(c, 1, 1, -1), stride=(1, down), groups=c)
        return F.conv2d(x, f.view(1, 1, -1, 1).expand(c, 1, -1, 1), stride=(down, 1), groups=c)
    return F.conv2d(x, (f * gain)[None, None].expand(c, 1, -1, -1), stride=down, groups=c)


def filtered_lrelu(
    x: torch.Tensor,
    up_filter: torch.Tensor | None,
    down_filter: torch.Tensor | None,
    bias: torch.Tensor,
    up: int,
    down: int,
    padding: tuple[int, int, int, int],
    gain: float,
    slope: float,
    clamp: float | None,
) -> torch.Tensor:
    """Bias, upsample, leaky ReLU times ``gain``, clamp, low-pass and downsample."""
    x = x + bias.to(x.dtype).view(1, -1, 1, 1)
    x = upfirdn2d(x, up_filter, up=up, padding=padding, gain=up**2)
    x = F.leaky_relu(x, slope) * gain if slope != 1 else x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d(x, down_filter, down=down)


# ----------------------------------------------------------------------------------------
# Networks.


class MappingNetwork(nn.Module):
    """z -> w: pixel norm, then ``num_layers`` equalised dense layers (``fc0``, ``fc1``...).

    ``w_avg`` (NVIDIA tracks it during training) is the truncation target.
    """

    def __init__(self, z_dim: int, w_dim: int, num_layers: int = 2, lr_mul: float = 0.01) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.num_layers = z_dim, w_dim, num_layers
        dims = [z_dim] + [w_dim] * num_layers
        for i in range(num_layers):
            layer = EqualizedLinear(dims[i], dims[i + 1], lr_mul=lr_mul, activation=True)
            self.add_module(f"fc{i}", layer)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = normalize_2nd_moment(z.to(torch.float32))
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        return x


class SynthesisInput(nn.Module):
    """Fourier features ``[N, C, size, size]``, rotated/translated by an affine map of ``w``.

    ``transform`` (identity by default) is a user-set 3x3 matrix applied to the
    input coordinates (translation/rotation of the whole image).
    """

    def __init__(self, w_dim: int, spec: InputSpec) -> None:
        super().__init__()
        self.channels, self.size = spec.channels, spec.size
        self.sampling_rate, self.bandwidth = spec.sampling_rate, spec.bandwidth
        freqs = torch.randn(spec.channels, 2)
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * spec.bandwidth
        self.weight = nn.Parameter(torch.randn(spec.channels, spec.channels))
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand(spec.channels) - 0.5)
        self.affine = EqualizedLinear(w_dim, 4)
        with torch.no_grad():
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        n = w.shape[0]
        t = self.affine(w)  # (cos-ish, sin-ish, tx, ty), normalised below
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        eye = torch.eye(3, device=w.device, dtype=w.dtype)
        rotation = eye.repeat(n, 1, 1)
        rotation[:, 0, 0], rotation[:, 0, 1] = t[:, 0], -t[:, 1]
        rotation[:, 1, 0], rotation[:, 1, 1] = t[:, 1], t[:, 0]
        translation = eye.repeat(n, 1, 1)
        translation[:, 0, 2], translation[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = rotation @ translation @ self.transform[None].to(w.dtype)
        freqs = self.freqs[None].to(w.dtype)
        phases = self.phases[None].to(w.dtype) + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        amplitudes = (
            1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)
        ).clamp(0, 1)
        theta = torch.zeros(1, 2, 3, device=w.device, dtype=w.dtype)
        theta[0, 0, 0] = theta[0, 1, 1] = 0.5 * self.size / self.sampling_rate
        grid = F.affine_grid(theta, [1, 1, self.size, self.size], align_corners=False)
        # grid [1, H, W, 2] (x, y) in sampling-rate units; features [N, H, W, C]
        x = (grid.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)
        x = x + phases[:, None, None, :]
        x = torch.sin(x * (2 * math.pi)) * amplitudes[:, None, None, :]
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


class SynthesisLayer(nn.Module):
    """Modulated convolution, then the filtered leaky ReLU (or, as ToRGB, bias and clamp)."""

    def __init__(self, w_dim: int, spec: LayerSpec, config: StyleGAN3Config) -> None:
        super().__init__()
        self.spec = spec
        self.is_torgb = spec.is_torgb
        self.in_channels, self.out_channels = spec.in_channels, spec.out_channels
        self.conv_kernel = spec.conv_kernel
        self.conv_clamp = config.conv_clamp
        self.padding = spec.padding
        k = spec.conv_kernel
        self.weight = nn.Parameter(torch.randn(spec.out_channels, spec.in_channels, k, k))
        self.bias = nn.Parameter(torch.zeros(spec.out_channels))
        self.register_buffer("magnitude_ema", torch.ones(()))
        up_filter = design_lowpass_filter(
            spec.up_taps, spec.in_cutoff, spec.in_half_width * 2, spec.tmp_sampling_rate
        )
        down_filter = design_lowpass_filter(
            spec.down_taps,
            spec.out_cutoff,
            spec.out_half_width * 2,
            spec.tmp_sampling_rate,
            radial=spec.down_radial,
        )
        self.register_buffer("up_filter", up_filter)
        self.register_buffer("down_filter", down_filter)
        self.affine = EqualizedLinear(w_dim, spec.in_channels, bias_init=1.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        styles = self.affine(w)
        weight = self.weight.to(x.dtype)
        if self.is_torgb:
            styles = styles / math.sqrt(self.in_channels * self.conv_kernel**2)
        else:
            # Normalise weight and styles before modulating (NVIDIA's fp16 safety, kept in fp32).
            weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
            styles = styles * styles.square().mean().rsqrt()
        weight = weight[None] * styles[:, None, :, None, None]
        if not self.is_torgb:
            demod = (weight.square().sum(dim=[2, 3, 4], keepdim=True) + DEMODULATION_EPS).rsqrt()
            weight = weight * demod
        weight = weight * self.magnitude_ema.rsqrt().to(x.dtype)
        k = self.conv_kernel
        out = F.conv2d(
            x.reshape(1, n * self.in_channels, x.shape[2], x.shape[3]),
            weight.reshape(n * self.out_channels, self.in_channels, k, k),
            padding=k - 1,
            groups=n,
        )
        out = out.reshape(n, self.out_channels, out.shape[2], out.shape[3])
        return filtered_lrelu(
            out,
            self.up_filter,
            self.down_filter,
            self.bias,
            self.spec.up_factor,
            self.spec.down_factor,
            self.padding,
            gain=1.0 if self.is_torgb else LRELU_GAIN,
            slope=1.0 if self.is_torgb else LRELU_SLOPE,
            clamp=self.conv_clamp,
        )

    def extra_repr(self) -> str:
        s = self.spec
        return (
            f"{s.in_channels}->{s.out_channels}, size {s.in_size}->{s.out_size},"
            f" rate {s.in_sampling_rate:g}->{s.out_sampling_rate:g}, up {s.up_factor},"
            f" down {s.down_factor}, kernel {s.conv_kernel}"
        )


class SynthesisNetwork(nn.Module):
    """ws ``[N, num_ws, w_dim]`` -> image ``[N, 3, R, R]``: ``ws[0]`` drives the input,
    ``ws[i + 1]`` layer ``L{i}``."""

    def __init__(self, config: StyleGAN3Config) -> None:
        super().__init__()
        self.w_dim, self.num_ws = config.w_dim, config.num_ws
        self.resolution = config.resolution
        self.output_scale = config.output_scale
        self.input = SynthesisInput(config.w_dim, config.input_spec())
        self.layer_names = []
        for spec in config.layer_specs():
            self.add_module(spec.name, SynthesisLayer(config.w_dim, spec, config))
            self.layer_names.append(spec.name)

    def forward(
        self, ws: torch.Tensor, noise_mode: str = "const", const: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Image ``[N, 3, R, R]`` float32 from ``ws`` (a ``[N, w_dim]`` w is used for every input).

        ``noise_mode`` is checked and otherwise ignored (StyleGAN3 has no noise);
        ``const`` must be ``None`` (there is no constant input).
        """
        check_noise_mode(noise_mode)
        if const is not None:
            raise ConfigError("StyleGAN3 has no constant input; pass only w, w_plus or z")
        if ws.ndim == 2:
            ws = ws[:, None].expand(-1, self.num_ws, -1)
        if ws.ndim != 3 or tuple(ws.shape[1:]) != (self.num_ws, self.w_dim):
            raise ConfigError(
                f"w_plus must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}"
            )
        ws = ws.to(torch.float32)
        x = self.input(ws[:, 0])
        for i, name in enumerate(self.layer_names):
            x = getattr(self, name)(x, ws[:, i + 1])
        return x * self.output_scale if self.output_scale != 1 else x


class StyleGAN3Generator(nn.Module):
    """StyleGAN3 generator: ``mapping`` (z -> w) and ``synthesis`` (ws -> image).

    ``w_avg`` (``mapping.w_avg``) is the truncation target; ``has_w_avg`` says
    whether it holds a real value (from the file, or estimated) rather than the
    zeros of a fresh model.
    """

    const_shape = None  # no 4x4 constant input

    def __init__(self, config: StyleGAN3Config | None = None) -> None:
        super().__init__()
        config = config or StyleGAN3Config()
        self.config = config
        self.z_dim, self.w_dim = config.z_dim, config.w_dim
        self.num_ws, self.resolution = config.num_ws, config.resolution
        self.synthesis = SynthesisNetwork(config)
        self.mapping = MappingNetwork(
            config.z_dim, config.w_dim, config.mapping_layers, config.mapping_lr_mul
        )
        self.has_w_avg = False

    @property
    def w_avg(self) -> torch.Tensor:
        return self.mapping.w_avg

    def forward(
        self, z: torch.Tensor, truncation: float = 1.0, truncation_layers: int | None = None
    ) -> torch.Tensor:
        """z -> image, truncation toward ``w_avg`` on the first ``truncation_layers`` ws."""
        ws = self.mapping(z)[:, None].repeat(1, self.num_ws, 1)
        if truncation != 1.0:
            layers = self.num_ws if truncation_layers is None else truncation_layers
            avg = self.w_avg.to(ws.dtype)
            ws = torch.cat([avg + truncation * (ws[:, :layers] - avg), ws[:, layers:]], dim=1)
        return self.synthesis(ws)


# ----------------------------------------------------------------------------------------
# NVIDIA pickles.

#: Synthesis kwargs of NVIDIA's ``Generator`` (flat in its init kwargs) -> our config field.
_SYNTHESIS_KWARGS = {
    "channel_base": "channel_base",
    "channel_max": "channel_max",
    "num_layers": "num_layers",
    "num_critical": "num_critical",
    "first_cutoff": "first_cutoff",
    "first_stopband": "first_stopband",
    "last_stopband_rel": "last_stopband_rel",
    "margin_size": "margin_size",
    "output_scale": "output_scale",
    "conv_kernel": "conv_kernel",
    "filter_size": "filter_size",
    "lrelu_upsampling": "lrelu_upsampling",
    "use_radial_filters": "use_radial_filters",
    "conv_clamp": "conv_clamp",
}
#: Kwargs that only matter to NVIDIA's training or mixed precision.
_IGNORED_KWARGS = {"num_fp16_res", "magnitude_ema_beta", "class_name"}


def stylegan3_config_from_kwargs(kwargs: dict[str, Any], where: str) -> StyleGAN3Config:
    """Our config from the init kwargs of NVIDIA's ``networks_stylegan3.Generator``."""
    kwargs = dict(kwargs)
    fields: dict[str, Any] = {}
    for key in ("z_dim", "w_dim"):
        if key not in kwargs:
            raise CheckpointError(f"{where}: G_ema's init kwargs lack {key!r}")
        fields[key] = int(kwargs.pop(key))
    fields["resolution"] = int(kwargs.pop("img_resolution", 0))
    fields["image_channels"] = int(kwargs.pop("img_channels", 3))
    kwargs.pop("c_dim", None)
    mapping = dict(kwargs.pop("mapping_kwargs", None) or {})
    fields["mapping_layers"] = int(mapping.pop("num_layers", 2))
    fields["mapping_lr_mul"] = float(mapping.pop("lr_multiplier", 0.01))
    mapping.pop("w_avg_beta", None)
    nested = kwargs.pop("synthesis_kwargs", None) or {}
    kwargs.update(nested)
    for key in list(kwargs):
        if key in _SYNTHESIS_KWARGS:
            fields[_SYNTHESIS_KWARGS[key]] = kwargs.pop(key)
        elif key in _IGNORED_KWARGS:
            kwargs.pop(key)
    unknown = sorted(set(kwargs) | set(mapping))
    if unknown:
        raise CheckpointError(
            f"{where}: unsupported StyleGAN3 generator options {unknown}; not a generator this"
            " loader knows"
        )
    try:
        return StyleGAN3Config(**fields)
    except (ConfigError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: unsupported StyleGAN3 architecture ({exc})") from None


def _as_list(value: Any) -> list:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value, value]


def _check_geometry(network: Any, config: StyleGAN3Config, where: str) -> None:
    """Compare the geometry derived from the kwargs with the values pickled in each layer."""
    synthesis = network.module("synthesis")
    specs = config.layer_specs()
    names = list(synthesis.attr("layer_names") or [])
    expected = [spec.name for spec in specs]
    if names and names != expected:
        raise CheckpointError(
            f"{where}: the pickled layers {names} differ from those its kwargs describe"
            f" ({expected}); unsupported StyleGAN3 variant"
        )
    checks = {
        "padding": lambda s: list(s.padding),
        "up_factor": lambda s: s.up_factor,
        "down_factor": lambda s: s.down_factor,
        "up_taps": lambda s: s.up_taps,
        "down_taps": lambda s: s.down_taps,
        "down_radial": lambda s: s.down_radial,
        "conv_kernel": lambda s: s.conv_kernel,
        "in_size": lambda s: [s.in_size, s.in_size],
        "out_size": lambda s: [s.out_size, s.out_size],
        "in_sampling_rate": lambda s: s.in_sampling_rate,
        "out_sampling_rate": lambda s: s.out_sampling_rate,
        "in_cutoff": lambda s: s.in_cutoff,
        "out_cutoff": lambda s: s.out_cutoff,
        "in_half_width": lambda s: s.in_half_width,
        "out_half_width": lambda s: s.out_half_width,
    }
    source = config.input_spec()
    stored_input = synthesis.module("input")
    derived_values = {
        "channels": source.channels,
        "size": [source.size, source.size],
        "sampling_rate": source.sampling_rate,
        "bandwidth": source.bandwidth,
    }
    scalars = {"output_scale": config.output_scale, "num_ws": config.num_ws}
    mapping = network.module("mapping")
    lr_gains = {"bias_gain": config.mapping_lr_mul}
    for owner, values in (
        (stored_input, derived_values),
        (synthesis, scalars),
        *((mapping.module(f"fc{i}"), lr_gains) for i in range(config.mapping_layers)),
    ):
        for attr, ours in values.items():
            if owner is None or attr not in owner.state:
                continue
            stored = owner.state[attr]
            same = (
                [int(v) for v in _as_list(stored)] == ours
                if isinstance(ours, list)
                else math.isclose(float(stored), float(ours), rel_tol=1e-9)
            )
            if not same:
                raise CheckpointError(
                    f"{where}: {owner.class_name} has {attr}={stored!r} where its kwargs give"
                    f" {ours!r}; unsupported StyleGAN3 variant"
                )
    for spec in specs:
        layer = synthesis.module(spec.name)
        if layer is None:
            raise CheckpointError(f"{where}: layer {spec.name} is missing")
        for attr, derive in checks.items():
            if attr not in layer.state:
                continue
            stored, ours = layer.state[attr], derive(spec)
            if isinstance(ours, list):
                same = [int(v) for v in _as_list(stored)] == ours
            elif isinstance(ours, float):
                same = math.isclose(float(stored), ours, rel_tol=1e-9, abs_tol=1e-9)
            else:
                same = stored == ours
            if not same:
                raise CheckpointError(
                    f"{where}: layer {spec.name} has {attr}={stored!r} where its kwargs give"
                    f" {ours!r}; unsupported StyleGAN3 variant"
                )
        clamp = layer.attr("conv_clamp", config.conv_clamp)
        if (clamp is None) != (config.conv_clamp is None) or (
            clamp is not None and float(clamp) != config.conv_clamp
        ):
            raise CheckpointError(f"{where}: layer {spec.name} has conv_clamp={clamp!r}")


def stylegan3_from_nvidia(found: Any, where: str) -> StyleGAN3Generator:
    """Our StyleGAN3 from an NVIDIA StyleGAN3 ``G_ema`` (``checkpoints.nvidia_pickle`` reads it)."""
    network, state = found.network, found.state
    config = stylegan3_config_from_kwargs(network.init_kwargs, where)
    _check_geometry(network, config, where)
    with torch.random.fork_rng(devices=[]):
        model = build_checked(lambda: StyleGAN3Generator(config), where)
    target = model.state_dict()
    missing = [key for key in target if key not in state]
    unexpected = [key for key in state if key not in target]
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: G_ema's tensors do not match a StyleGAN3 generator of its kwargs"
            f" (missing {missing[:4]}, unexpected {unexpected[:4]})"
        )
    converted = {}
    for key, value in state.items():
        if tuple(value.shape) != tuple(target[key].shape) or not value.is_floating_point():
            raise CheckpointError(
                f"{where}: {key!r} has shape {list(value.shape)} ({value.dtype}), expected"
                f" {list(target[key].shape)} float"
            )
        converted[key] = value.detach().to(torch.float32)
    model.load_state_dict(converted, strict=True)
    model.has_w_avg = True
    return model.eval()
