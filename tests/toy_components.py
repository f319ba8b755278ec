"""Tiny components for engine tests, independent of the real GAN plugins."""

from __future__ import annotations

import torch
from torch import nn

from ganenc import hookimpl
from ganenc.adapters import GeneratorAdapter, seeded_generator
from ganenc.config import Settings
from ganenc.geometry import GeneratorGeometry


class ToyGeneratorOptions(Settings):
    checkpoint: str | None = None
    resolution: int = 16
    z_dim: int = 8


class ToyGenerator(GeneratorAdapter):
    """z -> image through one linear layer: enough to exercise the engine."""

    family = "toy"

    def __init__(self, checkpoint=None, resolution: int = 16, z_dim: int = 8):
        super().__init__()
        torch.manual_seed(0)
        self.resolution, self.z_dim = resolution, z_dim
        self.linear = nn.Linear(z_dim, 3 * resolution * resolution)

    def geometry(self):
        return GeneratorGeometry(self.family, self.resolution, {"z": (self.z_dim,)})

    def sample_latents(self, n, seed=None, device=None):
        z = torch.randn(n, self.z_dim, generator=seeded_generator(seed))
        return {"z": z.to(device or self.device)}

    def synthesize(self, latents, truncation=1.0, truncation_layers=None, noise_mode="const"):
        z = latents["z"] * truncation
        return torch.tanh(self.linear(z)).view(-1, 3, self.resolution, self.resolution)

    def encoder_targets(self, latents, truncation=1.0, truncation_layers=None):
        return {"z": latents["z"] * truncation}


class ToyEncoder(nn.Module):
    def __init__(self, geometry, width: int = 4):
        super().__init__()
        self.z_dim = geometry.encoder_latents["z"][0]
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.head = nn.Linear(width, self.z_dim)

    def forward(self, images, condition=None):
        return {"z": self.head(self.conv(images).mean((2, 3)))}


class ToyEncoderOptions(Settings):
    width: int = 4


class ToyPlugin:
    @hookimpl
    def register_generators(self, register):
        register("toy", ToyGenerator, options=ToyGeneratorOptions, description="toy generator")

    @hookimpl
    def register_encoders(self, register):
        register("toy-encoder", ToyEncoder, options=ToyEncoderOptions, generators=("toy",))
