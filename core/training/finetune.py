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

import csv
import json
from pathlib import Path
from typing import Any

import torch

import ganenc

from ..config import write_run_metadata
from ..cropping import attention_boxes
from ..data import load_image_folder
from ..encoders import read_encoder_checkpoint, save_encoder
from ..errors import GanencError
from ..images import save_grid, save_image
from ..losses.composite import CompositeLoss, PreparedTarget
from ..losses.options import LossSettings
from .distributed import DistributedContext
from .loop import (
    NonFiniteLossError,
    Progress,
    autocast,
    check_finite_loss,
    comparison_grid,
    grad_scaler,
    interrupt_as_keyboard_interrupt,
    plain_metrics,
    reconstruction_metrics,
)
from .pretrain import build_cropper, training_truncation
from .runs import RunDirectory, default_run_dir, restore_rng
from .settings import FinetuneSettings, GeneratorSpec
from .speed import SpeedOptions


def real_image_loss(
    encoder: Any,
    generator: Any,
    loss: CompositeLoss,
    images: torch.Tensor,
    boxes: list[torch.Tensor],
    *,
    cycle_weight: float,
    latent_l2: float,
    synthesis_options: dict | None = None,
    target: PreparedTarget | None = None,
    speed: SpeedOptions | None = None,
) -> tuple[torch.Tensor, dict, torch.Tensor]:
    """The loss on real images: attentions, latent cycle and L2 (fine-tuning and inversion share it).

    ``w1 = E(x)``, ``x1 = G(w1)``, ``w2 = E(x1)``: image loss of ``x1`` against
    ``x`` + ``cycle_weight`` x latent loss of ``w2`` against ``w1`` (already
    scaled by ``loss.settings.latent_scale``) + ``latent_l2`` x mean(w1^2).
    ``target``: ``images`` prepared once by ``loss.prepare_target`` (with the
    boxes), for a target that stays the same over many steps; ``speed``: the
    run's layout and checkpointing options.
    """
    speed = speed or SpeedOptions()
    w1 = encoder(speed.images(images))
    reconstruction = speed.synthesize(generator, w1, synthesis_options)
    if target is not None:
        total, parts = loss(reconstruction.float(), target)
    else:
        total, parts = loss(reconstruction.float(), images, boxes=boxes)
    w2 = encoder(speed.images(reconstruction))
    w1 = {k: v.float() for k, v in w1.items()}
    cycle, cycle_parts = loss.latent_loss({k: v.float() for k, v in w2.items()}, w1)
    l2 = sum(value.pow(2).mean() for value in w1.values())
    total = total + cycle_weight * cycle + latent_l2 * l2
    parts.update({f"cycle/{k}": v for k, v in cycle_parts.items()})
    parts["latent_l2"] = l2
    parts["total"] = total
    return total, parts, reconstruction


def encoder_file(path: str | Path) -> Path:
    """A run directory's encoder (``encoder.pt``, else its last checkpoint), or the file itself."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "encoder.pt", path / "checkpoints" / "last.pt"):
            if candidate.is_file():
                return candidate
        raise GanencError(f"{path} holds no encoder (no encoder.pt or checkpoints/last.pt)")
    if not path.exists():
        raise GanencError(f"encoder not found: {path}")
    return path


def pretrained_context(settings: FinetuneSettings) -> tuple[dict, GeneratorSpec, dict]:
    """The encoder checkpoint, the generator it was trained for, and its training settings."""
    payload = read_encoder_checkpoint(encoder_file(settings.encoder))
    stored = payload.get("generator") or {}
    if settings.gan is not None and settings.gan != stored.get("gan"):
        stored = {}  # another family: the recorded file and options do not apply
    gan = settings.gan or stored.get("gan")
    if gan is None:
        raise GanencError(
            f"{settings.encoder} does not record its generator; pass --gan and --checkpoint"
        )
    spec = GeneratorSpec(
        gan=gan,
        checkpoint=settings.checkpoint or stored.get("checkpoint", "random"),
        generator_options=(
            settings.generator_options
            if settings.generator_options is not None
            else stored.get("generator_options", {})
        ),
    )
    return payload, spec, payload.get("settings") or {}


class Finetuner:
    """Fine-tunes on a folder of real images (``dataset`` or ``per-image`` mode)."""

    def __init__(self, settings: FinetuneSettings) -> None:
        self.settings = settings
        self.dist = DistributedContext.from_env(settings.device)
        self.device = self.dist.device
        payload, self.generator_spec, trained_with = pretrained_context(settings)
        self.generator = self.generator_spec.load().to(self.device)
        geometry = self.generator.geometry().to_dict()
        if payload["geometry"] != geometry:
            raise GanencError(
                f"the encoder was trained for {_describe(payload['geometry'])}, but the generator"
                f" is {_describe(geometry)}; use an encoder trained for this generator"
            )
        torch.manual_seed(settings.seed + self.dist.rank)
        self.encoder = ganenc.load_encoder(encoder_file(settings.encoder)).to(self.device)
        self.speed = SpeedOptions.from_settings(settings)
        self.speed.prepare_generator(self.generator)
        self.model = self.speed.compiled(self.speed.prepare_encoder(self.encoder))
        autocast(self.device, settings.precision)  # fp16/bf16 without CUDA: fail now
        self.scaler = grad_scaler(self.device, settings.precision)
        self.encoder.ganenc_meta["generator"] = self.generator_spec.model_dump()
        truncation = training_truncation(
            self.generator, trained_with.get("truncation"), trained_with.get("truncation_layers")
        )
        self.synthesis_options = self.generator.synthesis_options(**truncation)
        self.initial_state = {k: v.detach().clone() for k, v in self.encoder.state_dict().items()}
        folder = load_image_folder(settings.images, self.generator.resolution)
        self.images, self.names, self.skipped = folder.images, folder.names, folder.skipped
        out = settings.out or default_run_dir("finetune", self.generator_spec.gan)
        self.run = RunDirectory(out, resume=settings.resume, is_main=self.dist.is_main)
        loss_settings = settings.loss or LossSettings.model_validate(trained_with.get("loss", {}))
        self.loss = CompositeLoss(loss_settings).to(self.device).requires_grad_(False)
        attention = settings.attention or trained_with.get("attention", "center")
        crop_options = settings.cropper_options
        if crop_options is None:
            crop_options = trained_with.get("cropper_options", {})
        self.cropper = build_cropper(attention, crop_options, loss_settings.feature_weights)
        if self.skipped and self.dist.is_main:
            self.run.write_json("skipped.json", self.skipped)
        if not settings.resume and self.dist.is_main:
            write_run_metadata(self.run.path, settings)

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

    def optimizer_step(self, optimizer: torch.optim.Optimizer, total: torch.Tensor) -> None:
        """Backward and optimizer step (loss scaling under fp16); never on a NaN/inf loss."""
        check_finite_loss(total)
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

    def optimizer(self) -> torch.optim.Optimizer:
        opt = self.settings.optimizer
        return torch.optim.Adam(self.encoder.parameters(), lr=opt.lr, betas=opt.betas, eps=opt.eps)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor, batch_size: int = 8) -> tuple[torch.Tensor, dict]:
        self.encoder.eval()
        outputs, latents = [], []
        for start in range(0, images.shape[0], batch_size):
            chunk = images[start : start + batch_size].to(self.device)
            predicted = self.encoder(chunk)
            outputs.append(self.generator.synthesize(predicted, **self.synthesis_options).cpu())
            latents.append({k: v.cpu() for k, v in predicted.items()})
        merged = {k: torch.cat([part[k] for part in latents]) for k in latents[0]}
        return torch.cat(outputs), merged

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
        optimizer = self.optimizer()
        step = 0
        if settings.resume:
            state = read_encoder_checkpoint(self.run.last_checkpoint)  # CPU: see restore_rng
            self.encoder.load_state_dict(state["state_dict"])
            optimizer.load_state_dict(state["optimizer"])
            step = int(state["step"])
            restore_rng(state.get("rng", {}))
        evaluated = held_out or train
        before = None
        if not settings.resume:
            recon, _ = self.reconstruct(self.images[evaluated])
            before = reconstruction_metrics(recon, self.images[evaluated])
            self.run.write_json("val_before.json", before)
        train_images = self.images[train]
        progress = Progress(
            settings.iterations, step, settings.progress and self.dist.is_main, "fine-tuning"
        )

        def save():
            self.run.save_checkpoint(
                self.encoder,
                step,
                optimizer=optimizer.state_dict(),
                settings=settings.model_dump(mode="json"),
            )

        try:
            with interrupt_as_keyboard_interrupt():
                while step < settings.iterations:
                    picks = torch.randint(
                        len(train),
                        (min(settings.batch_size, len(train)),),
                        generator=torch.Generator().manual_seed(settings.seed * 1_000_003 + step),
                    )
                    batch = train_images[picks].to(self.device)
                    self.encoder.train()
                    total, parts, reconstruction = self.losses(self.model, batch)
                    self.optimizer_step(optimizer, total)
                    step += 1
                    progress.update(step, float(total.detach()))
                    if step % settings.log_every == 0 or step == settings.iterations:
                        self.run.log({"step": step, **plain_metrics(parts)})
                    if step % settings.image_every == 0 and self.dist.is_main:
                        n = min(4, batch.shape[0])
                        grid = comparison_grid(batch[:n], reconstruction[:n].detach(), None)
                        save_grid(grid, self.run.path / "images" / f"step-{step:08d}.png", nrow=n)
                    if step % settings.checkpoint_every == 0:
                        save()
        except NonFiniteLossError as exc:
            progress.close()
            save()
            raise GanencError(
                f"stopped at step {step + 1}: {exc}. The last good state (step {step}) is saved"
                f" in {self.run.last_checkpoint}"
            ) from None
        except KeyboardInterrupt:
            progress.close()
            save()
            raise GanencError(
                f"interrupted at step {step}; checkpoint saved. Continue with:"
                f" ganenc finetune --resume --out {self.run.path}"
            ) from None
        progress.close()
        save()
        save_encoder(
            self.encoder,
            self.run.path / "encoder.pt",
            step=step,
            settings=settings.model_dump(mode="json"),
        )
        recon, _ = self.reconstruct(self.images[evaluated])
        after = reconstruction_metrics(recon, self.images[evaluated])
        if before is None and (self.run.path / "val_before.json").is_file():
            before = json.loads((self.run.path / "val_before.json").read_text())
        self.run.write_json(
            "val.json",
            {
                "images": [self.names[i] for i in evaluated],
                "evaluated_on": "held-out images"
                if held_out
                else "training images (no held-out split)",
                "before": before,
                "after": after,
            },
        )
        n = min(8, len(evaluated))
        save_grid(
            torch.cat([self.images[evaluated][:n], recon[:n]]), self.run.path / "val.png", nrow=n
        )
        return self.run.path

    # -- per-image mode ---------------------------------------------------------------------------
    def fit_per_image(self) -> Path:
        settings = self.settings
        latents_dir = self.run.path / "latents"
        recon_dir = self.run.path / "reconstructions"
        latents_dir.mkdir(parents=True, exist_ok=True)
        recon_dir.mkdir(parents=True, exist_ok=True)
        progress = Progress(
            settings.iterations * len(self.names),
            0,
            settings.progress and self.dist.is_main,
            "per-image fine-tuning",
        )
        rows = []
        try:
            with interrupt_as_keyboard_interrupt():
                for index, name in enumerate(self.names):
                    stem = Path(name).stem
                    if (latents_dir / f"{stem}.pt").is_file():  # done before an interruption
                        continue
                    self.encoder.load_state_dict(self.initial_state)
                    image = self.images[index : index + 1].to(self.device)
                    before, _ = self.reconstruct(image)
                    optimizer = self.optimizer()
                    # The image, its crops and their LPIPS features are the same every step.
                    target = self.loss.prepare_target(image, cropper=self.cropper)
                    first_loss = None
                    for step in range(settings.iterations):
                        self.encoder.train()
                        total, _, _ = self.losses(self.model, image, target)
                        self.optimizer_step(optimizer, total)
                        first_loss = float(total.detach()) if first_loss is None else first_loss
                        progress.update(
                            index * settings.iterations + step + 1, float(total.detach())
                        )
                    after, latents = self.reconstruct(image)
                    torch.save(
                        {"latents": latents, "image": name, "gan": self.generator_spec.gan},
                        latents_dir / f"{stem}.pt",
                    )
                    save_image(after[0], recon_dir / f"{stem}.png")
                    metrics_before = reconstruction_metrics(before, image.cpu())
                    metrics_after = reconstruction_metrics(after, image.cpu())
                    rows.append(
                        {
                            "image": name,
                            "first_loss": first_loss,
                            "final_loss": float(total.detach()),
                            **{f"{k}_before": v for k, v in metrics_before.items()},
                            **{f"{k}_after": v for k, v in metrics_after.items()},
                        }
                    )
        except NonFiniteLossError as exc:
            progress.close()
            self._write_rows(rows)
            raise GanencError(
                f"stopped: {exc}. Finished images are saved in {latents_dir}"
            ) from None
        except KeyboardInterrupt:
            progress.close()
            self._write_rows(rows)
            raise GanencError(
                f"interrupted; finished images are saved in {latents_dir}. Continue with:"
                f" ganenc finetune --mode per-image --resume --out {self.run.path}"
            ) from None
        progress.close()
        self._write_rows(rows)
        recon = torch.stack(
            [
                _read_png(recon_dir / f"{Path(n).stem}.png", self.generator.resolution)
                for n in self.names
            ]
        )
        n = len(self.names)
        save_grid(torch.cat([self.images, recon]), self.run.path / "grid.png", nrow=min(n, 8))
        return self.run.path

    def _write_rows(self, rows: list[dict]) -> None:
        if not rows:
            return
        path = self.run.path / "metrics.csv"
        exists = path.is_file()
        with path.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            if not exists:
                writer.writeheader()
            writer.writerows(rows)

    def fit(self) -> Path:
        if self.settings.mode == "per-image":
            return self.fit_per_image()
        return self.fit_dataset()


def _read_png(path: Path, resolution: int) -> torch.Tensor:
    from ..data import load_image

    return load_image(path, resolution)


def _describe(geometry: dict) -> str:
    return f"{geometry['family']} at {geometry['resolution']} px {geometry['encoder_latents']}"


def finetune(settings: FinetuneSettings) -> Path:
    """Run (or resume) fine-tuning; returns the run directory."""
    tuner = Finetuner(settings)
    try:
        return tuner.fit()
    finally:
        tuner.dist.close()
