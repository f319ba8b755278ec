"""What a generator consumes and what an encoder for it must produce, without torch.

Encoder builders read a :class:`GeneratorGeometry`, never a GAN name, so the
engine needs no list of GAN families.  The geometry is stored in encoder
checkpoints, so an encoder can be rebuilt without loading its generator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class GeneratorGeometry:
    """Shapes that tie an encoder to its generator.

    ``encoder_latents`` maps each latent the encoder must output to its shape
    without the batch dimension, e.g. ``{"w_plus": (14, 512), "const": (512, 4, 4)}``
    for a 256 px StyleGAN2 or ``{"z": (512,)}`` for PGGAN.
    """

    family: str
    resolution: int
    encoder_latents: dict[str, tuple[int, ...]]
    image_channels: int = 3
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["encoder_latents"] = {k: list(v) for k, v in self.encoder_latents.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorGeometry:
        data = dict(data)
        data["encoder_latents"] = {k: tuple(v) for k, v in data["encoder_latents"].items()}
        return cls(**data)
