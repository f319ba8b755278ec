"""Registration of the built-in loss terms: lazy references only, no torch import.

Metadata: ``domain`` is ``"image"`` or ``"latent"`` (what the term compares);
``pool=True`` marks the terms before which the composite loss average-pools
large images (SSIM and LPIPS, as in the reference).
"""

from __future__ import annotations


def register_builtin_losses(register) -> None:
    """Register pixel, structural, perceptual and latent terms with the loss hook."""
    register(
        "mse",
        "ganenc.losses.terms:MSELoss",
        description="Mean squared error between images",
        domain="image",
    )
    register(
        "cosine",
        "ganenc.losses.terms:CosineLoss",
        description="1 - cosine similarity of the flattened batch",
        domain="image",
    )
    register(
        "ssim",
        "ganenc.losses.terms:SSIMLoss",
        options="ganenc.losses.options:SSIMOptions",
        description="1 - SSIM (Gaussian window 11, sigma 1.5, K=(0.01, 0.03))",
        domain="image",
        pool=True,
    )
    register(
        "lpips",
        "ganenc.losses.perceptual:LPIPSLoss",
        options="ganenc.losses.options:LPIPSOptions",
        description="LPIPS perceptual distance (VGG16 trunk by default, AlexNet option)",
        domain="image",
        pool=True,
        check_options={"feature_weights": "random"},  # contract checks run offline (warned)
    )
    register(
        "latent_mse",
        "ganenc.losses.terms:MSELoss",
        description="Mean squared error between latents",
        domain="latent",
    )
    register(
        "latent_cosine",
        "ganenc.losses.terms:CosineLoss",
        description="1 - cosine similarity of the flattened latent batch",
        domain="latent",
    )
