"""Self-supervised pre-training: the encoder learns to invert images its generator synthesises.

One step, for any registered GAN family::

    latents  = G.sample_latents(seed) for the step's seeds (training pool only)
    targets  = G.encoder_targets(latents, truncation)     # what E must predict
    x        = G.synthesize(targets)                      # no graph: G is frozen
    pred     = E(x)
    x_hat    = G.synthesize(pred)                         # gradients flow through G into E
    loss     = Σ_level weight · image_loss(crop(x_hat), crop(x)) + latent_loss(pred, targets)

Boxes come from the cropper on ``x`` without gradient; the same boxes crop
``x_hat``.  Nothing on the loss path is detached.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

import ganenc

from ..config import write_run_metadata
from ..contracts import check_images, check_latents
from ..cropping import attention_boxes, build_cropper  # noqa: F401 - build_cropper: old home
from ..encoder_runs import training_truncation
from ..evaluation import reconstruction_metrics, validation_metric_plan
from ..images import save_grid
from ..losses.composite import CompositeLoss
from ..precision import autocast, grad_scaler, optimizer_step
from .distributed import DistributedContext
from .loop import (
    Progress,
    SeedSchedule,
    StepOutput,
    comparison_grid,
    finishing,
    fit_and_close,
    synthesize_for_seeds,
    training_loop,
)
from .runs import RunDirectory, default_run_dir
from .settings import TrainSettings
from .speed import SpeedOptions


class Pretrainer:
    """Owns the generator, encoder, cropper, loss and optimizer of one pre-training run."""

    def __init__(self, settings: TrainSettings, dist: DistributedContext | None = None) -> None:
        self.settings = settings
        self.dist = dist or DistributedContext.from_env(settings.device)
        self.device = self.dist.device
        out = settings.out or default_run_dir("train", settings.gan)
        self.run = RunDirectory(out, resume=settings.resume, is_main=self.dist.is_main)
        self.generator = settings.load().to(self.device)
        torch.manual_seed(settings.seed + self.dist.rank)  # encoder init (DDP syncs rank 0's)
        self.encoder = ganenc.build_encoder(
            self.generator, name=settings.encoder, **settings.encoder_options
        ).to(self.device)
        self.encoder.ganenc_meta["generator"] = settings.record()
        feature_weights = settings.loss.feature_weights
        self.cropper = build_cropper(settings.attention, settings.cropper_options, feature_weights)
        self.loss = CompositeLoss(settings.loss).to(self.device)
        self.loss.requires_grad_(False)
        opt = settings.optimizer
        self.optimizer = torch.optim.Adam(
            self.encoder.parameters(), lr=opt.lr, betas=opt.betas, eps=opt.eps
        )
        self.scaler = grad_scaler(self.device, settings.precision)
        self.step = 0
        self._outputs_checked = False
        # what can still be refused is checked before the run's first file
        autocast(self.device, settings.precision)  # fp16/bf16 without CUDA: fail now
        self.truncation = training_truncation(
            self.generator, settings.truncation, settings.truncation_layers
        )
        self.synthesis_options = self.generator.synthesis_options(**self.truncation)
        self.generator.follow_truncation(self.truncation.get("truncation"))
        with torch.no_grad():  # a truncation the family refuses (PGGAN: per layer) shows now
            probe = self.generator.sample_latents(1, seed=0, device=self.device)
            self.generator.encoder_targets(probe, **self.truncation)
        if settings.resume:
            self._resume()
        elif self.dist.is_main:
            write_run_metadata(self.run.claim(), settings)
        self.speed = SpeedOptions.from_settings(settings)
        self.speed.prepare_generator(self.generator)
        self.model = self.speed.compiled(self.dist.wrap(self.speed.prepare_encoder(self.encoder)))
        self.schedule = SeedSchedule(
            settings.train_seeds, settings.batch_size, settings.seed, self.dist.world_size
        )

    def _resume(self) -> None:
        self.step = self.run.restore(self.encoder, self.optimizer, self.scaler, self.settings)

    # -- one step -------------------------------------------------------------------------------
    def synthesize_batch(self, seeds: list[int]) -> tuple[dict, torch.Tensor]:
        return synthesize_for_seeds(
            self.generator, seeds, self.device, self.truncation, self.synthesis_options
        )

    def train_step(
        self, step: int
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, list]:
        targets, images = self.synthesize_batch(self.schedule.seeds(step, self.dist.rank))
        first = not self._outputs_checked  # plugins' outputs checked once, at the first step
        if first:
            check_images(self.generator, images, images.shape[0])
        boxes = attention_boxes(self.cropper, images) if self.cropper is not None else []
        self.model.train()
        with autocast(self.device, self.settings.precision):
            predicted = self.model(self.speed.images(images))
            if first:
                check_latents(self.encoder, predicted, self.generator.geometry(), len(images))
                self._outputs_checked = True
            reconstruction = self.speed.synthesize(
                self.generator, predicted, self.synthesis_options
            )
            total, parts = self.loss(
                reconstruction.float(),
                images,
                boxes=boxes,
                predicted_latents={k: v.float() for k, v in predicted.items()},
                target_latents=targets,
            )
        optimizer_step(self.optimizer, self.scaler, total, parts)
        return parts, images, reconstruction.detach(), boxes

    # -- the run --------------------------------------------------------------------------------
    def save(self) -> Path | None:
        return self.run.save_checkpoint(
            self.encoder,
            self.step,
            optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict(),
            settings=self.settings.model_dump(mode="json"),
        )

    def fit(self) -> Path:
        settings = self.settings
        progress = Progress(
            settings.iterations, self.step, settings.progress and self.dist.is_main, "pre-training"
        )
        started, first_step = time.perf_counter(), self.step

        def one_step(step: int) -> StepOutput:
            parts, images, reconstruction, boxes = self.train_step(step)
            self.step = step + 1
            return StepOutput(parts, (images, reconstruction, boxes))

        def save(step: int) -> None:
            self.step = step
            self.save()

        def throughput(step: int) -> dict[str, float]:
            elapsed = time.perf_counter() - started
            rate = (step - first_step) * settings.batch_size * self.dist.world_size
            return {
                "time": round(elapsed, 3),
                "images_per_s": round(rate / max(elapsed, 1e-9), 3),
            }

        training_loop(
            command="train",
            run=self.run,
            step=self.step,
            settings=settings,
            train_step=one_step,
            save=save,
            save_images=lambda step, output: self.save_images(*output.images),
            progress=progress,
            is_main=self.dist.is_main,
            log_extra=throughput,
        )
        if self.dist.is_main:
            with finishing(self.run, "train"):
                self.run.save_encoder(self.encoder, self.step, settings)
                self.validate()
        self.dist.barrier()
        return self.run.path

    def save_images(self, images, reconstruction, boxes, count: int = 4) -> Path:
        n = min(count, images.shape[0])
        grid = comparison_grid(images[:n], reconstruction[:n], [b[:n] for b in boxes])
        return save_grid(grid, self.run.image_path(self.step), nrow=n)

    @torch.no_grad()
    def validate(self, batch_size: int = 16) -> dict[str, Any]:
        """Held-out seeds: the encoder's reconstructions next to decoding the average latent."""
        settings = self.settings
        self.encoder.eval()
        seeds = list(range(settings.val_seed_start, settings.val_seed_start + settings.val_samples))
        plan = validation_metric_plan(settings.loss.feature_weights)
        targets_all, encoded_all, baseline_all = [], [], []
        average = self.generator.average_latents(1)
        for start in range(0, len(seeds), batch_size):
            _, images = self.synthesize_batch(seeds[start : start + batch_size])
            encoded = self.generator.synthesize(self.encoder(images), **self.synthesis_options)
            mean = {k: v.expand(images.shape[0], *v.shape[1:]) for k, v in average.items()}
            baseline = self.generator.synthesize(mean, **self.synthesis_options)
            targets_all.append(images.cpu())
            encoded_all.append(encoded.cpu())
            baseline_all.append(baseline.cpu())
        target = torch.cat(targets_all)
        encoded, baseline = torch.cat(encoded_all), torch.cat(baseline_all)
        result = {
            "step": self.step,
            "val_seeds": [seeds[0], seeds[-1]],
            "encoder": reconstruction_metrics(encoded, target, plan),
            "average_latent_baseline": reconstruction_metrics(baseline, target, plan),
            "not_computed": plan.not_computed,
        }
        n = min(8, target.shape[0])
        save_grid(
            torch.cat([target[:n], encoded[:n], baseline[:n]]), self.run.path / "val.png", nrow=n
        )
        self.run.write_json("val.json", result)  # last: a run whose val.json is newest is done
        return result


def pretrain(settings: TrainSettings) -> Path:
    """Run (or resume) pre-training; returns the run directory."""
    return fit_and_close(Pretrainer(settings))
