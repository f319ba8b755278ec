"""The composite loss: registered terms by name and weight, over attention levels and latents.

``CompositeLoss(LossSettings())`` is the paper's loss.  For a target image
batch, its reconstruction and (optionally) a cropper::

    total, parts = loss(reconstruction, target, cropper=cropper,
                        predicted_latents=E(target), target_latents=w)

``total`` keeps the autograd graph of the reconstruction and of the predicted
latents: nothing on the path is detached and nothing goes through numpy.
``parts`` maps names to (still attached) scalar tensors for logging:

- ``"<level>/<term>"``: the raw term on one level (``whole/mse``, ``at1/lpips``);
- ``"<level>"``: that level's weighted image loss (before the attention weight);
- ``"image"``: the attention-weighted sum over levels;
- ``"latent/<key>/<term>"``: a raw latent term on one latent (``latent/w_plus/latent_mse``);
- ``"latent"``: the weighted latent loss, already times ``latent_scale``;
- ``"total"``: ``image + latent``.

A target that stays the same over many steps (per-image fine-tuning, latent
optimisation) can be prepared once::

    prepared = loss.prepare_target(target, boxes=boxes)   # crops, pooling, LPIPS features
    total, parts = loss(reconstruction, prepared)         # same values, less work per step
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import validate_options
from ..contracts import check_loss_value
from ..cropping import (
    AttentionPair,
    Cropper,
    attention_boxes,
    attention_pairs,
    crop_and_resize,
    level_name,
)
from ..errors import ConfigError
from ..registry import Registry, get_registry
from .options import LossSettings

__all__ = ["CompositeLoss", "LossSettings", "LossParts", "PreparedTarget"]

LossParts = dict[str, torch.Tensor]


@dataclass(frozen=True)
class _Term:
    name: str
    key: str  # key in the ModuleDict (names may hold '.')
    weight: float
    pool: bool


@dataclass(frozen=True)
class _PreparedLevel:
    name: str
    boxes: torch.Tensor | None  # None: the whole image
    target: torch.Tensor
    pooled: torch.Tensor
    term_targets: dict[str, Any]  # term key -> what the term's prepare_target returned


@dataclass(frozen=True)
class PreparedTarget:
    """A target batch with its attention crops, pooled copies and term features, made once.

    Built by :meth:`CompositeLoss.prepare_target`; pass it where the target
    image goes.  It holds no gradient: the target is a constant.
    """

    image: torch.Tensor
    levels: tuple[_PreparedLevel, ...]

    @property
    def boxes(self) -> list[torch.Tensor]:
        return [level.boxes for level in self.levels if level.boxes is not None]


class CompositeLoss(nn.Module):
    """Weighted sum of registered loss terms over attention levels and latent keys."""

    def __init__(
        self,
        settings: LossSettings | Mapping[str, Any] | None = None,
        *,
        registry: Registry | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        if settings is None:
            settings = LossSettings()
        if isinstance(settings, Mapping):
            settings = validate_options(LossSettings, dict(settings), "loss settings")
        if overrides:
            data = settings.model_dump()
            data.update(overrides)
            settings = validate_options(LossSettings, data, "loss settings")
        self.settings = settings
        self.attention_weights = settings.resolved_attention_weights
        registry = registry or get_registry()
        self.terms = nn.ModuleDict()
        self.image_terms = self._build_terms(registry, settings.image_terms, "image")
        self.latent_terms = self._build_terms(registry, settings.latent_terms, "latent")

    def _build_terms(
        self, registry: Registry, weights: Mapping[str, float], domain: str
    ) -> list[_Term]:
        terms = []
        for name, weight in weights.items():
            spec = registry.get("loss", name)
            declared = spec.metadata.get("domain")
            if declared is not None and declared != domain:
                raise ConfigError(
                    f"loss term {name!r} compares {declared}s; it cannot be one of the"
                    f" {domain} terms (choose a term registered with domain={domain!r})"
                )
            options = dict(self.settings.term_options.get(name, {}))
            model = spec.load_options_model()
            if (
                self.settings.feature_weights is not None
                and model is not None
                and "feature_weights" in model.model_fields
            ):
                options.setdefault("feature_weights", self.settings.feature_weights)
            key = f"{domain}_{name}".replace(".", "_")
            self.terms[key] = registry.create("loss", name, **options)
            terms.append(_Term(name, key, float(weight), bool(spec.metadata.get("pool", False))))
        return terms

    # -- image terms ------------------------------------------------------------------------
    def pooled(self, images: torch.Tensor) -> torch.Tensor:
        """Average-pool by 2 while taller than ``pool_above`` (the reference's SSIM/LPIPS input)."""
        limit = self.settings.pool_above
        if limit is None:
            return images
        while images.shape[-2] > limit:
            images = F.avg_pool2d(images, kernel_size=2, stride=2)
        return images

    def image_loss(
        self,
        reconstruction: torch.Tensor,
        target: torch.Tensor | _PreparedLevel,
        prefix: str = "",
    ) -> tuple[torch.Tensor, LossParts]:
        """Weighted image terms of one pair; parts ``"<prefix><term>"`` are the raw terms."""
        total = reconstruction.new_zeros(())
        parts: LossParts = {}
        prepared = target if isinstance(target, _PreparedLevel) else None
        pooled: tuple[torch.Tensor, Any] | None = None
        for term in self.image_terms:
            if term.pool:
                if pooled is None:
                    pooled_target = prepared.pooled if prepared is not None else self.pooled(target)
                    pooled = (self.pooled(reconstruction), pooled_target)
                if prepared is not None and term.key in prepared.term_targets:
                    value = self.terms[term.key](pooled[0], prepared.term_targets[term.key])
                else:
                    value = self.terms[term.key](*pooled)
            elif prepared is not None:
                value = self.terms[term.key](
                    reconstruction, prepared.term_targets.get(term.key, prepared.target)
                )
            else:
                value = self.terms[term.key](reconstruction, target)
            check_loss_value(self.terms[term.key], term.name, value)
            parts[prefix + term.name] = value
            total = total + term.weight * value
        return total, parts

    def attention_loss(self, pairs: Sequence[AttentionPair]) -> tuple[torch.Tensor, LossParts]:
        """Sum over levels of ``attention weight x image loss`` (pairs from ``attention_pairs``)."""
        if len(pairs) > len(self.attention_weights):
            raise ConfigError(
                f"the cropper gives {len(pairs) - 1} attention levels but only"
                f" {len(self.attention_weights)} weights (whole, AT1, ...) are set:"
                f" {list(self.attention_weights)}"
            )
        total = pairs[0].reconstruction.new_zeros(())
        parts: LossParts = {}
        for pair, weight in zip(pairs, self.attention_weights, strict=False):
            level_total, level_parts = self.image_loss(
                pair.reconstruction, pair.target, prefix=f"{pair.name}/"
            )
            parts.update(level_parts)
            parts[pair.name] = level_total
            total = total + weight * level_total
        parts["image"] = total
        return total, parts

    @torch.no_grad()
    def prepare_target(
        self,
        target: torch.Tensor,
        *,
        cropper: Cropper | None = None,
        boxes: Sequence[torch.Tensor] | None = None,
    ) -> PreparedTarget:
        """Everything about ``target`` that the loss computes on every call, computed once.

        The attention boxes (from ``cropper`` or ``boxes``), the crops, their
        pooled copies and what each term's ``prepare_target`` keeps (LPIPS:
        the normalised VGG features).  ``loss(reconstruction, prepared)`` then
        gives the values of ``loss(reconstruction, target, boxes=boxes)``.
        """
        if boxes is None:
            boxes = attention_boxes(cropper, target) if cropper is not None else []
        levels = [(level_name(0), None, target)]
        for index, level_boxes in enumerate(boxes, start=1):
            level_boxes = level_boxes.to(target.device)
            levels.append((level_name(index), level_boxes, crop_and_resize(target, level_boxes)))
        prepared = []
        for name, level_boxes, image in levels:
            pooled = self.pooled(image)
            term_targets = {}
            for term in self.image_terms:
                prepare = getattr(self.terms[term.key], "prepare_target", None)
                if prepare is not None:
                    term_targets[term.key] = prepare(pooled if term.pool else image)
            prepared.append(_PreparedLevel(name, level_boxes, image, pooled, term_targets))
        return PreparedTarget(target, tuple(prepared))

    @staticmethod
    def _prepared_pairs(
        prepared: PreparedTarget, reconstruction: torch.Tensor
    ) -> list[AttentionPair]:
        """Pairs whose ``target`` is the prepared level (the reconstruction cropped alike)."""
        if prepared.image.shape != reconstruction.shape:
            raise ValueError(
                f"target {tuple(prepared.image.shape)} and reconstruction"
                f" {tuple(reconstruction.shape)} differ in shape"
            )
        return [
            AttentionPair(
                level.name,
                level,
                reconstruction
                if level.boxes is None
                else crop_and_resize(reconstruction, level.boxes),
            )
            for level in prepared.levels
        ]

    # -- latent terms -----------------------------------------------------------------------
    def latent_loss(
        self,
        predicted: Mapping[str, torch.Tensor],
        target: Mapping[str, torch.Tensor],
    ) -> tuple[torch.Tensor, LossParts]:
        """``latent_scale x`` weighted latent terms, summed over every key of the latent dicts."""
        if set(predicted) != set(target):
            raise ValueError(
                f"predicted latents {sorted(predicted)} and target latents {sorted(target)}"
                " have different keys"
            )
        first = next(iter(predicted.values()), None)
        total = first.new_zeros(()) if first is not None else torch.zeros(())
        parts: LossParts = {}
        for key in predicted:
            for term in self.latent_terms:
                value = self.terms[term.key](predicted[key], target[key])
                check_loss_value(self.terms[term.key], term.name, value)
                parts[f"latent/{key}/{term.name}"] = value
                total = total + term.weight * value
        total = self.settings.latent_scale * total
        parts["latent"] = total
        return total, parts

    # -- everything -------------------------------------------------------------------------
    def forward(
        self,
        reconstruction: torch.Tensor,
        target: torch.Tensor | PreparedTarget,
        *,
        cropper: Cropper | None = None,
        boxes: Sequence[torch.Tensor] | None = None,
        predicted_latents: Mapping[str, torch.Tensor] | None = None,
        target_latents: Mapping[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, LossParts]:
        """Image loss over (whole, AT1, AT2) plus the scaled latent loss when latents are given.

        Attention boxes come from ``cropper`` (computed on ``target`` without
        gradient) or ``boxes``; with neither, only the whole image counts.  A
        :class:`PreparedTarget` carries its own boxes (``cropper`` and ``boxes``
        must then be left out).
        """
        if isinstance(target, PreparedTarget):
            if cropper is not None or boxes is not None:
                raise ValueError("a prepared target carries its boxes: pass no cropper or boxes")
            pairs = self._prepared_pairs(target, reconstruction)
        else:
            pairs = attention_pairs(cropper, target, reconstruction, boxes=boxes)
        total, parts = self.attention_loss(pairs)
        if (predicted_latents is None) != (target_latents is None):
            raise ValueError("give both predicted_latents and target_latents, or neither")
        if predicted_latents is not None and target_latents is not None:
            latent_total, latent_parts = self.latent_loss(predicted_latents, target_latents)
            parts.update(latent_parts)
            total = total + latent_total
        parts["total"] = total
        return total, parts
