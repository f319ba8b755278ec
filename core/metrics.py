"""Image-quality metrics computed by torchmetrics (the standard implementations).

Images are [N, 3, H, W] in [-1, 1]; they are mapped to [0, 1] first, so PSNR
and SSIM read as for 8-bit images (data range 1).
"""

from __future__ import annotations

import torch


def _unit(images: torch.Tensor) -> torch.Tensor:
    return ((images.detach().float() + 1) / 2).clamp(0, 1)


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB ([N]); infinite for identical images."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return peak_signal_noise_ratio(
        _unit(prediction), _unit(target), data_range=1.0, reduction="none", dim=(1, 2, 3)
    )


def ssim(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM ([N]), Gaussian window 11, sigma 1.5 (smaller window for tiny images)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    size = min(prediction.shape[-2:])
    kernel = 11 if size >= 11 else max(3, size - 1 if size % 2 == 0 else size)
    return structural_similarity_index_measure(
        _unit(prediction), _unit(target), data_range=1.0, reduction="none", kernel_size=kernel
    )


def mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error in [0, 1] units ([N])."""
    return ((_unit(prediction) - _unit(target)) ** 2).flatten(1).mean(1)
