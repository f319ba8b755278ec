"""Weights entries: what a tag names (files, URLs, hashes, format, architecture, licence).

A tag is ``family:name``; plugins register :class:`WeightsEntry` objects under
their tags through the ``register_weights`` hook.  This module looks tags up in
the registry; where files live is :mod:`ganenc.weights.cache`'s job.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigError, GanencError, UnknownComponentError
from ..registry import TAG_RE

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ..registry import ComponentSpec, Registry

_HEX_RE = re.compile(r"^[0-9a-f]{8,64}$")
_HUB_HASH_RE = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")


def hub_name_prefix(filename: str) -> str | None:
    """The sha256 prefix a torch.hub file name carries (``name-<prefix>.ext``), else ``None``."""
    match = _HUB_HASH_RE.search(filename)
    return match.group(1) if match else None


#: The addresses a download can use (urllib's, less ftp: no published weights use it).
_URL_RE = re.compile(r"^(https?|file)://\S+$", re.IGNORECASE)


@dataclass(frozen=True)
class WeightsFile:
    """One file of a weights entry.

    ``filename`` is its name in the cache; ``urls`` are mirrors of the same bytes,
    tried in order.  ``sha256`` is the full hex digest, or a prefix of it of at
    least 8 characters (torch.hub's ``name-<prefix>.ext`` convention), or ``None``
    when unknown (then it is recorded at first download).  ``aliases`` are other
    names under which other tools store the same bytes in the same cache folder
    (e.g. torch-fidelity's name of the FID Inception weights).
    """

    filename: str
    urls: tuple[str, ...]
    sha256: str | None = None
    size: int | None = None
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.urls, str):
            object.__setattr__(self, "urls", (self.urls,))
        if not self.filename or "/" in self.filename or "\\" in self.filename:
            raise ConfigError(f"weights file name {self.filename!r} must be a plain file name")
        if self.sha256 is not None:
            digest = self.sha256.lower()
            if not _HEX_RE.match(digest):
                raise ConfigError(
                    f"sha256 of {self.filename!r} must be 8 to 64 hex digits, got {self.sha256!r}"
                )
            object.__setattr__(self, "sha256", digest)
        if self.size is not None and (type(self.size) is not int or self.size <= 0):
            raise ConfigError(
                f"size of {self.filename!r} must be a positive number of bytes, got {self.size!r}"
            )
        odd = [url for url in self.urls if not _URL_RE.match(str(url))]
        if odd:
            raise ConfigError(
                f"URLs of {self.filename!r} must be http(s):// or file:// addresses, got {odd[0]!r}"
            )

    @classmethod
    def from_hub_url(cls, url: str, *mirrors: str, **fields: Any) -> WeightsFile:
        """A file named like the URL's last part, its sha256 prefix read from a torch.hub name."""
        return cls.from_hub_name(url.rsplit("/", 1)[-1], url, *mirrors, **fields)

    @classmethod
    def from_hub_name(cls, filename: str, *urls: str, **fields: Any) -> WeightsFile:
        """A file whose sha256 prefix is read from its torch.hub name (``name-<prefix>.ext``)."""
        fields.setdefault("sha256", hub_name_prefix(filename))
        return cls(filename=filename, urls=urls, **fields)

    @property
    def full_sha256(self) -> bool:
        """Whether the complete digest is known (not only a prefix)."""
        return self.sha256 is not None and len(self.sha256) == 64


@dataclass(frozen=True)
class WeightsEntry:
    """A tagged set of pretrained weights: files, format, architecture, licence, source.

    ``tag`` is ``family:name`` (the family is the generator's registered name,
    or ``features`` for feature networks).  ``resolution`` and ``latents``
    (latent name -> size, e.g. ``{"z": 512}``) are what the loaded generator
    must show; ``load_generator`` checks them.  With several files (or
    ``folder=True``) the files are stored in one folder and the checkpoint path
    is that folder (e.g. HuggingFace BigGAN: ``config.json`` + ``pytorch_model.bin``).
    ``notes`` are shown in listings and in download errors (e.g. "OneDrive link:
    may need manual download").  ``cache="package"`` with ``package="dist.assets"``
    names files shipped in that importable package's folder (never downloaded).
    The entry is callable (returns itself) so it can be registered directly as a
    component factory.
    """

    tag: str
    files: tuple[WeightsFile, ...]
    format: str
    description: str = ""
    resolution: int | None = None
    latents: Mapping[str, int] = field(default_factory=dict)
    licence: str = "unknown"
    source: str = ""
    notes: str = ""
    cache: Literal["ganenc", "torch-hub", "package"] = "ganenc"
    folder: bool | None = None
    package: str | None = None

    def __post_init__(self) -> None:
        if not TAG_RE.match(self.tag):
            raise ConfigError(f"invalid weights tag {self.tag!r}: use family:name, e.g. x:ffhq-256")
        if isinstance(self.files, WeightsFile):
            object.__setattr__(self, "files", (self.files,))
        object.__setattr__(self, "files", tuple(self.files))
        if not self.files:
            raise ConfigError(f"weights {self.tag!r} list no files")
        names = [f.filename for f in self.files]
        if len(set(names)) != len(names):
            raise ConfigError(f"weights {self.tag!r} list a file name twice: {names}")
        if self.cache not in ("ganenc", "torch-hub", "package"):
            raise ConfigError(
                f"weights {self.tag!r}: cache must be 'ganenc', 'torch-hub' or 'package'"
            )
        if self.cache == "torch-hub" and self.is_folder:
            raise ConfigError(f"weights {self.tag!r}: the torch hub cache holds single files only")
        if (self.cache == "package") != (self.package is not None):
            raise ConfigError(
                f"weights {self.tag!r}: give package=<importable package> exactly when"
                " cache='package'"
            )
        if self.cache == "package" and not all(f.full_sha256 for f in self.files):
            raise ConfigError(f"weights {self.tag!r}: packaged files need their full sha256")

    def __call__(self) -> WeightsEntry:
        return self

    @property
    def family(self) -> str:
        return self.tag.partition(":")[0]

    @property
    def name(self) -> str:
        return self.tag.partition(":")[2]

    @property
    def is_folder(self) -> bool:
        return bool(self.folder) if self.folder is not None else len(self.files) > 1

    # Deliberately alike: each record class lists its own fields as plain data
    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (``ganenc weights list --json``)."""
        from .cache import cache_status, file_path, local_path
        from .records import recorded_hash

        return {
            "tag": self.tag,
            "family": self.family,
            "format": self.format,
            "description": self.description,
            "resolution": self.resolution,
            "latents": dict(self.latents),
            "licence": self.licence,
            "source": self.source,
            "notes": self.notes,
            "path": str(local_path(self)),
            "status": cache_status(self),
            "files": [
                {
                    "filename": f.filename,
                    "urls": list(f.urls),
                    "sha256": f.sha256,
                    "recorded_sha256": recorded_hash(self, f),
                    "size": f.size,
                    "path": str(file_path(self, f)),
                }
                for f in self.files
            ],
        }


def register_entries(register: Callable[..., Any], entries: Iterable[WeightsEntry]) -> None:
    """Register each entry under its tag (what a plugin's ``register_weights`` hook calls)."""
    for entry in entries:
        register(entry.tag, entry, description=entry.description, family=entry.family)


def entry_from_spec(spec: ComponentSpec) -> WeightsEntry:
    """The :class:`WeightsEntry` a registered ``weights`` component stands for."""
    factory = spec.load_factory()
    entry = factory if isinstance(factory, WeightsEntry) else factory()
    if not isinstance(entry, WeightsEntry):
        raise GanencError(
            f"weights {spec.qualified_name!r} of plugin {spec.plugin!r} is a"
            f" {type(entry).__name__}, not a ganenc.weights.WeightsEntry"
        )
    if entry.tag != spec.name:
        raise GanencError(
            f"plugin {spec.plugin!r} registered weights {entry.tag!r} under the tag {spec.name!r}"
        )
    return entry


def is_tag(checkpoint: object) -> bool:
    """Whether ``checkpoint`` is a weights tag (``family:name``) rather than a path.

    A string that names an existing file or folder is a path even when it looks
    like a tag.
    """
    if not isinstance(checkpoint, str) or not TAG_RE.match(_unqualified(checkpoint)[1]):
        return False
    return not Path(checkpoint).exists()


def _unqualified(tag: str) -> tuple[str, str]:
    """``plugin:family:name`` -> ``("plugin", "family:name")``; a plain tag has no plugin.

    The qualified form picks one plugin's entry when two register the same tag.
    """
    if tag.count(":") == 2:
        plugin, _, rest = tag.partition(":")
        return plugin, rest
    return "", tag


def list_entries(family: str | None = None, registry: Registry | None = None) -> list[WeightsEntry]:
    """Every registered weights entry (of one family), sorted by tag."""
    from ..registry import get_registry

    registry = registry or get_registry()
    specs = registry.components("weights")
    families = sorted({spec.name.partition(":")[0] for spec in specs})
    if family is not None and family not in families:
        canonical = _canonical_family(family, registry)  # a generator alias names its family
        if canonical not in families:
            raise ConfigError(
                f"no weights of the family {family!r}; families: {', '.join(families) or 'none'}"
            )
        family = canonical
    found = []
    for spec in specs:
        if family is None or spec.name.partition(":")[0] == family:
            try:
                found.append(entry_from_spec(spec))
            except GanencError as exc:  # one plugin's broken entry hides no other plugin's
                logger.warning("weights %s left out: %s", spec.qualified_name, exc)
    return sorted(found, key=lambda e: e.tag)


def weights_entry(tag: str, registry: Registry | None = None) -> WeightsEntry:
    """The entry registered under ``tag``; the family may be a generator alias."""
    from ..registry import get_registry

    registry = registry or get_registry()
    plugin, bare = _unqualified(tag)
    match = TAG_RE.match(bare)
    if not match:
        raise ConfigError(f"{tag!r} is not a weights tag (family:name, e.g. stylegan2:ffhq-1024)")
    family, name = match.groups()
    tags = {spec.name: spec for spec in registry.components("weights")}
    canonical = _canonical_family(family, registry)
    for candidate in dict.fromkeys((bare, f"{canonical}:{name}")):
        if candidate in tags:
            qualified = f"{plugin}:{candidate}" if plugin else candidate
            return entry_from_spec(registry.get("weights", qualified))
    raise UnknownComponentError(_unknown_tag_message(tag, family, canonical, sorted(tags)))


def _unknown_tag_message(tag: str, family: str, canonical: str, tags: list[str]) -> str:
    """What to say of an unknown tag: the closest tag (case aside), else its family's tags."""
    message = f"no weights tagged {tag!r} (nor a file of that name)"
    by_lower = {t.lower(): t for t in tags}
    close = difflib.get_close_matches(tag.lower(), list(by_lower), n=1, cutoff=0.8)
    if close:
        shown = by_lower[close[0]]
        return (
            f"{message}; did you mean {shown!r}? Every tag of its family:"
            f" 'ganenc weights list --family {shown.partition(':')[0]}'."
        )
    wanted = {family.lower(), canonical.lower()}
    same_family = [t for t in tags if t.partition(":")[0].lower() in wanted]
    if same_family:
        shown_family = same_family[0].partition(":")[0]
        return (
            f"{message}; tags of family {shown_family!r}: {', '.join(same_family)}."
            " See 'ganenc weights list'."
        )
    families = sorted({t.partition(":")[0] for t in tags})
    return (
        f"{message}; no family {family!r}; families: {', '.join(families) or 'none'}."
        " See 'ganenc weights list'."
    )


def _canonical_family(family: str, registry: Registry) -> str:
    """A generator alias (``stylegan``) -> its registered name (``stylegan1``)."""
    try:
        return registry.get("generator", family).name
    except GanencError:
        return family
