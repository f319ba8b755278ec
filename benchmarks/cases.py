"""The work being timed: a generator forward, a pre-training step, a fine-tuning iteration.

Each case runs the code the commands run (``Pretrainer.train_step``;
``real_image_loss`` with the optimizer step of per-image fine-tuning, as in
``Inverter.finetune`` and ``ganenc finetune --mode per-image``), with random
weights: timings do not depend on the weights' values.  LPIPS uses random
VGG16 features (``feature_weights="random"``): the same network, so the same
time, as with ImageNet weights, which cannot be downloaded here.

Case names are options joined by ``+``:

``baseline``
    the code before the speed work: target crops and LPIPS features
    recomputed at every fine-tuning iteration (and the attention boxes);
``default``
    what the commands do now without options (target prepared once per image);
``cached_target``
    the same as ``default`` (named for the options table);
``channels_last``, ``gradient_checkpointing``, ``compile``, ``bf16``, ``fp16``
    ``default`` plus that option (:class:`ganenc.training.speed.SpeedOptions`);
``gradcam``
    Grad-CAM attention boxes (a VGG16 pass) instead of the centre crops, e.g.
    ``baseline+gradcam`` against ``gradcam``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import ganenc
from ganenc.cropping import attention_boxes, build_cropper
from ganenc.losses.composite import CompositeLoss
from ganenc.losses.real_images import real_image_loss
from ganenc.precision import autocast, grad_scaler, optimizer_step
from ganenc.training.speed import SpeedOptions

from .measure import state_bytes

#: The paper's loss with random VGG16 features for LPIPS (timing only).
TIMING_LOSS = {"feature_weights": "random"}
OPTIONS = (
    "cached_target",
    "channels_last",
    "gradient_checkpointing",
    "compile",
    "bf16",
    "fp16",
    "gradcam",
)


@dataclass(frozen=True)
class CaseSpec:
    """A case name parsed: speed options, and whether the target is prepared once."""

    name: str
    speed: SpeedOptions
    cached_target: bool
    attention: str = "center"

    @classmethod
    def parse(cls, name: str) -> CaseSpec:
        parts = [p for p in name.split("+") if p not in ("baseline", "default")]
        unknown = [p for p in parts if p not in OPTIONS]
        if unknown:
            raise ValueError(f"unknown case option(s) {unknown}; known: {list(OPTIONS)}")
        precision = "bf16" if "bf16" in parts else "fp16" if "fp16" in parts else "fp32"
        speed = SpeedOptions(
            channels_last="channels_last" in parts,
            compile="compile" in parts,
            gradient_checkpointing="gradient_checkpointing" in parts,
            precision=precision,
        )
        return cls(
            name,
            speed,
            cached_target="baseline" not in name.split("+"),
            attention="gradcam" if "gradcam" in parts else "center",
        )

    @property
    def baseline(self) -> str:
        """The name of the case this one is compared with: the baseline of its attention."""
        return "baseline+gradcam" if self.attention == "gradcam" else "baseline"


def quiet_random_weights_warning() -> None:
    """The benchmarks use random VGG16 features on purpose (the report says so): no warnings."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=".*RANDOM feature weights.*")
    logging.getLogger("ganenc.features").addFilter(
        lambda record: "RANDOM feature weights" not in record.getMessage()
    )


class GeneratorCache:
    """Generators by (family, resolution, options, layout), built once per run."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._built: dict[tuple, Any] = {}

    def get(self, family: str, resolution: int, channels_last: bool = False, **options: Any):
        key = (family, resolution, channels_last, tuple(sorted(options.items())))
        if key not in self._built:
            generator = ganenc.load_generator(family, resolution=resolution, **options)
            generator = generator.to(self.device).freeze()
            SpeedOptions(channels_last=channels_last).prepare_generator(generator)
            self._built[key] = generator
        return self._built[key]

    def clear(self) -> None:
        self._built.clear()


class GeneratorForward:
    """``synthesize`` of a batch of encoder targets, without gradients."""

    def __init__(self, generator: Any, batch: int, seed: int = 0) -> None:
        self.generator = generator
        truncation = generator.training_truncation()
        self.options = generator.synthesis_options(**truncation)
        with torch.no_grad():
            latents = generator.sample_latents(batch, seed=seed, device=generator.device)
            self.latents = generator.encoder_targets(latents, **truncation)
        self.batch = batch

    def __call__(self) -> torch.Tensor:
        with torch.inference_mode():
            return self.generator.synthesize(self.latents, **self.options)


class FinetuneIteration:
    """One iteration of per-image fine-tuning (paper: lr 0.005, betas (0, 0.99), batch 1)."""

    def __init__(
        self,
        spec: CaseSpec,
        generators: GeneratorCache,
        resolution: int,
        *,
        family: str = "stylegan2",
        generator_options: dict | None = None,
        encoder_options: dict | None = None,
        loss: dict | None = None,
    ) -> None:
        self.spec = spec
        self.device = generators.device
        speed = spec.speed
        self.generator = generators.get(
            family, resolution, speed.channels_last, **(generator_options or {})
        )
        truncation = self.generator.training_truncation()
        self.synthesis_options = self.generator.synthesis_options(**truncation)
        torch.manual_seed(0)  # the same initial encoder in every case
        self.encoder = ganenc.build_encoder(self.generator, **(encoder_options or {}))
        self.encoder = speed.prepare_encoder(self.encoder.to(self.device))
        self.model = speed.compiled(self.encoder)
        self.loss = CompositeLoss(loss or TIMING_LOSS).to(self.device).requires_grad_(False)
        # Grad-CAM's VGG16 random too (``build_cropper`` passes feature weights where taken).
        self.cropper = build_cropper(spec.attention, {}, "random")
        with torch.no_grad():  # a fixed image in [-1, 1] stands in for a photograph
            sample = self.generator.sample_latents(1, seed=12345, device=self.device)
            self.image = self.generator.synthesize(sample, **self.synthesis_options).clamp(-1, 1)
        self.image = self.image.float().contiguous()
        self.target = (
            self.loss.prepare_target(self.image, cropper=self.cropper)
            if spec.cached_target
            else None
        )
        self.optimizer = torch.optim.Adam(
            self.encoder.parameters(), lr=0.005, betas=(0.0, 0.99), eps=1e-8
        )
        self.scaler = grad_scaler(self.device, speed.precision)

    def loss_value(self) -> torch.Tensor:
        """The iteration's loss (graph kept), exactly as per-image fine-tuning computes it."""
        self.encoder.train()
        if self.target is None:  # the code before: crops and features of the target every time
            boxes = attention_boxes(self.cropper, self.image) if self.cropper else []
        else:
            boxes = self.target.boxes
        with autocast(self.device, self.spec.speed.precision):
            total, _, _ = real_image_loss(
                self.model,
                self.generator,
                self.loss,
                self.image,
                boxes,
                cycle_weight=1.0,
                latent_l2=3e-4,
                synthesis_options=self.synthesis_options,
                target=self.target,
                speed=self.spec.speed,
            )
        return total

    def __call__(self) -> None:
        optimizer_step(self.optimizer, self.scaler, self.loss_value())

    def loss_and_gradients(self, seed: int = 0) -> tuple[float, torch.Tensor]:
        """Loss and flattened encoder gradients from the current weights (no optimizer step)."""
        torch.manual_seed(seed)
        self.optimizer.zero_grad(set_to_none=True)
        total = self.loss_value()
        total.backward()
        grads = torch.cat(
            [
                (p.grad if p.grad is not None else torch.zeros_like(p)).detach().flatten().float()
                for p in self.encoder.parameters()
            ]
        )
        self.optimizer.zero_grad(set_to_none=True)
        return float(total.detach()), grads.cpu()

    def free_gradients(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def state(self) -> int:
        target = [] if self.target is None else _tensors_of(self.target)
        return state_bytes(
            [self.generator, self.encoder, self.loss], [self.optimizer], [self.image, *target]
        )


class PretrainStep:
    """One ``Pretrainer.train_step`` (synthesis of the batch, encoder, generator, loss, Adam)."""

    def __init__(
        self,
        spec: CaseSpec,
        resolution: int,
        batch: int,
        device: torch.device,
        *,
        family: str = "stylegan2",
        generator_options: dict | None = None,
        encoder_options: dict | None = None,
        loss: dict | None = None,
    ) -> None:
        from ganenc.training.pretrain import Pretrainer
        from ganenc.training.settings import TrainSettings

        self.spec = spec
        self.device = device
        self._folder = tempfile.TemporaryDirectory(prefix="ganenc-bench-")
        speed = spec.speed
        settings = TrainSettings(
            gan=family,
            generator_options={"resolution": resolution, **(generator_options or {})},
            encoder_options=dict(encoder_options or {}),
            attention=spec.attention,
            loss=loss or TIMING_LOSS,
            batch_size=batch,
            out=Path(self._folder.name) / "run",
            device=str(device),
            precision=speed.precision,
            channels_last=speed.channels_last,
            compile=speed.compile,
            gradient_checkpointing=speed.gradient_checkpointing,
            progress=False,
        )
        self.trainer = Pretrainer(settings)
        self.batch = batch
        self.step_index = 0

    def __call__(self) -> dict:
        parts, *_ = self.trainer.train_step(self.step_index)
        self.step_index += 1
        return parts

    def loss_and_gradients(self, seed: int = 0) -> tuple[float, torch.Tensor]:
        """The first step's loss and encoder gradients (the step also updates the encoder)."""
        torch.manual_seed(seed)
        parts = self()
        grads = torch.cat(
            [
                (p.grad if p.grad is not None else torch.zeros_like(p)).detach().flatten().float()
                for p in self.trainer.encoder.parameters()
            ]
        )
        return float(parts["total"].detach()), grads.cpu()

    def free_gradients(self) -> None:
        self.trainer.optimizer.zero_grad(set_to_none=True)

    def state(self) -> int:
        trainer = self.trainer
        return state_bytes(
            [trainer.generator, trainer.encoder, trainer.loss], [trainer.optimizer], []
        )

    def close(self) -> None:
        self._folder.cleanup()


def _tensors_of(prepared: Any) -> list[torch.Tensor]:
    found = [prepared.image]
    for level in prepared.levels:
        found += [level.target, level.pooled]
        for value in level.term_targets.values():
            found += list(getattr(value, "features", []))
    return found


def compare_numerics(
    reference: tuple[float, torch.Tensor], other: tuple[float, torch.Tensor]
) -> dict[str, float]:
    """How far a case's loss and gradients lie from the reference case's (same weights, seed)."""
    loss_ref, grad_ref = reference
    loss, grad = other
    scale = float(grad_ref.abs().max()) or 1.0
    return {
        "loss_abs_diff": abs(loss - loss_ref),
        "grad_max_abs_diff": float((grad - grad_ref).abs().max()),
        "grad_max_rel_diff": float((grad - grad_ref).abs().max()) / scale,
    }
