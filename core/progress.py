"""The progress bar of training, fine-tuning and inversion (rich), silent when disabled."""

from __future__ import annotations

import time


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
