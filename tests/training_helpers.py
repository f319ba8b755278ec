"""Tiny training configurations shared by the training tests."""

from __future__ import annotations

from pathlib import Path

from ganenc.training.settings import TrainSettings

PHOTOS = Path(__file__).parent / "data" / "photos"

TINY_GENERATOR = {"resolution": 32, "channel_max": 32}
FAST_LOSS = {"image_terms": {"mse": 5.0, "cosine": 3.0, "ssim": 1.0}}


def tiny_train_settings(out: Path, **overrides) -> TrainSettings:
    """A 32 px StyleGAN2 with random weights, a 32-channel encoder, no VGG terms."""
    values = {
        "gan": "stylegan2",
        "generator_options": dict(TINY_GENERATOR),
        "encoder_options": {"max_channels": 32},
        "attention": "center",
        "loss": dict(FAST_LOSS),
        "iterations": 6,
        "batch_size": 4,
        "out": out,
        "progress": False,
        "val_samples": 8,
        "checkpoint_every": 3,
        "image_every": 3,
        "log_every": 1,
    }
    values.update(overrides)
    return TrainSettings(**values)
