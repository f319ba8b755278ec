"""AT1/AT2 boxes from Grad-CAM heat maps, for misaligned images.

The reference used the Grad-CAM heat map itself (through numpy) as the
attention, so no gradient ever reached the encoder.  Here the heat map only
chooses boxes: AT1 is the bounding box of the region above a threshold of the
normalised heat map, AT2 that of a higher threshold (a tighter box), both grown
to a minimum size.  The boxes are computed on the target without gradient and
the engine applies the same boxes to target and reconstruction
(:func:`ganenc.cropping.attention_pairs`), so the crops keep their gradients.

The classifier defaults to torchvision's ImageNet VGG16 (weights from
:mod:`ganenc.features`), hooked at its last conv layer (``features.28``), with
the predicted class as target; inputs in [-1, 1] are mapped to [0, 1], resized
to 224 and normalised with ImageNet's mean and std.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import ConfigDict, field_validator, model_validator
from torch import nn

from ganenc.config import Settings
from ganenc.errors import ConfigError, first_line
from ganenc.features import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_feature_network,
    feature_network_name,
    is_random,
    load_state_dict_into,
    load_weights_file,
    warn_random_weights,
)
from ganenc.geometry import MAX_RESOLUTION

logger = logging.getLogger(__name__)


MinSize = int | tuple[int, int] | Sequence[int | tuple[int, int]]
#: Probe side for a target layer's output when ``classifier_size`` is None and the
#: classifier has no ``input_size`` (the images' own size is not known yet).
PROBE_SIZE = 64


class FlatHeatmapWarning(UserWarning):
    """Grad-CAM heat maps without contrast: every AT box is the whole image."""


class GradCAMCropperOptions(Settings):
    """Options of the Grad-CAM cropper.

    ``classifier``: a feature network's name (``"vgg16"``, ``"emoji-cnn"``, or its
    tag ``"features:emoji-cnn"``; weights from ``ganenc.features``), a
    ``"module:factory"`` string whose factory returns an ``nn.Module`` (its
    weights from ``feature_weights``, required: a factory's network starts
    random), or an ``nn.Module`` (Python only; its own weights, or
    ``feature_weights``).  ``feature_weights``: a weights file, ``None``
    (network names: torch's hub cache, then a download; modules: as they are) or
    ``"random"`` (names and factories; smoke tests; warns).  ``target_layer``:
    a sub-module name whose output is ``[N, C, H, W]`` maps (checked at
    construction); ``None`` is the classifier's ``gradcam_layer`` attribute
    when it has one, else its last ``Conv2d`` (``features.28`` of VGG16).
    ``thresholds``: one per attention level on the heat map normalised to
    [0, 1]; ``min_fraction``: minimum box side per level as a fraction of the
    image side (one value or one per level).  ``classifier_size``: side the
    images are resized to for the classifier (``None``: as they are; ``"auto"``:
    the classifier's ``input_size`` attribute, else 224 as for ImageNet networks).
    ``classifier="emoji-cnn"`` is ganenc's offline emoji classifier
    (``features:emoji-cnn``, shipped with ganenc: no download).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    classifier: str | nn.Module = "vgg16"
    feature_weights: str | None = None
    target_layer: str | None = None
    method: Literal["gradcam", "gradcam++"] = "gradcam"
    thresholds: tuple[float, ...] = (0.3, 0.6)
    min_fraction: float | tuple[float, ...] = (0.5, 0.25)
    classifier_size: int | Literal["auto"] | None = "auto"
    normalization: Literal["imagenet", "none"] = "imagenet"

    @field_validator("classifier_size")
    @classmethod
    def _size(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and not 8 <= value <= MAX_RESOLUTION:
            raise ValueError(
                f"classifier_size must be from 8 to {MAX_RESOLUTION} (or 'auto', or None)"
            )
        return value

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value:
            raise ValueError("give one threshold per attention level")
        if any(not 0.0 < t <= 1.0 for t in value):
            raise ValueError("thresholds must lie in (0, 1]")
        if any(later < earlier for earlier, later in zip(value, value[1:], strict=False)):
            # each level is cropped inside the one before (the paper's AT2 follows AT1):
            # a hotter part of the heat map, so a threshold at least the previous one's
            raise ValueError(
                f"thresholds must not decrease from one attention level to the next (AT2 is"
                f" cropped inside AT1), e.g. [0.3, 0.6]; got {list(value)}"
            )
        return value

    @field_validator("min_fraction")
    @classmethod
    def _fractions(cls, value: float | tuple[float, ...]) -> float | tuple[float, ...]:
        values = value if isinstance(value, tuple) else (value,)
        if any(not 0.0 <= f <= 1.0 for f in values):
            raise ValueError("min_fraction must lie in [0, 1]")
        return value

    @model_validator(mode="after")
    def _one_fraction_per_level(self) -> GradCAMCropperOptions:
        if isinstance(self.min_fraction, tuple) and len(self.min_fraction) != len(self.thresholds):
            raise ValueError(
                f"min_fraction has {len(self.min_fraction)} values for"
                f" {len(self.thresholds)} thresholds"
            )
        return self


# -- heat map -> boxes (pure torch) ---------------------------------------------------------
def _per_level_sizes(min_size: MinSize, levels: int) -> list[tuple[int, int]]:
    """``min_size`` as one ``(height, width)`` per level.

    An int applies to every level; a sequence gives one entry per level, each an
    int (square) or a ``(height, width)`` pair.
    """
    if isinstance(min_size, int):
        return [(min_size, min_size)] * levels
    sizes = list(min_size)
    if len(sizes) != levels:
        raise ValueError(f"min_size has {len(sizes)} entries for {levels} thresholds")
    result = []
    for size in sizes:
        if isinstance(size, int):
            result.append((size, size))
        else:
            height, width = size
            result.append((int(height), int(width)))
    return result


def _grow(start: torch.Tensor, end: torch.Tensor, minimum: int, limit: int) -> tuple:
    """Widen ``[start, end)`` around its centre to ``minimum`` pixels, kept inside ``[0, limit)``."""
    minimum = max(0, min(minimum, limit))
    short = (end - start) < minimum
    new_start = torch.div(start + end - minimum, 2, rounding_mode="floor").clamp(0, limit - minimum)
    return torch.where(short, new_start, start), torch.where(short, new_start + minimum, end)


def _spans(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Maps ``[N, H*W]`` (non-finite values as 0), their minima and spans ``[N, 1]``."""
    flat = torch.nan_to_num(heatmaps.flatten(1).float(), nan=0.0, posinf=0.0, neginf=0.0)
    low = flat.min(dim=1, keepdim=True).values
    return flat, low, flat.max(dim=1, keepdim=True).values - low


def heatmap_to_boxes(
    heatmaps: torch.Tensor,
    thresholds: Sequence[float] = (0.3, 0.6),
    min_size: MinSize = 0,
) -> list[torch.Tensor]:
    """Boxes ``[N, 4]`` (int64 ``x0, y0, x1, y1``, ends exclusive), one tensor per threshold.

    Each heat map ``[H, W]`` is min-max normalised to [0, 1]; a level's box is
    the bounding box of the pixels ``>= threshold``, grown around its centre
    to at least ``min_size`` pixels (see :func:`_per_level_sizes`) and kept
    inside the image.  A flat (or non-finite) heat map selects nothing: its
    boxes are the whole image.
    """
    if heatmaps.dim() != 3:
        raise ValueError(f"heat maps must be [N, H, W], got {tuple(heatmaps.shape)}")
    n, height, width = heatmaps.shape
    flat, low, span = _spans(heatmaps)
    normalised = torch.where(
        span > 0, (flat - low) / span.clamp_min(torch.finfo(flat.dtype).tiny), flat * 0
    ).reshape(n, height, width)
    sizes = _per_level_sizes(min_size, len(thresholds))
    levels = []
    for threshold, (min_height, min_width) in zip(thresholds, sizes, strict=True):
        mask = (normalised >= threshold) & (span.reshape(n, 1, 1) > 0)
        rows = mask.any(dim=2).to(torch.uint8)  # [N, H]
        cols = mask.any(dim=1).to(torch.uint8)  # [N, W]
        found = mask.flatten(1).any(dim=1)
        y0 = torch.where(found, rows.argmax(dim=1), 0)
        y1 = torch.where(found, height - rows.flip(1).argmax(dim=1), height)
        x0 = torch.where(found, cols.argmax(dim=1), 0)
        x1 = torch.where(found, width - cols.flip(1).argmax(dim=1), width)
        x0, x1 = _grow(x0, x1, min_width, width)
        y0, y1 = _grow(y0, y1, min_height, height)
        levels.append(torch.stack([x0, y0, x1, y1], dim=1).to(torch.int64))
    return levels


# -- the classifier -------------------------------------------------------------------------
def _import_factory(reference: str) -> Any:
    module_name, _, attribute = reference.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import classifier factory {reference!r}: {exc}") from None
    return obj


def _no_inplace_relu(module: nn.Module) -> None:
    """In-place ReLUs after the hooked conv would change the activations Grad-CAM keeps."""
    for child in module.modules():
        if isinstance(child, nn.ReLU):
            child.inplace = False


def build_classifier(classifier: str | nn.Module, feature_weights: str | None = None) -> nn.Module:
    """The classifier named by the options, with its weights, in eval mode.

    A factory's network starts with random weights, and boxes drawn from it mean
    nothing: it needs ``feature_weights`` (or the loud ``"random"`` opt-in).  A module
    passed in Python is the caller's own, trained one: used as it is.
    """
    if isinstance(classifier, nn.Module):
        if is_random(feature_weights):  # nothing would be random: a warning saying so would lie
            raise ConfigError(
                "feature_weights='random' does not apply to a classifier module (its own"
                " weights are used): leave feature_weights out"
            )
        if feature_weights is not None:
            load_state_dict_into(classifier, load_weights_file(feature_weights), feature_weights)
        return classifier.eval()
    if ":" not in feature_network_name(classifier):  # a feature network (or its features: tag)
        module = build_feature_network(classifier, feature_weights)
        _no_inplace_relu(module)
        return module
    module = _import_factory(classifier)()
    if not isinstance(module, nn.Module):
        raise ConfigError(
            f"classifier factory {classifier!r} returned {type(module).__name__},"
            " not a torch.nn.Module"
        )
    if is_random(feature_weights):
        warn_random_weights(f"Grad-CAM classifier {type(module).__name__}")
    elif feature_weights is None:
        raise ConfigError(
            f"classifier factory {classifier!r} gives a network with random initial weights,"
            " whose Grad-CAM boxes mean nothing: give its trained weights with --crop-option"
            " feature_weights=PATH, or name a network whose weights ganenc finds"
            " (classifier=emoji-cnn, or a torchvision name such as classifier=resnet18)"
        )
    else:
        load_state_dict_into(module, load_weights_file(feature_weights), feature_weights)
    module.requires_grad_(False)
    _no_inplace_relu(module)
    return module.eval()


def find_target_layer(classifier: nn.Module, name: str | None) -> nn.Module:
    """The named sub-module; for ``None`` the classifier's ``gradcam_layer``, else its
    last ``Conv2d`` (``features.28`` of VGG16)."""
    convs = [n for n, m in classifier.named_modules() if isinstance(m, nn.Conv2d)]
    if name is None:
        name = getattr(classifier, "gradcam_layer", None)
    if name is None:
        if not convs:
            raise ConfigError("the classifier has no Conv2d layer; set target_layer")
        name = convs[-1]
    try:
        return classifier.get_submodule(name)
    except AttributeError:
        raise ConfigError(
            f"the classifier has no layer {name!r}; its last conv layers are:"
            f" {', '.join(convs[-5:]) or 'none'}"
        ) from None


def check_target_layer(classifier: nn.Module, layer: nn.Module, size: int | None) -> None:
    """Refuse a layer Grad-CAM cannot use now, not at the first batch (after a run's files).

    A forward pass on a zero image (``size`` pixels, else the classifier's
    ``input_size`` or :data:`PROBE_SIZE`) must give the layer ``[N, C, H, W]`` maps; with a
    fixed ``size`` they must be larger than 1x1, or every heat map would be flat.
    """
    name = _layer_name(classifier, layer)
    side = size or int(getattr(classifier, "input_size", PROBE_SIZE))
    outputs: list[Any] = []
    handle = layer.register_forward_hook(lambda module, args, output: outputs.append(output))
    first = next(classifier.parameters(), None)
    probe = torch.zeros(1, 3, side, side, device=first.device if first is not None else "cpu")
    try:
        with torch.no_grad():
            classifier(probe)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise ConfigError(
            f"the Grad-CAM classifier fails on a {side}x{side} image"
            f" ({type(exc).__name__}: {first_line(exc)}); check classifier_size"
        ) from None
    finally:
        handle.remove()
    if not outputs:
        raise ConfigError(f"target_layer {name!r} is not used by the classifier's forward pass")
    shape = tuple(outputs[0].shape) if isinstance(outputs[0], torch.Tensor) else None
    if shape is None or len(shape) != 4:
        got = list(shape) if shape is not None else type(outputs[0]).__name__
        convs = [n for n, m in classifier.named_modules() if isinstance(m, nn.Conv2d)]
        default = getattr(classifier, "gradcam_layer", None) or (convs[-1] if convs else None)
        hint = f" such as {default!r} (the default: leave target_layer out)" if default else ""
        raise ConfigError(
            f"target_layer {name!r} ({type(layer).__name__}) gives {got}, not [N, C, H, W]"
            f" feature maps: Grad-CAM needs a convolutional layer{hint}"
        )
    if size is not None and shape[2] * shape[3] <= 1:
        raise ConfigError(
            f"target_layer {name!r} gives 1x1 maps at classifier_size {size}: every heat map"
            " would be flat and every box the whole image; use a larger classifier_size"
            " ('auto': the classifier's own) or a layer with larger maps"
        )


def _layer_name(classifier: nn.Module, layer: nn.Module) -> str:
    return next((n for n, m in classifier.named_modules() if m is layer), type(layer).__name__)


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Parameters without ``requires_grad`` for the block, restored afterwards."""
    flags = [(parameter, parameter.requires_grad) for parameter in module.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


class GradCAMCropper:
    """Grad-CAM (or Grad-CAM++) boxes: AT1, AT2, ... from thresholds of the heat map."""

    def __init__(
        self,
        classifier: str | nn.Module = "vgg16",
        feature_weights: str | None = None,
        target_layer: str | None = None,
        method: str = "gradcam",
        thresholds: Sequence[float] = (0.3, 0.6),
        min_fraction: float | Sequence[float] = (0.5, 0.25),
        classifier_size: int | str | None = "auto",
        normalization: str = "imagenet",
    ) -> None:
        if method not in {"gradcam", "gradcam++"}:
            raise ConfigError(f"method must be 'gradcam' or 'gradcam++', got {method!r}")
        if normalization not in {"imagenet", "none"}:
            raise ConfigError(f"normalization must be 'imagenet' or 'none', got {normalization!r}")
        self.classifier = build_classifier(classifier, feature_weights)
        self.target_layer = find_target_layer(self.classifier, target_layer)
        self.method = method
        self.thresholds = tuple(float(t) for t in thresholds)
        if isinstance(min_fraction, int | float):
            min_fraction = (float(min_fraction),) * len(self.thresholds)
        self.min_fraction = tuple(float(f) for f in min_fraction)
        if len(self.min_fraction) != len(self.thresholds):
            raise ConfigError("give one min_fraction per threshold (or a single value)")
        if classifier_size == "auto":
            classifier_size = int(getattr(self.classifier, "input_size", 224))
        self.classifier_size = classifier_size
        self.normalization = normalization
        check_target_layer(self.classifier, self.target_layer, classifier_size)
        self._warned_flat = False

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images -> the classifier's input ([0, 1], resized, normalised)."""
        x = ((images.float() + 1.0) / 2.0).clamp(0.0, 1.0)
        size = self.classifier_size
        if size is not None and tuple(x.shape[-2:]) != (size, size):
            shrinking = min(x.shape[-2:]) > size
            x = F.interpolate(
                x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking
            )
        if self.normalization == "imagenet":
            mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
            x = (x - mean) / std
        return x

    def _cam_class(self) -> type:
        from pytorch_grad_cam import GradCAM, GradCAMPlusPlus

        return GradCAMPlusPlus if self.method == "gradcam++" else GradCAM

    def heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """Heat maps ``[N, H, W]`` in [0, 1] at the images' size, for the predicted classes."""
        first = next(self.classifier.parameters(), None)
        if first is not None and first.device != images.device:
            self.classifier.to(images.device)
        # Grad-CAM needs gradients even inside torch.no_grad(); they flow from a fresh leaf
        # (the preprocessed copy of the images), never into the images' own graph, and the
        # classifier's parameters are frozen meanwhile so no .grad accumulates on them.
        with torch.enable_grad(), _frozen(self.classifier):
            inputs = self.preprocess(images).detach().requires_grad_(True)
            cam = self._cam_class()(model=self.classifier, target_layers=[self.target_layer])
            try:
                maps = cam(input_tensor=inputs, targets=None)  # None: the predicted classes
            finally:
                cam.activations_and_grads.release()
        maps = torch.as_tensor(maps, dtype=torch.float32, device=images.device)
        if tuple(maps.shape[-2:]) != tuple(images.shape[-2:]):
            maps = F.interpolate(
                maps[:, None], size=tuple(images.shape[-2:]), mode="bilinear", align_corners=False
            )[:, 0]
        return maps

    def min_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """Minimum box sides in pixels, per level, for an image of this size."""
        return [(round(f * height), round(f * width)) for f in self.min_fraction]

    def boxes(self, images: torch.Tensor) -> list[torch.Tensor]:
        """AT1, AT2, ... boxes ``[N, 4]`` (int64) on the images' device."""
        heat = self.heatmaps(images)
        if not self._warned_flat and bool((_spans(heat)[2] <= 0).all()):
            self._warned_flat = True
            self._warn_flat(len(heat))
        return heatmap_to_boxes(heat, self.thresholds, self.min_sizes(*images.shape[-2:]))

    def _warn_flat(self, count: int) -> None:
        """Once per cropper, loud (``warnings`` and ``logging``): the boxes silently became
        whole images, e.g. a classifier with broken weights or a layer too coarse."""
        message = (
            f"Grad-CAM heat maps of layer {_layer_name(self.classifier, self.target_layer)!r}"
            f" are flat for all {count} image(s) of a batch: their AT boxes are the whole image."
            " Check the classifier's weights and target_layer (a layer with spatial maps)."
        )
        logger.warning(message)
        warnings.warn(message, FlatHeatmapWarning, stacklevel=3)

    def __repr__(self) -> str:
        return (
            f"GradCAMCropper(classifier={type(self.classifier).__name__},"
            f" method={self.method!r}, thresholds={self.thresholds},"
            f" min_fraction={self.min_fraction})"
        )
