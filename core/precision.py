"""Mixed precision and the optimizer step: one place for training, fine-tuning and inversion."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from .errors import ConfigError


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


def optimizer_step(optimizer: torch.optim.Optimizer, scaler: Any, total: torch.Tensor) -> None:
    """Zero the gradients, backward the (fp16: scaled) loss, step, update the scaler."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    scaler.step(optimizer)
    scaler.update()
