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

from abc import ABC, abstractmethod

import torch
from torch import nn

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

    @torch.no_grad()
    def average_latents(self, n: int = 1, samples: int = 512, seed: int = 2**31 - 1) -> Latents:
        """The mean of ``encoder_targets`` over prior samples: the "average latent" baseline."""
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
    """A CPU torch.Generator seeded from ``seed`` (random when ``None``)."""
    from .config import MAX_SEED

    generator = torch.Generator(device="cpu")
    if seed is None:
        generator.seed()
    elif not 0 <= int(seed) <= MAX_SEED:
        raise ConfigError(f"seed {seed} is outside 0-{MAX_SEED}")
    else:
        generator.manual_seed(int(seed))
    return generator
