"""The LPIPS term, with its backbone's ImageNet weights from :mod:`ganenc.features`.

``lpips.LPIPS`` would let torchvision download the backbone on its own; here it
is built with a random trunk (``pnet_rand=True``) and the trunk's torchvision
weights are loaded from the file that :mod:`ganenc.features` finds (explicit
path, torch's hub cache, or a download), or left random on the explicit
``feature_weights="random"`` opt-in.  The linear calibration layers (v0.1) ship
inside the ``lpips`` package and are read with ``weights_only=True``.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..checkpoints import read_checkpoint
from ..errors import CheckpointError, first_line
from ..features import (
    is_random,
    load_weights_file,
    resolve_weights_file,
    warn_random_weights,
)

#: LPIPS trunk name -> ganenc feature network whose ``features.*`` weights it uses.
BACKBONES = {"vgg": "vgg16", "alex": "alexnet"}
LPIPS_VERSION = "0.1"


def lpips_linear_weights_path(net: str) -> Path:
    """The v0.1 linear-layer weights file shipped inside the ``lpips`` package."""
    import lpips

    return Path(lpips.__file__).parent / "weights" / f"v{LPIPS_VERSION}" / f"{net}.pth"


class LPIPSLoss(nn.Module):
    """Learned perceptual distance (LPIPS v0.1) of images in [-1, 1], averaged over the batch.

    The whole LPIPS network is frozen and stays in eval mode (its dropout never
    runs), whatever mode the parent module is put in; gradients still flow to
    the prediction.
    """

    def __init__(self, net: str = "vgg", feature_weights: str | os.PathLike | None = None) -> None:
        super().__init__()
        if net not in BACKBONES:
            raise ValueError(f"LPIPS net must be one of {sorted(BACKBONES)}, got {net!r}")
        backbone = BACKBONES[net]
        trunk_state = None
        trunk_source = None
        if is_random(feature_weights):
            warn_random_weights(f"LPIPS ({net})")
        else:  # resolve before building, so a missing file fails within seconds
            trunk_source = resolve_weights_file(backbone, feature_weights)
            trunk_state = load_weights_file(trunk_source)

        import lpips

        with warnings.catch_warnings():
            # lpips passes torchvision's deprecated ``pretrained=False``: nothing is downloaded.
            warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
            model = lpips.LPIPS(
                pretrained=False, net=net, version=LPIPS_VERSION, pnet_rand=True, verbose=False
            )
        if trunk_state is not None:
            _load_trunk(model.net, trunk_state, trunk_source)
        _load_linear_layers(model, lpips_linear_weights_path(net))
        model.eval()
        model.requires_grad_(False)
        self.net = net
        self.model = model

    def train(self, mode: bool = True) -> LPIPSLoss:
        super().train(mode)
        self.model.eval()  # a metric, not a trainable part: no dropout
        return self

    def forward(self, prediction: torch.Tensor, target: torch.Tensor | LPIPSTarget) -> torch.Tensor:
        """Mean LPIPS distance; ``target`` may be :meth:`prepare_target`'s cached features."""
        if isinstance(target, LPIPSTarget):
            if tuple(prediction.shape) != target.shape:
                raise ValueError(
                    f"prediction {tuple(prediction.shape)} does not match the prepared target"
                    f" {target.shape}"
                )
            return self._distance(self.normalized_features(prediction), target.features).mean()
        return self.model(prediction, target).mean()

    def normalized_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The trunk's five feature maps of ``images``, unit-normalised over channels (as lpips)."""
        import lpips

        outputs = self.model.net.forward(self.model.scaling_layer(images))
        return [lpips.normalize_tensor(feature) for feature in outputs]

    @torch.no_grad()
    def prepare_target(self, target: torch.Tensor) -> LPIPSTarget:
        """The target's normalised features, computed once for a target that does not change.

        Per-image fine-tuning and latent optimisation compare hundreds of
        reconstructions with one image: passing this instead of the image to
        :meth:`forward` skips the target's half of every VGG pass.  The distance
        is the same as lpips's (same operations, same order).
        """
        return LPIPSTarget(self.normalized_features(target), tuple(target.shape))

    def _distance(
        self, prediction_features: list[torch.Tensor], target_features: list[torch.Tensor]
    ) -> torch.Tensor:
        """lpips's v0.1 distance (no spatial map) from normalised features: ``[N, 1, 1, 1]``."""
        value = 0
        for linear, ours, theirs in zip(
            self.model.lins, prediction_features, target_features, strict=True
        ):
            value += linear((ours - theirs) ** 2).mean([2, 3], keepdim=True)
        return value


@dataclass(frozen=True)
class LPIPSTarget:
    """A target image batch as LPIPS sees it: its normalised trunk features (no gradient)."""

    features: list[torch.Tensor]
    shape: tuple[int, ...]


def _load_trunk(trunk: nn.Module, state: dict[str, torch.Tensor], source: object) -> None:
    """torchvision's ``features.<i>.*`` keys -> lpips's ``slice<k>.<i>.*`` (same indices)."""
    mapped = {}
    for key in trunk.state_dict():
        original = re.sub(r"^slice\d+\.", "features.", key)
        if original not in state:
            raise CheckpointError(
                f"{source} lacks {original!r}: not a torchvision {type(trunk).__name__} state dict"
            )
        mapped[key] = state[original]
    try:
        trunk.load_state_dict(mapped, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{source} does not fit the LPIPS trunk: {first_line(exc)}") from None


def _load_linear_layers(model: nn.Module, path: Path) -> None:
    state = read_checkpoint(path)
    expected = {key for key in model.state_dict() if re.match(r"^lin\d+\.", key)}
    missing = expected - set(state)
    unexpected = set(state) - set(model.state_dict())
    if missing or unexpected:
        raise CheckpointError(
            f"LPIPS linear weights {path} do not fit: missing {sorted(missing)},"
            f" unexpected {sorted(unexpected)}"
        )
    model.load_state_dict(state, strict=False)
