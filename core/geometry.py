"""What a generator consumes and what an encoder for it must produce, without torch.

Encoder builders read a :class:`GeneratorGeometry`, never a GAN name, so the
engine needs no list of GAN families.  The geometry is stored in encoder
checkpoints, so an encoder can be rebuilt without loading its generator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Largest image side of a generator ganenc works with (GANs reach 1024 or 2048 px): a file or
#: options asking for more would only fail after minutes, allocating terabytes.
MAX_RESOLUTION = 4_096
#: Largest size of one latent dimension a stored geometry may declare.
MAX_LATENT_SIZE = 1 << 20


def check_resolution(resolution: int, what: str) -> None:
    """Raise :class:`ConfigError` when ``what`` would make images larger than ``MAX_RESOLUTION``."""
    from .errors import ConfigError

    if resolution > MAX_RESOLUTION:
        raise ConfigError(
            f"{what} makes {resolution} px images; ganenc works with at most {MAX_RESOLUTION} px"
        )


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
    def from_dict(cls, data: Any) -> GeneratorGeometry:
        """The geometry a file stored, checked: it may come from a stranger's checkpoint."""
        from .errors import CheckpointError

        if not isinstance(data, dict) or not {"family", "resolution", "encoder_latents"} <= set(
            data
        ):
            raise CheckpointError(f"not a generator geometry: {data!r:.200}")
        data = dict(data)
        latents = data["encoder_latents"]
        resolution = data["resolution"]
        if not isinstance(resolution, int) or not 1 <= resolution <= MAX_RESOLUTION:
            raise CheckpointError(
                f"geometry resolution {resolution!r} is not in 1-{MAX_RESOLUTION}"
            )
        if not isinstance(latents, dict) or not all(
            isinstance(shape, list | tuple)
            and all(isinstance(n, int) and 1 <= n <= MAX_LATENT_SIZE for n in shape)
            for shape in latents.values()
        ):
            raise CheckpointError(
                f"geometry latent shapes are not lists of sizes: {latents!r:.200}"
            )
        data["encoder_latents"] = {str(k): tuple(v) for k, v in latents.items()}
        try:
            return cls(**data)
        except TypeError as exc:
            raise CheckpointError(f"not a generator geometry: {exc}") from None
