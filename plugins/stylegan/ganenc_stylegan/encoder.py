"""The StyleGAN encoder built from the adaptive block (paper Table 9).

It mirrors the synthesis network: every block estimates the two style codes
of the generator layers at its resolution (an "inverted AdaIN" of its feature
statistics), and the final 4x4 feature map estimates the constant input.

w+ layer order (lowest resolution first, as the generator consumes them)::

    layer 0, 1   <- (w2, w1) of the 4x4 block
    layer 2, 3   <- (w2, w1) of the 8x8 block
    ...
    layer 2B-2, 2B-1 <- (w2, w1) of the first, full-resolution block

where B = log2(R) - 1 blocks, so the encoder yields 2B = 2 log2(R) - 2 codes:
18 at 1024, 14 at 256, which is ``num_ws`` of StyleGAN1 and StyleGAN2 alike.
Should a geometry ask for another count, the rule is: fewer layers keep the
first ``num_ws`` of that order (the heads of the dropped high-resolution
layers are not built); more layers repeat the last (finest) code.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import nn

from ganenc.errors import ConfigError
from ganenc.geometry import GeneratorGeometry
from ganenc.nn import (
    AdaptiveEncoderOptions,
    AdaptiveEncoderTrunk,
    EqualizedConv2d,
    check_resolution,
)


class StyleGANEncoderOptions(AdaptiveEncoderOptions):
    """Options of the StyleGAN adaptive-block encoder."""

    blur: bool = Field(
        default=False, description="add the [1,2,1]x[1,2,1]/16 blur before each block's second conv"
    )
    noise: bool = Field(
        default=True,
        description="learned per-channel noise after each conv (drawn in training mode only)",
    )


class StyleGANEncoder(nn.Module):
    """Images ``[N, 3, R, R]`` in [-1, 1] -> ``{"w_plus": [N, num_ws, w_dim], "const": [N, C, 4, 4]}``.

    ``const`` is produced only when the geometry asks for it; a 1x1 equalized
    conv projects the 4x4 features when the generator's constant has another
    channel count than the encoder's last block.
    """

    def __init__(
        self,
        geometry: GeneratorGeometry,
        *,
        # Deliberately alike: AdaptiveEncoderOptions' fields, spelt out in each family's signature
        start_channels: int | None = None,
        max_channels: int = 512,
        blur: bool = False,
        noise: bool = True,
    ) -> None:
        super().__init__()
        latents = dict(geometry.encoder_latents)
        unknown = sorted(set(latents) - {"w_plus", "const"})
        if "w_plus" not in latents or unknown:
            raise ConfigError(
                f"the StyleGAN encoder outputs 'w_plus' (and 'const'); geometry of"
                f" {geometry.family!r} asks for {sorted(latents)}"
            )
        if len(latents["w_plus"]) != 2:
            raise ConfigError(f"w_plus must have shape (num_ws, w_dim), got {latents['w_plus']}")
        self.num_ws, self.w_dim = (int(v) for v in latents["w_plus"])
        blocks = check_resolution(geometry.resolution) - 1
        self.geometry = geometry
        self.trunk = AdaptiveEncoderTrunk(
            geometry.resolution,
            image_channels=geometry.image_channels,
            start_channels=start_channels,
            max_channels=max_channels,
            style_dim=self.w_dim,
            style_layers=min(self.num_ws, 2 * blocks),
            noise=noise,
            blur=blur,
        )
        self.const_shape: tuple[int, ...] | None = None
        self.const_projection: nn.Module | None = None
        if "const" in latents:
            self.const_shape = tuple(int(v) for v in latents["const"])
            if len(self.const_shape) != 3 or self.const_shape[1:] != (4, 4):
                raise ConfigError(f"const must have shape (C, 4, 4), got {latents['const']}")
            if self.const_shape[0] != self.trunk.out_channels:
                self.const_projection = EqualizedConv2d(
                    self.trunk.out_channels, self.const_shape[0], 1, gain=1.0
                )

    # Deliberately alike: each family's encoder forward; plugins never import each other
    def forward(
        self, images: torch.Tensor, condition: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Estimate the generator's latents from ``images`` (StyleGAN is unconditional)."""
        if condition is not None:
            raise ValueError("StyleGAN generators are unconditional: pass condition=None")
        features, w_plus = self.trunk(images)
        missing = self.num_ws - w_plus.shape[1]
        if missing > 0:
            w_plus = torch.cat([w_plus, w_plus[:, -1:].expand(-1, missing, -1)], dim=1)
        out = {"w_plus": w_plus}
        if self.const_shape is not None:
            if self.const_projection is not None:
                features = self.const_projection(features)
            out["const"] = features
        return out


def build_stylegan_encoder(geometry: GeneratorGeometry, **options: Any) -> StyleGANEncoder:
    """Registry factory: the encoder for a StyleGAN1/StyleGAN2 geometry."""
    return StyleGANEncoder(geometry, **options)
