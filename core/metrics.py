"""Image-quality metrics by the standard implementations (torchmetrics; SSIM by pytorch-msssim).

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


def ssim_window(height: int, width: int, win_size: int = 11) -> int:
    """The SSIM window for an image: ``win_size``, else the largest odd one that fits (>= 3).

    One rule for the metric and the loss term, so validation's SSIM is the loss's.
    """
    side = min(height, width, win_size)
    window = side if side % 2 == 1 else side - 1
    if window < 3:
        raise ValueError(
            f"SSIM needs images of at least 3x3 pixels, got {height}x{width}"
            " (pool_above or the crop size may be too small)"
        )
    return window


def ssim(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM ([N]) of Wang et al.: Gaussian window 11 (smaller for tiny images,
    :func:`ssim_window`), sigma 1.5, averaged over the pixels the window covers whole.

    pytorch-msssim, as the SSIM loss term: it matches skimage's SSIM; torchmetrics'
    averaged the padded border in and ignored a smaller window (0.03 off at 64 px).
    """
    from pytorch_msssim import ssim as wang_ssim

    window = ssim_window(*prediction.shape[-2:])
    # float64 (in float32 identical images scored 0.99998, the variances' rounding), one
    # image at a time: a batch of 1024 px images in float64 would take a gigabyte
    return torch.cat(
        [
            wang_ssim(
                _unit(one[None]).double(),
                _unit(other[None]).double(),
                data_range=1.0,
                size_average=False,
                win_size=window,
                win_sigma=1.5,
            )
            for one, other in zip(prediction, target, strict=True)
        ]
    ).float()


def mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error in [0, 1] units ([N])."""
    return ((_unit(prediction) - _unit(target)) ** 2).flatten(1).mean(1)
