"""Shared fixtures of the inversion, editing and evaluation tests: a tiny trained encoder and photos.

The encoder is trained once per test process (a few seconds on the CPU) and
reused by every test module that imports these fixtures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

RESOLUTION = 32
PHOTOS = 4
_CACHE: dict[str, Path] = {}


def train_tiny_encoder(out: Path) -> Path:
    """A 32 px StyleGAN2 (random weights) and an encoder pre-trained for 5 steps on it."""
    from ganenc.training.pretrain import pretrain
    from ganenc.training.settings import TrainSettings

    return pretrain(
        TrainSettings(
            gan="stylegan2",
            generator_options={"resolution": RESOLUTION, "channel_max": 32},
            encoder_options={"max_channels": 32},
            attention="center",
            loss={"image_terms": {"mse": 5.0}},
            iterations=5,
            batch_size=2,
            out=out,
            progress=False,
            val_samples=2,
            device="cpu",
        )
    )


def write_photos(generator, folder: Path, count: int = PHOTOS, seed: int = 100) -> Path:
    """PNG images the generator can make (so inversion has something to find)."""
    import torch

    from ganenc.images import save_image

    folder.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        latents = generator.sample_latents(count, seed=seed)
        images = generator.synthesize(generator.encoder_targets(latents))
    for index in range(count):
        save_image(images[index], folder / f"photo{index}.png")
    return folder


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """Run directory of the tiny trained encoder (trained once per process)."""
    if "run" not in _CACHE:
        _CACHE["run"] = train_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder") / "run")
    return _CACHE["run"]


@pytest.fixture(scope="session")
def tiny_inverter(tiny_run):
    """An Inverter on the CPU for the tiny encoder."""
    from ganenc.inversion import Inverter

    return Inverter.from_encoder(tiny_run, device="cpu")


@pytest.fixture(scope="session")
def photos(tiny_inverter, tmp_path_factory) -> Path:
    """A folder of PNG photos at the generator's resolution."""
    if "photos" not in _CACHE:
        folder = tmp_path_factory.mktemp("photos") / "photos"
        _CACHE["photos"] = write_photos(tiny_inverter.generator, folder)
    return _CACHE["photos"]
