"""The generator adapter: one interface over every GAN family.

The training loop, inversion and editing talk only to this interface, so they
contain no family-specific code.  A plugin subclasses :class:`GeneratorAdapter`
and registers a factory for it through ``register_generators``.

Latents travel as dicts of tensors, e.g. ``{"z": ...}``, ``{"w": ...}``,
``{"w_plus": ...}`` (StyleGAN) or ``{"z": ..., "class": ...}`` (BigGAN).  The
encoder's output is such a dict too, in the keys of
``geometry().encoder_latents``.  One naming convention the core relies on: a
key ``X_plus`` of shape ``[N, layers, ...]`` is the layer-wise form of a
per-layer space ``X`` (``[N, ...]``): editing learns directions in ``X`` (the
layer mean) and moves every chosen layer of ``X_plus`` along them.
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from typing import Any

import torch
from pydantic import BaseModel, Field
from torch import nn

from .config import MAX_TRUNCATION, Seed, Settings, check_field
from .errors import ConfigError
from .geometry import GeneratorGeometry

#: How ``synthesize`` treats per-layer noise: the checkpoint's fixed noise
#: (deterministic), fresh random noise, or none.  Shared by every family.
NOISE_MODES = ("const", "random", "none")


def check_noise_mode(noise_mode: str) -> str:
    """``noise_mode`` when it is one of :data:`NOISE_MODES`, else a ConfigError naming them."""
    if noise_mode not in NOISE_MODES:
        raise ConfigError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
    return noise_mode


Latents = dict[str, torch.Tensor]


class SamplingArguments(Settings):
    """The limits of the adapters' number arguments, written once for every family."""

    n: int = Field(0, ge=0, description="latents to draw")
    samples: int = Field(1, ge=1, description="prior samples averaged by average_latents")
    seed: Seed = 0
    #: the settings' :data:`~ganenc.config.Truncation` and psi 0 too: in Python (and the
    #: studio's slider) psi 0 asks for the average image, which a setting has no use for
    truncation: float = Field(1.0, ge=0, le=MAX_TRUNCATION)


def check_number(model: type[BaseModel], field: str, value: Any, what: str | None = None) -> Any:
    """``value`` as ``model``'s ``field`` (:func:`~ganenc.config.check_field`), given as a number.

    For Python arguments: text and bools are a caller's slip there (a settings file's
    ``"8"`` is read as 8; ``batch_size="8"`` in Python is a mistake), so they are refused.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(
            f"{what or field} = {value!r}: give a number, not a {type(value).__name__}"
        )
    return check_field(model, field, value, what)


def check_count(n: Any, what: str = "n") -> int:
    """How many latents ``sample_latents`` draws: a whole number >= 0 (2.5 is not truncated)."""
    return check_number(SamplingArguments, "n", n, what)


def check_truncation(truncation: Any) -> float:
    """A truncation psi, a finite number in [0, MAX_TRUNCATION] (the settings' limit): NaN
    drew NaN images and ``"0.7"`` passed unnoticed."""
    return float(check_number(SamplingArguments, "truncation", truncation, "truncation"))


class GeneratorAdapter(nn.Module, ABC):
    """A pretrained (or random) generator behind a family-neutral interface.

    Subclasses set ``family`` (the registered name) and ``resolution`` and
    implement the abstract methods.  The contract every subclass keeps::

        targets = g.encoder_targets(latents, truncation, layers)
        g.synthesize(targets) == g.synthesize(latents, truncation, layers)

    so the encoder can be trained to predict ``targets`` from the image.
    """

    family: str = ""
    resolution: int = 0

    @abstractmethod
    def geometry(self) -> GeneratorGeometry:
        """Shapes the encoder must output for this generator."""

    @abstractmethod
    def sample_latents(
        self, n: int, seed: int | None = None, device: torch.device | str | None = None
    ) -> Latents:
        """Draw ``n`` latents from the generator's prior, reproducibly from ``seed``."""

    # Deliberately alike: every adapter overrides this signature (an override, not a copy)
    @abstractmethod
    def synthesize(
        self,
        latents: Latents,
        truncation: float = 1.0,
        truncation_layers: int | None = None,
        noise_mode: str = "const",
    ) -> torch.Tensor:
        """Images ``[N, 3, H, W]`` (float32, roughly in [-1, 1], not clamped)."""

    @abstractmethod
    def encoder_targets(
        self, latents: Latents, truncation: float = 1.0, truncation_layers: int | None = None
    ) -> Latents:
        """``latents`` expressed in the encoder's output space, truncation applied."""

    def training_truncation(self) -> dict:
        """Truncation keywords for drawing training images (StyleGAN: psi 0.7 on 8 layers).

        Passed to ``encoder_targets`` (and through :meth:`synthesis_options` to
        ``synthesize``); empty means the family's own default.
        """
        return {}

    def synthesis_options(
        self, truncation: float | None = None, truncation_layers: int | None = None
    ) -> dict:
        """Keywords ``synthesize`` needs beside targets made with this truncation.

        Empty for families that bake truncation into the latents; BigGAN returns
        its truncation, which selects batch-norm statistics.
        """
        return {}

    def follow_truncation(self, truncation: float | None) -> None:
        """Draw later :meth:`sample_latents` for synthesis at ``truncation`` (``None``: the
        family's default).

        Nothing to do for families that truncate when they synthesize (StyleGAN's w, PGGAN's
        psi * z); BigGAN's prior itself is truncated (z = t * truncnorm), so its samples
        must follow the truncation a command synthesizes them with.
        """

    @torch.no_grad()
    def average_latents(self, n: int = 1, samples: int = 512, seed: int = 2**31 - 1) -> Latents:
        """The mean of ``encoder_targets`` over prior samples: the "average latent" baseline.

        ``samples`` >= 1: the mean of none is NaN.
        """
        n = check_count(n)
        samples = check_number(SamplingArguments, "samples", samples)
        latents = self.sample_latents(samples, seed=seed, device=self.device)
        targets = self.encoder_targets(latents)
        return {
            k: v.mean(0, keepdim=True).expand(n, *v.shape[1:]).clone() for k, v in targets.items()
        }

    def freeze(self) -> GeneratorAdapter:
        """Eval mode and no gradient buffers: the generator is never trained here."""
        self.eval()
        self.requires_grad_(False)
        return self

    @property
    def device(self) -> torch.device:
        for tensor in self.parameters():
            return tensor.device
        for tensor in self.buffers():
            return tensor.device
        return torch.device("cpu")


def seeded_generator(seed: int | None, device: torch.device | str | None = None) -> torch.Generator:
    """A CPU torch.Generator seeded from ``seed`` (random when ``None``), a whole number in
    the settings' seed range (``1.5`` was silently seed 1)."""
    generator = torch.Generator(device="cpu")
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(check_number(SamplingArguments, "seed", seed))
    return generator
