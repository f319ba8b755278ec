"""crop_and_resize and attention_pairs: per-image boxes, same boxes on both images, gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganenc.cropping import (
    AttentionPair,
    attention_boxes,
    attention_pairs,
    crop_and_resize,
    level_name,
)
from ganenc.errors import PluginContractError


def _images(n: int = 2, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_full_box_is_identity_and_unresized_crop_is_a_slice():
    images = _images()
    full = torch.tensor([[0, 0, 16, 16]] * 2)
    assert torch.equal(crop_and_resize(images, full), images)
    boxes = torch.tensor([[2, 3, 10, 9], [5, 1, 13, 7]])  # both 8 wide, 6 high
    crops = crop_and_resize(images, boxes, size=(6, 8))
    assert torch.equal(crops[0], images[0, :, 3:9, 2:10])
    assert torch.equal(crops[1], images[1, :, 1:7, 5:13])


def test_resize_is_bilinear_to_the_image_size_per_image():
    images = _images()
    boxes = torch.tensor([[0, 0, 8, 8], [4, 4, 16, 12]])
    crops = crop_and_resize(images, boxes)
    assert crops.shape == images.shape
    expected1 = F.interpolate(
        images[1:2, :, 4:12, 4:16], size=(16, 16), mode="bilinear", align_corners=False
    )
    assert torch.allclose(crops[1:2], expected1)
    assert tuple(crop_and_resize(images, boxes, size=5).shape) == (2, 3, 5, 5)


def test_gradient_reaches_exactly_the_cropped_pixels():
    images = _images().requires_grad_(True)
    boxes = torch.tensor([[2, 2, 6, 6], [8, 0, 16, 16]])
    crop_and_resize(images, boxes).square().sum().backward()
    grad = images.grad.abs().sum(dim=1)
    inside = torch.zeros_like(grad, dtype=torch.bool)
    inside[0, 2:6, 2:6] = True
    inside[1, 0:16, 8:16] = True
    assert bool((grad[inside] > 0).all())
    assert bool((grad[~inside] == 0).all())


@pytest.mark.parametrize(
    ("boxes", "error"),
    [
        (torch.tensor([[0.0, 0.0, 4.0, 4.0]] * 2), TypeError),
        (torch.tensor([[0, 0, 4, 4]]), ValueError),
        (torch.tensor([[0, 0, 17, 4]] * 2), ValueError),
        (torch.tensor([[-1, 0, 4, 4]] * 2), ValueError),
        (torch.tensor([[4, 0, 4, 4]] * 2), ValueError),
    ],
)
def test_invalid_boxes_are_refused(boxes, error):
    with pytest.raises(error):
        crop_and_resize(_images(), boxes)


class RecordingCropper:
    """Returns fixed boxes and records how it was called."""

    def __init__(self, levels):
        self.levels = levels
        self.calls = []

    def boxes(self, images):
        self.calls.append((images, torch.is_grad_enabled()))
        return self.levels


def test_pairs_apply_the_same_boxes_computed_on_the_target_without_gradient():
    target = _images(seed=1)
    latent = torch.randn(2, 3, 16, 16, requires_grad=True)
    reconstruction = latent * 0.5
    at1 = torch.tensor([[1, 0, 15, 16], [0, 0, 12, 16]])
    at2 = torch.tensor([[4, 4, 12, 12], [2, 6, 10, 14]])
    cropper = RecordingCropper([at1, at2])
    pairs = attention_pairs(cropper, target, reconstruction)
    assert len(cropper.calls) == 1
    seen, grad_enabled = cropper.calls[0]
    assert seen is target and grad_enabled is False
    assert [p.name for p in pairs] == ["whole", "at1", "at2"]
    assert all(isinstance(p, AttentionPair) for p in pairs)
    assert pairs[0].target is target and pairs[0].reconstruction is reconstruction
    for pair, boxes in zip(pairs[1:], (at1, at2), strict=True):
        assert torch.equal(pair.target, crop_and_resize(target, boxes))
        assert torch.allclose(pair.reconstruction, crop_and_resize(reconstruction, boxes))
        assert pair.reconstruction.requires_grad
    pairs[2].reconstruction.sum().backward()
    assert latent.grad is not None and latent.grad.abs().sum() > 0


def test_pairs_without_cropper_and_with_given_boxes():
    target, reconstruction = _images(seed=2), _images(seed=3)
    assert len(attention_pairs(None, target, reconstruction)) == 1
    boxes = [torch.tensor([[0, 0, 8, 8]] * 2)]
    pairs = attention_pairs(None, target, reconstruction, boxes=boxes)
    assert [p.name for p in pairs] == ["whole", "at1"]
    with pytest.raises(ValueError, match="differ in shape"):
        attention_pairs(None, target, reconstruction[:, :, :8])


def test_attention_boxes_validates_what_the_cropper_returns():
    # a cropper's mistake names the cropper (its plugin's, not ganenc's, to fix)
    with pytest.raises(PluginContractError, match="RecordingCropper .*at1: a box lies outside"):
        attention_boxes(RecordingCropper([torch.tensor([[0, 0, 99, 4]] * 2)]), _images())
    with pytest.raises(PluginContractError, match="returned a Tensor, not a list"):
        attention_boxes(RecordingCropper(torch.tensor([[0, 0, 4, 4]] * 2)), _images())


def test_level_names():
    assert [level_name(i) for i in range(4)] == ["whole", "at1", "at2", "at3"]
