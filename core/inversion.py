"""Inverting images: an encoder pass, optionally refined per image.

Three ways to turn an image ``x`` into latents, all through the generator
adapter (no family-specific code):

``none``
    ``latents = E(x)``: one encoder pass for the whole batch (the paper's
    pre-trained encoder, or one fine-tuned on a dataset).
``optimize``
    the hybrid approach (In-Domain GAN inversion): start from ``E(x)`` and
    optimise the latents with Adam to minimise the image loss of ``G(latents)``
    against ``x`` (with the same attention crops as training), optionally
    anchored to the encoder's estimate.  Each image's loss is computed on its
    own and summed, so a result does not depend on the batch it came in.
``finetune``
    the paper's per-image encoder fine-tuning: for every image the encoder is
    reset to its pre-trained weights and trained on that image alone (image
    loss with attentions + latent cycle + small latent L2, reference lr 0.005),
    then ``latents = E_tuned(x)``.

Python::

    inverter = Inverter.from_encoder("runs/train-stylegan2-...", device="auto")
    result = inverter.invert(images, refine="optimize", steps=200)
    result.latents, result.reconstructions, result.seconds_per_image

``invert_folder`` is what ``ganenc invert`` runs: latent files, reconstructions,
a grid and a metrics CSV in a fresh output folder.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .adapters import GeneratorAdapter, Latents, check_number
from .config import absolute_if_present, check_field, validate_options
from .data import check_image_tensor
from .encoder_runs import (
    geometry_mismatch,
    training_settings,  # noqa: F401 - its old home
)
from .errors import ConfigError, GanencError
from .files import check_output, write_json
from .latents import (  # noqa: F401 - public names of this module before latents.py
    LATENTS_DIR,
    LATENTS_FORMAT,
    LatentSet,
    latent_shapes,
    read_latent_file,
    read_latents,
    save_latent_file,
)
from .precision import autocast, grad_scaler, optimizer_step
from .training.settings import (
    REFINE_MODES,
    FinetuneSettings,
    OptimizerSettings,
    RefinementSettings,
    RunSettings,
)

_REFINEMENT = RefinementSettings()
#: Default refinement steps per image: latent optimisation, and the reference's fine-tuning.
DEFAULT_STEPS = {
    "none": 0,
    "optimize": _REFINEMENT.optimize_steps,
    "finetune": _REFINEMENT.finetune_steps,
}
#: Adam learning rates: latent optimisation, and the reference's per-image fine-tuning.
DEFAULT_OPTIMIZE_LR = _REFINEMENT.optimize_lr
DEFAULT_FINETUNE_LR = _REFINEMENT.finetune_lr
INDEX_FILE = "index.json"


@dataclass
class InversionResult:
    """Latents and reconstructions of a batch, with the time spent (CPU tensors)."""

    latents: Latents
    reconstructions: torch.Tensor
    refine: str
    steps: int
    encoder_seconds: float
    refine_seconds: float
    final_losses: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # per image: its share of its batch

    @property
    def count(self) -> int:
        return int(self.reconstructions.shape[0])

    @property
    def seconds_per_image(self) -> float:
        """Wall time per image, encoder pass and refinement together."""
        return (self.encoder_seconds + self.refine_seconds) / max(self.count, 1)

    def latent(self, index: int) -> Latents:
        """The latents of one image, batch dimension kept (``[1, ...]``)."""
        return {k: v[index : index + 1] for k, v in self.latents.items()}


def _checked_loss(loss: Any) -> Any:
    """``loss`` as the refinements take it: ``None``, a LossSettings (a dict is validated into
    one now, not at the first refinement) or a ready loss module."""
    from .losses.options import LossSettings

    if loss is None or isinstance(loss, LossSettings | torch.nn.Module):
        return loss
    if isinstance(loss, Mapping):
        return validate_options(LossSettings, dict(loss), "loss settings")
    raise ConfigError(
        f"loss must be a LossSettings, its dict (e.g. {{'image_terms': {{'mse': 1}}}}), a loss"
        f" module or None (the paper's loss), not a {type(loss).__name__}"
    )


def _checked_cropper(cropper: Any, loss: Any) -> Any:
    """``cropper`` as the refinements use it: ``None`` (whole images), an object with
    ``boxes(images)``, or a registered cropper's name (built with its default options)."""
    from .cropping import Cropper, build_cropper

    if cropper is None or isinstance(cropper, Cropper):
        return cropper
    if isinstance(cropper, str):
        return build_cropper(cropper, {}, getattr(loss, "feature_weights", None))
    raise ConfigError(
        "cropper must be a registered cropper's name (e.g. 'center'), a cropper object with"
        f" boxes(images), or None (whole images), not a {type(cropper).__name__}"
    )


class Inverter:
    """An encoder and its frozen generator, with the refinements of this module.

    ``encoder`` is a module (``ganenc.build_encoder``/``ganenc.load_encoder``; a run or file
    goes through :meth:`from_encoder`) made for ``generator``'s geometry.  ``loss`` (a
    :class:`~ganenc.losses.LossSettings`, its dict, a loss module, or ``None`` for the
    paper's loss) and ``cropper`` (a registered cropper's name, a cropper object, or
    ``None`` for whole images) are used by ``optimize`` and ``finetune``;
    :meth:`from_encoder` takes both from the encoder's training run.  ``speed``
    (a :class:`~ganenc.training.speed.SpeedOptions`) picks the layout, gradient
    checkpointing and CUDA autocast precision of the refinements.  Every argument is
    checked here, before any work.
    """

    def __init__(
        self,
        encoder: torch.nn.Module,
        generator: GeneratorAdapter,
        *,
        loss: Any = None,
        cropper: Any = None,
        device: str | torch.device = "auto",
        synthesis_options: Mapping[str, Any] | None = None,
        optimize_lr: float = DEFAULT_OPTIMIZE_LR,
        finetune_lr: float = DEFAULT_FINETUNE_LR,
        finetune_betas: tuple[float, float] = (0.0, 0.99),
        finetune_eps: float = 1e-8,
        anchor_weight: float = 0.0,
        cycle_weight: float = 1.0,
        latent_l2: float = 3e-4,
        generator_spec: Mapping[str, Any] | None = None,
        encoder_path: str | None = None,
        seed: int = 0,
        speed: Any = None,
        cropper_spec: Mapping[str, Any] | None = None,
    ) -> None:
        from .devices import resolve_device
        from .training.speed import SpeedOptions

        if not isinstance(encoder, torch.nn.Module):
            raise ConfigError(
                "encoder must be an encoder module (ganenc.build_encoder or"
                f" ganenc.load_encoder), not a {type(encoder).__name__}; for a run folder or"
                " encoder file use Inverter.from_encoder(path)"
            )
        if not isinstance(generator, GeneratorAdapter):
            raise ConfigError(
                "generator must be a generator adapter (ganenc.load_generator), not a"
                f" {type(generator).__name__}"
            )
        meta = getattr(encoder, "ganenc_meta", None)  # absent: not built by ganenc
        recorded = meta.get("geometry") if isinstance(meta, Mapping) else None
        mismatch = geometry_mismatch(recorded, generator) if recorded is not None else None
        if mismatch:
            raise ConfigError(f"{mismatch}; give the generator the encoder was built for")
        seed = check_number(RunSettings, "seed", seed)
        loss = _checked_loss(loss)
        if isinstance(cropper, str) and cropper_spec is None:
            cropper_spec = {"attention": cropper, "options": {}}
        cropper = _checked_cropper(cropper, loss)
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.speed = speed if speed is not None else SpeedOptions()
        autocast(self.device, self.speed.precision)  # fp16/bf16 without CUDA: fail now
        self.encoder = self.speed.prepare_encoder(encoder.to(self.device).eval())
        self.generator = self.speed.prepare_generator(generator.to(self.device).freeze())
        self._loss_settings = loss
        self._loss = None
        self.cropper = cropper
        self.synthesis_options = dict(synthesis_options or {})
        # the limits the command line and the run settings give these numbers, written once
        self.optimize_lr = check_field(RefinementSettings, "optimize_lr", optimize_lr)
        self.finetune_lr = check_field(RefinementSettings, "finetune_lr", finetune_lr)
        self.finetune_betas = check_field(OptimizerSettings, "betas", finetune_betas, "betas")
        self.finetune_eps = check_field(OptimizerSettings, "eps", finetune_eps, "finetune_eps")
        self.anchor_weight = check_field(RefinementSettings, "anchor_weight", anchor_weight)
        self.cycle_weight = check_field(FinetuneSettings, "cycle_weight", cycle_weight)
        self.latent_l2 = check_field(FinetuneSettings, "latent_l2", latent_l2)
        self.generator_spec = dict(generator_spec or {"gan": generator.family})
        # recorded in index.json and each latent file: absolute, so found from anywhere
        self.encoder_path = absolute_if_present(encoder_path)
        self.seed = seed
        self.cropper_spec = dict(cropper_spec) if cropper_spec is not None else None
        self._initial_state = {k: v.detach().clone() for k, v in self.encoder.state_dict().items()}

    # -- construction from a training run ----------------------------------------------------
    # Deliberately alike: Inverter.from_encoder takes EncoderRun.open's overrides and passes them on
    @classmethod
    def from_encoder(
        cls,
        encoder: str | os.PathLike,
        *,
        gan: str | None = None,
        checkpoint: str | None = None,
        generator_options: Mapping[str, Any] | None = None,
        device: str | torch.device = "auto",
        loss: Any = None,
        attention: str | None = None,
        feature_weights: str | None = None,
        cropper_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Inverter:
        """Load an encoder (run directory or file) and the generator it records.

        ``gan``, ``checkpoint`` and ``generator_options`` override what the
        encoder file records; the loss and attention default to the training
        run's (see :class:`~ganenc.encoder_runs.EncoderRun`); ``feature_weights``
        is passed to LPIPS and Grad-CAM.
        """
        from .encoder_runs import EncoderRun

        run = EncoderRun.open(
            encoder,
            gan=gan,
            checkpoint=checkpoint,
            generator_options=generator_options,
            loss=loss,
            attention=attention,
            cropper_options=cropper_options,
            feature_weights=feature_weights,
        )
        return cls.from_run(run, device=device, **options)

    @classmethod
    def from_run(cls, run: Any, *, device: str | torch.device = "auto", **options: Any) -> Inverter:
        """An inverter for an opened :class:`~ganenc.encoder_runs.EncoderRun`."""
        return cls(
            run.encoder,
            run.generator,
            loss=run.loss_settings,
            cropper=run.build_cropper(),
            device=device,
            synthesis_options=run.synthesis_options,
            generator_spec=run.generator_spec.record(),
            encoder_path=str(run.path),
            cropper_spec={"attention": run.attention, "options": run.cropper_options},
            **options,
        )

    def refinement_settings(self, refine: str) -> dict[str, Any]:
        """What shapes a refinement's result besides its steps (``{}`` for ``none``): what a
        resumed ``invert`` must repeat for its images to match the ones done before."""
        if refine == "none":
            return {}
        loss = self._loss_settings
        settings: dict[str, Any] = {
            "loss": loss.model_dump(mode="json") if hasattr(loss, "model_dump") else repr(loss),
            "cropper": self.cropper_spec or type(self.cropper).__name__,
            "seed": self.seed,
        }
        if refine == "optimize":
            settings |= {
                "lr": self.optimize_lr,
                "anchor_weight": self.anchor_weight,
                "latent_l2": self.latent_l2,
            }
        else:
            settings |= {
                "lr": self.finetune_lr,
                "betas": list(self.finetune_betas),
                "eps": self.finetune_eps,
                "cycle_weight": self.cycle_weight,
            }
        return settings

    # -- pieces ------------------------------------------------------------------------------
    @property
    def loss(self):
        """The composite loss of the refinements (built on first use: LPIPS loads VGG16)."""
        if self._loss is None:
            from .losses.composite import CompositeLoss

            settings = self._loss_settings
            loss = settings if isinstance(settings, torch.nn.Module) else CompositeLoss(settings)
            self._loss = loss.to(self.device).requires_grad_(False)
        return self._loss

    def synthesize(self, latents: Latents) -> torch.Tensor:
        return self.generator.synthesize(latents, **self.synthesis_options)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> Latents:
        """``E(images)`` in eval mode (deterministic: the encoder's noise is off)."""
        self.encoder.eval()
        return {k: v.detach() for k, v in self.encoder(images.to(self.device)).items()}

    def _boxes(self, images: torch.Tensor) -> list[torch.Tensor]:
        from .cropping import attention_boxes

        return attention_boxes(self.cropper, images) if self.cropper is not None else []

    def _image_loss(
        self, reconstruction: torch.Tensor, targets: list
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum over images of each image's own loss (no coupling between images of a batch).

        ``targets``: each image prepared once by ``loss.prepare_target``.
        """
        values = [
            self.loss(reconstruction[i : i + 1].float(), target)[0]
            for i, target in enumerate(targets)
        ]
        stacked = torch.stack(values)
        return stacked.sum(), stacked.detach()

    def _prepared_targets(self, images: torch.Tensor, boxes: list[torch.Tensor]) -> list:
        """Each image with its crops and LPIPS features, computed once for all the steps."""
        return [
            self.loss.prepare_target(images[i : i + 1], boxes=[b[i : i + 1] for b in boxes])
            for i in range(images.shape[0])
        ]

    # -- refinements -------------------------------------------------------------------------
    def optimize(
        self, images: torch.Tensor, start: Latents, steps: int, progress: Any = None
    ) -> tuple[Latents, list[float]]:
        """Latent optimisation from ``start`` (the hybrid approach); returns latents and losses."""
        images = images.to(self.device)
        anchor = {k: v.detach().to(self.device) for k, v in start.items()}
        latents = {k: v.clone().requires_grad_(True) for k, v in anchor.items()}
        optimizer = torch.optim.Adam(latents.values(), lr=self.optimize_lr)
        targets = self._prepared_targets(images, self._boxes(images))
        scaler = grad_scaler(self.device, self.speed.precision)
        per_image = torch.zeros(images.shape[0])
        for step in range(steps):
            with autocast(self.device, self.speed.precision):
                reconstruction = self.speed.synthesize(
                    self.generator, latents, self.synthesis_options
                )
                total, per_image = self._image_loss(reconstruction, targets)
            if self.anchor_weight > 0:
                for key, value in latents.items():
                    total = total + self.anchor_weight * (value - anchor[key]).pow(2).sum() / (
                        value[0].numel()
                    )
            optimizer_step(optimizer, scaler, total)
            if progress is not None:  # a tensor: no device sync unless the bar shows it
                progress(step + 1, total.detach() / images.shape[0])
        return {k: v.detach() for k, v in latents.items()}, per_image.tolist()

    def finetune(
        self, image: torch.Tensor, steps: int, progress: Any = None
    ) -> tuple[Latents, float]:
        """The paper's per-image fine-tuning of a copy of the encoder; returns latents and loss.

        The encoder's noise (drawn in training mode) comes from ``seed``, the
        same for every image, so an image's result does not depend on the
        others, and the global random state is left as it was.
        """
        image = image.to(self.device)
        if image.shape[0] != 1:
            raise ValueError("per-image fine-tuning takes one image at a time")
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            return self._finetune(image, steps, progress)

    def _finetune(self, image: torch.Tensor, steps: int, progress: Any) -> tuple[Latents, float]:
        from .losses.real_images import real_image_loss

        encoder = copy.deepcopy(self.encoder)
        encoder.load_state_dict(self._initial_state)
        optimizer = torch.optim.Adam(
            encoder.parameters(),
            lr=self.finetune_lr,
            betas=self.finetune_betas,
            eps=self.finetune_eps,
        )
        target = self.loss.prepare_target(image, boxes=self._boxes(image))
        scaler = grad_scaler(self.device, self.speed.precision)
        value = torch.tensor(float("nan"))
        for step in range(steps):
            encoder.train()
            with autocast(self.device, self.speed.precision):
                total, _, _ = real_image_loss(
                    encoder,
                    self.generator,
                    self.loss,
                    image,
                    target.boxes,
                    cycle_weight=self.cycle_weight,
                    latent_l2=self.latent_l2,
                    synthesis_options=self.synthesis_options,
                    target=target,
                    speed=self.speed,
                )
            optimizer_step(optimizer, scaler, total)
            value = total.detach()
            if progress is not None:  # a tensor: no device sync unless the bar shows it
                progress(step + 1, value)
        encoder.eval()
        with torch.no_grad():
            latents = {k: v.detach() for k, v in encoder(image).items()}
        return latents, float(value)

    # -- the whole thing ---------------------------------------------------------------------
    # Deliberately alike: only the parameter list matches another signature; the bodies differ
    def invert(
        self,
        images: torch.Tensor,
        refine: str = "none",
        steps: int | None = None,
        batch_size: int = 8,
        progress: Any = None,
    ) -> InversionResult:
        """Invert ``images`` ([N, 3, R, R] in [-1, 1]) in batches of ``batch_size``.

        ``images`` may also be a :class:`~ganenc.data.ImageSet` (decoded batch by batch).

        ``progress(done_steps, loss)`` is called during refinement (``done_steps``
        counts over the whole call); without one, ``progress(done_images, None)`` after
        each batch.
        """
        steps, batch_size = checked_refinement(refine, steps, batch_size)
        images = check_image_tensor(images, self.generator.resolution)
        encoder_seconds = refine_seconds = 0.0
        latents_parts, recon_parts, losses, seconds = [], [], [], []
        done = 0
        for start in range(0, images.shape[0], batch_size):
            chunk = images[start : start + batch_size].to(self.device, torch.float32)
            began = _now(self.device)
            latents = self.encode(chunk)
            encode_time = _now(self.device) - began
            encoder_seconds += encode_time
            began = _now(self.device)
            own = [encode_time / chunk.shape[0]] * chunk.shape[0]
            if refine == "optimize":
                offset = done

                def report(step, loss, offset=offset, n=chunk.shape[0]):
                    if progress is not None:
                        progress(offset + step * n, loss)

                latents, chunk_losses = self.optimize(chunk, latents, steps, report)
                losses.extend(chunk_losses)
                done += steps * chunk.shape[0]
            elif refine == "finetune":
                tuned = []
                for i in range(chunk.shape[0]):
                    offset, image_began = done, _now(self.device)

                    def report(step, loss, offset=offset):
                        if progress is not None:
                            progress(offset + step, loss)

                    one, loss = self.finetune(chunk[i : i + 1], steps, report)
                    own[i] += _now(self.device) - image_began
                    tuned.append(one)
                    losses.append(loss)
                    done += steps
                latents = {k: torch.cat([t[k] for t in tuned]) for k in tuned[0]}
            else:
                done += chunk.shape[0]
                if progress is not None:
                    progress(done, None)
            with torch.no_grad():
                reconstruction = self.synthesize(latents)
            spent = _now(self.device) - began
            refine_seconds += spent
            if refine != "finetune":
                own = [t + spent / chunk.shape[0] for t in own]
            seconds.extend(own)
            latents_parts.append({k: v.cpu() for k, v in latents.items()})
            recon_parts.append(reconstruction.float().cpu())
        return InversionResult(
            latents={k: torch.cat([p[k] for p in latents_parts]) for k in latents_parts[0]},
            reconstructions=torch.cat(recon_parts),
            refine=refine,
            steps=steps if refine != "none" else 0,
            encoder_seconds=encoder_seconds,
            refine_seconds=refine_seconds,
            final_losses=losses,
            seconds=seconds,
        )


def checked_refinement(refine: str, steps: Any, batch_size: Any) -> tuple[int, int]:
    """``(steps, batch_size)`` of an inversion, checked before any work or file: ``refine`` one
    of :data:`REFINE_MODES`, the numbers within their settings' limits (``steps=None``: the
    mode's default; ``none`` also takes 0, what the folder command passes)."""
    if refine not in REFINE_MODES:
        raise ConfigError(f"refine must be one of {list(REFINE_MODES)}, got {refine!r}")
    batch_size = check_number(FinetuneSettings, "batch_size", batch_size)
    if steps is None:
        return DEFAULT_STEPS[refine], batch_size
    if refine == "none" and type(steps) is int and steps == 0:
        return 0, batch_size
    field = "finetune_steps" if refine == "finetune" else "optimize_steps"
    return check_number(RefinementSettings, field, steps, "steps"), batch_size


def invert(
    images: torch.Tensor,
    encoder: str | os.PathLike | Inverter,
    refine: str = "none",
    steps: int | None = None,
    batch_size: int = 8,
    **options: Any,
) -> InversionResult:
    """Invert ``images`` with an encoder run directory/file (or an :class:`Inverter`).

    ``options`` go to :meth:`Inverter.from_encoder` (``device``, ``gan``,
    ``checkpoint``, ``loss``, ``optimize_lr`` ...); an :class:`Inverter` has its own, so
    with one they are refused, not ignored.
    """
    if isinstance(encoder, Inverter):
        if options:
            raise ConfigError(
                f"{', '.join(sorted(options))} open an encoder run, but an Inverter was given"
                " (it has its own): give them to Inverter(...)/Inverter.from_encoder(...), or"
                " drop them"
            )
        inverter = encoder
    elif isinstance(encoder, str | os.PathLike):
        inverter = Inverter.from_encoder(encoder, **options)
    else:
        raise ConfigError(
            "encoder must be a run folder or encoder file path, or an Inverter, not a"
            f" {type(encoder).__name__} (an encoder module: Inverter(encoder, generator))"
        )
    return inverter.invert(images, refine=refine, steps=steps, batch_size=batch_size)


# -- the folder command ----------------------------------------------------------------------


@contextlib.contextmanager
def refinement_bar(
    inverter: Inverter, refine: str, steps: int, count: int, enabled: bool
) -> Iterator[Any]:
    """One progress bar over every refinement step of ``count`` images (``none``: over the
    images, in :func:`work_per_image` units).

    The refinement's loss is built first: an unknown term fails before the bar starts.
    """
    from .progress import Progress

    refined = refine != "none"
    if refined:
        inverter.loss  # noqa: B018 - built for its errors
    total = work_per_image(refine, steps) * count
    bar = Progress(
        total,
        0,
        enabled and total > 0,
        f"inverting ({refine})",
        unit="it" if refined else "img",
        loss=refined,
    )
    try:
        yield bar
    finally:
        bar.close()


def work_per_image(refine: str, steps: int) -> int:
    """What one image adds to a progress bar: its refinement steps, or itself (``none``)."""
    return steps if refine != "none" else 1


# Deliberately alike: only the parameter list matches another signature; the bodies differ
def invert_with_progress(
    inverter: Inverter,
    images: torch.Tensor,
    *,
    refine: str = "none",
    steps: int | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> InversionResult:
    """:meth:`Inverter.invert` with one progress bar over every refinement step of every image
    (``none``: over the images).

    What ``eval`` (:func:`ganenc.evaluation.evaluate_encoder`) runs; ``invert``
    (:func:`invert_folder`) goes through a folder in chunks under one bar.
    """
    steps, batch_size = checked_refinement(refine, steps, batch_size)
    with refinement_bar(inverter, refine, steps, images.shape[0], progress) as bar:
        return inverter.invert(
            images, refine=refine, steps=steps, batch_size=batch_size, progress=bar.update
        )


#: Images decoded, inverted and written at a time by :func:`invert_folder`: memory follows a
#: chunk, not the folder (1,000 images at 1024 px are 12.6 GB as float32, twice with their
#: reconstructions), and an interrupted run keeps every finished chunk.
CHUNK_IMAGES = 64
#: What an unfinished ``invert_folder`` output holds beside its files: settings and times.
UNFINISHED_FILE = "unfinished.json"


def invert_folder(
    inverter: Inverter,
    images: str | os.PathLike,
    out: str | os.PathLike,
    *,
    refine: str = "none",
    steps: int | None = None,
    batch_size: int = 8,
    feature_weights: str | None = None,
    progress: bool = False,
    grid_limit: int = 32,
    resume: bool = False,
) -> dict[str, Any]:
    """Invert every image of a folder into ``out`` (which must be new or empty).

    Writes ``latents/<stem>.pt`` (one per image), ``index.json``,
    ``reconstructions/<stem>.png``, ``grid.png`` (original | reconstruction
    pairs, the first ``grid_limit`` images) and ``metrics.csv`` (PSNR, SSIM,
    MSE, and LPIPS when VGG16 weights are found; else ``index.json`` says why
    not, under ``not_computed``).  Returns the index.

    Images go through in chunks of :data:`CHUNK_IMAGES` (with a refinement, a batch;
    per-image fine-tuning, one image), each written before the next is read; until ``index.json`` exists the folder holds :data:`UNFINISHED_FILE`, and
    ``resume=True`` continues it with the images not yet done (same settings).
    """
    from .data import image_candidates, load_images, no_readable_images
    from .evaluation import PER_IMAGE_METRICS, plan_metrics

    out = Path(out)
    steps, batch_size = checked_refinement(refine, steps, batch_size)
    paths, skipped = image_candidates(images)
    if not paths:
        raise no_readable_images(images, skipped)
    check_distinct_stems([path.name for path in paths])
    plan = plan_metrics(offered=PER_IMAGE_METRICS, feature_weights=feature_weights)
    settings = {
        "images": os.path.abspath(images),
        "encoder": inverter.encoder_path,
        "generator": inverter.generator_spec,
        "refine": refine,
        "steps": steps if refine != "none" else 0,
        "refinement": inverter.refinement_settings(refine),
        "metrics": sorted(plan.computed),  # the columns of metrics.csv
    }
    if resume:
        state, done = _unfinished(out, settings)
    else:
        if (out / UNFINISHED_FILE).is_file():
            raise GanencError(
                f"{out} holds an unfinished inversion; add --resume to continue it (nothing"
                " was overwritten), or choose another --out"
            )
        out = check_output(out, folder=True)
        state, done = {"settings": settings, "encoder_seconds": 0.0, "refine_seconds": 0.0}, {}
    todo = [path for path in paths if path.name not in done]
    size = _chunk_size(refine, batch_size)
    chunks = (
        load_images(todo[start : start + size], inverter.generator.resolution)
        for start in range(0, len(todo), size)
    )
    finished = 0  # refinement steps of the chunks before
    with refinement_bar(inverter, refine, steps, len(todo), progress) as bar:
        for chunk in chunks:
            state.setdefault("skipped", {}).update(chunk.skipped)
            if not chunk.names:
                continue
            result = inverter.invert(
                chunk.images,
                refine=refine,
                steps=steps,
                batch_size=batch_size,
                progress=lambda step, loss, offset=finished: bar.update(offset + step, loss),
            )
            finished += work_per_image(refine, steps) * len(chunk.names)
            write_json(out / UNFINISHED_FILE, state)  # first: files without it are not resumable
            done.update(_write_chunk(inverter, chunk, result, out, plan))
            state["encoder_seconds"] += result.encoder_seconds
            state["refine_seconds"] += result.refine_seconds
            state["latent_shapes"] = latent_shapes(result.latents)
            write_json(out / UNFINISHED_FILE, state)
    skipped.update(state.get("skipped", {}))
    if not done:
        raise no_readable_images(images, skipped)
    return _finish_folder(inverter, paths, done, skipped, state, out, plan, grid_limit)


def _chunk_size(refine: str, batch_size: int) -> int:
    """Images per written chunk: a refinement's batch (a per-image fine-tuning: one image) is
    written as soon as it is done, so an interruption loses minutes, not a chunk of hours."""
    if refine == "finetune":
        return 1
    return batch_size if refine == "optimize" else CHUNK_IMAGES


def _changed(was: Any, now: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """The settings that differ, by the deepest key both sides hold as a mapping.

    ``{"refinement": {"lr": 0.01}}`` against ``{"refinement": {"lr": 0.1}}`` names
    ``refinement.lr``; a refinement present on one side only is named ``refinement``
    once, not by each of its leaves.
    """
    found: list[tuple[str, Any]] = []
    for key in dict.fromkeys([*now, *was]):
        before, after = was.get(key), now.get(key)
        if isinstance(before, Mapping) and isinstance(after, Mapping) and key != "generator":
            found += _changed(before, after, f"{prefix}{key}.")
        elif before != after:
            found.append((f"{prefix}{key}", before))
    return found


def _unfinished(out: Path, settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict]]:
    """The record and finished rows of an unfinished inversion in ``out`` with ``settings``."""
    import json

    if (out / INDEX_FILE).is_file():
        raise GanencError(f"{out} holds a finished inversion ({INDEX_FILE}); nothing to resume")
    record = out / UNFINISHED_FILE
    if not record.is_file():
        raise GanencError(
            f"{out} holds no unfinished inversion ({UNFINISHED_FILE}); leave out --resume"
            " to start one in a new folder"
        )
    try:
        state = json.loads(record.read_text(encoding="utf-8"))
        recorded = state["settings"]
    except (ValueError, KeyError, TypeError):
        raise GanencError(f"{record} is damaged; start again in a new folder") from None
    if recorded.get("refine") != settings.get("refine"):  # another mode: its settings follow
        changed = [
            (key, recorded.get(key))
            for key in dict.fromkeys([*settings, *recorded])
            if recorded.get(key) != settings.get(key)
        ]
    else:
        changed = _changed(recorded, settings)
    if changed:
        shown = ", ".join(
            f"{key}: {'(set)' if isinstance(value, Mapping) else repr(value)}"
            for key, value in changed[:5]
        ) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise GanencError(
            f"the unfinished inversion in {out} was started with other"
            f" {', '.join(key for key, _ in changed[:5])} ({shown}); resume it with"
            " the same options, or choose another --out"
        )
    return state, finished_rows(out / "metrics.csv")


def _write_chunk(
    inverter: Inverter, chunk: Any, result: InversionResult, out: Path, plan: Any
) -> dict[str, dict]:
    """Latent files and reconstructions of a chunk, then its rows of ``metrics.csv``.

    The rows come last: a row means the image's files are complete.
    """
    from .evaluation import per_image_metrics
    from .images import save_image

    rows = per_image_metrics(result.reconstructions, chunk.images, plan.lpips_term, inverter.device)
    for index, name in enumerate(chunk.names):
        stem = Path(name).stem
        save_latent_file(
            out / LATENTS_DIR / f"{stem}.pt",
            result.latent(index),
            image=name,
            gan=inverter.generator_spec.get("gan"),
            generator=inverter.generator_spec,
            encoder=inverter.encoder_path,
            refine=result.refine,
            steps=result.steps,
            synthesis_options=inverter.synthesis_options,
        )
        save_image(result.reconstructions[index], out / "reconstructions" / f"{stem}.png")
    written = {
        name: {**row, "seconds": round(spent, 6)}
        for name, row, spent in zip(chunk.names, rows, result.seconds, strict=True)
    }
    append_rows(out / "metrics.csv", [{"image": name, **row} for name, row in written.items()])
    return written


def _finish_folder(
    inverter: Inverter,
    paths: list[Path],
    done: dict[str, dict],
    skipped: dict[str, str],
    state: dict[str, Any],
    out: Path,
    plan: Any,
    grid_limit: int,
) -> dict[str, Any]:
    """``grid.png`` and ``index.json`` of a folder whose images are all written."""
    from .data import load_image
    from .evaluation import summarize
    from .images import save_grid

    names = [path.name for path in paths if path.name in done]
    entries = [
        {
            "image": name,
            "latents": f"{LATENTS_DIR}/{Path(name).stem}.pt",
            "reconstruction": f"reconstructions/{Path(name).stem}.png",
        }
        for name in names
    ]
    resolution = inverter.generator.resolution
    shown = [path for path in paths if path.name in done][:grid_limit]
    originals = [load_image(path, resolution) for path in shown]
    recons = [
        load_image(out / "reconstructions" / f"{path.stem}.png", resolution) for path in shown
    ]
    pairs = torch.stack([torch.stack(originals), torch.stack(recons)], dim=1).flatten(0, 1)
    save_grid(pairs, out / "grid.png", nrow=2 * min(len(shown), 4))
    rows = [{k: v for k, v in done[name].items() if k != "seconds"} for name in names]
    count = max(len(names), 1)
    settings = state["settings"]
    index = {
        "format": "ganenc-inversion/1",
        "encoder": inverter.encoder_path,
        "generator": inverter.generator_spec,
        "refine": settings["refine"],
        "steps": settings["steps"],
        "latent_shapes": state.get("latent_shapes"),
        "images": entries,
        "skipped": skipped,
        "seconds_per_image": (state["encoder_seconds"] + state["refine_seconds"]) / count,
        "encoder_seconds_per_image": state["encoder_seconds"] / count,
        "refine_seconds_per_image": state["refine_seconds"] / count,
        "device": str(inverter.device),
        "metrics": plan.fill(summarize(rows)),
        "not_computed": plan.not_computed,
    }
    write_json(out / INDEX_FILE, index)
    (out / UNFINISHED_FILE).unlink(missing_ok=True)
    return index


def check_distinct_stems(names: list[str]) -> None:
    """Refuse images whose names differ only by extension: they share ``latents/<stem>.pt``."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(Path(name).stem, []).append(name)
    duplicates = [group for group in groups.values() if len(group) > 1]
    if duplicates:
        raise GanencError(
            "images whose names differ only by extension would write the same latent file: "
            + "; ".join(", ".join(group) for group in duplicates)
            + "; rename or move one of each"
        )


def finished_rows(metrics: Path) -> dict[str, dict]:
    """Image name -> its row of a per-image ``metrics.csv`` (a row means its files are complete).

    An empty cell is a metric not computed (``None``).  A last line cut short by a
    kill is removed from the file, so its image is done again and the next row
    starts on a line of its own.
    """
    done: dict[str, dict] = {}
    if not metrics.is_file():
        return done
    try:
        text = metrics.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
            metrics.write_text(text, encoding="utf-8")
        for row in csv.DictReader(text.splitlines()):
            name = row.pop("image")
            done[name] = {key: None if value == "" else float(value) for key, value in row.items()}
    except (ValueError, TypeError, KeyError, csv.Error, UnicodeDecodeError):
        raise GanencError(f"{metrics} is damaged; start again in a new folder") from None
    return done


def append_rows(metrics: Path, rows: list[dict]) -> None:
    """Add ``rows`` (each with ``image`` first) to ``metrics.csv``, its header when new."""
    if not rows:
        return
    new = not metrics.is_file() or metrics.stat().st_size == 0
    with metrics.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        if new:
            writer.writeheader()
        writer.writerows(rows)


def _now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
