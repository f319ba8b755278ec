"""The cropper itself: imported only when someone builds it."""

from __future__ import annotations

import torch
from pydantic import field_validator

from ganenc.config import Settings

Box = tuple[float, float, float, float]


class FractionCropperOptions(Settings):
    """Each level is (x0, y0, x1, y1) as fractions of the width and height."""

    levels: list[Box] = [(0.125, 0.0, 0.875, 1.0), (0.25, 0.25, 0.75, 0.75)]

    @field_validator("levels")
    @classmethod
    def _inside_the_image(cls, levels: list[Box]) -> list[Box]:
        for x0, y0, x1, y1 in levels:
            if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
                raise ValueError(
                    f"box {(x0, y0, x1, y1)} must satisfy 0 <= x0 < x1 <= 1 (same for y)"
                )
        return levels


class FractionCropper:
    """Same boxes for every image: AT1, AT2, ... in the order of ``levels``."""

    def __init__(self, levels: list[Box]):
        self.levels = levels

    def boxes(self, images: torch.Tensor) -> list[torch.Tensor]:
        n, _, height, width = images.shape
        result = []
        for x0, y0, x1, y1 in self.levels:
            box = torch.tensor(
                [round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height)]
            )
            result.append(box.repeat(n, 1))
        return result
