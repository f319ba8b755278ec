"""Opening a trained encoder run: one reader, one set of defaults, for every command.

``finetune``, ``invert``, ``eval`` and the Python API all start from an encoder
(a run directory or an encoder file) and need the same things: the encoder,
the generator it was trained for (possibly overridden), the training run's loss
settings, cropper and truncation.  :meth:`EncoderRun.open` reads the file once
and resolves all of them with the defaults of the training run:

- the generator: the recorded family, checkpoint and options; ``gan`` naming
  another family drops what was recorded for the old one;
- the loss: the training run's, with the fields an override sets replacing
  its own (``feature_weights`` alone keeps the recorded terms);
- the cropper: the training run's ``attention`` and options, else
  ``TrainSettings``' default (``center``); a different ``attention`` drops the
  recorded cropper options;
- the truncation: the training run's, else the family's training truncation.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CheckpointError, ConfigError, GanencError, UnknownComponentError, first_line
from .files import strict_json

logger = logging.getLogger(__name__)

#: The weights family of shipped encoders (``--encoder encoder:stylegan2-emoji-64``).
ENCODER_FAMILY = "encoder"


def encoder_file(path: str | os.PathLike) -> Path:
    """A run directory's encoder (``encoder.pt``, else its last checkpoint), or the file itself.

    An encoder weights tag (``encoder:stylegan2-emoji-64``) names a shipped or
    downloaded encoder file.
    """
    from .weights import fetch, is_tag, weights_entry

    if not isinstance(path, str | os.PathLike):
        raise ConfigError(
            f"an encoder is a file, a training run folder or an encoder tag, not {path!r:.60}"
        )
    if is_tag(os.fspath(path)):
        entry = weights_entry(os.fspath(path))
        if entry.family != ENCODER_FAMILY:
            raise GanencError(
                f"{path} names {entry.family} weights, not an encoder; encoder tags are"
                f" {ENCODER_FAMILY}:NAME (see 'ganenc weights list')"
            )
        return fetch(entry)
    from .training.runs import CHECKPOINTS, ENCODER, LAST

    path = Path(path)
    if path.is_dir():
        for candidate in (path / ENCODER, path / CHECKPOINTS / LAST):
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"{path} holds no encoder (no {ENCODER} or {CHECKPOINTS}/{LAST})")
    if not path.exists():
        raise CheckpointError(f"encoder not found: {path}")
    return path


#: The recorded training settings an encoder run reads back, and the types they must have.
RECORDED_SETTINGS = {
    "loss": (Mapping, "mapping"),
    "attention": (str, "name"),
    "cropper_options": (Mapping, "mapping"),
    "truncation": ((int, float), "number"),
    "truncation_layers": (int, "whole number"),
}


def training_settings(path: Path, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The settings an encoder was trained with: the checkpoint's, else its run's config.json.

    A config.json that is not a run's settings is ignored with a warning (an encoder file
    may sit beside another tool's); recorded values of the wrong type are a damaged file.
    """
    stored = payload.get("settings")
    if isinstance(stored, Mapping):
        return _checked_settings(dict(stored), f"{path} (its recorded settings)")
    for folder in (path.parent, path.parent.parent):
        config = folder / "config.json"
        if config.is_file():
            try:
                data = strict_json(config.read_text(encoding="utf-8"))
            except (ValueError, OSError, UnicodeDecodeError) as exc:
                data = exc
            if not isinstance(data, dict):
                logger.warning(
                    "ignoring %s: not a run's settings (%s); the encoder's defaults apply",
                    config,
                    first_line(data) if isinstance(data, Exception) else type(data).__name__,
                )
                return {}
            return _checked_settings(data, str(config))
    return {}


def _checked_settings(settings: dict[str, Any], where: str) -> dict[str, Any]:
    for key, (kind, word) in RECORDED_SETTINGS.items():
        value = settings.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise CheckpointError(
                f"{where}: the recorded {key!r} is {value!r}, not a {word}; the run's settings"
                " are damaged"
            )
    return settings


def recorded_generator(
    stored: Mapping[str, Any] | None,
    source: str | os.PathLike,
    *,
    gan: str | None = None,
    checkpoint: str | None = None,
    generator_options: Mapping[str, Any] | None = None,
):
    """The :class:`~ganenc.training.settings.GeneratorSpec` a file records, with overrides.

    ``stored`` is the ``{"gan", "checkpoint", "generator_options"}`` an encoder or a latents
    file records (``source``, for messages). Another family drops all of it; another checkpoint
    drops the recorded architecture options (:data:`~ganenc.config.RANDOM_ONLY`: they built
    the recorded generator, a file gives its own); ``generator_options`` replace the recorded
    options key by key.
    """
    from .training.settings import GeneratorSpec

    if stored is not None and not isinstance(stored, Mapping):
        raise CheckpointError(f"{source} records its generator as {stored!r}, not a mapping")
    stored = dict(stored or {})
    if not isinstance(stored.get("generator_options") or {}, Mapping):
        raise CheckpointError(
            f"{source} records generator options {stored['generator_options']!r}, not a mapping"
        )
    recorded_gan = stored.get("gan")
    if gan is not None and (
        not isinstance(recorded_gan, str) or generator_name(gan) != generator_name(recorded_gan)
    ):
        stored = {}  # another family: the recorded file and options do not apply
    family = gan or stored.get("gan")
    if family is None:
        raise GanencError(
            f"{source} does not record its generator; pass --gan and --checkpoint"
            " (gan= and checkpoint= in Python)"
        )
    if checkpoint is None and "checkpoint" not in stored:  # never assume random weights
        raise GanencError(
            f"{source} records no checkpoint for a {family!r} generator; pass --checkpoint"
            " (or --checkpoint random for random weights)"
        )
    options = dict(stored.get("generator_options") or {})
    if checkpoint not in (None, stored.get("checkpoint")):
        from .config import random_only_fields
        from .registry import get_registry

        model = get_registry().get("generator", family).load_options_model()
        dropped = random_only_fields(model) if model is not None else set()
        options = {key: value for key, value in options.items() if key not in dropped}
    try:
        return GeneratorSpec(
            gan=family,
            checkpoint=checkpoint or stored["checkpoint"],
            generator_options={**options, **(generator_options or {})},
        )
    except ConfigError as exc:  # a hand-made or damaged record (checkpoint None, a number)
        raise CheckpointError(f"{source} records a generator ganenc cannot use: {exc}") from None


def encoder_generator(
    payload: Mapping[str, Any],
    path: str | os.PathLike,
    *,
    gan: str | None = None,
    checkpoint: str | None = None,
    generator_options: Mapping[str, Any] | None = None,
):
    """:func:`recorded_generator` for an encoder file, after the family it was trained for is
    checked against ``gan`` (no generator of another family can drive it)."""
    trained_for = (payload.get("geometry") or {}).get("family")
    if gan is not None:
        from .registry import get_registry

        get_registry().get("generator", gan)  # a misspelt family: "no generator named ..."
    if gan is not None and trained_for is not None and gan != trained_for:
        raise GanencError(
            f"the encoder was trained for {describe_geometry(payload['geometry'])}, not a {gan}"
            f" generator; use an encoder trained for {gan} ({path})"
        )
    recorded = payload.get("generator")
    recorded_gan = recorded.get("gan") if isinstance(recorded, Mapping) else None
    if (
        gan is None
        and isinstance(recorded_gan, str)
        and isinstance(trained_for, str)
        and generator_name(recorded_gan) != generator_name(trained_for)
    ):
        raise CheckpointError(
            f"{path} records a {recorded_gan} generator but was trained for"
            f" {describe_geometry(payload['geometry'])}: a damaged file (pass --gan and"
            " --checkpoint to choose the generator)"
        )
    return recorded_generator(
        payload.get("generator"),
        path,
        gan=gan,
        checkpoint=checkpoint,
        generator_options=generator_options,
    )


def generator_name(name: str) -> str:
    """A generator family's registered name (``stylegan`` -> ``stylegan1``), else ``name``."""
    from .registry import get_registry

    try:
        return get_registry().get("generator", name).name
    except GanencError:
        return name


def training_truncation(
    generator: Any, truncation: float | None = None, truncation_layers: int | None = None
) -> dict[str, Any]:
    """The family's training truncation, with the given values where not ``None``."""
    chosen = dict(generator.training_truncation())
    if truncation is not None:
        chosen["truncation"] = truncation
    if truncation_layers is not None:
        chosen["truncation_layers"] = truncation_layers
    return chosen


def default_attention() -> str:
    """The cropper of a run that records none: pre-training's default."""
    from .training.settings import TrainSettings

    return TrainSettings.model_fields["attention"].default


def resolve_loss(trained: Mapping[str, Any] | None, override: Any = None):
    """The training run's :class:`~ganenc.losses.LossSettings` with the override's fields.

    ``override``: ``None``, a mapping of fields, or a ``LossSettings`` whose
    explicitly set fields replace the recorded ones.  The recorded options of a
    term the override drops go with it (``image_terms={mse: 1}`` on a run
    trained with SSIM options would otherwise be refused for them).
    """
    from .config import validate_options
    from .losses.options import LossSettings

    base = dict(trained or {})
    if override is None:
        given: dict[str, Any] = {}
    elif isinstance(override, LossSettings):
        given = override.model_dump(mode="json", include=override.model_fields_set)
    else:
        given = dict(override)
    if base.get("term_options") and "term_options" not in given:
        kept = {
            name
            for key in ("image_terms", "latent_terms")
            for name in (given[key] if key in given else base.get(key)) or {}
        }
        base["term_options"] = {k: v for k, v in base["term_options"].items() if k in kept}
    return validate_options(LossSettings, {**base, **given}, "loss settings")


@dataclass
class EncoderRun:
    """An encoder, its generator and the settings it was trained with (all on the CPU)."""

    path: Path
    payload: dict[str, Any]
    trained_with: dict[str, Any]
    generator_spec: Any  # GeneratorSpec
    generator: Any  # GeneratorAdapter, frozen
    encoder: Any  # torch.nn.Module
    loss_settings: Any  # LossSettings
    attention: str
    cropper_options: dict[str, Any]
    truncation: dict[str, Any]

    # Deliberately alike: Inverter.from_encoder takes EncoderRun.open's overrides and passes them on
    @classmethod
    def open(
        cls,
        source: str | os.PathLike,
        *,
        gan: str | None = None,
        checkpoint: str | None = None,
        generator_options: Mapping[str, Any] | None = None,
        loss: Any = None,
        attention: str | None = None,
        cropper_options: Mapping[str, Any] | None = None,
        feature_weights: str | None = None,
    ) -> EncoderRun:
        """Read an encoder (run directory or file) once and resolve what it was trained with.

        Every argument but ``source`` overrides what the run records (``None``:
        keep it); ``feature_weights`` goes to LPIPS and Grad-CAM.
        """
        from .encoders import encoder_from_checkpoint, read_encoder_checkpoint

        path = encoder_file(source)
        payload = read_encoder_checkpoint(path)
        trained_with = training_settings(path, payload)
        spec = encoder_generator(
            payload,
            path,
            gan=gan,
            checkpoint=checkpoint,
            generator_options=generator_options,
        )
        with install_hint(path, payload):
            generator = spec.load()
            encoder = encoder_from_checkpoint(payload)
        mismatch = geometry_mismatch(payload["geometry"], generator)
        if mismatch:
            raise GanencError(f"{mismatch}; use an encoder trained for this generator ({path})")
        loss_settings = resolve_loss(trained_with.get("loss"), loss)
        if feature_weights is not None:
            loss_settings = loss_settings.model_copy(update={"feature_weights": feature_weights})
        recorded_attention = trained_with.get("attention") or default_attention()
        chosen_attention = attention or recorded_attention
        if cropper_options is None:
            same = chosen_attention == recorded_attention
            cropper_options = (trained_with.get("cropper_options") or {}) if same else {}
        # Deliberately alike: keyword arguments spelt out at a call; nothing to share
        return cls(
            path=path,
            payload=payload,
            trained_with=trained_with,
            generator_spec=spec,
            generator=generator,
            encoder=encoder,
            loss_settings=loss_settings,
            attention=chosen_attention,
            cropper_options=dict(cropper_options),
            truncation=training_truncation(
                generator, trained_with.get("truncation"), trained_with.get("truncation_layers")
            ),
        )

    @property
    def synthesis_options(self) -> dict[str, Any]:
        """What ``generator.synthesize`` takes to draw images as in training (truncation)."""
        return self.generator.synthesis_options(**self.truncation)

    def build_cropper(self):
        """The cropper of the run (``None`` for ``none``)."""
        from .cropping import build_cropper

        return build_cropper(
            self.attention, self.cropper_options, self.loss_settings.feature_weights
        )


@contextlib.contextmanager
def install_hint(path: str | os.PathLike, payload: Mapping[str, Any]) -> Iterator[None]:
    """A component missing while a saved encoder is opened: say which distribution to install."""
    try:
        yield
    except UnknownComponentError as exc:
        hint = missing_plugin_hint(Path(path), payload)
        if hint is None:
            raise
        raise UnknownComponentError(f"{exc}. {hint}") from None


def missing_plugin_hint(encoder_path: Path, payload: Mapping[str, Any]) -> str | None:
    """Which distribution made the run, read from the run's ``versions.json``.

    A plugin that is installed and loaded but lacks the builder gets no install advice.
    """
    from .registry import get_registry

    plugin = payload.get("plugin")
    installed = get_registry().plugins.get(plugin) if isinstance(plugin, str) else None
    if installed is not None and installed.status == "ok":
        version = f" {installed.version}" if installed.version else ""
        return (
            f"Plugin {plugin!r} is installed ({installed.distribution}{version}) and registers"
            " no such builder: the file is damaged, or was made by another version of it"
        )
    for folder in (encoder_path.parent, encoder_path.parent.parent):
        versions = folder / "versions.json"
        if not versions.is_file():
            continue
        try:
            recorded = json.loads(versions.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            return None
        for info in recorded.get("plugins") or []:
            if isinstance(info, dict) and info.get("name") == plugin and info.get("distribution"):
                distribution, version = info["distribution"], info.get("version")
                made = f" {version}" if version else ""
                return (
                    f"This run was made with plugin {plugin!r} of the distribution"
                    f" {distribution}{made} ({versions}): install it (pip install {distribution})"
                )
        return None
    if plugin:
        return f"This encoder was built by plugin {plugin!r}: install the distribution providing it"
    return None


def geometry_mismatch(recorded: Any, generator: Any) -> str | None:
    """Why an encoder built for the geometry ``recorded`` cannot feed ``generator``, or ``None``.

    ``EncoderRun.open`` and :class:`~ganenc.inversion.Inverter` ask: another generator's
    encoder otherwise fails deep inside the encoder at the first image.
    """
    geometry = generator.geometry().to_dict()
    if recorded == geometry:
        return None
    return (
        f"the encoder was trained for {describe_geometry(recorded)}, but the generator is"
        f" {describe_geometry(geometry)}"
    )


def describe_geometry(geometry: Mapping[str, Any]) -> str:
    """``stylegan2 at 32 px {...}``: a geometry in one phrase for messages."""
    return f"{geometry['family']} at {geometry['resolution']} px {geometry['encoder_latents']}"
