"""Pretrained feature networks (VGG16, AlexNet, the FID Inception), found or fetched.

Losses and attention croppers need ImageNet weights that ganenc does not ship.
They are looked for, in this order:

1. an explicit path from the settings (``feature_weights="/path/vgg16.pth"``);
2. torch's hub cache, ``torch.hub.get_dir()/checkpoints/<file>`` (the place
   torchvision itself uses, so weights fetched once by torchvision are found);
3. a download into that cache through the model zoo's downloader
   (:func:`ganenc.weights.download_file`: socket timeout, retries, resumed
   partial files, sha256 check against the file name's prefix, atomic rename),
   unless ``GANENC_OFFLINE=1``.

The catalogue entries are also weights tags (``features:vgg16``,
``features:alexnet``, ``features:inception-fid``), so ``ganenc weights
download|verify|path`` handle them like generator weights.  ``inception-fid``
is pytorch-fid's FID Inception-v3 file; a copy already in the hub cache under
torch-fidelity's name (torchmetrics' FID) is found too.

When none works, :class:`ganenc.WeightsNotFoundError` says which file is
missing, where to put it and where to get it; nothing falls back to random
weights silently.  Random weights exist only behind the explicit opt-in
``feature_weights="random"`` (meant for smoke tests), which warns loudly.

Nothing is downloaded at import time.  New networks are added with
:func:`register_feature_weights`; torchvision classifiers that are not in the
catalogue are looked up in torchvision's own weight tables.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import weights as _weights
from .errors import CheckpointError, ConfigError, WeightsNotFoundError

if TYPE_CHECKING:
    from torch import Tensor, nn

logger = logging.getLogger(__name__)

#: The value of ``feature_weights`` that asks for random weights (smoke tests only).
RANDOM_WEIGHTS = "random"
#: ``GANENC_OFFLINE=1`` skips the download attempt (the cache and explicit paths still work).
OFFLINE_ENV = _weights.OFFLINE_ENV
#: Seconds a socket may stall (connect or read) before the download gives up.
DOWNLOAD_TIMEOUT_ENV = _weights.DOWNLOAD_TIMEOUT_ENV
DEFAULT_DOWNLOAD_TIMEOUT = _weights.DEFAULT_DOWNLOAD_TIMEOUT
TORCHVISION_URL_BASE = "https://download.pytorch.org/models/"
#: The tag family of feature networks in the model zoo (``features:vgg16``).
FEATURES_FAMILY = "features"
#: ImageNet's per-channel mean and std on [0, 1] RGB: the input normalisation of torchvision's
#: classifiers (Grad-CAM feeds every classifier so, and the emoji classifier was trained so).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RandomFeatureWeightsWarning(UserWarning):
    """A feature network runs with random weights: its losses and heat maps mean nothing."""


@dataclass(frozen=True)
class FeatureWeights:
    """Where one network's pretrained weights live and how to build the network they fit.

    ``build`` returns the randomly initialised network (a callable or a
    ``"module:attribute"`` string, imported only when needed) whose
    ``state_dict`` the weights file matches.  Networks that must be built
    around their file instead (``load(path) -> nn.Module``) set ``load``.
    ``filename`` follows torchvision's ``name-<sha256 prefix>.pth`` convention
    when the prefix should be checked after a download.  ``mirrors`` are more
    URLs of the same bytes; ``aliases`` are other tools' names for the same file
    in the hub cache.  Networks shipped with a distribution (``emoji-cnn``) name
    the importable ``package`` whose folder holds the file and its full ``sha256``.
    """

    name: str
    filename: str
    url: str
    build: Callable[[], Any] | str | None
    description: str = ""
    mirrors: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    load: Callable[[Path], Any] | str | None = None
    licence: str = "unknown"
    source: str = ""
    package: str | None = None
    sha256: str | None = None

    @property
    def hash_prefix(self) -> str | None:
        """The sha256 (prefix) to check: ``sha256``, else the one in the file name
        (``vgg16-397923af.pth`` -> ``397923af``)."""
        if self.sha256:
            return self.sha256
        match = re.search(r"-([0-9a-f]{8,})\.[A-Za-z0-9]+$", self.filename)
        return match.group(1) if match else None

    def build_network(self) -> nn.Module:
        """The network with random weights (load a state dict into it afterwards)."""
        if self.build is None:
            raise ConfigError(
                f"feature network {self.name!r} is built around its weights file only;"
                f" random weights are not available for it"
            )
        return _resolve_callable(self.build)()

    def weights_file(self) -> _weights.WeightsFile:
        """The file as the model zoo describes it (hash prefix from the file name)."""
        return _weights.WeightsFile(
            filename=self.filename,
            urls=tuple(url for url in (self.url, *self.mirrors) if url),
            sha256=self.hash_prefix,
            aliases=self.aliases,
        )

    def weights_entry(self) -> _weights.WeightsEntry:
        """This network as the weights tag ``features:<name>`` (kept in torch's hub cache)."""
        return _weights.WeightsEntry(
            tag=f"{FEATURES_FAMILY}:{self.name}",
            files=(self.weights_file(),),
            format="torch-state-dict",
            description=self.description,
            licence=self.licence,
            source=self.source,
            cache="package" if self.package else "torch-hub",
            package=self.package,
        )


def _resolve_callable(value: Callable[..., Any] | str) -> Callable[..., Any]:
    if isinstance(value, str):
        module_name, _, attribute = value.partition(":")
        return getattr(importlib.import_module(module_name), attribute)
    return value


_CATALOG: dict[str, FeatureWeights] = {}


def register_feature_weights(entry: FeatureWeights, *, replace: bool = False) -> None:
    """Add a network to the catalogue (e.g. Inception for FID); ``replace`` to override one."""
    if entry.name in _CATALOG and not replace:
        raise ConfigError(f"feature weights {entry.name!r} are already registered")
    _CATALOG[entry.name] = entry


def unregister_feature_weights(name: str) -> None:
    """Remove a catalogue entry (tests register throw-away ones)."""
    _CATALOG.pop(name, None)


_TORCHVISION_LICENCE = "BSD-3-Clause (torchvision); trained on ImageNet"
_TORCHVISION_SOURCE = "https://pytorch.org/vision/stable/models.html"
#: pytorch-fid's release of the TensorFlow FID Inception.  torch-fidelity (torchmetrics' FID)
#: publishes the same network under another name; a copy it cached is found as an alias
#: (its URL is not used as a mirror: its bytes are not known to match the sha256 prefix).
FID_INCEPTION_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth"
)
TORCH_FIDELITY_INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)

register_feature_weights(
    FeatureWeights(
        name="vgg16",
        filename="vgg16-397923af.pth",
        url=TORCHVISION_URL_BASE + "vgg16-397923af.pth",
        build="torchvision.models:vgg16",
        description="torchvision VGG16, ImageNet (IMAGENET1K_V1): LPIPS backbone and Grad-CAM",
        licence=_TORCHVISION_LICENCE,
        source=_TORCHVISION_SOURCE,
    )
)
register_feature_weights(
    FeatureWeights(
        name="alexnet",
        filename="alexnet-owt-7be5be79.pth",
        url=TORCHVISION_URL_BASE + "alexnet-owt-7be5be79.pth",
        build="torchvision.models:alexnet",
        description="torchvision AlexNet, ImageNet (IMAGENET1K_V1): LPIPS backbone option",
        licence=_TORCHVISION_LICENCE,
        source=_TORCHVISION_SOURCE,
    )
)
register_feature_weights(
    FeatureWeights(
        name="inception-fid",
        filename="pt_inception-2015-12-05-6726825d.pth",
        url=FID_INCEPTION_URL,
        aliases=(TORCH_FIDELITY_INCEPTION_URL.rsplit("/", 1)[-1],),
        build=None,
        load="ganenc.features:load_fid_inception",
        description="FID Inception-v3 (TensorFlow 2015-12-05 graph) as used by pytorch-fid,"
        " torchmetrics and torch-fidelity",
        licence="Apache-2.0 (TensorFlow models; pytorch-fid port)",
        source="https://github.com/mseitzer/pytorch-fid",
    )
)


register_feature_weights(
    FeatureWeights(
        name="emoji-cnn",
        filename="emoji-cnn.pt",
        url="",
        package="ganenc.emoji",
        sha256="3404b30a61e7241f60a0f45c1aaac8214804f18fa1d8c03574e8fdf3c96d8d1a",
        build="ganenc.emoji.classifier:EmojiCNN",
        load="ganenc.emoji.classifier:load_emoji_cnn",
        description="ganenc's emoji classifier (Unicode group of a 64 px Noto emoji):"
        " Grad-CAM boxes and emoji FID/KID features, offline",
        licence="MIT (ganenc); trained on Noto Color Emoji renders (OFL-1.1 font)",
        source="examples/train_emoji_classifier.py (docs/emoji-models.md)",
    )
)


def builtin_weights_entries() -> list[_weights.WeightsEntry]:
    """The catalogue's networks as weights tags (registered by the built-in plugin)."""
    return [entry.weights_entry() for entry in _CATALOG.values()]


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
    return _weights.offline()


def download_timeout() -> float:
    """The socket timeout of a download, from ``GANENC_DOWNLOAD_TIMEOUT`` (seconds)."""
    return _weights.download_timeout()


def download_weights(entry: FeatureWeights, destination: Path, timeout: float) -> None:
    """Fetch ``entry``'s file to ``destination`` with the model zoo's downloader.

    Mirrors are tried in order; the file is checked against its name's hash
    prefix (a mismatch deletes it) and its full digest is recorded on first
    download (see :mod:`ganenc.weights`).
    """
    logger.warning("downloading %s weights from %s to %s", entry.name, entry.url, destination)
    weights_file = entry.weights_file()
    digest, url = _weights.download_file(
        weights_file.urls,
        destination,
        sha256=weights_file.sha256,
        timeout=timeout,
        label=f"{FEATURES_FAMILY}:{entry.name}",
    )
    _weights.remember_download(entry.weights_entry(), weights_file, digest, url)


def _missing(message: str, path: Path) -> WeightsNotFoundError:
    """The error of a missing weights file; ``missing_path`` says where it was looked for."""
    error = WeightsNotFoundError(message)
    error.missing_path = path
    return error


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
    if path is None and entry.package:
        return _weights.fetch(entry.weights_entry())
    if path is not None:
        explicit = Path(path).expanduser()
        if explicit.is_file():
            return explicit
        raise _missing(
            f"pretrained {name} weights not found at {explicit} (given as feature_weights)."
            f" The expected file is {entry.filename}, from {entry.url}.",
            explicit,
        )
    cached = hub_checkpoint_dir() / entry.filename
    for candidate in (cached, *(cached.with_name(alias) for alias in entry.aliases)):
        if candidate.is_file():
            return candidate
    if download is None:
        download = not offline()
    if not download:
        reason = f"download skipped: {OFFLINE_ENV}=1" if offline() else "not downloaded here"
        raise _missing(_missing_message(entry, cached, reason), cached)
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
        network = entry.build_network()
        warn_random_weights(f"feature network {name!r}")
    elif entry.load is not None:
        network = _resolve_callable(entry.load)(resolve_weights_file(name, feature_weights))
    else:  # find the file before the (slow) network build, so a missing file fails fast
        path = resolve_weights_file(name, feature_weights)
        state_dict = load_weights_file(path)
        network = entry.build_network()
        load_state_dict_into(network, state_dict, path)
    network.eval()
    network.requires_grad_(False)
    return network


def load_fid_inception(path: str | os.PathLike) -> nn.Module:
    """torch-fidelity's FID Inception-v3 (what torchmetrics' FID uses), weights from ``path``.

    The file is read with ``weights_only=True`` first, so a file that needs code
    execution is refused before torch-fidelity (which loads it without that
    restriction) sees it.  Its 2048-d pool features are the FID features.
    """
    state_dict = load_weights_file(path)
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise ConfigError(
            "the FID Inception network needs torch-fidelity:"
            " pip install torch-fidelity (or torchmetrics[image])"
        ) from None
    if "fc.weight" not in state_dict or "Mixed_7c.branch_pool.conv.weight" not in state_dict:
        raise CheckpointError(f"{path} is not the FID Inception-v3 weights file")
    try:
        return FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path)
        )
    except RuntimeError as exc:
        detail = " ".join(line.strip() for line in str(exc).splitlines()[:3])
        raise CheckpointError(f"{path} does not fit the FID Inception-v3: {detail}") from None
