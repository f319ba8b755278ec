"""The average latent w of a StyleGAN generator (the centre of the truncation trick).

A checkpoint without one (rosinality ``train.py`` files, random models) gets it
estimated from the mapping network (:func:`ensure_w_avg`: mean of ``mapping(z)``
over 10,000 z from a fixed seed), computed once and kept in the model's
``w_avg`` buffer.
"""

from __future__ import annotations

import torch
from torch import nn

W_AVG_SAMPLES = 10_000
W_AVG_SEED = 0x5747  # fixed: the estimate is the same on every run


@torch.no_grad()
def estimate_w_avg(
    model: nn.Module,
    num_samples: int = W_AVG_SAMPLES,
    seed: int = W_AVG_SEED,
    batch_size: int = 2000,
) -> torch.Tensor:
    """Mean of ``model.mapping(z)`` over ``num_samples`` z drawn from a fixed seed (float32 [w_dim])."""
    generator = torch.Generator().manual_seed(seed)
    device = model.w_avg.device
    total = torch.zeros(model.w_dim, dtype=torch.float64, device=device)
    done = 0
    while done < num_samples:
        n = min(batch_size, num_samples - done)
        z = torch.randn(n, model.z_dim, generator=generator).to(
            device=device, dtype=model.w_avg.dtype
        )
        total += model.mapping(z).to(torch.float64).sum(dim=0)
        done += n
    return (total / num_samples).to(torch.float32)


def ensure_w_avg(model: nn.Module, num_samples: int = W_AVG_SAMPLES) -> torch.Tensor:
    """``model.w_avg``, estimated with :func:`estimate_w_avg` the first time it is missing.

    Works on any model with the common StyleGAN interface (StyleGAN1 and 2).
    """
    if not getattr(model, "has_w_avg", False):
        estimate = estimate_w_avg(model, num_samples)
        with torch.no_grad():
            model.w_avg.copy_(estimate.to(model.w_avg))
        model.has_w_avg = True
        model.w_avg_estimated = True
    return model.w_avg
