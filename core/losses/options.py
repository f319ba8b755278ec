"""Options of the loss terms and settings of the composite loss: pydantic only, no torch.

Kept apart from the modules so that settings can be validated (and command
lines can start) without importing torch.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..config import RecordedPath, Settings

#: Attention weights (whole image, AT1, AT2) of the paper's two strategies.
ATTENTION_STRATEGIES: dict[int, tuple[float, ...]] = {1: (1.0, 1.0, 1.0), 2: (1.0, 5.0, 9.0)}
#: The paper's image loss: 5 MSE + 3 (1 - cos) + 1 (1 - SSIM) + 2 LPIPS.
DEFAULT_IMAGE_TERMS: dict[str, float] = {"mse": 5.0, "cosine": 3.0, "ssim": 1.0, "lpips": 2.0}
#: The paper's latent loss: 5 MSE + 3 (1 - cos), applied to every latent of the dict.
DEFAULT_LATENT_TERMS: dict[str, float] = {"latent_mse": 5.0, "latent_cosine": 3.0}
DEFAULT_LATENT_SCALE = 0.01
DEFAULT_POOL_ABOVE = 256


class SSIMOptions(Settings):
    """SSIM term: ``1 - SSIM`` with a Gaussian window (pytorch-msssim).

    Images smaller than the window get the largest odd window that fits (sigma
    kept), so AT crops of tiny test images still work; below 3 pixels SSIM is
    undefined and the term raises a ``ValueError``.  ``data_range`` is 2 because
    images live in [-1, 1]; they are compared shifted to [0, 2], as SSIM's luminance
    term needs intensities from 0 (the reference computed it on the signed values).
    """

    win_size: int = Field(11, ge=3)
    win_sigma: float = Field(1.5, gt=0)
    k1: float = Field(0.01, gt=0)
    k2: float = Field(0.03, gt=0)
    data_range: float = Field(2.0, gt=0)

    @field_validator("win_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("the SSIM window size must be odd")
        return value


class LPIPSOptions(Settings):
    """LPIPS term (the ``lpips`` package, v0.1 linear layers shipped inside it).

    ``net``: ``vgg`` (the paper's) or ``alex``.  ``feature_weights``: the
    backbone's torchvision ImageNet weights: ``None`` looks in torch's hub cache
    (then downloads), a path names the file, ``"random"`` is the smoke-test
    opt-in (warns loudly).
    """

    net: Literal["vgg", "alex"] = "vgg"
    feature_weights: RecordedPath | None = None


class LossSettings(Settings):
    """The composite loss: term names and weights, attention weights, pooling.

    Defaults are the paper's: image loss 5 MSE + 3 (1 - cos) + 1 (1 - SSIM) +
    2 LPIPS on the whole image, AT1 and AT2 weighted 1, 5, 9 ("Strategy 2",
    gradients kept; ``attention_strategy=1`` for 1:1:1); latent loss 5 MSE +
    3 (1 - cos) on every latent, times 0.01; images taller than 256 average-pooled
    by 2 (repeatedly) before the terms registered with ``pool=True`` (SSIM, LPIPS).
    """

    image_terms: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_IMAGE_TERMS))
    latent_terms: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_LATENT_TERMS))
    latent_scale: float = Field(DEFAULT_LATENT_SCALE, ge=0)
    attention_strategy: Literal[1, 2] = 2
    attention_weights: list[float] | None = Field(
        None, description="weights of whole image, AT1, AT2 (overrides attention_strategy)"
    )
    pool_above: int | None = Field(DEFAULT_POOL_ABOVE, ge=1)
    term_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    feature_weights: RecordedPath | None = Field(
        None, description="feature weights for every term that takes them (LPIPS)"
    )

    @field_validator("image_terms", "latent_terms")
    @classmethod
    def _finite_weights(cls, value: dict[str, float]) -> dict[str, float]:
        for name, weight in value.items():
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"weight of {name!r} must be finite and >= 0, got {weight}")
        return value

    @field_validator("attention_weights")
    @classmethod
    def _attention(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("give at least the whole-image weight")
        if any(not math.isfinite(w) or w < 0 for w in value):
            raise ValueError("attention weights must be finite and >= 0")
        return value

    @model_validator(mode="after")
    def _options_name_terms(self) -> LossSettings:
        unknown = set(self.term_options) - set(self.image_terms) - set(self.latent_terms)
        if unknown:
            raise ValueError(
                f"term_options given for terms not in image_terms or latent_terms: {sorted(unknown)}"
            )
        weights = [*self.image_terms.values(), *self.latent_terms.values()]
        if not any(weights):  # a loss of 0: the run would 'train' and the encoder never move
            raise ValueError("every loss weight is 0: give at least one term a weight above 0")
        return self

    @property
    def resolved_attention_weights(self) -> tuple[float, ...]:
        """Weights of (whole image, AT1, AT2, ...): explicit ones, else the strategy's."""
        if self.attention_weights is not None:
            return tuple(self.attention_weights)
        return ATTENTION_STRATEGIES[self.attention_strategy]
