"""Saving what people look at: image grids and single images from [-1, 1] tensors."""

from __future__ import annotations

import math
import os
from pathlib import Path


def to_uint8(images):
    """[N,3,H,W] in [-1, 1] -> uint8 [N,H,W,3] on the CPU (values outside are clamped)."""
    return (
        ((images.detach().float().clamp(-1, 1) + 1) * 127.5)
        .round()
        .to("cpu")
        .byte()
        .permute(0, 2, 3, 1)
    )


def save_grid(images, path: str | os.PathLike, nrow: int | None = None, padding: int = 2) -> Path:
    """Write a PNG grid of ``images`` ([N,3,H,W] in [-1, 1])."""
    from PIL import Image
    from torchvision.utils import make_grid

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nrow = nrow or max(1, math.ceil(math.sqrt(images.shape[0])))
    grid = make_grid(
        images.detach().float().cpu().clamp(-1, 1),
        nrow=nrow,
        padding=padding,
        value_range=(-1, 1),
        normalize=True,
    )
    array = (grid * 255).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(array).save(path)
    return path


def save_image(image, path: str | os.PathLike) -> Path:
    """Write one [3,H,W] image in [-1, 1] as PNG."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(image[None])[0].numpy()).save(path)
    return path
