"""Registration of the built-in loss terms: lazy references only, no torch import."""

from __future__ import annotations


def register_builtin_losses(register) -> None:
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
