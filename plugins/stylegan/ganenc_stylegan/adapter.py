"""The StyleGAN generator adapters ("stylegan2", "stylegan1", "stylegan3"): one interface.

Both families expose the same model interface (``mapping``, ``synthesis``,
``w_avg``...), so :class:`StyleGANAdapter` holds no family-specific code.

Latents are dicts with exactly one of

- ``"z"``      ``[N, z_dim]``: prior samples, mapped to w by the mapping network;
- ``"w"``      ``[N, w_dim]``: one w, used for every layer;
- ``"w_plus"`` ``[N, num_ws, w_dim]``: one w per layer;

and optionally ``"const"`` ``[N, C, 4, 4]``, which replaces the learned constant
input of the synthesis network (the encoder predicts it).  The encoder's
targets are ``{"w_plus", "const"}`` (see :meth:`StyleGANAdapter.encoder_targets`).

StyleGAN3 (:class:`StyleGAN3Adapter`) has no constant: its latents and encoder
targets are ``w_plus`` only.

Options (validated by :class:`StyleGAN2Options` / :class:`StyleGAN1Options` /
:class:`StyleGAN3Options`):
with ``checkpoint`` the architecture comes from the file, and an architecture option
(``random_only``) given with it is refused unless the file agrees (``ganenc.load_generator``);
without it a randomly initialised generator is built from them, reproducibly from ``seed``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field, field_validator

from ganenc.adapters import (
    GeneratorAdapter,
    Latents,
    check_count,
    check_noise_mode,
    check_truncation,
    seeded_generator,
)
from ganenc.checkpoints import build_checked
from ganenc.config import PathText, Seed, Settings, builds_from, random_only
from ganenc.errors import ConfigError
from ganenc.geometry import GeneratorGeometry

from .average_latent import ensure_w_avg
from .checkpoints.dispatch import (
    load_stylegan1_checkpoint,
    load_stylegan2_checkpoint,
    load_stylegan3_checkpoint,
)
from .stylegan2 import StyleGAN2Config, StyleGAN2Generator, is_power_of_two, truncate_w_plus

MIN_RESOLUTION = 32
MAX_RESOLUTION = 1024
LATENT_KEYS = ("z", "w", "w_plus")


class _StyleGANOptions(Settings):
    """Options shared by both StyleGAN families."""

    checkpoint: PathText | None = Field(
        None, description="checkpoint file; None builds a randomly initialised generator"
    )
    resolution: int = random_only(256, "output size of a random generator (32..1024)")
    z_dim: int = random_only(512, "latent z size (random init only)", ge=1)
    w_dim: int = random_only(512, "intermediate w size (random init only)", ge=1)
    mapping_layers: int = random_only(8, "mapping depth (random init only)", ge=1)
    channel_base: int = random_only(16384, "channels = channel_base / resolution ...", ge=1)
    channel_max: int = random_only(512, "... capped at channel_max (random init only)", ge=1)
    seed: Seed = random_only(0, "seed of the random initialisation")

    @field_validator("resolution")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if not is_power_of_two(value) or not MIN_RESOLUTION <= value <= MAX_RESOLUTION:
            raise ValueError(
                f"resolution must be a power of two from {MIN_RESOLUTION} to {MAX_RESOLUTION}"
                " (32, 64, 128, 256, 512 or 1024)"
            )
        return value


class StyleGAN2Options(_StyleGANOptions):
    """Options of the "stylegan2" generator (config F)."""

    channel_multiplier: int = random_only(
        2, "2 for config F; channels = channel_base * multiplier / resolution", ge=1
    )


class StyleGAN1Options(_StyleGANOptions):
    """Options of the "stylegan1" generator."""


class StyleGAN3Options(_StyleGANOptions):
    """Options of the "stylegan3" generator (random init: NVIDIA's config T or R)."""

    mapping_layers: int = random_only(2, "mapping depth (random init only)", ge=1)
    channel_base: int = random_only(
        32768, "channels = channel_base / 2 / cutoff ... (random init only)", ge=1
    )
    config: Literal["t", "r"] = random_only(
        "t",
        "'t' (3x3 convs) or 'r' (1x1 convs, radial filters; NVIDIA's public R"
        " models use channel_base 65536, channel_max 1024) (random init only)",
    )


class StyleGANAdapter(GeneratorAdapter):
    """A StyleGAN1 or StyleGAN2 generator behind the family-neutral adapter interface.

    Public contract (besides :class:`~ganenc.adapters.GeneratorAdapter`):

    - ``resolution``, ``num_ws``, ``w_dim``, ``z_dim``, ``const_shape``;
    - ``sample_latents(n, seed, device) -> {"z": [n, z_dim]}``, reproducible from ``seed``;
    - ``mapping(z) -> w [N, w_dim]``;
    - ``synthesize(latents, truncation, truncation_layers, noise_mode) -> [N, 3, R, R]``
      float32, raw (not clamped);
    - ``encoder_targets(latents, truncation, truncation_layers) -> {"w_plus", "const"}``
      with ``synthesize(encoder_targets(l, t, k)) == synthesize(l, t, k)``;
    - ``w_avg``: the average w used by truncation (estimated once when the file has none).

    Truncation pulls each w of the first ``truncation_layers`` layers (all when
    ``None``) toward ``w_avg``: ``w' = w_avg + psi * (w - w_avg)``.
    """

    def __init__(self, model: torch.nn.Module, family: str, checkpoint: str | None = None) -> None:
        super().__init__()
        self.model = model
        self.family = family
        self.resolution = int(model.resolution)
        self.checkpoint = checkpoint

    # -- sizes -------------------------------------------------------------------------
    @property
    def z_dim(self) -> int:
        return int(self.model.z_dim)

    @property
    def w_dim(self) -> int:
        return int(self.model.w_dim)

    @property
    def num_ws(self) -> int:
        return int(self.model.num_ws)

    @property
    def const_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.model.const_shape)  # type: ignore[return-value]

    @property
    def w_avg(self) -> torch.Tensor:
        """The average w ``[w_dim]``; estimated from the mapping network once if the file had none."""
        return ensure_w_avg(self.model)

    def geometry(self) -> GeneratorGeometry:
        """The encoder predicts ``w_plus`` and the 4x4 constant."""
        return GeneratorGeometry(
            family=self.family,
            resolution=self.resolution,
            encoder_latents={"w_plus": (self.num_ws, self.w_dim), "const": self.const_shape},
            extra={"z_dim": self.z_dim, "w_dim": self.w_dim, "num_ws": self.num_ws},
        )

    # -- latents -----------------------------------------------------------------------
    def sample_latents(
        self, n: int, seed: int | None = None, device: torch.device | str | None = None
    ) -> Latents:
        """``{"z": [n, z_dim]}`` from N(0, 1), drawn on the CPU from ``seed`` (same on any device)."""
        z = torch.randn(check_count(n), self.z_dim, generator=seeded_generator(seed))
        return {"z": z.to(device if device is not None else self.device)}

    def _prepare(self, tensor: torch.Tensor, key: str, shape: tuple[int, ...]) -> torch.Tensor:
        if not isinstance(tensor, torch.Tensor):
            raise ConfigError(f"latent {key!r} must be a tensor, got {type(tensor).__name__}")
        if tensor.ndim != len(shape) + 1 or tuple(tensor.shape[1:]) != shape:
            wanted = ", ".join(str(s) for s in ("N", *shape))
            raise ConfigError(
                f"latent {key!r} of a {self.family} generator must have shape [{wanted}],"
                f" got {list(tensor.shape)}"
            )
        return tensor.to(device=self.device, dtype=self.model.w_avg.dtype)

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """``z [N, z_dim] -> w [N, w_dim]`` (z is pixel-normalised first, as in the reference)."""
        return self.model.mapping(self._prepare(z, "z", (self.z_dim,)))

    def _split(self, latents: Latents) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``latents`` -> (w+ before truncation, the const replacement or None)."""
        if not isinstance(latents, dict):
            raise ConfigError(f"latents must be a dict of tensors, got {type(latents).__name__}")
        unknown = sorted(set(latents) - {*LATENT_KEYS, "const"})
        if unknown:
            raise ConfigError(
                f"unknown latent key(s) {unknown} for a {self.family} generator;"
                f" use one of {list(LATENT_KEYS)}, optionally with 'const'"
            )
        given = [key for key in LATENT_KEYS if key in latents]
        if len(given) != 1:
            raise ConfigError(
                f"latents need exactly one of {list(LATENT_KEYS)}, got {given or 'none'}"
            )
        key = given[0]
        if key == "z":
            w_plus = self.mapping(latents["z"])[:, None].repeat(1, self.num_ws, 1)
        elif key == "w":
            w = self._prepare(latents["w"], "w", (self.w_dim,))
            w_plus = w[:, None].repeat(1, self.num_ws, 1)
        else:
            w_plus = self._prepare(latents["w_plus"], "w_plus", (self.num_ws, self.w_dim))
        const = latents.get("const")
        if const is not None:
            const = self._prepare(const, "const", self.const_shape)
            if const.shape[0] != w_plus.shape[0]:
                raise ConfigError(
                    f"latent 'const' has batch {const.shape[0]}, but {key!r} has {w_plus.shape[0]}"
                )
        return w_plus, const

    def truncate(
        self, w_plus: torch.Tensor, truncation: float = 1.0, truncation_layers: int | None = None
    ) -> torch.Tensor:
        """``w_avg + psi * (w - w_avg)`` on the first ``truncation_layers`` layers of ``w_plus``."""
        truncation = check_truncation(truncation)
        if truncation_layers is not None and (
            not isinstance(truncation_layers, int) or truncation_layers < 0
        ):
            raise ConfigError(
                f"truncation_layers must be None or an integer >= 0, got {truncation_layers!r}"
            )
        layers = self.num_ws if truncation_layers is None else min(truncation_layers, self.num_ws)
        if truncation == 1.0 or layers == 0:
            return w_plus  # before reading w_avg: reading it may estimate it
        return truncate_w_plus(w_plus, self.w_avg, truncation, layers)

    # Deliberately alike: GeneratorAdapter.synthesize's signature (an override, not a copy)
    def synthesize(
        self,
        latents: Latents,
        truncation: float = 1.0,
        truncation_layers: int | None = None,
        noise_mode: str = "const",
    ) -> torch.Tensor:
        """Images ``[N, 3, R, R]`` float32, raw.

        ``noise_mode``: ``"const"`` the checkpoint's fixed noise (deterministic),
        ``"random"`` fresh noise, ``"none"`` no noise.
        """
        check_noise_mode(noise_mode)
        w_plus, const = self._split(latents)
        w_plus = self.truncate(w_plus, truncation, truncation_layers)
        image = self.model.synthesis(w_plus, noise_mode=noise_mode, const=const)
        return image.float()

    def training_truncation(self) -> dict:
        """The reference's training images: psi 0.7 on the first 8 layers (fewer if fewer)."""
        return {"truncation": 0.7, "truncation_layers": min(8, self.num_ws)}

    def encoder_targets(
        self, latents: Latents, truncation: float = 1.0, truncation_layers: int | None = None
    ) -> Latents:
        """``{"w_plus": truncated w+ [N, num_ws, w_dim], "const": [N, C, 4, 4]}``.

        ``const`` is the latents' own when given, else the learned constant.
        """
        w_plus, const = self._split(latents)
        w_plus = self.truncate(w_plus, truncation, truncation_layers)
        if const is None:
            learned = self.model_const()
            const = learned.expand(w_plus.shape[0], -1, -1, -1).clone()
        return {"w_plus": w_plus, "const": const}

    def model_const(self) -> torch.Tensor:
        """The learned constant input ``[1, C, 4, 4]``."""
        for name in ("synthesis", "synthesis_network"):
            network = getattr(self.model, name, None)
            if isinstance(network, torch.nn.Module) and isinstance(
                getattr(network, "const", None), torch.Tensor
            ):
                return network.const
        raise AttributeError(f"{type(self.model).__name__} exposes no constant input")

    def forward(self, latents: Latents, **kwargs: Any) -> torch.Tensor:
        return self.synthesize(latents, **kwargs)

    def extra_repr(self) -> str:
        return (
            f"family={self.family}, resolution={self.resolution}, num_ws={self.num_ws},"
            f" w_dim={self.w_dim}, checkpoint={self.checkpoint!r}"
        )


class StyleGAN3Adapter(StyleGANAdapter):
    """A StyleGAN3 generator: the StyleGAN adapter without the 4x4 constant.

    Latents are ``z``, ``w`` or ``w_plus`` (``num_ws = num_layers + 2``, 16 in
    every public model; ``ws[0]`` drives the Fourier-feature input); the
    encoder predicts ``w_plus`` alone.
    """

    @property
    def const_shape(self) -> tuple[int, int, int]:
        raise AttributeError("StyleGAN3 has no constant input")

    def geometry(self) -> GeneratorGeometry:
        """The encoder predicts ``w_plus`` ``[num_ws, w_dim]`` in the generator's order."""
        return GeneratorGeometry(
            family=self.family,
            resolution=self.resolution,
            encoder_latents={"w_plus": (self.num_ws, self.w_dim)},
            extra={"z_dim": self.z_dim, "w_dim": self.w_dim, "num_ws": self.num_ws},
        )

    def _split(self, latents: Latents) -> tuple[torch.Tensor, torch.Tensor | None]:
        if isinstance(latents, dict) and "const" in latents:
            raise ConfigError(
                "a stylegan3 generator has no constant input: give one of"
                f" {list(LATENT_KEYS)} without 'const'"
            )
        return super()._split(latents)

    def encoder_targets(
        self, latents: Latents, truncation: float = 1.0, truncation_layers: int | None = None
    ) -> Latents:
        """``{"w_plus": truncated w+ [N, num_ws, w_dim]}``."""
        w_plus, _ = self._split(latents)
        return {"w_plus": self.truncate(w_plus, truncation, truncation_layers)}

    def model_const(self) -> torch.Tensor:
        raise AttributeError("StyleGAN3 has no constant input")


def _seeded(seed: int, build: Any) -> Any:
    """Run ``build()`` with the CPU RNG seeded, leaving the global RNG state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_checked(build, "the generator options")


# Deliberately alike: each factory maps its options onto its own generator's config fields
@builds_from(StyleGAN2Options, "generator 'stylegan2'")
def load_stylegan2(opts: StyleGAN2Options) -> StyleGANAdapter:
    """The "stylegan2" generator: from a rosinality/genforce ``checkpoint``, or random.

    Called with the fields of :class:`StyleGAN2Options` (validated once, by the registry or here).
    """
    if opts.checkpoint:
        model = load_stylegan2_checkpoint(opts.checkpoint)
    else:
        config = StyleGAN2Config(
            resolution=opts.resolution,
            z_dim=opts.z_dim,
            w_dim=opts.w_dim,
            mapping_layers=opts.mapping_layers,
            channel_base=opts.channel_base,
            channel_multiplier=opts.channel_multiplier,
            channel_max=opts.channel_max,
        )
        model = _seeded(opts.seed, lambda: StyleGAN2Generator(config))
    return StyleGANAdapter(model, "stylegan2", opts.checkpoint).freeze()


# Deliberately alike: each factory maps its options onto its own generator's config fields
@builds_from(StyleGAN1Options, "generator 'stylegan1'")
def load_stylegan1(opts: StyleGAN1Options) -> StyleGANAdapter:
    """The "stylegan1" generator: from a genforce ``checkpoint``, or random.

    Called with the fields of :class:`StyleGAN1Options` (validated once, by the registry or here).
    """
    if opts.checkpoint:
        model = load_stylegan1_checkpoint(opts.checkpoint)
    else:
        from .stylegan1 import StyleGAN1Config, StyleGAN1Generator

        config = StyleGAN1Config(
            resolution=opts.resolution,
            z_dim=opts.z_dim,
            w_dim=opts.w_dim,
            mapping_layers=opts.mapping_layers,
            mapping_fmaps=opts.w_dim,
            fmaps_base=opts.channel_base,
            fmaps_max=opts.channel_max,
        )
        model = _seeded(opts.seed, lambda: StyleGAN1Generator(config))
    return StyleGANAdapter(model, "stylegan1", opts.checkpoint).freeze()


# Deliberately alike: each factory maps its options onto its own generator's config fields
@builds_from(StyleGAN3Options, "generator 'stylegan3'")
def load_stylegan3(opts: StyleGAN3Options) -> StyleGAN3Adapter:
    """The "stylegan3" generator: from NVIDIA's ``.pkl`` (``G_ema``), or random.

    Called with the fields of :class:`StyleGAN3Options` (validated once, by the registry or here).
    """
    if opts.checkpoint:
        model = load_stylegan3_checkpoint(opts.checkpoint)
    else:
        from .stylegan3 import StyleGAN3Config, StyleGAN3Generator

        config = StyleGAN3Config(
            resolution=opts.resolution,
            z_dim=opts.z_dim,
            w_dim=opts.w_dim,
            mapping_layers=opts.mapping_layers,
            channel_base=opts.channel_base,
            channel_max=opts.channel_max,
            conv_kernel=1 if opts.config == "r" else 3,
            use_radial_filters=opts.config == "r",
        )
        model = _seeded(opts.seed, lambda: StyleGAN3Generator(config))
    return StyleGAN3Adapter(model, "stylegan3", opts.checkpoint).freeze()
