"""The loss on real images, which have no latent targets (fine-tuning and inversion share it)."""

from __future__ import annotations

from typing import Any

import torch

from .composite import CompositeLoss, PreparedTarget


def real_image_loss(
    encoder: Any,
    generator: Any,
    loss: CompositeLoss,
    images: torch.Tensor,
    boxes: list[torch.Tensor],
    *,
    cycle_weight: float,
    latent_l2: float,
    synthesis_options: dict | None = None,
    target: PreparedTarget | None = None,
    speed: Any = None,
) -> tuple[torch.Tensor, dict, torch.Tensor]:
    """The loss on real images: attentions, latent cycle and L2 (fine-tuning and inversion share it).

    ``w1 = E(x)``, ``x1 = G(w1)``, ``w2 = E(x1)``: image loss of ``x1`` against
    ``x`` + ``cycle_weight`` x latent loss of ``w2`` against ``w1`` (already
    scaled by ``loss.settings.latent_scale``) + ``latent_l2`` x mean(w1^2).
    ``target``: ``images`` prepared once by ``loss.prepare_target`` (with the
    boxes), for a target that stays the same over many steps; ``speed``: the
    run's layout and checkpointing options.
    """
    if speed is None:
        from ..training.speed import SpeedOptions

        speed = SpeedOptions()
    w1 = encoder(speed.images(images))
    reconstruction = speed.synthesize(generator, w1, synthesis_options)
    if target is not None:
        total, parts = loss(reconstruction.float(), target)
    else:
        total, parts = loss(reconstruction.float(), images, boxes=boxes)
    w2 = encoder(speed.images(reconstruction))
    w1 = {k: v.float() for k, v in w1.items()}
    cycle, cycle_parts = loss.latent_loss({k: v.float() for k, v in w2.items()}, w1)
    l2 = sum(value.pow(2).mean() for value in w1.values())
    total = total + cycle_weight * cycle + latent_l2 * l2
    parts.update({f"cycle/{k}": v for k, v in cycle_parts.items()})
    parts["latent_l2"] = l2
    parts["total"] = total
    return total, parts, reconstruction
