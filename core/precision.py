"""Mixed precision and the optimizer step: one place for training, fine-tuning and inversion."""

from __future__ import annotations

import contextlib
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


def check_finite_loss(total: torch.Tensor) -> None:
    """Raise :class:`NonFiniteLossError` before a NaN/inf loss reaches the weights.

    The caller saves the (still good) weights and stops: training on would only make every
    later checkpoint NaN.  Costs no extra synchronisation where the loss is logged each step.
    """
    if not bool(torch.isfinite(total.detach()).all()):
        raise NonFiniteLossError(
            f"the loss became {float(total.detach())}; a smaller --lr or other loss weights"
            " may help"
        )


def optimizer_step(optimizer: torch.optim.Optimizer, scaler: Any, total: torch.Tensor) -> None:
    """Zero the gradients, backward the (fp16: scaled) loss, step, update the scaler.

    A NaN or infinite loss raises :class:`NonFiniteLossError` before anything changes.
    """
    check_finite_loss(total)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    scaler.step(optimizer)
    scaler.update()
