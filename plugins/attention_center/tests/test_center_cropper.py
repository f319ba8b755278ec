"""Centre crops: exactly the reference's AT1/AT2 at 256, 512 and 1024; options; registry."""

from __future__ import annotations

import pytest
import torch

import ganenc
from ganenc.cropping import crop_and_resize
from ganenc.errors import ConfigError
from ganenc.testing import check_cropper
from ganenc_attention_center.cropper import CenterCropper, CenterCropperOptions


@pytest.mark.parametrize(
    ("size", "at1", "at2"),
    [
        (256, (32, 0, 224, 256), (40, 40, 216, 216)),
        (512, (64, 0, 448, 512), (80, 80, 432, 432)),
        (1024, (128, 0, 896, 1024), (160, 160, 864, 864)),
    ],
)
def test_boxes_are_the_references(size, at1, at2):
    images = torch.zeros(3, 3, size, size)
    boxes = CenterCropper().boxes(images)
    assert len(boxes) == 2
    for level, expected in zip(boxes, (at1, at2), strict=True):
        assert level.dtype == torch.int64 and tuple(level.shape) == (3, 4)
        assert all(tuple(row) == expected for row in level.tolist())
    # crop sizes (height x width): AT1 full height, 3/4 width; AT2 square
    assert (at1[3] - at1[1], at1[2] - at1[0]) == (size, size * 3 // 4)
    assert at2[2] - at2[0] == at2[3] - at2[1] == size - 2 * (size // 8 + size // 32)


def test_crops_equal_the_reference_slices():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 256, 256)
    at1, at2 = CenterCropper().boxes(images)
    h = w = 256
    reference_at1 = images[:, :, :, w // 8 : -w // 8]
    reference_at2 = images[
        :, :, h // 8 + h // 32 : -h // 8 - h // 32, w // 8 + w // 32 : -w // 8 - w // 32
    ]
    assert torch.equal(crop_and_resize(images, at1, size=(256, 192)), reference_at1)
    assert torch.equal(crop_and_resize(images, at2, size=176), reference_at2)


def test_margins_are_options():
    cropper = ganenc.create("cropper", "center", at1_margin_x=0.25, at2_margin_y=0.0)
    at1, at2 = cropper.boxes(torch.zeros(1, 3, 64, 32))  # 64 high, 32 wide
    assert at1[0].tolist() == [8, 0, 24, 64]
    assert at2[0].tolist() == [5, 0, 27, 64]  # x: floor(32 * 5/32) = 5


def test_registry_builds_it_and_validates_options():
    cropper = ganenc.create("cropper", "center")
    assert isinstance(cropper, CenterCropper)
    check_cropper(cropper, resolution=64)
    with pytest.raises(ConfigError, match="unknown setting"):
        ganenc.create("cropper", "center", margin=0.1)
    with pytest.raises(ConfigError, match="at2_margin_x"):
        ganenc.create("cropper", "center", at2_margin_x=0.5)
    assert CenterCropperOptions().at1_margin_x == 1 / 8


def test_boxes_follow_the_device_and_batch():
    images = torch.zeros(5, 3, 32, 32)
    for level in CenterCropper().boxes(images):
        assert level.device == images.device and level.shape == (5, 4)
        assert torch.equal(level, level[:1].expand(5, 4))
