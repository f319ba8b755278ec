"""Mixed precision and the optimizer step: one place for training, fine-tuning and inversion."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch

from .errors import ConfigError, GanencError


def autocast(device: torch.device, precision: str):
    """Mixed precision on CUDA; fp32 everywhere else (a clear error if asked otherwise)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type != "cuda":
        raise ConfigError(
            f"precision {precision!r} needs a CUDA device; use --precision fp32 on {device}"
        )
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def grad_scaler(device: torch.device, precision: str):
    return torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and precision == "fp16")


class NonFiniteLossError(GanencError):
    """The loss became NaN or infinite; the step that would spoil the weights was not taken."""


def check_finite_loss(total: torch.Tensor, parts: Mapping[str, torch.Tensor] | None = None) -> None:
    """Raise :class:`NonFiniteLossError` before a NaN/inf loss reaches the weights.

    The caller saves the (still good) weights and stops: training on would only make every
    later checkpoint NaN.  Costs no extra synchronisation where the loss is logged each step.
    The error names the loss ``parts`` (``{"whole/mse": ...}``) that are not finite.
    """
    if not bool(torch.isfinite(total.detach()).all()):
        culprits = [
            name
            for name, value in (parts or {}).items()
            if "/" in name and not bool(torch.isfinite(value.detach()).all())
        ]
        where = f" (not finite: {', '.join(culprits)})" if culprits else ""
        raise NonFiniteLossError(
            f"the loss became {float(total.detach())}{where}; a smaller --lr or other loss"
            " weights may help"
        )


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    scaler: Any,
    total: torch.Tensor,
    parts: Mapping[str, torch.Tensor] | None = None,
) -> None:
    """Zero the gradients, backward the (fp16: scaled) loss, step, update the scaler.

    A NaN or infinite loss raises :class:`NonFiniteLossError` (naming the non-finite
    ``parts``) before anything changes.
    """
    check_finite_loss(total, parts)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    scaler.step(optimizer)
    scaler.update()
