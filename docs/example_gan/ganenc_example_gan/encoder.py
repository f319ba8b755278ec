"""The encoder builder: reads only the generator's geometry, never its family's code."""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import nn

from ganenc.config import Settings
from ganenc.geometry import GeneratorGeometry


class TinyEncoderOptions(Settings):
    """Options of the encoder (``--encoder-option key=value`` on the command line)."""

    width: int = Field(16, ge=1, description="channels of every convolution")


class TinyEncoder(nn.Module):
    """Strided convolutions down to 4x4, then one linear head per encoder latent."""

    def __init__(self, geometry: GeneratorGeometry, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(geometry.image_channels, width, 3, padding=1)]
        for _ in range(int(math.log2(geometry.resolution)) - 2):
            layers += [nn.LeakyReLU(0.2), nn.Conv2d(width, width, 3, stride=2, padding=1)]
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        self.shapes = dict(geometry.encoder_latents)
        self.heads = nn.ModuleDict(
            {key: nn.Linear(width * 16, math.prod(shape)) for key, shape in self.shapes.items()}
        )

    def forward(self, images: torch.Tensor, condition: torch.Tensor | None = None) -> dict:
        """``condition`` is for class-conditional families (BigGAN); this one has none."""
        features = self.trunk(images)
        return {key: head(features).view(-1, *self.shapes[key]) for key, head in self.heads.items()}


def build_tiny_encoder(geometry: GeneratorGeometry, width: int = 16) -> TinyEncoder:
    """The registered factory: ``factory(geometry, **validated options)``."""
    return TinyEncoder(geometry, width)
