"""The tiny GAN family: its options, network, adapter and checkpoint file.

Imported only when someone builds a ``tinygan`` generator (the plugin module
names it as a string), so this is where torch may be imported.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import torch
from pydantic import Field, field_validator
from torch import nn

from ganenc.adapters import GeneratorAdapter, Latents, seeded_generator
from ganenc.checkpoints import read_checkpoint
from ganenc.config import Settings, random_only
from ganenc.errors import CheckpointError
from ganenc.geometry import GeneratorGeometry

FORMAT = "tinygan/1"


class TinyGANOptions(Settings):
    """Options of ``tinygan``; every key ``create`` passes must be declared here.

    ``checkpoint`` arrives from ``--checkpoint`` (a path; a weights tag is already
    resolved to its cached file; ``random`` becomes ``None``); ``resolution``
    from ``--resolution``; the rest from ``-O key=value``.  Architecture options
    only shape a random generator: a checkpoint records its own, so they are declared with
    ``random_only``: with a file, ``ganenc.load_generator`` refuses one that disagrees with the
    adapter's attribute of the same name (``resolution=32`` for a 16 px file) and one the
    adapter has no attribute for (``channels``, ``seed``: nothing to check, so no effect).
    """

    checkpoint: Path | None = Field(None, description="checkpoint file; None: random weights")
    resolution: int | None = random_only(None, "output size, a power of two >= 8")
    z_dim: int = random_only(16, "latent z size", ge=1)
    w_dim: int = random_only(16, "latent w size", ge=1)
    channels: int = random_only(16, "channels of every layer", ge=1)
    seed: int = random_only(0, "seed of the random initialisation")

    @field_validator("resolution")
    @classmethod
    def _power_of_two(cls, value: int | None) -> int | None:
        if value is not None and (value < 8 or value & (value - 1)):
            raise ValueError(f"resolution must be a power of two >= 8, got {value}")
        return value


class TinyGAN(nn.Module):
    """z -> w (mapping) -> a 4x4 constant, upsampled, each stage scaled by its own w."""

    def __init__(self, resolution: int, z_dim: int, w_dim: int, channels: int) -> None:
        super().__init__()
        self.config = {
            "resolution": resolution,
            "z_dim": z_dim,
            "w_dim": w_dim,
            "channels": channels,
        }
        self.num_ws = int(math.log2(resolution)) - 1  # one w per stage: 4, 8, ..., resolution
        self.mapping = nn.Sequential(
            nn.Linear(z_dim, w_dim), nn.LeakyReLU(0.2), nn.Linear(w_dim, w_dim)
        )
        self.const = nn.Parameter(torch.randn(1, channels, 4, 4))
        self.styles = nn.ModuleList(nn.Linear(w_dim, channels) for _ in range(self.num_ws))
        self.convs = nn.ModuleList(
            nn.Conv2d(channels, channels, 3, padding=1) for _ in range(self.num_ws)
        )
        self.to_rgb = nn.Conv2d(channels, 3, 1)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, w_plus: torch.Tensor) -> torch.Tensor:
        x = self.const.expand(w_plus.shape[0], -1, -1, -1)
        for index, (style, conv) in enumerate(zip(self.styles, self.convs, strict=True)):
            if index:
                x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
            x = nn.functional.leaky_relu(
                conv(x * (1 + style(w_plus[:, index])[..., None, None])), 0.2
            )
        return torch.tanh(self.to_rgb(x))


class TinyGANAdapter(GeneratorAdapter):
    """The engine's view of a :class:`TinyGAN`: latents ``{"z"}``, encoder targets ``{"w_plus"}``."""

    family = "tinygan"

    def __init__(self, model: TinyGAN) -> None:
        super().__init__()
        self.model = model
        self.resolution = model.config["resolution"]

    # -- required ------------------------------------------------------------------------------
    def geometry(self) -> GeneratorGeometry:
        return GeneratorGeometry(
            family=self.family,
            resolution=self.resolution,
            encoder_latents={"w_plus": (self.model.num_ws, self.model.config["w_dim"])},
        )

    def sample_latents(self, n: int, seed: int | None = None, device: Any = None) -> Latents:
        z = torch.randn(n, self.model.config["z_dim"], generator=seeded_generator(seed))
        return {"z": z.to(device or self.device)}

    def synthesize(
        self,
        latents: Latents,
        truncation: float = 1.0,
        truncation_layers: int | None = None,
        noise_mode: str = "const",  # this family draws no noise
    ) -> torch.Tensor:
        return self.model(self.encoder_targets(latents, truncation, truncation_layers)["w_plus"])

    def encoder_targets(
        self, latents: Latents, truncation: float = 1.0, truncation_layers: int | None = None
    ) -> Latents:
        if "w_plus" in latents:  # already in the encoder's space (an encoder's output)
            w_plus = latents["w_plus"]
        else:
            w = self.model.mapping(latents["z"])
            w_plus = w[:, None].expand(-1, self.model.num_ws, -1)
        layers = self.model.num_ws if truncation_layers is None else truncation_layers
        mask = (torch.arange(self.model.num_ws, device=w_plus.device) < layers)[None, :, None]
        truncated = self.model.w_avg + truncation * (w_plus - self.model.w_avg)
        return {"w_plus": torch.where(mask, truncated, w_plus)}

    # -- optional: the defaults of GeneratorAdapter, overridden where this family differs ----------
    def training_truncation(self) -> dict:
        return {"truncation": 0.8}  # train on slightly truncated images, like StyleGAN


def build_tinygan(
    resolution: int = 32, z_dim: int = 16, w_dim: int = 16, channels: int = 16, seed: int = 0
) -> TinyGAN:
    """A randomly initialised network, reproducible from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TinyGAN(resolution, z_dim, w_dim, channels)
        with torch.no_grad():
            z = torch.randn(4096, z_dim, generator=seeded_generator(seed))
            model.w_avg.copy_(model.mapping(z).mean(0))
    return model


def load_tinygan(
    checkpoint: Path | None = None, resolution: int | None = None, **options: Any
) -> TinyGANAdapter:
    """The registered factory: ``checkpoint`` and the validated options of :class:`TinyGANOptions`."""
    if checkpoint is None:
        return TinyGANAdapter(build_tinygan(resolution or 32, **options)).freeze()
    payload = read_checkpoint(checkpoint)  # weights_only: checkpoints may come from strangers
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{checkpoint} is not a tinygan checkpoint (format {FORMAT!r})")
    model = TinyGAN(**payload["config"])  # options given with a file: checked by ganenc
    model.load_state_dict(payload["state_dict"])
    return TinyGANAdapter(model).freeze()


def save_tinygan(model: TinyGAN, path: str | os.PathLike) -> None:
    """Write the checkpoint ``load_tinygan`` reads: plain tensors and numbers only."""
    torch.save({"format": FORMAT, "config": model.config, "state_dict": model.state_dict()}, path)


if __name__ == "__main__":  # python -m ganenc_example_gan.generator OUT.pt: the demo weights
    save_tinygan(build_tinygan(seed=1), sys.argv[1])
