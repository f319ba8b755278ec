"""Attention crops (AT1, AT2) that keep gradients: one box per image, applied to both images.

A cropper (registered through ``register_croppers``) turns target images into
integer boxes; :func:`crop_and_resize` cuts those boxes out of an image batch
and resizes them back to full size by slicing and bilinear interpolation, both
differentiable, so the reconstruction's crops pass gradients to the encoder.
:func:`attention_pairs` computes the boxes once, on the target and without
gradient, and applies the SAME boxes to target and reconstruction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
import torch.nn.functional as F

from .errors import ConfigError

#: Names of the attention levels, in the order of :func:`attention_pairs`.
LEVEL_NAMES = ("whole", "at1", "at2")


@runtime_checkable
class Cropper(Protocol):
    """What ``register_croppers`` factories return."""

    def boxes(self, images: torch.Tensor) -> list[torch.Tensor]:
        """One ``[N, 4]`` integer tensor (x0, y0, x1, y1; x1/y1 exclusive) per attention level."""


class AttentionPair(NamedTuple):
    """One attention level: its name and the same crop of target and reconstruction."""

    name: str
    target: torch.Tensor
    reconstruction: torch.Tensor


def level_name(index: int) -> str:
    """``0 -> "whole"``, ``1 -> "at1"``, ``2 -> "at2"``, ``3 -> "at3"`` ..."""
    return LEVEL_NAMES[index] if index < len(LEVEL_NAMES) else f"at{index}"


def validate_boxes(boxes: torch.Tensor, height: int, width: int, batch: int) -> torch.Tensor:
    """Check ``boxes`` is ``[batch, 4]`` integer, non-empty and inside ``height x width``."""
    if not isinstance(boxes, torch.Tensor):
        raise TypeError(f"boxes must be a tensor, got {type(boxes).__name__}")
    if boxes.is_floating_point() or boxes.is_complex() or boxes.dtype == torch.bool:
        raise TypeError(f"boxes must be an integer tensor, got {boxes.dtype}")
    if tuple(boxes.shape) != (batch, 4):
        raise ValueError(f"boxes must have shape [{batch}, 4], got {tuple(boxes.shape)}")
    x0, y0, x1, y1 = boxes.cpu().unbind(1)
    if bool(((x0 < 0) | (y0 < 0) | (x1 > width) | (y1 > height)).any()):
        raise ValueError(f"a box lies outside the {height}x{width} image: {boxes.tolist()}")
    if bool(((x1 <= x0) | (y1 <= y0)).any()):
        raise ValueError(f"a box is empty (x1 <= x0 or y1 <= y0): {boxes.tolist()}")
    return boxes


def crop_and_resize(
    images: torch.Tensor,
    boxes: torch.Tensor,
    size: int | tuple[int, int] | None = None,
) -> torch.Tensor:
    """Cut box ``i`` out of image ``i`` and resize it to ``size`` (default: the image size).

    ``images`` ``[N, C, H, W]``; ``boxes`` ``[N, 4]`` integers ``(x0, y0, x1, y1)``
    with exclusive ends.  Slicing and bilinear ``F.interpolate`` (no
    antialiasing, ``align_corners=False``): differentiable w.r.t. ``images``.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be [N, C, H, W], got {tuple(images.shape)}")
    n, _, height, width = images.shape
    validate_boxes(boxes, height, width, n)
    if size is None:
        out_size = (height, width)
    elif isinstance(size, int):
        out_size = (size, size)
    else:
        out_size = (int(size[0]), int(size[1]))
    crops = []
    for i, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        crop = images[i : i + 1, :, y0:y1, x0:x1]
        if crop.shape[-2:] != out_size:
            crop = F.interpolate(crop, size=out_size, mode="bilinear", align_corners=False)
        crops.append(crop)
    return torch.cat(crops, dim=0)


def attention_boxes(cropper: Cropper, target: torch.Tensor) -> list[torch.Tensor]:
    """The cropper's boxes for ``target``, computed without gradient and checked."""
    from .contracts import contract_error

    n, _, height, width = target.shape
    with torch.no_grad():
        levels = cropper.boxes(target)
    if not isinstance(levels, list | tuple):
        raise contract_error(
            "cropper",
            cropper,
            f"boxes() returned a {type(levels).__name__}, not a list of [N, 4] tensors",
        )
    checked = []
    for level, boxes in enumerate(levels, start=1):
        try:
            checked.append(validate_boxes(boxes, height, width, n))
        except (TypeError, ValueError) as exc:
            raise contract_error("cropper", cropper, f"{level_name(level)}: {exc}") from None
    return checked


def attention_pairs(
    cropper: Cropper | None,
    target: torch.Tensor,
    reconstruction: torch.Tensor,
    size: int | tuple[int, int] | None = None,
    boxes: Sequence[torch.Tensor] | None = None,
) -> list[AttentionPair]:
    """``[whole, AT1, AT2, ...]`` pairs of (target, reconstruction) crops.

    The boxes come from ``cropper`` applied to ``target`` (without gradient) or
    from ``boxes`` when given; each is applied to both batches.  The whole
    images come first, uncropped.  ``cropper=None`` and no ``boxes``: whole images only.
    """
    if target.shape != reconstruction.shape:
        raise ValueError(
            f"target {tuple(target.shape)} and reconstruction {tuple(reconstruction.shape)}"
            " differ in shape"
        )
    if boxes is None:
        boxes = attention_boxes(cropper, target) if cropper is not None else []
    pairs = [AttentionPair(level_name(0), target, reconstruction)]
    for index, level_boxes in enumerate(boxes, start=1):
        level_boxes = level_boxes.to(target.device)
        pairs.append(
            AttentionPair(
                level_name(index),
                crop_and_resize(target, level_boxes, size),
                crop_and_resize(reconstruction, level_boxes, size),
            )
        )
    return pairs


#: The network the loss's ``feature_weights`` are for (LPIPS's VGG16 backbone, the paper's).
LOSS_FEATURE_NETWORK = "vgg16"


def build_cropper(name: str | None, options: dict[str, Any], feature_weights: str | None):
    """The registered cropper, or ``None`` for ``none`` (whole image only).

    ``feature_weights`` (the loss's VGG16 file) goes to croppers that take it
    (Grad-CAM), unless their options name one already, and only when their
    classifier is that VGG16: loaded into another network the file would not fit,
    and ``"random"`` (a smoke-test LPIPS) would replace a shipped classifier's weights.
    """
    from .registry import create, get_registry

    if name in (None, "none"):
        if options:  # refused, not ignored: no cropper would read them
            raise ConfigError(
                f"cropper options {sorted(options)} given with attention 'none' (whole image"
                " only): choose a cropper with --attention, or drop the options"
            )
        return None
    spec = get_registry().get("cropper", name)
    options = dict(options)
    model = spec.load_options_model()
    if (
        feature_weights is not None
        and model is not None
        and "feature_weights" in model.model_fields
        and _classifier_name(model, options) in (None, LOSS_FEATURE_NETWORK)
    ):
        options.setdefault("feature_weights", feature_weights)
    return create("cropper", spec.qualified_name, **options)


def _classifier_name(model: Any, options: dict[str, Any]) -> str | None:
    """A cropper's ``classifier`` option as a network name (``features:`` tag stripped;
    ``""`` for a module), ``None`` if the cropper has no such option."""
    from .features import feature_network_name

    field = model.model_fields.get("classifier")
    if field is None:
        return None
    classifier = options.get("classifier", field.default)
    return feature_network_name(classifier) if isinstance(classifier, str) else ""
