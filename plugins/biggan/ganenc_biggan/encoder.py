"""The BigGAN encoder built from the adaptive block (paper Table 10).

The blocks carry no style heads and no noise, and their instance norms are
replaced by conditional batch norms whose gain and bias come from a class
embedding.  After the 4x4 block a fully connected layer
``Linear(C * 4 * 4 -> hidden_features)`` (LeakyReLU) feeds two heads: one for
``z`` and one for the class logits.

What the encoder may see: the image, and optionally a class the user states
(``condition``: integer labels ``[N]`` or one-hot / soft vectors
``[N, num_classes]``) that drives the conditional batch norms.  Without a
condition the norms use a learned "no class" embedding (zero at
initialisation, where the norms act as plain batch norms), so the class is
predicted from the image alone.  The encoder never receives ``z`` nor the
generator's conditioning vector (the reference encoder was given a vector
holding the very ``z`` it had to predict).

Output: ``{"z": [N, z_dim], "class": [N, num_classes]}`` where ``class`` holds
softmax probabilities (BigGAN accepts soft class vectors); use
:meth:`BigGANEncoder.class_logits` or :meth:`BigGANEncoder.encode_with_logits`
for a cross-entropy loss.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ganenc.errors import ConfigError
from ganenc.geometry import GeneratorGeometry
from ganenc.nn import (
    LEAKY_SLOPE,
    RELU_GAIN,
    AdaptiveEncoderOptions,
    AdaptiveEncoderTrunk,
    ClassEmbedding,
    EqualizedLinear,
    check_images,
)


class BigGANEncoderOptions(AdaptiveEncoderOptions):
    """Options of the BigGAN adaptive-block encoder."""

    embedding_dim: int = Field(
        default=128, ge=1, description="size of the class embedding driving the conditional norms"
    )
    hidden_features: int = Field(
        default=256, ge=1, description="width of the fully connected layer before the z/class heads"
    )
    condition_dropout: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="training only: probability of replacing a given condition by the"
        " 'no class' embedding, so one encoder learns both modes",
    )


class BigGANEncoder(nn.Module):
    """Images ``[N, 3, R, R]`` (+ optional class) -> ``{"z": [N, z_dim], "class": [N, K]}``."""

    def __init__(
        self,
        geometry: GeneratorGeometry,
        *,
        # Deliberately alike: AdaptiveEncoderOptions' fields, spelt out in each family's signature
        start_channels: int | None = None,
        max_channels: int = 512,
        embedding_dim: int = 128,
        hidden_features: int = 256,
        condition_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        latents = dict(geometry.encoder_latents)
        if set(latents) != {"z", "class"} or len(latents["z"]) != 1 or len(latents["class"]) != 1:
            raise ConfigError(
                f"the BigGAN encoder outputs vectors 'z' and 'class'; geometry of"
                f" {geometry.family!r} asks for {latents}"
            )
        self.geometry = geometry
        self.z_dim = int(latents["z"][0])
        self.num_classes = int(latents["class"][0])
        self.condition_dropout = float(condition_dropout)
        self.trunk = AdaptiveEncoderTrunk(
            geometry.resolution,
            image_channels=geometry.image_channels,
            start_channels=start_channels,
            max_channels=max_channels,
            noise=False,
            norm="conditional_batch",
            embedding_dim=embedding_dim,
        )
        self.class_embedding = ClassEmbedding(self.num_classes, embedding_dim)
        self.no_class_embedding = nn.Parameter(torch.zeros(embedding_dim))
        self.hidden = EqualizedLinear(
            self.trunk.out_channels * 4 * 4, hidden_features, gain=RELU_GAIN
        )
        self.to_z = EqualizedLinear(hidden_features, self.z_dim, gain=1.0)
        self.to_class = EqualizedLinear(hidden_features, self.num_classes, gain=1.0)

    def _embedding(self, condition: torch.Tensor | None, batch: int) -> torch.Tensor:
        unknown = self.no_class_embedding.expand(batch, -1)
        if condition is None:
            return unknown
        if condition.shape[0] != batch:
            raise ValueError(
                f"condition has {condition.shape[0]} rows for a batch of {batch} images"
            )
        embedding = self.class_embedding(condition.to(self.no_class_embedding.device))
        if self.training and self.condition_dropout > 0:
            drop = torch.rand(batch, 1, device=embedding.device) < self.condition_dropout
            embedding = torch.where(drop, unknown, embedding)
        return embedding

    def encode_with_logits(
        self, images: torch.Tensor, condition: torch.Tensor | None = None
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """``(latents, class_logits)`` from one pass (latents as :meth:`forward`)."""
        check_images(images, self.geometry.resolution, self.geometry.image_channels)
        embedding = self._embedding(condition, images.shape[0])
        features, _ = self.trunk(images, embedding)
        hidden = F.leaky_relu(self.hidden(features.flatten(1)), LEAKY_SLOPE)
        logits = self.to_class(hidden)
        return {"z": self.to_z(hidden), "class": logits.softmax(dim=1)}, logits

    def forward(
        self, images: torch.Tensor, condition: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Estimate ``z`` and the class probabilities from ``images`` (and a stated class)."""
        return self.encode_with_logits(images, condition)[0]

    def class_logits(
        self, images: torch.Tensor, condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Unnormalised class scores ``[N, num_classes]``, for a cross-entropy loss."""
        return self.encode_with_logits(images, condition)[1]


def build_biggan_encoder(geometry: GeneratorGeometry, **options: Any) -> BigGANEncoder:
    """Registry factory: the encoder for a BigGAN geometry."""
    return BigGANEncoder(geometry, **options)
