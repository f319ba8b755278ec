"""Pretrained feature networks (VGG16, AlexNet, the FID Inception), found or fetched.

Losses, attention croppers and metrics need ImageNet weights that ganenc does not
ship.  Each network is a weights tag of the family ``features`` (``features:vgg16``,
``features:alexnet``, ``features:inception-fid``, ``features:emoji-cnn``): a
:class:`FeatureEntry`, which is a :class:`ganenc.weights.WeightsEntry` plus how to
build the network its file fits.  The built-in plugin registers them through the
``register_weights`` hook like every generator's weights, so there is one registry,
and only :mod:`ganenc.weights` finds, downloads and checks their files:

1. an explicit path from the settings (``feature_weights="/path/vgg16.pth"``);
2. torch's hub cache, ``torch.hub.get_dir()/checkpoints/<file>`` (the place
   torchvision itself uses, so weights fetched once by torchvision are found; a
   copy of the FID Inception under torch-fidelity's name is found too);
3. a download into that cache by :func:`ganenc.weights.fetch` (socket timeout,
   retries, resumed partial files, sha256 check against the file name's prefix,
   atomic rename), unless ``GANENC_OFFLINE=1``.

``ganenc weights download|verify|path`` handle these tags like generator weights.
When no step finds a file, :class:`ganenc.WeightsNotFoundError` says which file
is missing, where to put it and where to get it; nothing falls back to random
weights silently.  Random weights exist only behind the explicit opt-in
``feature_weights="random"`` (meant for smoke tests), which warns loudly.

Nothing is downloaded at import time.  Plugins add networks by registering
:class:`FeatureEntry` objects under ``features:<name>`` tags; torchvision
classifiers that are not registered are looked up in torchvision's own weight
tables.
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import (
    CheckpointError,
    ConfigError,
    UnknownComponentError,
    WeightsNotFoundError,
    first_line,
)
from .weights import DEFAULT_DOWNLOAD_TIMEOUT as DEFAULT_DOWNLOAD_TIMEOUT  # compatibility
from .weights import DOWNLOAD_TIMEOUT_ENV as DOWNLOAD_TIMEOUT_ENV  # compatibility
from .weights import (
    OFFLINE_ENV,
    TAG_RE,
    WeightsEntry,
    WeightsFile,
    fetch,
    file_path,
    offline,
    torch_hub_checkpoint_dir,
    weights_entry,
)
from .weights import download_timeout as download_timeout  # compatibility

if TYPE_CHECKING:
    from torch import Tensor, nn

logger = logging.getLogger(__name__)

#: The value of ``feature_weights`` that asks for random weights (smoke tests only).
RANDOM_WEIGHTS = "random"
TORCHVISION_URL_BASE = "https://download.pytorch.org/models/"
#: The tag family of feature networks in the model zoo (``features:vgg16``).
FEATURES_FAMILY = "features"
#: ImageNet's per-channel mean and std on [0, 1] RGB: the input normalisation of torchvision's
#: classifiers (Grad-CAM feeds every classifier so, and the emoji classifier was trained so).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Kept for compatibility: torch's hub cache folder is the model zoo's.
hub_checkpoint_dir = torch_hub_checkpoint_dir


class RandomFeatureWeightsWarning(UserWarning):
    """A feature network runs with random weights: its losses and heat maps mean nothing."""


@dataclass(frozen=True)
class FeatureEntry(WeightsEntry):
    """A feature network's weights tag (``features:<name>``) and how to build the network.

    ``build`` returns the randomly initialised network (a callable or a
    ``"module:attribute"`` string, imported only when needed) whose
    ``state_dict`` the weights file matches.  Networks that must be built
    around their file instead (``load(path) -> nn.Module``) set ``load``.
    The file, its URLs, hash and cache are the :class:`WeightsEntry`'s: one file,
    in torch's hub cache unless ``cache="package"`` names a distribution's folder.
    """

    format: str = "torch-state-dict"
    cache: Literal["ganenc", "torch-hub", "package"] = "torch-hub"
    build: Callable[[], Any] | str | None = None
    load: Callable[[Path], Any] | str | None = None
    #: How a user gives the file, for messages; and whether random weights may stand in
    given_by: str = (
        "--feature-weights PATH, --crop-option feature_weights=PATH for a cropper,"
        " feature_weights=PATH in a config or in Python"
    )
    random_allowed: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.family != FEATURES_FAMILY or len(self.files) != 1:
            raise ConfigError(
                f"feature network {self.tag!r}: tag it {FEATURES_FAMILY}:<name>, with one file"
            )

    @property
    def file(self) -> WeightsFile:
        return self.files[0]

    @property
    def filename(self) -> str:
        return self.file.filename

    @property
    def url(self) -> str:
        """The first download URL ("" for shipped files)."""
        return self.file.urls[0] if self.file.urls else ""

    @property
    def mirrors(self) -> tuple[str, ...]:
        return self.file.urls[1:]

    @property
    def aliases(self) -> tuple[str, ...]:
        return self.file.aliases

    @property
    def hash_prefix(self) -> str | None:
        """The sha256 (or its prefix from the file name, ``vgg16-397923af.pth``) to check."""
        return self.file.sha256

    def build_network(self) -> nn.Module:
        """The network with random weights (load a state dict into it afterwards)."""
        if self.build is None:
            raise ConfigError(
                f"feature network {self.name!r} is built around its weights file only;"
                f" random weights are not available for it"
            )
        return _resolve_callable(self.build)()

    def weights_file(self) -> WeightsFile:
        """The one file (kept for compatibility: the entry is a weights entry itself)."""
        return self.file

    def weights_entry(self) -> FeatureEntry:
        """The entry itself (kept for compatibility: it is a :class:`WeightsEntry`)."""
        return self


def FeatureWeights(  # noqa: N802 - the old class name, kept as a constructor
    name: str,
    filename: str,
    url: str,
    build: Callable[[], Any] | str | None,
    description: str = "",
    mirrors: tuple[str, ...] = (),
    aliases: tuple[str, ...] = (),
    load: Callable[[Path], Any] | str | None = None,
    licence: str = "unknown",
    source: str = "",
    package: str | None = None,
    sha256: str | None = None,
) -> FeatureEntry:
    """A :class:`FeatureEntry` from the old one-file fields (kept for compatibility).

    Without ``sha256``, the prefix in a torch.hub file name (``name-<prefix>.pth``)
    is checked after a download.
    """
    urls = tuple(u for u in (url, *mirrors) if u)
    hashes = {"sha256": sha256} if sha256 else {}
    return FeatureEntry(
        tag=f"{FEATURES_FAMILY}:{name}",
        files=(WeightsFile.from_hub_name(filename, *urls, aliases=aliases, **hashes),),
        build=build,
        load=load,
        description=description,
        licence=licence,
        source=source,
        cache="package" if package else "torch-hub",
        package=package,
    )


def _resolve_callable(value: Callable[..., Any] | str) -> Callable[..., Any]:
    if isinstance(value, str):
        module_name, _, attribute = value.partition(":")
        return getattr(importlib.import_module(module_name), attribute)
    return value


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

# Deliberately alike: a weights table (data), one entry per feature network
#: The built-in plugin's ``features:*`` tags (registered through ``register_weights``).
_NETWORKS: dict[str, FeatureEntry] = {
    entry.name: entry
    for entry in (
        FeatureEntry(
            tag="features:vgg16",
            files=(WeightsFile.from_hub_url(TORCHVISION_URL_BASE + "vgg16-397923af.pth"),),
            build="torchvision.models:vgg16",
            description="torchvision VGG16, ImageNet (IMAGENET1K_V1): LPIPS backbone and Grad-CAM",
            licence=_TORCHVISION_LICENCE,
            source=_TORCHVISION_SOURCE,
        ),
        FeatureEntry(
            tag="features:alexnet",
            files=(WeightsFile.from_hub_url(TORCHVISION_URL_BASE + "alexnet-owt-7be5be79.pth"),),
            build="torchvision.models:alexnet",
            description="torchvision AlexNet, ImageNet (IMAGENET1K_V1): LPIPS backbone option",
            licence=_TORCHVISION_LICENCE,
            source=_TORCHVISION_SOURCE,
        ),
        FeatureEntry(
            tag="features:inception-fid",
            files=(
                WeightsFile.from_hub_url(
                    FID_INCEPTION_URL,
                    aliases=(TORCH_FIDELITY_INCEPTION_URL.rsplit("/", 1)[-1],),
                ),
            ),
            load="ganenc.features:load_fid_inception",
            given_by="--fid-weights PATH; fid_weights=PATH in Python",
            random_allowed=False,
            description="FID Inception-v3 (TensorFlow 2015-12-05 graph) as used by pytorch-fid,"
            " torchmetrics and torch-fidelity",
            licence="Apache-2.0 (TensorFlow models; pytorch-fid port)",
            source="https://github.com/mseitzer/pytorch-fid",
        ),
        FeatureEntry(
            tag="features:emoji-cnn",
            files=(
                WeightsFile(
                    "emoji-cnn.pt",
                    (),
                    sha256="3404b30a61e7241f60a0f45c1aaac8214804f18fa1d8c03574e8fdf3c96d8d1a",
                ),
            ),
            cache="package",
            package="ganenc.emoji",
            build="ganenc.emoji.classifier:EmojiCNN",
            load="ganenc.emoji.classifier:load_emoji_cnn",
            description="ganenc's emoji classifier (Unicode group of a 64 px Noto emoji):"
            " Grad-CAM boxes and emoji FID/KID features, offline",
            licence="MIT (ganenc); trained on Noto Color Emoji renders (OFL-1.1 font)",
            source="examples/train_emoji_classifier.py (docs/emoji-models.md)",
        ),
    )
}


def builtin_weights_entries() -> list[FeatureEntry]:
    """The ``features:*`` tags the built-in plugin registers through ``register_weights``."""
    return list(_NETWORKS.values())


def register_feature_weights(entry: FeatureEntry, *, replace: bool = False) -> None:
    """Add a network to the built-in ``features:*`` tags (kept for compatibility: plugins
    register :class:`FeatureEntry` objects with the ``register_weights`` hook)."""
    from .registry import get_registry

    registry = get_registry()
    taken = entry.name in _NETWORKS or any(
        spec.name == entry.tag for spec in registry.components("weights")
    )
    if taken and not replace:
        raise ConfigError(f"feature weights {entry.name!r} are already registered")
    _NETWORKS[entry.name] = entry
    registry.refresh()


def unregister_feature_weights(name: str) -> None:
    """Remove a tag added by :func:`register_feature_weights` (tests add throw-away ones)."""
    from .registry import get_registry

    if _NETWORKS.pop(name, None) is not None:
        get_registry().refresh()


def feature_network_name(name: str) -> str:
    """``"features:emoji-cnn"`` (the weights tag, as the docs write it) -> ``"emoji-cnn"``."""
    return name.removeprefix(f"{FEATURES_FAMILY}:")


def feature_weights_entry(name: str) -> FeatureEntry:
    """The registered ``features:<name>`` tag, else torchvision's default ImageNet weights."""
    from .registry import get_registry

    name = feature_network_name(name)
    registry = get_registry()
    tag = f"{FEATURES_FAMILY}:{name}"
    if TAG_RE.match(tag):
        try:
            entry = weights_entry(tag, registry)
        except UnknownComponentError:
            pass
        else:
            if not isinstance(entry, FeatureEntry):
                raise ConfigError(
                    f"weights {tag!r} are a {type(entry).__name__}, not a feature network"
                    " (register a ganenc.features.FeatureEntry under that tag)"
                )
            return entry
    entry = _torchvision_entry(name)
    if entry is None:
        known = ", ".join(
            sorted(
                spec.name.partition(":")[2]
                for spec in registry.components("weights")
                if spec.name.partition(":")[0] == FEATURES_FAMILY
            )
        )
        raise ConfigError(
            f"unknown feature network {name!r}: not in ganenc's catalogue ({known})"
            " nor a torchvision classification model with pretrained weights"
        )
    return entry


def _torchvision_entry(name: str) -> FeatureEntry | None:
    try:
        import torchvision.models as models

        weights = models.get_model_weights(name).DEFAULT
        models.get_model_builder(name)
    except (ImportError, ValueError, KeyError, AttributeError):
        return None
    return FeatureEntry(
        tag=f"{FEATURES_FAMILY}:{name}",
        files=(WeightsFile.from_hub_url(weights.url),),
        build=lambda: models.get_model(name, weights=None),
        description=f"torchvision {name}, {weights}",
    )


def _missing(message: str, path: Path) -> WeightsNotFoundError:
    """The error of a missing weights file; ``missing_path`` says where it was looked for."""
    error = WeightsNotFoundError(message)
    error.missing_path = path
    return error


def _missing_message(entry: FeatureEntry, cached: Path, reason: str) -> str:
    return (
        f"pretrained {entry.name} weights not found: expected the file {entry.filename} at"
        f" {cached} ({reason}). Download {entry.url} and put it there (torch's hub cache, set"
        f" TORCH_HOME to move it), or give its path ({entry.given_by})."
    ) + (
        f" For smoke tests only, --feature-weights {RANDOM_WEIGHTS} uses random weights."
        if entry.random_allowed
        else ""
    )


def resolve_weights_file(
    name: str,
    path: str | os.PathLike | None = None,
    *,
    download: bool | None = None,
    timeout: float | None = None,
) -> Path:
    """The weights file of network ``name``: explicit path, else :func:`ganenc.weights.fetch`.

    Kept for compatibility: the tag's cache and download are the model zoo's.
    ``download=None`` downloads unless ``GANENC_OFFLINE`` is set.  Raises
    :class:`ganenc.WeightsNotFoundError` naming the file, where to put it and
    its URL when no step finds it.
    """
    entry = feature_weights_entry(name)
    if path is not None:
        explicit = Path(path).expanduser()
        if explicit.is_file():
            return explicit
        source = (
            f"from {entry.url}"
            if entry.url
            else "shipped with ganenc (leave feature_weights out to use the shipped one)"
        )
        if is_random(path) and not entry.random_allowed:
            raise ConfigError(
                f"random {name} weights are refused: its numbers would mean nothing; give the"
                f" real file ({entry.given_by})"
            )
        raise _missing(
            f"pretrained {name} weights not found at {explicit} (given by {entry.given_by})."
            f" The expected file is {entry.filename}, {source}.",
            explicit,
        )
    if entry.cache == "package":  # shipped: never downloaded; a missing file means reinstall
        return fetch(entry)
    if download is None:
        download = not offline()
    try:
        return fetch(entry, download=download, timeout=timeout)
    except OSError as exc:  # not cached offline; network, disk and hash errors end the same way
        if download:
            detail = first_line(exc)
            reason = f"download failed: {type(exc).__name__}: {detail}"
        else:
            reason = f"download skipped: {OFFLINE_ENV}=1" if offline() else "not downloaded here"
        cached = file_path(entry, entry.file)
        raise _missing(_missing_message(entry, cached, reason), cached) from None


def warn_random_weights(what: str) -> None:
    """The loud warning of the random-weights opt-in (``warnings`` and ``logging`` both)."""
    message = (
        f"{what} uses RANDOM feature weights (feature_weights={RANDOM_WEIGHTS!r}): its values are"
        " meaningless. Use this only for smoke tests, never to train or evaluate."
    )
    logger.warning(message)
    warnings.warn(message, RandomFeatureWeightsWarning, stacklevel=3)


def load_weights_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """A state dict from ``path`` (``weights_only`` loading; ``{"state_dict": ...}`` unwrapped).

    Files from strangers are checked: NaN/inf or all-zero weights load without a word
    and then give flat heat maps and meaningless losses, so they are refused here.
    """
    from .checkpoints import read_checkpoint, weights_problem

    data = read_checkpoint(path)
    if isinstance(data, Mapping) and isinstance(data.get("state_dict"), Mapping):
        data = data["state_dict"]
    if not isinstance(data, Mapping) or not data:
        raise CheckpointError(f"{path} does not hold a state dict of weights")
    problem = weights_problem(data)
    if problem:
        raise CheckpointError(f"{path} is damaged: {problem}; use the network's original file")
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
    """``module.load_state_dict(strict=True)`` with a :class:`CheckpointError` naming the file.

    The message names a few mismatched keys, not torch's hundreds on one line.
    """
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        expected = module.state_dict()
        misshapen = [
            k
            for k, v in expected.items()
            if k in state_dict and tuple(getattr(state_dict[k], "shape", ())) != tuple(v.shape)
        ]
        kinds = (
            ("missing", [k for k in expected if k not in state_dict]),
            ("unexpected", [k for k in state_dict if k not in expected]),
            ("of another shape", misshapen),
        )
        detail = "; ".join(f"{what}: {_some(keys)}" for what, keys in kinds if keys)
        if not detail:  # another reason (a module's own loading hook): torch's first lines
            detail = " ".join(line.strip() for line in str(exc).splitlines()[:3])[:300]
        raise CheckpointError(f"{source} does not fit {type(module).__name__} ({detail})") from None


def _some(names: list[str], shown: int = 3) -> str:
    """The first few names and how many more (a mismatch can list hundreds)."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


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
