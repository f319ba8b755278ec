"""Run directories: settings, versions, checkpoints, metrics, images.

Layout of a run::

    config.json  versions.json      resolved settings; ganenc, plugin and torch versions
    checkpoints/step-00001000.pt    encoder + optimizer + step + RNG states (every N steps)
    checkpoints/last.pt             the newest of them (what --resume reads)
    encoder.pt                      the final encoder (ganenc.load_encoder reads any of these)
    metrics.jsonl                   one JSON object per logged step
    images/step-00000500.png        target | reconstruction | crops
    val.json                        held-out metrics next to the average-latent baseline

Nothing is overwritten: a new run refuses a folder that already holds one.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError, GanencError
from ..files import atomic_path, check_output, write_json

CHECKPOINTS = "checkpoints"
LAST = "last.pt"


def default_run_dir(command: str, gan: str) -> Path:
    return Path("runs") / f"{command}-{gan}-{time.strftime('%Y%m%d-%H%M%S')}"


#: What a run folder holds before its first checkpoint (settings, logs, image grids).
STARTED_RUN_ENTRIES = {
    "config.json",
    "versions.json",
    "metrics.jsonl",
    "skipped.json",
    "val_before.json",
    CHECKPOINTS,
    "images",
}


class RunDirectory:
    """One run's folder; created fresh, or reopened with ``resume=True``.

    Nothing is written here when it is opened: the folder appears with the run's first
    file, after the command has validated everything.  A folder that holds no checkpoint
    is not a run (a start that failed or was killed early): a new run reuses it.
    """

    def __init__(self, path: str | os.PathLike, *, resume: bool, is_main: bool = True) -> None:
        self.path = Path(path)
        self.is_main = is_main
        if self.path.exists() and not self.path.is_dir():
            raise GanencError(f"--out {self.path} is a file, not a folder")
        # Only the main process judges the folder: the others see what it has just written.
        if resume:
            if not self.last_checkpoint.is_file():
                why = (
                    "; it holds no checkpoint (the run stopped before its first one): start it"
                    " again without --resume, the folder is reused"
                    if self.holds_no_checkpoint()
                    else ""
                )
                raise GanencError(
                    f"--resume: no run to resume at {self.path} (missing {self.last_checkpoint})"
                    + why
                )
        elif is_main and self.path.exists() and any(self.path.iterdir()):
            if not self.holds_no_checkpoint():
                raise GanencError(
                    f"{self.path} already holds files; use --resume to continue that run or"
                    " choose another --out (nothing was overwritten)"
                )
            self._clear_failed_start()
        if is_main:
            check_output(self.path, folder=True, force=True)

    def holds_no_checkpoint(self) -> bool:
        """Whether the folder holds only what a run writes before its first checkpoint."""
        if not self.path.is_dir():
            return False
        entries = {entry.name for entry in self.path.iterdir()}
        checkpoints = self.path / CHECKPOINTS
        saved = checkpoints.is_dir() and any(checkpoints.glob("*.pt"))
        return entries <= STARTED_RUN_ENTRIES and not saved

    def _clear_failed_start(self) -> None:
        """Drop the logs of a start that saved no checkpoint, so the new run's are its own."""
        import sys

        print(
            f"{self.path} holds no checkpoint (an earlier start stopped before its first one);"
            " reusing the folder",
            file=sys.stderr,
            flush=True,
        )
        for name in ("metrics.jsonl", "skipped.json", "val_before.json"):
            (self.path / name).unlink(missing_ok=True)
        for partial in (self.path / CHECKPOINTS).glob("*.tmp"):  # a kill while saving
            partial.unlink(missing_ok=True)

    @property
    def last_checkpoint(self) -> Path:
        return self.path / CHECKPOINTS / LAST

    def stored_config(self) -> dict[str, Any]:
        path = self.path / "config.json"
        if not path.is_file():
            raise GanencError(f"--resume: {path} is missing")
        return json.loads(path.read_text(encoding="utf-8"))

    def log(self, record: dict[str, Any]) -> None:
        if not self.is_main:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        with (self.path / "metrics.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def write_json(self, name: str, data: Any) -> Path:
        path = self.path / name
        if self.is_main:
            write_json(path, data)
        return path

    def save_checkpoint(self, encoder: Any, step: int, **state: Any) -> Path | None:
        """``checkpoints/step-N.pt`` and ``checkpoints/last.pt`` (atomic), main process only."""
        if not self.is_main:
            return None
        import shutil

        from ..encoders import save_encoder

        path = self.path / CHECKPOINTS / f"step-{step:08d}.pt"
        save_encoder(encoder, path, step=step, rng=capture_rng(), **state)
        with atomic_path(self.last_checkpoint) as tmp:
            shutil.copyfile(path, tmp)
        return path


def resume_settings(
    model: type, stored: dict[str, Any], given: dict[str, Any], changeable: set[str]
):
    """The stored settings of a run, with only ``changeable`` ones overridden."""
    from ..config import validate_options

    merged = dict(stored)
    changed = []
    for key, value in given.items():
        if value is None or key == "resume":
            continue
        if key in changeable:
            merged[key] = value
        elif json.dumps(value, default=str) != json.dumps(stored.get(key), default=str):
            changed.append(f"{key} ({stored.get(key)!r} -> {value!r})")
    if changed:
        raise ConfigError(
            "--resume continues a run with its stored settings; these cannot change: "
            + ", ".join(changed)
            + f" (changeable: {', '.join(sorted(changeable))})"
        )
    merged["resume"] = True
    return validate_options(model, merged, "resumed settings")


def capture_rng() -> dict[str, Any]:
    """RNG states of python and torch (CPU and CUDA) as plain data."""
    import torch

    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Restore :func:`capture_rng`'s states.

    torch takes RNG states only as CPU byte tensors: a checkpoint read with
    ``map_location="cuda"`` made resuming on a GPU fail ("RNG state must be a
    torch.ByteTensor"), so checkpoints are read onto the CPU and the states
    are moved there here as well.
    """
    import torch

    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
