"""Fine-tuning a pre-trained encoder on real images.

Real images have no latent targets, so the loss is the image loss with
attentions plus a latent cycle term and a small L2 on the latents::

    w1 = E(x);  x1 = G(w1);  w2 = E(x1)
    loss = image_loss(x1, x) + cycle_weight * latent_loss(w2, w1) + latent_l2 * mean(w1^2)

(the reference alternates an image step and a cycle step; we take one step on
their sum).  The generator stays frozen and accumulates no gradients.

Two modes:

``dataset``
    one encoder tuned on all images but a held-out split; ``val.json`` compares
    the held-out reconstructions before and after.
``per-image``
    the paper's: every image is tuned from the pre-trained encoder on its own
    (reference: lr 0.005, 1,500 iterations); the tuned latents and
    reconstructions are saved per image.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from ..config import write_run_metadata
from ..cropping import attention_boxes
from ..data import ImageSet, load_image
from ..encoder_runs import EncoderRun, encoder_file, encoder_generator, training_settings
from ..encoders import read_encoder_checkpoint
from ..errors import GanencError
from ..evaluation import (
    mean_metrics,
    per_image_metrics,
    reconstruction_metrics,
    validation_metric_plan,
)
from ..images import save_grid, save_image
from ..inversion import append_rows, check_distinct_stems, finished_rows
from ..latents import LATENTS_DIR, save_latent_file
from ..losses.composite import CompositeLoss, PreparedTarget
from ..losses.real_images import real_image_loss
from ..precision import NonFiniteLossError, autocast, grad_scaler, optimizer_step
from .distributed import DistributedContext
from .loop import (
    Progress,
    StepOutput,
    comparison_grid,
    finishing,
    fit_and_close,
    interrupt_as_keyboard_interrupt,
    run_interrupted,
    training_loop,
)
from .runs import RunDirectory, default_run_dir
from .settings import FinetuneSettings, GeneratorSpec
from .speed import SpeedOptions

logger = logging.getLogger(__name__)

#: Images in a per-image run's ``grid.png`` (the first ones; as ``ganenc invert``'s grid).
GRID_IMAGES = 32


def pretrained_context(settings: FinetuneSettings) -> tuple[dict, GeneratorSpec, dict]:
    """The encoder checkpoint, the generator it was trained for, and its training settings."""
    path = encoder_file(settings.encoder)
    payload = read_encoder_checkpoint(path)
    spec = encoder_generator(
        payload,
        settings.encoder,
        gan=settings.gan,
        checkpoint=settings.checkpoint,
        generator_options=settings.generator_options,
    )
    return payload, spec, training_settings(path, payload)


def open_encoder_run(settings: FinetuneSettings) -> EncoderRun:
    """The encoder run fine-tuning starts from, with the overrides of ``settings``."""
    # Deliberately alike: keyword arguments spelt out at a call; nothing to share
    return EncoderRun.open(
        settings.encoder,
        gan=settings.gan,
        checkpoint=settings.checkpoint,
        generator_options=settings.generator_options,
        loss=settings.loss,
        attention=settings.attention,
        cropper_options=settings.cropper_options,
    )


class Finetuner:
    """Fine-tunes on a folder of real images (``dataset`` or ``per-image`` mode)."""

    def __init__(self, settings: FinetuneSettings) -> None:
        self.dist = DistributedContext.from_env(settings.device)
        self.device = self.dist.device
        opened = open_encoder_run(settings)
        # config.json records the loss actually used (the training run's, with the overrides),
        # so a resumed run, whose stored settings are complete, uses the same one.
        settings = settings.model_copy(update={"loss": opened.loss_settings})
        self.settings = settings
        self.encoder_run = opened
        self.generator_spec = opened.generator_spec
        self.generator = opened.generator.to(self.device)
        torch.manual_seed(settings.seed + self.dist.rank)
        self.encoder = opened.encoder.to(self.device)
        self.speed = SpeedOptions.from_settings(settings)
        self.speed.prepare_generator(self.generator)
        self.model = self.speed.compiled(self.speed.prepare_encoder(self.encoder))
        autocast(self.device, settings.precision)  # fp16/bf16 without CUDA: fail now
        self.scaler = grad_scaler(self.device, settings.precision)
        self.encoder.ganenc_meta["generator"] = self.generator_spec.record()
        self.synthesis_options = opened.synthesis_options
        self.initial_state = {k: v.detach().clone() for k, v in self.encoder.state_dict().items()}
        self.images = ImageSet(settings.images, self.generator.resolution)
        self.names, self.skipped = self.images.names, self.images.skipped
        if settings.mode == "per-image":  # before the run folder: a failed start leaves nothing
            check_distinct_stems(self.names)
        out = settings.out or default_run_dir("finetune", self.generator_spec.gan)
        self.run = RunDirectory(out, resume=settings.resume, is_main=self.dist.is_main)
        self.loss = CompositeLoss(opened.loss_settings).to(self.device).requires_grad_(False)
        self.cropper = opened.build_cropper()
        self.metric_plan = validation_metric_plan(opened.loss_settings.feature_weights)
        if self.skipped and self.dist.is_main:
            self.run.write_json("skipped.json", self.skipped)
        if not settings.resume and self.dist.is_main:
            write_run_metadata(self.run.claim(), settings)

    # -- the loss -------------------------------------------------------------------------------
    def losses(
        self, encoder: Any, images: torch.Tensor, target: PreparedTarget | None = None
    ) -> tuple[torch.Tensor, dict, torch.Tensor]:
        """The real-image loss; ``target``: ``images`` prepared once (per-image mode)."""
        if target is None:
            boxes = attention_boxes(self.cropper, images) if self.cropper is not None else []
        else:
            boxes = target.boxes
        with autocast(self.device, self.settings.precision):
            return real_image_loss(
                encoder,
                self.generator,
                self.loss,
                images,
                boxes,
                cycle_weight=self.settings.cycle_weight,
                latent_l2=self.settings.latent_l2,
                synthesis_options=self.synthesis_options,
                target=target,
                speed=self.speed,
            )

    def optimizer_step(
        self, optimizer: torch.optim.Optimizer, total: torch.Tensor, parts: dict | None = None
    ) -> None:
        """Backward and optimizer step (loss scaling under fp16)."""
        optimizer_step(optimizer, self.scaler, total, parts)

    def optimizer(self) -> torch.optim.Optimizer:
        opt = self.settings.optimizer
        return torch.optim.Adam(self.encoder.parameters(), lr=opt.lr, betas=opt.betas, eps=opt.eps)

    @torch.no_grad()
    def held_out_metrics(
        self, indices: list[int], shown: int = 8, batch_size: int = 8
    ) -> tuple[dict, torch.Tensor]:
        """Mean metrics of the encoder's reconstructions of ``images[indices]``, batch by batch.

        Returns the metrics and ``[originals | reconstructions]`` of the first ``shown``.
        """
        self.encoder.eval()
        rows, grid = [], []
        for start in range(0, len(indices), batch_size):
            images = self.images[indices[start : start + batch_size]]
            predicted = self.encoder(images.to(self.device))
            recon = self.generator.synthesize(predicted, **self.synthesis_options).cpu()
            rows.extend(per_image_metrics(recon, images, self.metric_plan.lpips_term))
            if start < shown:
                grid.append((images, recon))
        originals = torch.cat([g[0] for g in grid])[:shown]
        recons = torch.cat([g[1] for g in grid])[:shown]
        return mean_metrics(rows, self.metric_plan), torch.cat([originals, recons])

    # -- dataset mode -----------------------------------------------------------------------------
    def split(self) -> tuple[list[int], list[int]]:
        n = len(self.names)
        order = torch.randperm(
            n, generator=torch.Generator().manual_seed(self.settings.seed)
        ).tolist()
        held = round(n * self.settings.held_out)
        if self.settings.held_out > 0 and n >= 2:
            held = min(max(held, 1), n - 1)
        return sorted(order[held:]), sorted(order[:held])

    def fit_dataset(self) -> Path:
        settings = self.settings
        train, held_out = self.split()
        if settings.batch_size > len(train) and self.dist.is_main:
            logger.warning(
                "%d training image(s): batches hold %d, not --batch-size %d",
                len(train),
                len(train),
                settings.batch_size,
            )
        optimizer = self.optimizer()
        step = 0
        if settings.resume:
            step = self.run.restore(self.encoder, optimizer, self.scaler, settings)
        evaluated = held_out or train
        before = None
        if not settings.resume:
            before, _ = self.held_out_metrics(evaluated)
            self.run.write_json("val_before.json", before)
        progress = Progress(
            settings.iterations, step, settings.progress and self.dist.is_main, "fine-tuning"
        )

        def save(step: int) -> None:
            self.run.save_checkpoint(
                self.encoder,
                step,
                optimizer=optimizer.state_dict(),
                scaler=self.scaler.state_dict(),
                settings=settings.model_dump(mode="json"),
            )

        def one_step(step: int) -> StepOutput:
            picks = torch.randint(
                len(train),
                (min(settings.batch_size, len(train)),),
                generator=torch.Generator().manual_seed(settings.seed * 1_000_003 + step),
            )
            batch = self.images[[train[i] for i in picks.tolist()]].to(self.device)
            self.encoder.train()
            total, parts, reconstruction = self.losses(self.model, batch)
            self.optimizer_step(optimizer, total, parts)
            return StepOutput(parts, (batch, reconstruction.detach()))

        def save_images(step: int, output: StepOutput) -> None:
            batch, reconstruction = output.images
            n = min(4, batch.shape[0])
            grid = comparison_grid(batch[:n], reconstruction[:n], None)
            save_grid(grid, self.run.image_path(step), nrow=n)

        step = training_loop(
            command="finetune",
            run=self.run,
            step=step,
            settings=settings,
            train_step=one_step,
            save=save,
            save_images=save_images,
            progress=progress,
            is_main=self.dist.is_main,
        )
        with finishing(self.run, "finetune"):
            self.run.save_encoder(self.encoder, step, settings)
            after, shown = self.held_out_metrics(evaluated)
            if before is None and (self.run.path / "val_before.json").is_file():
                before = json.loads((self.run.path / "val_before.json").read_text())
            save_grid(shown, self.run.path / "val.png", nrow=min(8, len(evaluated)))
            self.run.write_json(  # last: a run whose val.json is newest is finished
                "val.json",
                {
                    "images": [self.names[i] for i in evaluated],
                    "evaluated_on": "held-out images"
                    if held_out
                    else "training images (no held-out split)",
                    "before": before,
                    "after": after,
                    "not_computed": self.metric_plan.not_computed,
                },
            )
        return self.run.path

    # -- per-image mode ---------------------------------------------------------------------------
    def inverter(self):
        """The :class:`~ganenc.inversion.Inverter` whose per-image fine-tuning this mode runs.

        One implementation for ``finetune --mode per-image`` and ``invert --refine
        finetune``: the same image and settings give the same latents.
        """
        from ..inversion import Inverter

        opt = self.settings.optimizer
        # Deliberately alike: keyword arguments spelt out at a call; nothing to share
        return Inverter(
            self.encoder,
            self.generator,
            loss=self.loss,
            cropper=self.cropper,
            device=self.device,
            synthesis_options=self.synthesis_options,
            finetune_lr=opt.lr,
            finetune_betas=opt.betas,
            finetune_eps=opt.eps,
            cycle_weight=self.settings.cycle_weight,
            latent_l2=self.settings.latent_l2,
            generator_spec=self.generator_spec.record(),
            encoder_path=str(self.encoder_run.path),
            seed=self.settings.seed,
            speed=self.speed,
        )

    def fit_per_image(self) -> Path:
        settings = self.settings
        latents_dir = self.run.path / LATENTS_DIR
        recon_dir = self.run.path / "reconstructions"
        latents_dir.mkdir(parents=True, exist_ok=True)
        recon_dir.mkdir(parents=True, exist_ok=True)
        inverter = self.inverter()
        progress = Progress(
            settings.iterations * len(self.names),
            0,
            settings.progress and self.dist.is_main,
            "per-image fine-tuning",
        )
        metrics_csv = self.run.path / "metrics.csv"
        # a row is written last, so a row means the image's files are complete (also after
        # a kill); an image whose latents were written but not its row is done again
        done = finished_rows(metrics_csv)
        try:
            with interrupt_as_keyboard_interrupt():
                for index, name in enumerate(self.names):
                    stem = Path(name).stem
                    if name in done:
                        continue
                    image = self.images[index : index + 1]
                    before = inverter.invert(image)
                    losses: list[torch.Tensor] = []

                    def report(step, loss, index=index, losses=losses):
                        if not losses:
                            losses.append(loss)
                        progress.update(index * settings.iterations + step, float(loss))

                    after = inverter.invert(
                        image, refine="finetune", steps=settings.iterations, progress=report
                    )
                    save_latent_file(
                        latents_dir / f"{stem}.pt",
                        after.latents,
                        image=name,
                        gan=self.generator_spec.gan,
                        generator=inverter.generator_spec,
                        encoder=inverter.encoder_path,
                        refine=after.refine,
                        steps=after.steps,
                        synthesis_options=inverter.synthesis_options,
                    )
                    save_image(after.reconstructions[0], recon_dir / f"{stem}.png")
                    metrics_before = reconstruction_metrics(
                        before.reconstructions, image, self.metric_plan
                    )
                    metrics_after = reconstruction_metrics(
                        after.reconstructions, image, self.metric_plan
                    )
                    row = {
                        "image": name,
                        "first_loss": float(losses[0]),
                        "final_loss": after.final_losses[0],
                        **{f"{k}_before": v for k, v in metrics_before.items()},
                        **{f"{k}_after": v for k, v in metrics_after.items()},
                    }
                    append_rows(metrics_csv, [row])
        except NonFiniteLossError as exc:
            progress.close()
            raise GanencError(
                f"stopped: {exc}. Finished images are saved in {latents_dir}"
            ) from None
        except KeyboardInterrupt:
            progress.close()
            raise run_interrupted(
                f"; finished images are saved in {latents_dir}",
                f"finetune --mode per-image --resume --out {self.run.path}",
            ) from None
        progress.close()
        if self.metric_plan.not_computed:  # the empty metrics.csv columns, explained
            self.run.write_json("not_computed.json", self.metric_plan.not_computed)
        n = min(len(self.names), GRID_IMAGES)
        recon = torch.stack(
            [
                load_image(recon_dir / f"{Path(name).stem}.png", self.generator.resolution)
                for name in self.names[:n]
            ]
        )
        save_grid(torch.cat([self.images[:n], recon]), self.run.path / "grid.png", nrow=min(n, 8))
        return self.run.path

    def fit(self) -> Path:
        if self.settings.mode == "per-image":
            return self.fit_per_image()
        return self.fit_dataset()


def finetune(settings: FinetuneSettings) -> Path:
    """Run (or resume) fine-tuning; returns the run directory."""
    return fit_and_close(Finetuner(settings))
