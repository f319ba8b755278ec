"""Pieces every training loop shares: seeds, steps, progress, images, validation.

Nothing here knows a GAN family: the generator adapter, the encoder builder,
the cropper and the loss terms come from the registry.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from ..adapters import GeneratorAdapter, Latents
from ..cropping import crop_and_resize
from ..errors import GanencError, RunInterrupted, run_interrupted  # noqa: F401 - shared by every command
from ..evaluation import (  # noqa: F401 - their names here before evaluation.py held them
    lpips_or_reason as real_lpips_or_reason,
)
from ..evaluation import reconstruction_metrics  # noqa: F401
from ..precision import NonFiniteLossError, autocast, grad_scaler, optimizer_step  # noqa: F401 - old home
from ..progress import Progress  # noqa: F401 - its old home


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


class StepBoundaryInterrupt:
    """Ctrl-C and SIGTERM stop a training loop at the next step boundary, not inside a step.

    The first signal only sets :attr:`requested`; the loop finishes its step and
    checkpoints there, so the checkpoint's weights, optimizer and RNG states
    are those of a step boundary and resuming equals not stopping, bit for bit.
    A second Ctrl-C stops at once (``KeyboardInterrupt``).
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum, frame) -> None:  # noqa: ARG002
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StepBoundaryInterrupt:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._handler)
            except ValueError:  # not the main thread: signals stay as they are
                break
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()


@dataclass
class StepOutput:
    """What one training step returns to the loop: its loss parts and what its image draws."""

    parts: dict[str, torch.Tensor]  # "total" among them
    images: Any = None


def training_loop(
    *,
    command: str,
    run: Any,
    step: int,
    settings: Any,
    train_step: Callable[[int], StepOutput],
    save: Callable[[int], Any],
    save_images: Callable[[int, StepOutput], Any],
    progress: Progress,
    is_main: bool = True,
    log_extra: Callable[[int], dict[str, Any]] | None = None,
) -> int:
    """The loop of ``train`` and dataset ``finetune``: steps, intervals, interrupts, last save.

    ``settings`` gives ``iterations``, ``log_every``, ``image_every`` and
    ``checkpoint_every``; ``save(step)`` writes a checkpoint.  Returns the
    final step, after its checkpoint; on Ctrl-C or SIGTERM saves at the step
    boundary and raises a :class:`RunInterrupted` that says how to resume.
    """
    with StepBoundaryInterrupt() as interrupt:
        try:
            while step < settings.iterations:
                output = train_step(step)
                step += 1
                progress.update(step, float(output.parts["total"].detach()))
                if step % settings.log_every == 0 or step == settings.iterations:
                    extra = log_extra(step) if log_extra is not None else {}
                    run.log({"step": step, **extra, **plain_metrics(output.parts)})
                if step % settings.image_every == 0 and is_main:
                    save_images(step, output)
                if step % settings.checkpoint_every == 0:
                    save(step)
                if interrupt.requested:
                    raise KeyboardInterrupt
        except NonFiniteLossError as exc:  # the weights are still those of ``step``
            progress.close()
            save(step)
            reason = str(exc)
            if step == 0:  # no weight has moved yet: the learning rate cannot be the cause
                reason = reason.partition(";")[0] + " before any weight changed: a loss term or"
                reason += " the images give NaN or infinity, not the learning rate"
            raise GanencError(
                f"stopped at step {step + 1}: {reason}. The last good state (step {step}) is saved"
                f" in {run.last_checkpoint}"
            ) from None
        except KeyboardInterrupt:
            progress.close()
            save(step)
            raise run_interrupted(
                f" at step {step}; checkpoint saved in {run.last_checkpoint}",
                f"{command} --resume --out {run.path}",
            ) from None
    progress.close()
    save(step)
    return step


@contextlib.contextmanager
def finishing(run: Any, command: str) -> Iterator[None]:
    """The end of a run after its last step (final encoder, validation): Ctrl-C there says
    how to finish it (``--resume`` redoes only this part), not click's bare "Aborted!"."""
    try:
        yield
    except KeyboardInterrupt:
        raise run_interrupted(
            " after the last step, before the run was finished (final encoder and validation)",
            f"{command} --resume --out {run.path}",
        ) from None


def fit_and_close(trainer: Any) -> Any:
    """``trainer.fit()`` (its run directory), closing the run and the process group whatever happens.

    The end of ``train`` (:class:`~ganenc.training.pretrain.Pretrainer`) and of
    ``finetune`` (:class:`~ganenc.training.finetune.Finetuner`).
    """
    try:
        return trainer.fit()
    finally:
        trainer.run.close()
        trainer.dist.close()


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
