"""Pixel and latent loss terms: each a module called as ``term(prediction, target)``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MSELoss(nn.Module):
    """Mean squared error."""

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(prediction, target)


class CosineLoss(nn.Module):
    """``1 - cos`` between the flattened batches, as the reference's ``space_loss``."""

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 1.0 - F.cosine_similarity(prediction.reshape(1, -1), target.reshape(1, -1)).mean()
