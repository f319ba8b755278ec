"""Fixed centre crops for aligned images (faces), as in the reference.

AT1 trims W/8 from the left and the right and keeps the full height
(256 -> 256 high x 192 wide, 1024 -> 1024 x 768).  AT2 trims H/8 + H/32 from
every side (256 -> 176 x 176, 1024 -> 704 x 704).  Margins are fractions of the
side they trim, floored to whole pixels; for power-of-two sizes they equal the
reference's integer divisions exactly.
"""

from __future__ import annotations

import torch
from pydantic import Field

from ganenc.config import Settings

AT1_MARGIN_X = 1 / 8
AT2_MARGIN = 1 / 8 + 1 / 32


class CenterCropperOptions(Settings):
    """Margins of the two centre crops, as fractions of the image width (x) or height (y)."""

    at1_margin_x: float = Field(AT1_MARGIN_X, ge=0, lt=0.5)
    at1_margin_y: float = Field(0.0, ge=0, lt=0.5)
    at2_margin_x: float = Field(AT2_MARGIN, ge=0, lt=0.5)
    at2_margin_y: float = Field(AT2_MARGIN, ge=0, lt=0.5)


def center_box(height: int, width: int, margin_x: float, margin_y: float) -> tuple[int, ...]:
    """``(x0, y0, x1, y1)`` of the centred box that trims ``floor(side * margin)`` per side."""
    trim_x = int(width * margin_x)
    trim_y = int(height * margin_y)
    if width - 2 * trim_x < 1 or height - 2 * trim_y < 1:
        raise ValueError(
            f"margins ({margin_x}, {margin_y}) leave nothing of a {height}x{width} image"
        )
    return (trim_x, trim_y, width - trim_x, height - trim_y)


class CenterCropper:
    """AT1 and AT2 boxes at fixed positions, the same for every image of the batch."""

    def __init__(
        self,
        at1_margin_x: float = AT1_MARGIN_X,
        at1_margin_y: float = 0.0,
        at2_margin_x: float = AT2_MARGIN,
        at2_margin_y: float = AT2_MARGIN,
    ) -> None:
        self.margins = ((at1_margin_x, at1_margin_y), (at2_margin_x, at2_margin_y))

    def boxes(self, images: torch.Tensor) -> list[torch.Tensor]:
        """One ``[N, 4]`` int64 tensor per level (AT1, AT2), on the images' device."""
        n, _, height, width = images.shape
        levels = []
        for margin_x, margin_y in self.margins:
            box = center_box(height, width, margin_x, margin_y)
            levels.append(
                torch.tensor(box, dtype=torch.int64, device=images.device).expand(n, 4).clone()
            )
        return levels

    def __repr__(self) -> str:
        return f"CenterCropper(margins={self.margins})"
