"""Opt-in speed and memory options shared by pre-training, fine-tuning and inversion.

None of them changes what is computed, only how:

``channels_last``
    encoder and generator weights and the input images in NHWC layout, which
    the convolution libraries of recent GPUs prefer (results equal to float
    rounding);
``compile``
    ``torch.compile`` of the encoder (the first steps compile; later ones run
    fused kernels);
``gradient_checkpointing``
    encoder blocks and the frozen generator keep no activations in the
    forward pass and are recomputed in the backward pass: much less memory
    at 1024 px for about a third more time (values and gradients unchanged);
``precision``
    ``bf16``/``fp16`` autocast on CUDA (see :func:`ganenc.training.loop.autocast`).

``benchmarks/`` measures each of them against the plain run (``docs/benchmarks.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..adapters import GeneratorAdapter, Latents
from ..nn.adaptive import AdaptiveEncoderTrunk


def set_gradient_checkpointing(module: nn.Module, enabled: bool = True) -> int:
    """Switch block checkpointing on every encoder trunk inside ``module``; returns how many."""
    count = 0
    for child in module.modules():
        if isinstance(child, AdaptiveEncoderTrunk):
            child.gradient_checkpointing = bool(enabled)
            count += 1
    return count


def to_channels_last(module: nn.Module) -> nn.Module:
    """4-D parameters and buffers of ``module`` in channels-last layout (in place)."""
    return module.to(memory_format=torch.channels_last)


def channels_last_images(images: torch.Tensor) -> torch.Tensor:
    """``images`` ``[N, C, H, W]`` stored channels-last (same values)."""
    return images.contiguous(memory_format=torch.channels_last)


@dataclass(frozen=True)
class SpeedOptions:
    """Which speed options a run uses; applies them to its modules and steps."""

    channels_last: bool = False
    compile: bool = False
    gradient_checkpointing: bool = False
    precision: str = "fp32"

    @classmethod
    def from_settings(cls, settings: Any) -> SpeedOptions:
        """The options of a :class:`~ganenc.training.settings.RunSettings`."""
        return cls(
            channels_last=bool(getattr(settings, "channels_last", False)),
            compile=bool(getattr(settings, "compile", False)),
            gradient_checkpointing=bool(getattr(settings, "gradient_checkpointing", False)),
            precision=str(getattr(settings, "precision", "fp32")),
        )

    def prepare_encoder(self, encoder: nn.Module) -> nn.Module:
        """Layout and checkpointing, applied to ``encoder`` in place (returned)."""
        if self.channels_last:
            to_channels_last(encoder)
        set_gradient_checkpointing(encoder, self.gradient_checkpointing)
        return encoder

    def compiled(self, module: nn.Module) -> nn.Module:
        """``torch.compile(module)`` with ``compile``, else ``module``.

        The compiled wrapper shares ``module``'s parameters: optimizers and
        checkpoints keep using the module itself.  Wrap for DDP first.
        """
        if not self.compile:
            return module
        # fallback_random: the encoder noise equals eager mode's for the same seed.
        return torch.compile(module, options={"fallback_random": True})

    def prepare_generator(self, generator: GeneratorAdapter) -> GeneratorAdapter:
        if self.channels_last:
            to_channels_last(generator)
        return generator

    def images(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's input in the chosen layout."""
        return channels_last_images(images) if self.channels_last else images

    def synthesize(
        self,
        generator: GeneratorAdapter,
        latents: Latents,
        options: Mapping[str, Any] | None = None,
    ) -> torch.Tensor:
        """``generator.synthesize(latents, **options)``, recomputed in backward if checkpointing.

        The generator is frozen, so only the latents need gradients; with
        checkpointing its activations are not kept between the forward and
        the backward pass.
        """
        options = dict(options or {})
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return checkpoint(_synthesize, generator, latents, options, use_reentrant=False)
        return generator.synthesize(latents, **options)


def _synthesize(
    generator: GeneratorAdapter, latents: Latents, options: dict[str, Any]
) -> torch.Tensor:
    return generator.synthesize(latents, **options)
