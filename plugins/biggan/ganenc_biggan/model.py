"""BigGAN-deep generator in plain PyTorch, state-dict compatible with HuggingFace's port.

The module tree and parameter names follow ``pytorch_pretrained_biggan.BigGAN``
(HuggingFace's conversion of the TF-Hub BigGAN-deep modules), so its
``pytorch_model.bin`` loads with ``load_state_dict(strict=True)``.  Two
behaviours of that reference are kept on purpose, because its pretrained
weights were made for them:

* Spectral norm divides each weight by ``sigma = u . (W v)`` computed from the
  *stored* ``weight_u`` / ``weight_v`` vectors (what ``torch.nn.utils.spectral_norm``
  does in eval mode).  There is never a power iteration and never an exact
  SVD: the stored estimate can be far from the true top singular value.
* Batch norm never uses batch statistics.  Every layer stores ``n_stats`` rows
  of running means/variances, one per truncation step ``k / (n_stats - 1)``;
  a truncation between two steps mixes the two rows with the reference's
  (reversed) weights, see :func:`truncation_statistics`.

These layers behave the same in train and eval mode (the generator is never
trained here), so ``.train()`` cannot silently change the outputs.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn

#: Channel reduction inside each BigGAN-deep block (``in_channels // 4``).
BLOCK_REDUCTION = 4

#: ``gen_z`` outputs ``4 * 4 * GEN_Z_MULTIPLIER * channel_width`` features.
GEN_Z_MULTIPLIER = 16

# Deliberately alike: published BigGAN-deep layer tables, row by row as in the releases
#: BigGAN-deep layer lists ``(upsample, in_multiplier, out_multiplier)`` per output size.
#: 128/256/512 are the published models; 64 is 128 without its first block pair
#: (the layout of the test fixture) and 32 a tiny variant for tests.
#: The tables repeat rows on purpose: they are data, kept row by row to compare
#: with the published configurations.
DEFAULT_LAYERS: dict[int, list[tuple[bool, int, int]]] = {
    32: [(False, 16, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2), (False, 2, 2), (True, 2, 1)],
    64: [
        (False, 16, 16),
        (True, 16, 8),
        (False, 8, 8),
        (True, 8, 4),
        (False, 4, 4),
        (True, 4, 2),
        (False, 2, 2),
        (True, 2, 1),
    ],
    128: [
        (False, 16, 16),
        (True, 16, 16),
        (False, 16, 16),
        (True, 16, 8),
        (False, 8, 8),
        (True, 8, 4),
        (False, 4, 4),
        (True, 4, 2),
        (False, 2, 2),
        (True, 2, 1),
    ],
    256: [
        (False, 16, 16),
        (True, 16, 16),
        (False, 16, 16),
        (True, 16, 8),
        (False, 8, 8),
        (True, 8, 8),
        (False, 8, 8),
        (True, 8, 4),
        (False, 4, 4),
        (True, 4, 2),
        (False, 2, 2),
        (True, 2, 1),
    ],
    512: [
        (False, 16, 16),
        (True, 16, 16),
        (False, 16, 16),
        (True, 16, 8),
        (False, 8, 8),
        (True, 8, 8),
        (False, 8, 8),
        (True, 8, 4),
        (False, 4, 4),
        (True, 4, 2),
        (False, 2, 2),
        (True, 2, 1),
        (False, 1, 1),
        (True, 1, 1),
    ],
}

#: Where self-attention sits (index into ``layers``) for each default layout.
DEFAULT_ATTENTION_POSITION: dict[int, int] = {32: 4, 64: 6, 128: 8, 256: 8, 512: 8}


@dataclass
class BigGANConfig:
    """The fields of HuggingFace's ``config.json`` (``BigGANConfig.to_json_string()``).

    ``layers`` lists ``(upsample, in_multiplier, out_multiplier)`` per block;
    channels are multipliers times ``channel_width``.  Self-attention is
    inserted before block ``attention_layer_position`` (none if that index is
    past the end).  ``class_embed_dim`` is stored for round trips only: like the
    reference, the class embedding has ``z_dim`` features.
    """

    output_dim: int = 128
    z_dim: int = 128
    class_embed_dim: int = 128
    channel_width: int = 128
    num_classes: int = 1000
    layers: list[tuple[bool, int, int]] = field(default_factory=lambda: list(DEFAULT_LAYERS[128]))
    attention_layer_position: int = 8
    eps: float = 1e-4
    n_stats: int = 51

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, data: dict) -> BigGANConfig:
        """Missing keys take the reference defaults; unknown keys are an error (``ValueError``)."""
        unknown = sorted(set(data) - set(cls.field_names()))
        if unknown:
            raise ValueError(
                f"unknown BigGAN config field(s) {unknown}; known: {', '.join(cls.field_names())}"
            )
        values = dict(data)
        if "layers" in values:
            values["layers"] = _parse_layers(values["layers"])
        config = cls(**values)
        config.validate()
        return config

    # Deliberately alike: only the parameter list matches another signature; the bodies differ
    @classmethod
    def for_resolution(
        cls,
        resolution: int = 128,
        channel_width: int = 128,
        z_dim: int = 128,
        num_classes: int = 1000,
        n_stats: int = 51,
        eps: float = 1e-4,
        layers: list[tuple[bool, int, int]] | None = None,
        attention_layer_position: int | None = None,
    ) -> BigGANConfig:
        """A config for a (random) generator: the default BigGAN-deep layout of that size."""
        if layers is None:
            if resolution not in DEFAULT_LAYERS:
                raise ValueError(
                    f"no default BigGAN-deep layer list for resolution {resolution};"
                    f" choose one of {sorted(DEFAULT_LAYERS)} or pass layers=[...]"
                )
            layers = DEFAULT_LAYERS[resolution]
        if attention_layer_position is None:
            attention_layer_position = DEFAULT_ATTENTION_POSITION.get(resolution, len(layers))
        # Deliberately alike: keyword arguments spelt out at a call; nothing to share
        config = cls(
            output_dim=resolution,
            z_dim=z_dim,
            class_embed_dim=z_dim,
            channel_width=channel_width,
            num_classes=num_classes,
            layers=_parse_layers(layers),
            attention_layer_position=attention_layer_position,
            eps=eps,
            n_stats=n_stats,
        )
        config.validate()
        return config

    def to_dict(self) -> dict:
        data = asdict(self)
        data["layers"] = [list(layer) for layer in self.layers]
        return data

    def to_json_string(self) -> str:
        """Same layout as the reference writer (sorted keys, indent 2)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @property
    def condition_dim(self) -> int:
        """``cat(z, class embedding)``: both have ``z_dim`` features."""
        return 2 * self.z_dim

    @property
    def has_attention(self) -> bool:
        return 0 <= self.attention_layer_position < len(self.layers)

    def validate(self) -> None:
        """``ValueError`` naming the first field that cannot build a working generator."""
        for name in ("z_dim", "channel_width", "num_classes", "output_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.n_stats, int) or self.n_stats < 2:
            raise ValueError(f"n_stats must be an integer >= 2, got {self.n_stats!r}")
        if not isinstance(self.eps, int | float) or not 0 < self.eps < math.inf:
            raise ValueError(f"eps must be a positive number, got {self.eps!r}")
        if not self.layers:
            raise ValueError("layers is empty")
        width = self.channel_width
        multiplier = GEN_Z_MULTIPLIER
        size = 4
        for index, (upsample, in_mult, out_mult) in enumerate(self.layers):
            where = f"layers[{index}] = {[upsample, in_mult, out_mult]}"
            if in_mult != multiplier:
                raise ValueError(
                    f"{where}: input multiplier must be {multiplier} (previous output)"
                )
            if out_mult < 1 or (in_mult * width) // BLOCK_REDUCTION < 1:
                raise ValueError(f"{where}: too few channels for channel_width {width}")
            if out_mult != in_mult and out_mult * width != (in_mult * width) // 2:
                raise ValueError(
                    f"{where}: a block may only keep or halve its channels (its skip path"
                    " keeps the first half)"
                )
            if index == self.attention_layer_position and (in_mult * width) // 8 < 1:
                raise ValueError(
                    f"self-attention before {where} needs at least 8 channels,"
                    f" has {in_mult * width}"
                )
            multiplier = out_mult
            size *= 2 if upsample else 1
        if multiplier != 1:
            raise ValueError(
                f"the last block must output channel_width channels (multiplier 1), got {multiplier}"
            )
        if size != self.output_dim:
            raise ValueError(
                f"layers upsample 4 px to {size} px but output_dim is {self.output_dim}"
            )


def _parse_layers(layers) -> list[tuple[bool, int, int]]:
    try:
        parsed = [(bool(up), int(a), int(b)) for up, a, b in layers]
    except (TypeError, ValueError):
        raise ValueError(
            f"layers must be a list of [upsample, in_multiplier, out_multiplier], got {layers!r}"
        ) from None
    return parsed


# -- spectral norm with stored vectors ---------------------------------------------------


def stored_spectral_norm(
    weight_orig: torch.Tensor, u: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """``weight_orig / (u . W v)``: eval-mode ``torch.nn.utils.spectral_norm`` with stored u, v.

    The stored ``u``/``v`` come from one power-iteration step, so this sigma is an
    *estimate*; the pretrained weights expect exactly this estimate.
    """
    matrix = weight_orig.reshape(weight_orig.shape[0], -1)
    sigma = torch.dot(u, torch.mv(matrix, v))
    return weight_orig / sigma


class _StoredSpectralNorm(nn.Module):
    """Holds ``weight_orig`` (parameter) and ``weight_u`` / ``weight_v`` (buffers)."""

    def _init_spectral(self, weight_shape: tuple[int, ...], bias: bool) -> None:
        out_features = weight_shape[0]
        in_features = math.prod(weight_shape[1:])
        self.weight_orig = nn.Parameter(torch.empty(weight_shape))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.register_buffer("weight_u", torch.ones(out_features) / math.sqrt(out_features))
        self.register_buffer("weight_v", torch.ones(in_features) / math.sqrt(in_features))

    @property
    def weight(self) -> torch.Tensor:
        return stored_spectral_norm(self.weight_orig, self.weight_u, self.weight_v)

    @torch.no_grad()
    def reset_power_iteration(self, seed_generator: torch.Generator, steps: int = 1) -> None:
        """New ``u``/``v`` from ``steps`` power iterations from a random ``u`` (as the converter did)."""
        matrix = self.weight_orig.reshape(self.weight_orig.shape[0], -1).float()
        u = torch.randn(matrix.shape[0], generator=seed_generator)
        u = F.normalize(u, dim=0)
        for _ in range(steps):
            v = F.normalize(torch.mv(matrix.t(), u), dim=0, eps=1e-12)
            u = F.normalize(torch.mv(matrix, v), dim=0, eps=1e-12)
        self.weight_v.copy_(v)
        self.weight_u.copy_(u)


class SNLinear(_StoredSpectralNorm):
    """Spectrally normalised linear layer (state dict: ``weight_orig, weight_u, weight_v[, bias]``)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self._init_spectral((out_features, in_features), bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class SNConv2d(_StoredSpectralNorm):
    """Spectrally normalised ``kernel x kernel`` convolution, stride 1, 'same' padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True):
        super().__init__()
        self.padding = kernel_size // 2
        self._init_spectral((out_channels, in_channels, kernel_size, kernel_size), bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, padding=self.padding)


# -- truncation-indexed batch norm --------------------------------------------------------


def truncation_statistics(
    means: torch.Tensor, variances: torch.Tensor, truncation: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The running mean/var for ``truncation`` from rows stored per truncation step.

    Row ``k`` belongs to truncation ``k / (n_stats - 1)``.  Between two rows the
    reference mixes ``rows[k] * coef + rows[k + 1] * (1 - coef)`` with
    ``coef, k = modf(truncation / step)``: the *reverse* of linear interpolation,
    kept because the pretrained weights were evaluated that way.
    """
    step = 1.0 / (means.shape[0] - 1)
    coef, start = math.modf(truncation / step)
    start = int(start)
    if coef == 0.0:
        return means[start], variances[start]
    following = min(start + 1, means.shape[0] - 1)  # only reached through float rounding at t=1
    mean = means[start] * coef + means[following] * (1 - coef)
    variance = variances[start] * coef + variances[following] * (1 - coef)
    return mean, variance


class ConditionalStatsBatchNorm(nn.Module):
    """Batch norm with stored per-truncation statistics and a class/z-conditional gain and bias."""

    def __init__(self, channels: int, condition_dim: int, n_stats: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("running_means", torch.zeros(n_stats, channels))
        self.register_buffer("running_vars", torch.ones(n_stats, channels))
        self.scale = SNLinear(condition_dim, channels, bias=False)
        self.offset = SNLinear(condition_dim, channels, bias=False)

    def forward(self, x: torch.Tensor, condition: torch.Tensor, truncation: float) -> torch.Tensor:
        mean, variance = truncation_statistics(self.running_means, self.running_vars, truncation)
        mean = mean[None, :, None, None]
        variance = variance[None, :, None, None]
        gain = 1 + self.scale(condition)[:, :, None, None]
        bias = self.offset(condition)[:, :, None, None]
        return (x - mean) / torch.sqrt(variance + self.eps) * gain + bias


class StatsBatchNorm(nn.Module):
    """Unconditional batch norm (``weight``/``bias``) with per-truncation statistics."""

    def __init__(self, channels: int, n_stats: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("running_means", torch.zeros(n_stats, channels))
        self.register_buffer("running_vars", torch.ones(n_stats, channels))
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, truncation: float) -> torch.Tensor:
        mean, variance = truncation_statistics(self.running_means, self.running_vars, truncation)
        return F.batch_norm(
            x, mean, variance, self.weight, self.bias, training=False, momentum=0.0, eps=self.eps
        )


# -- blocks ---------------------------------------------------------------------------------


class SelfAttention(nn.Module):
    """SAGAN self-attention with 2x2 max-pooled keys/values and a learned residual gain."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.snconv1x1_theta = SNConv2d(channels, channels // 8, 1, bias=False)
        self.snconv1x1_phi = SNConv2d(channels, channels // 8, 1, bias=False)
        self.snconv1x1_g = SNConv2d(channels, channels // 2, 1, bias=False)
        self.snconv1x1_o_conv = SNConv2d(channels // 2, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        queries = self.snconv1x1_theta(x).reshape(batch, channels // 8, height * width)
        keys = F.max_pool2d(self.snconv1x1_phi(x), 2).reshape(batch, channels // 8, -1)
        values = F.max_pool2d(self.snconv1x1_g(x), 2).reshape(batch, channels // 2, -1)
        attention = torch.softmax(torch.bmm(queries.transpose(1, 2), keys), dim=-1)
        attended = torch.bmm(values, attention.transpose(1, 2))
        attended = self.snconv1x1_o_conv(attended.reshape(batch, channels // 2, height, width))
        return x + self.gamma * attended


class GenBlock(nn.Module):
    """BigGAN-deep residual block: 1x1 down, two 3x3, 1x1 up, each after conditional BN + ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        condition_dim: int,
        upsample: bool,
        n_stats: int,
        eps: float,
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.drop_channels = in_channels != out_channels
        middle = in_channels // BLOCK_REDUCTION
        self.bn_0 = ConditionalStatsBatchNorm(in_channels, condition_dim, n_stats, eps)
        self.conv_0 = SNConv2d(in_channels, middle, 1)
        self.bn_1 = ConditionalStatsBatchNorm(middle, condition_dim, n_stats, eps)
        self.conv_1 = SNConv2d(middle, middle, 3)
        self.bn_2 = ConditionalStatsBatchNorm(middle, condition_dim, n_stats, eps)
        self.conv_2 = SNConv2d(middle, middle, 3)
        self.bn_3 = ConditionalStatsBatchNorm(middle, condition_dim, n_stats, eps)
        self.conv_3 = SNConv2d(middle, out_channels, 1)

    def forward(self, x: torch.Tensor, condition: torch.Tensor, truncation: float) -> torch.Tensor:
        skip = x
        x = self.conv_0(F.relu(self.bn_0(x, condition, truncation)))
        x = F.relu(self.bn_1(x, condition, truncation))
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv_1(x)
        x = self.conv_2(F.relu(self.bn_2(x, condition, truncation)))
        x = self.conv_3(F.relu(self.bn_3(x, condition, truncation)))
        if self.drop_channels:
            skip = skip[:, : skip.shape[1] // 2]
        if self.upsample:
            skip = F.interpolate(skip, scale_factor=2, mode="nearest")
        return x + skip


class Generator(nn.Module):
    """Condition vector ``cat(z, class embedding)`` -> image in [-1, 1]."""

    def __init__(self, config: BigGANConfig) -> None:
        super().__init__()
        width = config.channel_width
        self.channel_width = width
        self.gen_z = SNLinear(config.condition_dim, 4 * 4 * GEN_Z_MULTIPLIER * width)
        layers: list[nn.Module] = []
        for index, (upsample, in_mult, out_mult) in enumerate(config.layers):
            if index == config.attention_layer_position:
                layers.append(SelfAttention(in_mult * width))
            layers.append(
                GenBlock(
                    in_mult * width,
                    out_mult * width,
                    config.condition_dim,
                    upsample,
                    config.n_stats,
                    config.eps,
                )
            )
        self.layers = nn.ModuleList(layers)
        self.bn = StatsBatchNorm(width, config.n_stats, config.eps)
        self.conv_to_rgb = SNConv2d(width, width, 3)

    def forward(self, condition: torch.Tensor, truncation: float) -> torch.Tensor:
        x = self.gen_z(condition)
        # The TF weights produce NHWC features: [N, 4, 4, C] -> NCHW.
        x = x.reshape(-1, 4, 4, GEN_Z_MULTIPLIER * self.channel_width).permute(0, 3, 1, 2)
        x = x.contiguous()
        for layer in self.layers:
            x = layer(x, condition, truncation) if isinstance(layer, GenBlock) else layer(x)
        x = self.conv_to_rgb(F.relu(self.bn(x, truncation)))
        return torch.tanh(x[:, :3])


class BigGAN(nn.Module):
    """BigGAN-deep: ``forward(z [N, z_dim], class_vector [N, num_classes], truncation)``.

    ``truncation`` (0 < t <= 1) selects the batch-norm statistics; it does not
    scale ``z`` (the caller samples ``z`` as ``t * truncnorm(-2, 2)``).
    """

    def __init__(self, config: BigGANConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.embeddings = nn.Linear(config.num_classes, config.z_dim, bias=False)
        self.generator = Generator(config)

    def forward(
        self, z: torch.Tensor, class_vector: torch.Tensor, truncation: float
    ) -> torch.Tensor:
        truncation = check_truncation(truncation)
        condition = torch.cat((z, self.embeddings(class_vector)), dim=1)
        return self.generator(condition, truncation)

    @torch.no_grad()
    def init_random_weights(self, seed: int = 0) -> BigGAN:
        """Reproducible random weights for tests: they give finite, varied (not pretty) images.

        Statistics rows differ per truncation step, so truncation changes the
        output, and the attention gain is non-zero, so attention takes part.
        """
        generator = torch.Generator().manual_seed(int(seed))
        for name, parameter in self.named_parameters():
            if name.endswith("gamma"):
                parameter.fill_(0.5)
            elif name == "generator.bn.weight":
                parameter.copy_(1 + 0.1 * torch.rand(parameter.shape, generator=generator))
            elif name.endswith("bias"):
                parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))
            else:
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
        self.embeddings.weight.mul_(0.5)
        for module in self.modules():
            if isinstance(module, _StoredSpectralNorm):
                module.reset_power_iteration(generator, steps=3)
            if isinstance(module, ConditionalStatsBatchNorm | StatsBatchNorm):
                shape = module.running_means.shape
                module.running_means.copy_(0.2 * torch.randn(shape, generator=generator))
                module.running_vars.copy_(1 + 0.5 * torch.rand(shape, generator=generator))
        return self


def check_truncation(truncation: float) -> float:
    """BigGAN's truncation as a Python float in (0, 1] (the reference asserts this range)."""
    if isinstance(truncation, torch.Tensor):
        if truncation.numel() != 1:
            raise ValueError(
                f"truncation must be one number, got a tensor of shape {list(truncation.shape)}"
            )
        truncation = truncation.item()
    try:
        value = float(truncation)
    except (TypeError, ValueError):
        raise ValueError(f"truncation must be a number in (0, 1], got {truncation!r}") from None
    if not 0.0 < value <= 1.0:
        raise ValueError(f"BigGAN truncation must be in (0, 1], got {value}")
    return value
