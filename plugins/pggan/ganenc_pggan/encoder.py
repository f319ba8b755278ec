"""The PGGAN encoder built from the adaptive block (paper Table 9, PGGAN note).

PGGAN takes a single latent ``z`` at its first layer, so the blocks carry no
style heads and no noise; after the 4x4 block an equalized fully connected
layer ``Linear(C * 4 * 4 -> z_dim)`` outputs ``z`` computed from the image
(the reference implementation returned a constant here).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganenc.errors import ConfigError
from ganenc.geometry import GeneratorGeometry
from ganenc.nn import AdaptiveEncoderOptions, AdaptiveEncoderTrunk, EqualizedLinear


class PGGANEncoderOptions(AdaptiveEncoderOptions):
    """Options of the PGGAN adaptive-block encoder."""


class PGGANEncoder(nn.Module):
    """Images ``[N, 3, R, R]`` in [-1, 1] -> ``{"z": [N, z_dim]}``."""

    def __init__(
        self,
        geometry: GeneratorGeometry,
        *,
        # Deliberately alike: AdaptiveEncoderOptions' fields, spelt out in each family's signature
        start_channels: int | None = None,
        max_channels: int = 512,
    ) -> None:
        super().__init__()
        latents = dict(geometry.encoder_latents)
        if set(latents) != {"z"} or len(latents["z"]) != 1:
            raise ConfigError(
                f"the PGGAN encoder outputs one vector 'z'; geometry of {geometry.family!r}"
                f" asks for {latents}"
            )
        self.geometry = geometry
        self.z_dim = int(latents["z"][0])
        self.trunk = AdaptiveEncoderTrunk(
            geometry.resolution,
            image_channels=geometry.image_channels,
            start_channels=start_channels,
            max_channels=max_channels,
            noise=False,
        )
        self.to_z = EqualizedLinear(self.trunk.out_channels * 4 * 4, self.z_dim, gain=1.0)

    # Deliberately alike: each family's encoder forward; plugins never import each other
    def forward(
        self, images: torch.Tensor, condition: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Estimate ``z`` from ``images`` (PGGAN is unconditional)."""
        if condition is not None:
            raise ValueError("PGGAN generators are unconditional: pass condition=None")
        features, _ = self.trunk(images)
        return {"z": self.to_z(features.flatten(1))}


def build_pggan_encoder(geometry: GeneratorGeometry, **options: Any) -> PGGANEncoder:
    """Registry factory: the encoder for a PGGAN geometry."""
    return PGGANEncoder(geometry, **options)
