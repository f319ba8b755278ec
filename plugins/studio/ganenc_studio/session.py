"""What the studio page works on: an inverter, its directions, and the images of one session.

Everything goes through ganenc's public pieces: :class:`ganenc.inversion.Inverter`
inverts (and refines), :func:`ganenc.editing.apply_direction` edits,
:func:`ganenc.data.load_image` opens images, :func:`ganenc.latents.save_latent_file`
writes the latent files ``ganenc invert`` writes.  Nothing here knows a GAN family.
Files are written only inside :attr:`Studio.workspace`.
"""

from __future__ import annotations

import base64
import io
import itertools
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ganenc.config import MAX_SEED
from ganenc.errors import ConfigError, GanencError, first_line

from . import DEFAULT_ENCODER

#: Uploads larger than this are refused before anything is decoded.
MAX_UPLOAD_BYTES = 16 * 2**20
#: Images with more pixels than this are refused from their header, before decoding.
MAX_PIXELS = 4096 * 4096
#: Upper bounds of the refinement budget a page may ask for (CPU minutes, not hours).
MAX_STEPS = {"none": 0, "optimize": 2000, "finetune": 3000}
#: Budgets the page offers first: quick enough on a CPU at 64 px.
PAGE_STEPS = {"none": 0, "optimize": 100, "finetune": 50}
#: Images (and samples) a session keeps; the oldest are forgotten beyond this.
MAX_SUBJECTS = 64
#: Slider strengths are clipped to +-this (directions are unit vectors).
MAX_STRENGTH = 20.0
EXAMPLES_DIR = Path(__file__).with_name("examples")
UPLOAD_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
#: An upload's name is kept to this many characters (its suffix included).
MAX_NAME_CHARS = 100


def resolve_encoder(encoder: str | None) -> Path:
    """An encoder run directory or file from ``--encoder`` (a path or a weights tag).

    Without ``--encoder`` the packaged emoji encoder (:data:`DEFAULT_ENCODER`) is
    used; when it cannot be had, one line says to pass ``--encoder``.
    """
    from ganenc.weights import fetch, is_tag

    name = encoder or DEFAULT_ENCODER
    if not is_tag(name):
        return Path(name)
    try:
        return Path(fetch(name))
    except GanencError as exc:
        if encoder is not None:
            raise
        reason = first_line(exc)
        raise GanencError(
            f"the default emoji encoder {DEFAULT_ENCODER!r} is not available ({reason});"
            " pass --encoder RUN_DIR|ENCODER_FILE|TAG"
        ) from None


def load_directions(folder: str | os.PathLike | None) -> dict[str, Any]:
    """Every direction file (``*.pt``) of a ``ganenc directions`` folder, by attribute."""
    from ganenc.editing import Direction

    if folder is None:
        return {}
    folder = Path(folder)
    if not folder.is_dir():
        raise GanencError(f"directions folder not found: {folder}")
    directions: dict[str, Any] = {}
    for path in sorted(folder.glob("*.pt")):
        direction = Direction.load(path)
        if direction.attribute in directions:
            raise GanencError(f"two files in {folder} hold the direction {direction.attribute!r}")
        directions[direction.attribute] = direction
    if not directions:
        raise GanencError(
            f"no direction files (*.pt) in {folder}; make them with ganenc directions"
        )
    return directions


def png_data_url(image: torch.Tensor) -> str:
    """One ``[3, H, W]`` image in [-1, 1] as a ``data:image/png`` URL (nothing on disk)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def png_bytes(image: torch.Tensor) -> bytes:
    from PIL import Image

    from ganenc.images import to_uint8

    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image[None])[0].numpy()).save(buffer, format="PNG")
    return buffer.getvalue()


def _shown(value: Any) -> str:
    """``value`` as a message shows it: its repr, cut short (a 400-digit number is one line)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def finite_number(value: Any, what: str) -> float:
    """A JSON number as a finite float (not text, a boolean, ``1e999`` or ``10**400``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{what} must be a number, got {_shown(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        number = math.inf
    if not math.isfinite(number):
        raise ConfigError(f"{what} must be a finite number, got {_shown(value)}")
    return number


def whole_number(value: Any, what: str) -> int:
    """A JSON number that is a whole number (``3`` or ``3.0``; not ``1.7``, ``1e999`` or text)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{what} must be a whole number, got {_shown(value)}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ConfigError(f"{what} must be a whole number, got {_shown(value)}")
    return int(value)


@dataclass
class Subject:
    """An image of the session (uploaded, an example, or a generator sample) and its latents."""

    id: str
    name: str
    latents: dict[str, torch.Tensor]  # what edits start from: refined if refined, else E(x)
    synthesis_options: dict[str, Any]
    image: torch.Tensor | None = None  # [1, 3, R, R] in [-1, 1]; None for samples
    record: dict[str, Any] = field(default_factory=dict)  # metadata of its latent file
    upload: Path | None = None  # its file in the workspace, removed when it is forgotten


class SubjectNotFoundError(GanencError):
    """The session holds no image of that id (never had it, or forgot it): a 404 on the page."""


class Studio:
    """An :class:`~ganenc.inversion.Inverter`, directions, and the session's subjects.

    ``workspace`` is the only folder written to (uploads, downloads); the
    studio removes it in :meth:`close` when it created it.
    """

    def __init__(
        self,
        inverter: Any,
        directions: Mapping[str, Any] | None = None,
        workspace: str | os.PathLike | None = None,
        examples: str | os.PathLike = EXAMPLES_DIR,
    ) -> None:
        self.inverter = inverter
        self.generator = inverter.generator
        self.resolution = int(self.generator.resolution)
        self.directions = dict(directions or {})
        self.examples_dir = Path(examples)
        self._subjects: dict[str, Subject] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.layer_count = self._check_directions()
        self._owns_workspace = workspace is None
        self.workspace = Path(workspace or tempfile.mkdtemp(prefix="ganenc-studio-"))
        self.workspace.mkdir(parents=True, exist_ok=True)

    @classmethod
    def open(
        cls,
        encoder: str | None = None,
        directions: str | os.PathLike | None = None,
        device: str = "auto",
        workspace: str | os.PathLike | None = None,
    ) -> Studio:
        """The studio of an encoder (run, file or tag; default the packaged emoji encoder)."""
        from ganenc.inversion import Inverter

        loaded = load_directions(directions)  # before the encoder: the cheaper check first
        path = resolve_encoder(encoder)
        return cls(Inverter.from_encoder(path, device=device), loaded, workspace)

    def close(self) -> None:
        """Remove the workspace the studio created (a folder given to it is left alone)."""
        if self._owns_workspace:
            shutil.rmtree(self.workspace, ignore_errors=True)

    # -- what the page shows -----------------------------------------------------------------
    def _check_directions(self) -> int | None:
        """Every direction fits the encoder's latents; the layer count of the codes they move."""
        from ganenc.editing import apply_direction

        probe = self.inverter.encode(torch.zeros(1, 3, self.resolution, self.resolution))
        counts = set()
        for name, direction in self.directions.items():
            try:
                apply_direction(probe, direction, 1.0)
            except GanencError as exc:
                raise GanencError(f"direction {name!r} does not fit this encoder: {exc}") from None
            counts.add(self._layers_of(probe, direction))
        counts.discard(None)
        return max(counts) if counts else None

    @staticmethod
    def _layers_of(latents: Mapping[str, torch.Tensor], direction: Any) -> int | None:
        from ganenc.editing import space_key

        tensor = latents[space_key(latents, direction.space)]
        return int(tensor.shape[1]) if tensor.dim() >= 3 else None

    def examples(self) -> list[str]:
        return sorted(p.name for p in self.examples_dir.glob("*.png"))

    def info(self) -> dict[str, Any]:
        spec = self.inverter.generator_spec
        return {
            "encoder": self.inverter.encoder_path,
            "gan": spec.get("gan"),
            "checkpoint": spec.get("checkpoint"),
            "resolution": self.resolution,
            "device": str(self.inverter.device),
            "workspace": str(self.workspace),
            "examples": self.examples(),
            "refine": {
                mode: {"default": PAGE_STEPS[mode], "max": MAX_STEPS[mode]} for mode in MAX_STEPS
            },
            "directions": [
                {"name": name, "space": d.space, "accuracy": d.metadata.get("validation_accuracy")}
                for name, d in self.directions.items()
            ],
            "layers": self.layer_count,
            "max_strength": MAX_STRENGTH,
            "max_upload_bytes": MAX_UPLOAD_BYTES,
        }

    def subject(self, subject_id: str) -> Subject:
        try:
            return self._subjects[subject_id]
        except KeyError:
            raise SubjectNotFoundError(f"no image {subject_id!r} in this session") from None

    def _add(self, name: str, **fields: Any) -> Subject:
        with self._lock:
            subject = Subject(id=f"s{next(self._ids)}", name=name, **fields)
            self._subjects[subject.id] = subject
            while (
                len(self._subjects) > MAX_SUBJECTS
            ):  # a long session keeps memory and disk bounded
                forgotten = self._subjects.pop(next(iter(self._subjects)))
                if forgotten.upload is not None:
                    forgotten.upload.unlink(missing_ok=True)
        return subject

    # -- images in ---------------------------------------------------------------------------
    def add_image(
        self, path: str | os.PathLike, name: str | None = None, *, upload: bool = False
    ) -> Subject:
        """Open an image file with ganenc's helpers (allowed formats, pixels capped from the header).

        ``upload``: the file is the studio's copy of an upload, removed when the subject goes.
        """
        from ganenc.data import load_image
        from ganenc.images import image_size

        path = Path(path)
        name = name or path.name
        try:
            width, height = image_size(path)  # the header only, through the format allow-list
        except GanencError as exc:
            raise GanencError(f"{name} is not an image this studio can read ({exc})") from None
        if width * height > MAX_PIXELS:
            raise GanencError(
                f"{name} has {width}x{height} pixels, more than the {MAX_PIXELS} allowed;"
                " resize it first"
            )
        try:
            image = load_image(path, self.resolution)[None]
        except GanencError:
            raise
        except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
            raise GanencError(f"{name} could not be read as an image ({exc})") from None
        latents = self.inverter.encode(image)
        return self._add(
            name,
            latents={k: v.cpu() for k, v in latents.items()},
            synthesis_options=dict(self.inverter.synthesis_options),
            image=image,
            record={"image": name, "encoder": self.inverter.encoder_path, "refine": "none"},
            upload=path if upload else None,
        )

    def add_upload(self, data: bytes, filename: str) -> Subject:
        """An uploaded file: size-capped, stored in the workspace under a name of ours."""
        if len(data) > MAX_UPLOAD_BYTES:
            raise GanencError(f"the upload has {len(data)} bytes, more than {MAX_UPLOAD_BYTES}")
        if not data:
            raise GanencError("the upload is empty")
        given = Path(filename or "upload")
        suffix = given.suffix.lower()
        if suffix not in UPLOAD_SUFFIXES:  # before shortening, which could cut the suffix off
            raise GanencError(f"{given.name[:100]}: upload one of {', '.join(UPLOAD_SUFFIXES)}")
        name = given.stem[: MAX_NAME_CHARS - len(suffix)] + given.suffix
        folder = self.workspace / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        handle, path = tempfile.mkstemp(suffix=suffix, dir=folder)  # a fresh name, never reused
        stored = Path(path)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        try:
            return self.add_image(stored, name, upload=True)
        except GanencError as exc:  # a refused upload is not kept, and is called by its name
            stored.unlink(missing_ok=True)
            raise GanencError(str(exc).replace(str(stored), name)) from None

    def add_example(self, name: str) -> Subject:
        if name not in self.examples():
            raise GanencError(f"no example {name!r}; the examples are {self.examples()}")
        return self.add_image(self.examples_dir / name, name)

    def sample(self, seed: Any, truncation: Any) -> Subject:
        """A generator sample as a subject, in the encoder's latent space (so it can be edited)."""
        truncation = finite_number(truncation, "truncation")
        if not 0.0 <= truncation <= 2.0:
            raise ConfigError(f"truncation must be between 0 and 2, got {truncation}")
        seed = whole_number(seed, "seed")
        if not 0 <= seed <= MAX_SEED:
            raise ConfigError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
        generator = self.generator
        with torch.no_grad():
            latents = generator.sample_latents(1, seed=seed, device=generator.device)
            targets = generator.encoder_targets(latents, truncation)
        return self._add(
            f"sample-{seed}",
            latents={k: v.detach().cpu() for k, v in targets.items()},
            synthesis_options=dict(generator.synthesis_options(truncation=truncation)),
            record={"image": f"sample seed {seed}", "seed": seed, "truncation": truncation},
        )

    # -- inversion ---------------------------------------------------------------------------
    def invert(
        self,
        subject_id: str,
        refine: str = "none",
        steps: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Encoder reconstruction, and the refined one for a budget; metrics and seconds of each."""
        subject = self.subject(subject_id)
        if subject.image is None:
            raise GanencError("a generator sample has no image to invert")
        steps = self.parse_refine(refine, steps)
        total = steps

        def report(done, _loss=None):
            if progress is not None:
                progress(min(int(done), total), total)

        encoded = self.inverter.invert(subject.image, refine="none")
        panels = {"encoder": self._panel(encoded, subject.image)}
        chosen, mode = encoded, "none"
        if refine != "none":
            report(0)
            refined = self.inverter.invert(
                subject.image, refine=refine, steps=steps, progress=report
            )
            panels["refined"] = self._panel(refined, subject.image)
            chosen, mode = refined, refine
        subject.latents = {k: v.cpu() for k, v in chosen.latent(0).items()}
        subject.record = {**subject.record, "refine": mode, "steps": chosen.steps}
        return {"subject": subject.id, **panels}

    @staticmethod
    def parse_refine(refine: str, steps: Any = None) -> int:
        """The refinement budget, checked: steps within :data:`MAX_STEPS` (0 for ``none``)."""
        if not isinstance(refine, str) or refine not in MAX_STEPS:
            raise ConfigError(f"refine must be one of {list(MAX_STEPS)}, got {refine!r}")
        if refine == "none":
            return 0
        steps = PAGE_STEPS[refine] if steps is None else whole_number(steps, "steps")
        if not 1 <= steps <= MAX_STEPS[refine]:
            raise ConfigError(f"{refine} steps must be between 1 and {MAX_STEPS[refine]}")
        return steps

    @staticmethod
    def _panel(result: Any, image: torch.Tensor) -> dict[str, Any]:
        from ganenc.evaluation import per_image_metrics

        row = per_image_metrics(result.reconstructions, image)[0]
        return {
            "image": png_data_url(result.reconstructions[0]),
            "psnr": row["psnr"] if math.isfinite(row["psnr"]) else None,
            "ssim": row["ssim"],
            # the inverter's own timing: CUDA-synchronised, encoder pass and refinement
            "seconds": result.seconds_per_image,
            "refine": result.refine,
            "steps": result.steps,
        }

    # -- editing -----------------------------------------------------------------------------
    def parse_edit(self, strengths: Mapping[str, Any], layers: Any = None) -> tuple[dict, Any]:
        """Validated strengths (known directions, finite, clipped) and a layer range."""
        parsed = {}
        if strengths is not None and not isinstance(strengths, Mapping):
            raise ConfigError(
                f"strengths must map direction names to numbers, got {type(strengths).__name__}"
            )
        for name, value in (strengths or {}).items():
            if name not in self.directions:
                raise ConfigError(
                    f"no direction {name!r}; the studio has {sorted(self.directions)}"
                )
            value = finite_number(value, f"strength of {name!r}")
            parsed[name] = max(-MAX_STRENGTH, min(MAX_STRENGTH, value))
        chosen = None
        if layers not in (None, "", []):
            if self.layer_count is None:
                raise ConfigError("these latents have no layers to choose")
            if not isinstance(layers, list | tuple) or len(layers) != 2:
                raise ConfigError(f"layers must be [first, last], got {layers!r}")
            first, last = (whole_number(v, "layers") for v in layers)
            if not 0 <= first <= last < self.layer_count:
                raise ConfigError(f"layers must lie within 0-{self.layer_count - 1}, got {layers}")
            if (first, last) != (0, self.layer_count - 1):
                chosen = f"{first}-{last}"
        return parsed, chosen

    def edited_latents(
        self, subject_id: str, strengths: Mapping[str, Any], layers: Any = None
    ) -> tuple[Subject, dict[str, torch.Tensor], dict[str, Any]]:
        from ganenc.editing import apply_direction

        subject = self.subject(subject_id)
        parsed, chosen = self.parse_edit(strengths, layers)
        latents = subject.latents
        for name, strength in parsed.items():
            if strength:
                direction = self.directions[name]
                layered = self._layers_of(latents, direction) is not None
                latents = apply_direction(latents, direction, strength, chosen if layered else None)
        return subject, latents, {"strengths": parsed, "layers": chosen}

    def render(self, subject: Subject, latents: Mapping[str, torch.Tensor]) -> torch.Tensor:
        device = self.inverter.device
        with torch.no_grad():
            images = self.generator.synthesize(
                {k: v.to(device) for k, v in latents.items()}, **subject.synthesis_options
            )
        return images.float().cpu()[0]

    def edit(self, subject_id: str, strengths: Mapping[str, Any], layers: Any = None) -> dict:
        """The subject moved along the directions, as a PNG data URL, with the seconds it took."""
        started = time.perf_counter()
        subject, latents, edit = self.edited_latents(subject_id, strengths, layers)
        image = png_data_url(self.render(subject, latents))
        return {
            "subject": subject.id,
            "image": image,
            "seconds": time.perf_counter() - started,
            **edit,
        }

    # -- downloads ---------------------------------------------------------------------------
    def download_name(
        self, subject_id: str, kind: str, strengths: Mapping[str, Any], layers: Any = None
    ) -> str:
        """The file name of a download, the request checked (a HEAD request needs no more)."""
        subject, _, edit = self._download_parts(subject_id, kind, strengths, layers)
        return self._file_name(subject, kind, edit)

    def export(
        self, subject_id: str, kind: str, strengths: Mapping[str, Any], layers: Any = None
    ) -> Path:
        """The edited image (``png``) or its latent file (``latents``), written in the workspace.

        Each download gets a folder of its own; :meth:`discard_download` removes it once sent.
        """
        from ganenc.images import save_image
        from ganenc.latents import save_latent_file

        subject, latents, edit = self._download_parts(subject_id, kind, strengths, layers)
        path = Path(tempfile.mkdtemp(prefix="download-", dir=self.workspace))
        path /= self._file_name(subject, kind, edit)
        if kind == "png":
            return save_image(self.render(subject, latents), path)
        spec = self.inverter.generator_spec
        return save_latent_file(
            path,
            latents,
            **subject.record,
            gan=spec.get("gan"),
            generator=spec,
            synthesis_options=subject.synthesis_options,
            edit=edit,
        )

    def discard_download(self, path: str | os.PathLike) -> None:
        """Remove a file of :meth:`export` and its folder, so downloads leave nothing behind."""
        folder = Path(path).parent
        if folder.parent == self.workspace and folder.name.startswith("download-"):
            shutil.rmtree(folder, ignore_errors=True)

    def _download_parts(
        self, subject_id: str, kind: str, strengths: Mapping[str, Any], layers: Any
    ) -> tuple[Subject, dict[str, torch.Tensor], dict[str, Any]]:
        if kind not in {"png", "latents"}:
            raise ConfigError(f"download must be png or latents, got {kind!r}")
        return self.edited_latents(subject_id, strengths, layers)

    @staticmethod
    def _file_name(subject: Subject, kind: str, edit: Mapping[str, Any]) -> str:
        stem = Path(subject.name).stem + ("-edited" if any(edit["strengths"].values()) else "")
        return f"{stem}.png" if kind == "png" else f"{stem}.pt"
