"""Pieces every training loop shares: seeds, steps, progress, images, validation.

Nothing here knows a GAN family: the generator adapter, the encoder builder,
the cropper and the loss terms come from the registry.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections.abc import Iterator
from typing import Any

import torch

from ..adapters import GeneratorAdapter, Latents
from ..cropping import crop_and_resize
from ..errors import ConfigError, GanencError


class SeedSchedule:
    """Which latent seeds each step uses: a fresh permutation of the pool every epoch.

    A pure function of (step, rank): resuming at step N draws exactly the
    batch an uninterrupted run would have drawn.
    """

    def __init__(self, pool: int, batch_size: int, seed: int, world_size: int = 1) -> None:
        self.pool, self.batch_size, self.seed, self.world_size = pool, batch_size, seed, world_size
        self._cache: dict[int, torch.Tensor] = {}

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch not in self._cache:
            self._cache = {
                epoch: torch.randperm(self.pool, generator=_gen(self.seed * 100_003 + epoch))
            }
        return self._cache[epoch]

    def seeds(self, step: int, rank: int = 0) -> list[int]:
        global_batch = self.batch_size * self.world_size
        start = step * global_batch + rank * self.batch_size
        result = []
        for k in range(start, start + self.batch_size):
            result.append(int(self._permutation(k // self.pool)[k % self.pool]))
        return result


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def latents_for_seeds(generator: GeneratorAdapter, seeds: list[int], device: Any) -> Latents:
    """One latent per seed (so a sample depends on its seed only, not on the batch)."""
    parts = [generator.sample_latents(1, seed=s, device=device) for s in seeds]
    return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}


@torch.no_grad()
def synthesize_for_seeds(
    generator: GeneratorAdapter,
    seeds: list[int],
    device: Any,
    truncation: dict[str, Any],
    synthesis_options: dict[str, Any],
) -> tuple[Latents, torch.Tensor]:
    """Encoder targets and images of ``seeds``, as pre-training draws them (not clamped)."""
    latents = latents_for_seeds(generator, seeds, device)
    targets = generator.encoder_targets(latents, **truncation)
    return targets, generator.synthesize(targets, **synthesis_options)


class NonFiniteLossError(GanencError):
    """The loss became NaN or infinite; the step that would spoil the weights was not taken."""


def check_finite_loss(total: torch.Tensor) -> None:
    """Raise :class:`NonFiniteLossError` before a NaN/inf loss reaches the weights.

    The caller saves the (still good) weights and stops: training on would only make every
    later checkpoint NaN.  Costs no extra synchronisation where the loss is logged each step.
    """
    if not bool(torch.isfinite(total.detach()).all()):
        raise NonFiniteLossError(
            f"the loss became {float(total.detach())}; a smaller --lr or other loss weights"
            " may help"
        )


def autocast(device: torch.device, precision: str):
    """Mixed precision on CUDA; fp32 everywhere else (a clear error if asked otherwise)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type != "cuda":
        raise ConfigError(
            f"precision {precision!r} needs a CUDA device; use --precision fp32 on {device}"
        )
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def grad_scaler(device: torch.device, precision: str):
    return torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and precision == "fp16")


@contextlib.contextmanager
def interrupt_as_keyboard_interrupt() -> Iterator[None]:
    """SIGTERM (a cluster killing the job) behaves like Ctrl-C: checkpoint, then exit."""

    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Progress:
    """A rich progress bar with loss and it/s; silent when disabled (other ranks, tests)."""

    def __init__(self, total: int, start: int, enabled: bool, description: str) -> None:
        self.enabled = enabled
        self.started = time.perf_counter()
        self.start_step = start
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[rate]} it/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        self.task = self.bar.add_task(description, total=total, completed=start, loss="-", rate="-")
        self.bar.start()

    def update(self, step: int, loss: float) -> None:
        if not self.enabled:
            return
        rate = (step - self.start_step) / max(time.perf_counter() - self.started, 1e-9)
        self.bar.update(self.task, completed=step, loss=f"{loss:.4f}", rate=f"{rate:.2f}")

    def close(self) -> None:
        if self.enabled:
            self.bar.stop()


def comparison_grid(
    target: torch.Tensor, reconstruction: torch.Tensor, boxes: list[torch.Tensor] | None
):
    """Rows: target, reconstruction, then each attention crop of both (same boxes)."""
    rows = [target, reconstruction]
    for level in boxes or []:
        rows.append(crop_and_resize(target, level))
        rows.append(crop_and_resize(reconstruction, level))
    return torch.cat(rows)


def plain_metrics(parts: dict[str, torch.Tensor]) -> dict[str, float]:
    return {f"loss/{k}": float(v.detach()) for k, v in parts.items()}


@torch.no_grad()
def reconstruction_metrics(
    prediction: torch.Tensor, target: torch.Tensor, lpips_term: Any = None
) -> dict[str, float]:
    """Mean PSNR, SSIM, MSE (and LPIPS when a term with real weights is given)."""
    from .. import metrics

    result = {
        "psnr": _finite_mean(metrics.psnr(prediction, target)),
        "ssim": float(metrics.ssim(prediction, target).mean()),
        "mse": float(metrics.mse(prediction, target).mean()),
    }
    if lpips_term is not None:
        result["lpips"] = float(lpips_term(prediction.float(), target.float()))
    return result


def _finite_mean(values: torch.Tensor) -> float:
    """The mean PSNR: ``inf`` when some images are identical (their PSNR is), NaN stays NaN."""
    value = float(values.mean())
    return float("inf") if math.isinf(value) and value > 0 else value


def real_lpips_or_reason(feature_weights: str | None) -> tuple[Any, str | None]:
    """An LPIPS term with real VGG16 weights, or ``(None, why not)``."""
    import ganenc
    from ganenc.errors import GanencError
    from ganenc.features import resolve_weights_file

    if feature_weights == "random":
        return None, "LPIPS not reported: feature weights are random (smoke-test opt-in)"
    try:
        resolve_weights_file("vgg16", feature_weights, download=False)  # never download here
        term = ganenc.create("loss", "lpips", feature_weights=feature_weights)
    except GanencError as exc:
        return None, f"LPIPS not reported: {exc}"
    return term, None
