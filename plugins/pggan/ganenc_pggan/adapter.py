"""The ``pggan`` generator: PGGAN behind ganenc's family-neutral :class:`GeneratorAdapter`.

``ganenc.load_generator("pggan", "celebaHQ_s6.pth")`` reads a pytorch_GAN_zoo
or genforce file (architecture inferred from it; the averaged generator
``avgG`` / ``generator_smooth`` is used when present, see
:mod:`ganenc_pggan.formats`); ``ganenc.load_generator("pggan", resolution=32,
fmaps_max=16)`` builds a random one.

Latents are ``{"z": [N, z_dim]}``, z ~ N(0, I).  Truncation scales z
(``z' = psi * z``).  Both PGGAN formats pixel-normalise z before the first
layer, so for them this changes the image only through the tiny pixel-norm
epsilon (psi = 0 gives the image of the zero vector); PGGAN has no mean latent
to truncate toward.  The encoder's target is the scaled z, so
``synthesize(encoder_targets(l, psi)) == synthesize(l, psi)`` holds exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

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
from ganenc.errors import CheckpointError, ConfigError
from ganenc.geometry import GeneratorGeometry

from .model import PGGANConfig, PGGANGenerator


class PGGANOptions(Settings):
    """Options of the ``pggan`` generator.

    With ``checkpoint`` the architecture is read from the file, and ``resolution``,
    ``z_dim``, ``fmaps_*``, ``layout`` or ``seed`` given with it are refused unless the file
    agrees (``ganenc.load_generator``); without it they describe a randomly initialised
    generator.
    """

    checkpoint: PathText | None = Field(
        None, description="pytorch_GAN_zoo or genforce .pth file (None: random weights)"
    )
    resolution: int = random_only(256, "output size of a random generator", ge=4)
    z_dim: int = random_only(512, "latent size of a random generator", ge=1)
    fmaps_base: int = random_only(16384, "channels = min(fmaps_base // res, fmaps_max)", ge=1)
    fmaps_max: int = random_only(512, "upper bound on the channels of any layer", ge=1)
    layout: Literal["gan_zoo", "genforce"] = random_only(
        "gan_zoo", "numerical conventions of a random generator"
    )
    averaged: bool = Field(
        True, description="use the averaged generator (avgG / generator_smooth) when present"
    )
    seed: Seed = random_only(0, "seed of a random generator's weights (same seed, same generator)")

    @field_validator("resolution")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError("must be a power of two (4, 8, 16, ..., 1024)")
        return value


class PGGANAdapter(GeneratorAdapter):
    """A PGGAN generator: ``{"z": [N, z_dim]}`` -> images ``[N, 3, H, W]`` (raw, not clamped)."""

    family = "pggan"

    def __init__(
        self,
        generator: PGGANGenerator,
        *,
        checkpoint: str | None = None,
        checkpoint_format: str | None = None,
        state_key: str | None = None,
    ) -> None:
        super().__init__()
        if generator.config.image_channels != 3:
            raise ValueError(
                f"ganenc needs RGB generators; this one outputs"
                f" {generator.config.image_channels} channels"
            )
        self.generator = generator
        self.resolution = generator.resolution
        self.z_dim = generator.z_dim
        self.checkpoint = checkpoint
        self.checkpoint_format = checkpoint_format
        self.state_key = state_key

    @property
    def config(self) -> PGGANConfig:
        return self.generator.config

    def geometry(self) -> GeneratorGeometry:
        return GeneratorGeometry(
            family=self.family,
            resolution=self.resolution,
            encoder_latents={"z": (self.z_dim,)},
            extra={"z_dim": self.z_dim},
        )

    def sample_latents(
        self, n: int, seed: int | None = None, device: torch.device | str | None = None
    ) -> Latents:
        """``n`` draws of z ~ N(0, I) from a seeded CPU generator (same seed, same z anywhere)."""
        z = torch.randn(check_count(n), self.z_dim, generator=seeded_generator(seed))
        return {"z": z.to(self.device if device is None else device)}

    # Deliberately alike: GeneratorAdapter.synthesize's signature (an override, not a copy)
    def synthesize(
        self,
        latents: Latents,
        truncation: float = 1.0,
        truncation_layers: int | None = None,
        noise_mode: str = "const",
    ) -> torch.Tensor:
        """Images of ``psi * z``; ``truncation_layers`` and ``noise_mode`` do not apply (no noise)."""
        check_noise_mode(noise_mode)
        z = self.encoder_targets(latents, truncation, truncation_layers)["z"]
        parameter = next(self.generator.parameters())
        return self.generator(z.to(device=parameter.device, dtype=parameter.dtype))

    def encoder_targets(
        self, latents: Latents, truncation: float = 1.0, truncation_layers: int | None = None
    ) -> Latents:
        """``{"z": psi * z}``: the latent that ``synthesize`` feeds the network."""
        if truncation_layers is not None:  # refused, not ignored: PGGAN's z has no layers
            raise ConfigError(
                "PGGAN has no per-layer truncation: truncation_layers must be None,"
                f" got {truncation_layers!r} (leave out --truncation-layers)"
            )
        psi = check_truncation(truncation)
        return {"z": self._z(latents) * psi}

    def _z(self, latents: Latents) -> torch.Tensor:
        if not isinstance(latents, Mapping):
            raise TypeError(f"latents must be a dict {{'z': tensor}}, got {type(latents).__name__}")
        keys = set(latents)
        if keys != {"z"}:
            raise ValueError(
                f"PGGAN latents are {{'z': [N, {self.z_dim}]}}; got keys {sorted(keys)}"
            )
        z = latents["z"]
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"latents['z'] must be a tensor, got {type(z).__name__}")
        if z.ndim == 4 and tuple(z.shape[2:]) == (1, 1):
            z = z.flatten(1)
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"latents['z'] must have shape [N, {self.z_dim}], got {list(z.shape)}")
        if not z.is_floating_point():
            raise TypeError(f"latents['z'] must be a floating-point tensor, got {z.dtype}")
        return z


@builds_from(PGGANOptions, "generator 'pggan'")
def load_pggan(options: PGGANOptions) -> PGGANAdapter:
    """The ``pggan`` factory: a generator from ``checkpoint``, or a random one (frozen, eval mode).

    Files of pytorch_GAN_zoo and genforce are recognised by their layout; the
    averaged generator (``avgG`` / ``generator_smooth``) is used when present
    unless ``averaged=False``.
    """
    if options.checkpoint is None:
        generator = build_checked(
            # Deliberately alike: keyword arguments spelt out at a call; nothing to share
            lambda: PGGANGenerator.from_resolution(
                options.resolution,
                z_dim=options.z_dim,
                fmaps_base=options.fmaps_base,
                fmaps_max=options.fmaps_max,
                layout=options.layout,
                seed=options.seed,
            ),
            "the generator options",
        )
        return PGGANAdapter(generator).freeze()

    from .formats import load_pggan_checkpoint

    loaded = load_pggan_checkpoint(options.checkpoint, averaged=options.averaged)
    if loaded.generator.config.image_channels != 3:
        raise CheckpointError(
            f"{options.checkpoint}: the generator outputs {loaded.generator.config.image_channels}"
            " channels; ganenc needs RGB (3-channel) generators"
        )
    adapter = PGGANAdapter(
        loaded.generator,
        checkpoint=options.checkpoint,
        checkpoint_format=loaded.format,
        state_key=loaded.state_key,
    )
    return adapter.freeze()
