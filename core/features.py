"""Pretrained feature networks (VGG16 for LPIPS and Grad-CAM, AlexNet for LPIPS), found or fetched.

Losses and attention croppers need ImageNet weights that ganenc does not ship.
They are looked for, in this order:

1. an explicit path from the settings (``feature_weights="/path/vgg16.pth"``);
2. torch's hub cache, ``torch.hub.get_dir()/checkpoints/<file>`` (the place
   torchvision itself uses, so weights fetched once by torchvision are found);
3. a download of the torchvision URL into that cache, with a short socket
   timeout, unless ``GANENC_OFFLINE=1``.

When none works, :class:`ganenc.WeightsNotFoundError` says which file is
missing, where to put it and where to get it; nothing falls back to random
weights silently.  Random weights exist only behind the explicit opt-in
``feature_weights="random"`` (meant for smoke tests), which warns loudly.

Nothing is downloaded at import time.  New networks (e.g. Inception for FID)
are added with :func:`register_feature_weights`; torchvision classifiers that
are not in the catalogue are looked up in torchvision's own weight tables.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CheckpointError, ConfigError, WeightsNotFoundError

if TYPE_CHECKING:
    from torch import Tensor, nn

logger = logging.getLogger(__name__)

#: The value of ``feature_weights`` that asks for random weights (smoke tests only).
RANDOM_WEIGHTS = "random"
#: ``GANENC_OFFLINE=1`` skips the download attempt (the cache and explicit paths still work).
OFFLINE_ENV = "GANENC_OFFLINE"
#: Seconds a socket may stall (connect or read) before the download gives up.
DOWNLOAD_TIMEOUT_ENV = "GANENC_DOWNLOAD_TIMEOUT"
DEFAULT_DOWNLOAD_TIMEOUT = 10.0
TORCHVISION_URL_BASE = "https://download.pytorch.org/models/"


class RandomFeatureWeightsWarning(UserWarning):
    """A feature network runs with random weights: its losses and heat maps mean nothing."""


@dataclass(frozen=True)
class FeatureWeights:
    """Where one network's pretrained weights live and how to build the network they fit.

    ``build`` returns the randomly initialised network (a callable or a
    ``"module:attribute"`` string, imported only when needed) whose
    ``state_dict`` the weights file matches.  ``filename`` follows torchvision's
    ``name-<sha256 prefix>.pth`` convention when the prefix should be checked
    after a download.
    """

    name: str
    filename: str
    url: str
    build: Callable[[], Any] | str
    description: str = ""

    @property
    def hash_prefix(self) -> str | None:
        """The sha256 prefix in the file name (``vgg16-397923af.pth`` -> ``397923af``)."""
        match = re.search(r"-([0-9a-f]{8,})\.[A-Za-z0-9]+$", self.filename)
        return match.group(1) if match else None

    def build_network(self) -> nn.Module:
        """The network with random weights (load a state dict into it afterwards)."""
        build = self.build
        if isinstance(build, str):
            import importlib

            module_name, _, attribute = build.partition(":")
            build = getattr(importlib.import_module(module_name), attribute)
        return build()


_CATALOG: dict[str, FeatureWeights] = {}


def register_feature_weights(entry: FeatureWeights, *, replace: bool = False) -> None:
    """Add a network to the catalogue (e.g. Inception for FID); ``replace`` to override one."""
    if entry.name in _CATALOG and not replace:
        raise ConfigError(f"feature weights {entry.name!r} are already registered")
    _CATALOG[entry.name] = entry


def unregister_feature_weights(name: str) -> None:
    """Remove a catalogue entry (tests register throw-away ones)."""
    _CATALOG.pop(name, None)


register_feature_weights(
    FeatureWeights(
        name="vgg16",
        filename="vgg16-397923af.pth",
        url=TORCHVISION_URL_BASE + "vgg16-397923af.pth",
        build="torchvision.models:vgg16",
        description="torchvision VGG16, ImageNet (IMAGENET1K_V1): LPIPS backbone and Grad-CAM",
    )
)
register_feature_weights(
    FeatureWeights(
        name="alexnet",
        filename="alexnet-owt-7be5be79.pth",
        url=TORCHVISION_URL_BASE + "alexnet-owt-7be5be79.pth",
        build="torchvision.models:alexnet",
        description="torchvision AlexNet, ImageNet (IMAGENET1K_V1): LPIPS backbone option",
    )
)


def feature_weights_entry(name: str) -> FeatureWeights:
    """The catalogue entry of ``name``, else torchvision's default ImageNet weights for it."""
    if name in _CATALOG:
        return _CATALOG[name]
    entry = _torchvision_entry(name)
    if entry is None:
        known = ", ".join(sorted(_CATALOG))
        raise ConfigError(
            f"unknown feature network {name!r}: not in ganenc's catalogue ({known})"
            " nor a torchvision classification model with pretrained weights"
        )
    return entry


def _torchvision_entry(name: str) -> FeatureWeights | None:
    try:
        import torchvision.models as models

        weights = models.get_model_weights(name).DEFAULT
        models.get_model_builder(name)
    except (ImportError, ValueError, KeyError, AttributeError):
        return None
    url = weights.url
    return FeatureWeights(
        name=name,
        filename=url.rsplit("/", 1)[-1],
        url=url,
        build=lambda: models.get_model(name, weights=None),
        description=f"torchvision {name}, {weights}",
    )


def hub_checkpoint_dir() -> Path:
    """Torch's hub cache for weight files: ``$TORCH_HOME/hub/checkpoints`` by default."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def offline() -> bool:
    """Whether ``GANENC_OFFLINE`` forbids the download attempt."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def download_timeout() -> float:
    """The socket timeout of a download, from ``GANENC_DOWNLOAD_TIMEOUT`` (seconds)."""
    value = os.environ.get(DOWNLOAD_TIMEOUT_ENV)
    if not value:
        return DEFAULT_DOWNLOAD_TIMEOUT
    try:
        timeout = float(value)
    except ValueError:
        raise ConfigError(f"{DOWNLOAD_TIMEOUT_ENV}={value!r} is not a number of seconds") from None
    if timeout <= 0:
        raise ConfigError(f"{DOWNLOAD_TIMEOUT_ENV} must be positive, got {value!r}")
    return timeout


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """torch.hub's downloader has no timeout argument: bound every socket operation instead."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def download_weights(entry: FeatureWeights, destination: Path, timeout: float) -> None:
    """Fetch ``entry.url`` to ``destination`` (checked against the file name's hash prefix)."""
    import torch.hub

    destination.parent.mkdir(parents=True, exist_ok=True)
    logger.warning("downloading %s weights from %s to %s", entry.name, entry.url, destination)
    with _socket_timeout(timeout):
        torch.hub.download_url_to_file(
            entry.url,
            str(destination),
            hash_prefix=entry.hash_prefix,
            progress=sys.stderr.isatty(),
        )


def _missing_message(entry: FeatureWeights, cached: Path, reason: str) -> str:
    return (
        f"pretrained {entry.name} weights not found: expected the file {entry.filename} at"
        f" {cached} ({reason}). Download {entry.url} and put it there (torch's hub cache, set"
        f" TORCH_HOME to move it), or give its path with feature_weights=PATH."
        f" For smoke tests only, feature_weights={RANDOM_WEIGHTS!r} uses random weights."
    )


def resolve_weights_file(
    name: str,
    path: str | os.PathLike | None = None,
    *,
    download: bool | None = None,
    timeout: float | None = None,
) -> Path:
    """The weights file of network ``name``: explicit path, else hub cache, else a download.

    ``download=None`` downloads unless ``GANENC_OFFLINE`` is set.  Raises
    :class:`ganenc.WeightsNotFoundError` naming the file, where to put it and
    its URL when no step finds it.
    """
    entry = feature_weights_entry(name)
    if path is not None:
        explicit = Path(path).expanduser()
        if explicit.is_file():
            return explicit
        raise WeightsNotFoundError(
            f"pretrained {name} weights not found at {explicit} (given as feature_weights)."
            f" The expected file is {entry.filename}, from {entry.url}."
        )
    cached = hub_checkpoint_dir() / entry.filename
    if cached.is_file():
        return cached
    if download is None:
        download = not offline()
    if not download:
        raise WeightsNotFoundError(
            _missing_message(entry, cached, f"download skipped: {OFFLINE_ENV}=1")
        )
    try:
        download_weights(entry, cached, download_timeout() if timeout is None else timeout)
    except Exception as exc:  # noqa: BLE001 - network, disk and hash errors all end the same way
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsNotFoundError(
            _missing_message(entry, cached, f"download failed: {type(exc).__name__}: {reason}")
        ) from None
    return cached


def warn_random_weights(what: str) -> None:
    """The loud warning of the random-weights opt-in (``warnings`` and ``logging`` both)."""
    message = (
        f"{what} uses RANDOM feature weights (feature_weights={RANDOM_WEIGHTS!r}): its values are"
        " meaningless. Use this only for smoke tests, never to train or evaluate."
    )
    logger.warning(message)
    warnings.warn(message, RandomFeatureWeightsWarning, stacklevel=3)


def load_weights_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """A state dict from ``path`` (``weights_only`` loading; ``{"state_dict": ...}`` unwrapped)."""
    from .checkpoints import read_checkpoint

    data = read_checkpoint(path)
    if isinstance(data, Mapping) and isinstance(data.get("state_dict"), Mapping):
        data = data["state_dict"]
    if not isinstance(data, Mapping) or not data:
        raise CheckpointError(f"{path} does not hold a state dict of weights")
    return dict(data)


def is_random(feature_weights: object) -> bool:
    """Whether ``feature_weights`` is the explicit random-weights opt-in."""
    return isinstance(feature_weights, str) and feature_weights == RANDOM_WEIGHTS


def load_feature_state_dict(
    name: str, feature_weights: str | os.PathLike | None = None
) -> dict[str, Tensor] | None:
    """The pretrained state dict of ``name``; ``None`` for ``feature_weights="random"`` (warned)."""
    if is_random(feature_weights):
        warn_random_weights(f"feature network {name!r}")
        return None
    return load_weights_file(resolve_weights_file(name, feature_weights))


def load_state_dict_into(
    module: nn.Module, state_dict: Mapping[str, Tensor], source: str | os.PathLike
) -> None:
    """``module.load_state_dict(strict=True)`` with a :class:`CheckpointError` naming the file."""
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        detail = str(exc).splitlines()
        raise CheckpointError(
            f"{source} does not fit {type(module).__name__}: "
            + " ".join(line.strip() for line in detail[:3])
        ) from None


def build_feature_network(name: str, feature_weights: str | os.PathLike | None = None) -> nn.Module:
    """Network ``name`` with its pretrained weights, in eval mode, frozen.

    ``feature_weights``: ``None`` (hub cache, else download), a path, or
    ``"random"`` (smoke tests; warns).
    """
    entry = feature_weights_entry(name)
    if is_random(feature_weights):
        warn_random_weights(f"feature network {name!r}")
        network = entry.build_network()
    else:  # find the file before the (slow) network build, so a missing file fails fast
        path = resolve_weights_file(name, feature_weights)
        state_dict = load_weights_file(path)
        network = entry.build_network()
        load_state_dict_into(network, state_dict, path)
    network.eval()
    network.requires_grad_(False)
    return network
