"""Run directories: settings, versions, checkpoints, metrics, images.

Layout of a run::

    config.json  versions.json      resolved settings; ganenc, plugin and torch versions
    checkpoints/step-00001000.pt    encoder + optimizer + step + RNG states (every N steps)
    checkpoints/last.pt             the newest of them (what --resume reads)
    encoder.pt                      the final encoder (ganenc.load_encoder reads any of these)
    metrics.jsonl                   one JSON object per logged step
    curves.png, tensorboard/        its curves (see ganenc.training.curves)
    images/step-00000500.png        target | reconstruction | crops
    val.json                        held-out metrics next to the average-latent baseline

Nothing is overwritten: a new run refuses a folder that already holds one.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError, GanencError
from ..files import atomic_path, check_output, write_json
from .curves import RunCurves

#: Run folders this process holds the lock of: real path -> the folder's open descriptor.
_HELD_LOCKS: dict[str, int] = {}

CHECKPOINTS = "checkpoints"
LAST = "last.pt"
CONFIG = "config.json"
#: The finished run's encoder (what --encoder RUN reads first).
ENCODER = "encoder.pt"
IMAGES = "images"


def default_run_dir(command: str, gan: str) -> Path:
    return Path("runs") / f"{command}-{gan}-{time.strftime('%Y%m%d-%H%M%S')}"


def stored_config(path: str | os.PathLike) -> dict[str, Any]:
    """The resolved settings a run recorded (``config.json``), for ``--resume``."""
    config = Path(path) / CONFIG
    if not config.is_file():
        raise GanencError(
            f"--resume: no run to resume at {path} (missing {config})" + no_checkpoint_hint(path)
        )
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise GanencError(f"--resume: {config} is not readable ({exc})") from None
    if not isinstance(data, dict):
        raise GanencError(f"--resume: {config} does not hold settings")
    return data


#: What a run folder holds before its first checkpoint (settings, logs, image grids).
STARTED_RUN_ENTRIES = {
    "config.json",
    "versions.json",
    "metrics.jsonl",
    "curves.png",
    "tensorboard",
    "skipped.json",
    "val_before.json",
    CHECKPOINTS,
    IMAGES,
}


def is_staging(entry: Path) -> bool:
    """Whether ``entry`` is a half-written file's folder (``files.atomic_path``), left by a kill."""
    return entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_dir()


def holds_no_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds only what a run writes before its first checkpoint: not a run."""
    path = Path(path)
    if not path.is_dir():
        return False
    entries = {entry.name for entry in path.iterdir() if not is_staging(entry)}
    checkpoints = path / CHECKPOINTS
    saved = checkpoints.is_dir() and any(checkpoints.glob("*.pt"))
    return entries <= STARTED_RUN_ENTRIES and not saved


def no_checkpoint_hint(path: str | os.PathLike) -> str:
    """The end of a --resume error about a folder that is not a run yet ('' otherwise)."""
    if not holds_no_checkpoint(path):
        return ""
    return (
        "; it holds no checkpoint (the run stopped before its first one): start it again"
        " without --resume, the folder is reused"
    )


class RunDirectory:
    """One run's folder; created fresh, or reopened with ``resume=True``.

    Nothing is written here when it is opened: the folder appears with the run's first
    file, after the command has validated everything.  A folder that holds no checkpoint
    is not a run (a start that failed or was killed early): a new run reuses it.
    """

    def __init__(self, path: str | os.PathLike, *, resume: bool, is_main: bool = True) -> None:
        self.path = Path(path)
        self.is_main = is_main
        self._locked: str | None = None
        if self.path.exists() and not self.path.is_dir():
            raise GanencError(f"--out {self.path} is a file, not a folder")
        if is_main and self.path.is_dir():  # before judging it: a live run's files are not litter
            self._hold_lock(keep=False)  # the run holds it from its first write (claim)
        # Only the main process judges the folder: the others see what it has just written.
        if resume:
            if not (self.path / CONFIG).is_file():
                raise GanencError(
                    f"--resume: no run to resume at {self.path} (missing {self.path / CONFIG})"
                    + no_checkpoint_hint(self.path)
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
            if resume:
                self._drop_staging()
        self.curves = RunCurves(self.path) if is_main else None

    def claim(self) -> Path:
        """Create the folder (the run's first write) and hold its lock while this process runs."""
        if self.is_main:
            self.path.mkdir(parents=True, exist_ok=True)
            self._hold_lock()
        return self.path

    def _hold_lock(self, keep: bool = True) -> None:
        """An exclusive lock on the folder itself, for this process's life (or :meth:`close`).

        ``keep=False`` only checks that no other process holds it.

        Two commands writing one ``--out`` interleaved their logs and checkpoints, and the
        second took the first's early files for a failed start's and deleted them.  The
        kernel drops the lock when the process ends, killed or not: no stale lock, no file.
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock
            return
        key = os.path.realpath(self.path)
        if key in _HELD_LOCKS:  # this process already holds it (the Python API, tests)
            return
        handle = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(handle)
            raise GanencError(
                f"another process is writing to {self.path} (a run started there is still"
                " going); wait for it to end, or choose another --out"
            ) from None
        if not keep:
            os.close(handle)  # closing the descriptor releases the lock
            return
        _HELD_LOCKS[key] = handle
        self._locked = key

    def _drop_staging(self) -> None:
        """Remove half-written files a kill left (their folders), here and in checkpoints/."""
        import shutil

        for folder in (self.path, self.path / CHECKPOINTS):
            if folder.is_dir():
                for entry in folder.iterdir():
                    if is_staging(entry):
                        shutil.rmtree(entry, ignore_errors=True)
        for partial in (self.path / CHECKPOINTS).glob("*.tmp"):  # earlier versions' staged files
            if partial.is_file():
                partial.unlink(missing_ok=True)

    def holds_no_checkpoint(self) -> bool:
        """Whether the folder holds only what a run writes before its first checkpoint."""
        return holds_no_checkpoint(self.path)

    def _clear_failed_start(self) -> None:
        """Drop the logs of a start that saved no checkpoint, so the new run's are its own."""
        import sys

        print(
            f"{self.path} holds no checkpoint (an earlier start stopped before its first one);"
            " reusing the folder",
            file=sys.stderr,
            flush=True,
        )
        for name in ("metrics.jsonl", "skipped.json", "val_before.json", "curves.png"):
            (self.path / name).unlink(missing_ok=True)
        self._drop_staging()  # a kill while saving

    @property
    def last_checkpoint(self) -> Path:
        return self.path / CHECKPOINTS / LAST

    def require_checkpoint(self) -> Path:
        """The checkpoint a step-based run resumes from, or a clear error."""
        if not self.last_checkpoint.is_file():
            raise GanencError(
                f"--resume: no run to resume at {self.path} (missing {self.last_checkpoint})"
                + no_checkpoint_hint(self.path)
            )
        return self.last_checkpoint

    def stored_config(self) -> dict[str, Any]:
        return stored_config(self.path)

    def restore(self, encoder: Any, optimizer: Any, scaler: Any, settings: Any) -> int:
        """Load the last checkpoint into encoder, optimizer and scaler and restore the RNG.

        Returns the checkpoint's step.  Read onto the CPU (see :func:`restore_rng`);
        ``load_state_dict`` moves weights and optimizer state to their device.  A run already
        past ``settings.iterations``, or finished at them (validated), is refused; otherwise ``config.json`` records the resumed
        settings (a longer ``--iterations``), so a later ``--resume`` goes on to the same end.
        """
        from ..encoders import read_encoder_checkpoint

        checkpoint = self.require_checkpoint()
        stored = self.stored_config()
        # settings made in Python (TrainSettings(resume=True, ...)) are checked as the command
        # line's are: only what a resume may change can differ from the run's
        resume_settings(
            type(settings),
            stored,
            settings.model_dump(mode="json"),
            changeable_on_resume(stored),
        )
        state = read_encoder_checkpoint(checkpoint)
        step = int(state["step"])
        if step == settings.iterations and self._validated_after(checkpoint):
            raise GanencError(
                f"--resume: the run in {self.path} finished at step {step} (val.json is written);"
                f" nothing to resume: pass --iterations above {step} to train further"
            )
        if step > settings.iterations:
            raise GanencError(
                f"--resume: the run in {self.path} is at step {step}, past the"
                f" {settings.iterations} iterations asked for; pass --iterations above {step}"
                " to train further"
            )
        encoder.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        restore_rng(state.get("rng", {}))
        self.write_json(CONFIG, settings.model_dump(mode="json"))
        self._forget_records_after(step)
        return step

    def _forget_records_after(self, step: int) -> None:
        """Drop ``metrics.jsonl`` records past ``step``: the resumed run logs those steps again."""
        metrics = self.path / "metrics.jsonl"
        if not (self.is_main and metrics.is_file()):
            return
        lines = metrics.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if _record_step(line) <= step]
        if kept != lines:
            with atomic_path(metrics) as staged:
                staged.write_text("".join(kept), encoding="utf-8")

    def _validated_after(self, checkpoint: Path) -> bool:
        """Whether the run's last act, validation, came after ``checkpoint`` was saved."""
        val = self.path / "val.json"
        return val.is_file() and val.stat().st_mtime >= checkpoint.stat().st_mtime

    def log(self, record: dict[str, Any]) -> None:
        if not self.is_main:
            return
        self.claim()
        with (self.path / "metrics.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        self.curves.log(record)

    def write_json(self, name: str, data: Any) -> Path:
        path = self.path / name
        if self.is_main:
            self.claim()
            write_json(path, data)
        return path

    def save_encoder(self, encoder: Any, step: int, settings: Any) -> Path:
        """The finished run's ``encoder.pt``, with the settings it was trained with."""
        from ..encoders import save_encoder

        return save_encoder(
            encoder, self.path / ENCODER, step=step, settings=settings.model_dump(mode="json")
        )

    def image_path(self, step: int) -> Path:
        """Where the sample grid of ``step`` goes (``images/step-00000500.png``)."""
        return self.path / IMAGES / f"step-{step:08d}.png"

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
        self.curves.refresh_if_due()
        return path

    def close(self) -> None:
        """The end of the run (finished, interrupted or failed): final curves, events closed."""
        if self.curves is not None:
            self.curves.close()
        key = self._locked
        if key is not None and key in _HELD_LOCKS:
            os.close(_HELD_LOCKS.pop(key))
            self._locked = None


def _record_step(line: str) -> float:
    """The step of a ``metrics.jsonl`` line; a line cut by a kill counts as past every step."""
    try:
        return float(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return math.inf


#: Settings a resumed run may change (everything else is fixed by the run).
RESUMABLE = frozenset(
    {"iterations", "device", "progress", "checkpoint_every", "image_every", "log_every"}
)


def changeable_on_resume(stored: dict[str, Any]) -> set[str]:
    """What a resume of the run that stored ``stored`` may change."""
    changeable = set(RESUMABLE)
    if stored.get("mode") == "per-image":  # iterations are each image's steps: a change would
        changeable.discard("iterations")  # give the images done and those to come different ones
    return changeable


def resume_settings(
    model: type,
    stored: dict[str, Any],
    given: dict[str, Any],
    changeable: set[str],
    config_file: str | os.PathLike | None = None,
):
    """The stored settings of a run, with only ``changeable`` ones overridden.

    The options given (and the ``config_file``'s) are resolved as a fresh start
    would resolve them, merged onto the stored ones (``--feature-weights`` alone
    is a part of ``loss``), and the RESOLVED settings are compared: repeating
    the command that started a run, with ``--resume`` added, always works.
    ``out`` is where the run is now (a relative, absolute or ``./`` path, or a
    copied or moved run folder), never compared.
    """
    import copy

    from ..config import deep_merge, read_config_file, validate_options

    foreign = sorted(set(stored) - set(model.model_fields))
    if foreign:  # another command's run (train's for finetune, or the reverse)
        raise ConfigError(
            f"--resume: the run in {given.get('out') or stored.get('out')} records settings"
            f" this command has not ({', '.join(map(repr, foreign[:3]))}): it is another"
            " command's run (resume it with the command that started it, 'ganenc train' or"
            " 'ganenc finetune') or another ganenc version's"
        )
    base = copy.deepcopy(stored)
    base["resume"] = True
    if given.get("out") is not None:
        base["out"] = given["out"]
    reference = validate_options(model, base, f"stored settings of the run ({base.get('out')})")
    merged = copy.deepcopy(base)
    if config_file is not None:
        deep_merge(merged, read_config_file(config_file))
    deep_merge(merged, {k: v for k, v in given.items() if k not in ("resume", "out")})
    resolved = validate_options(model, merged, "resumed settings")
    changed = []
    for key in model.model_fields:
        if key in changeable or key in ("resume", "out"):
            continue
        before, after = getattr(reference, key), getattr(resolved, key)
        if _comparable(before) != _comparable(after):
            changed.append(f"{key} ({_plain(before)!r} -> {_plain(after)!r})")
    if changed:
        raise ConfigError(
            "--resume continues a run with its stored settings; these cannot change: "
            + ", ".join(changed)
            + f" (changeable: {', '.join(sorted(changeable))})"
        )
    return resolved


def _plain(value: Any) -> Any:
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def _comparable(value: Any) -> Any:
    """A setting as compared on resume: paths made absolute, models as plain data."""
    if isinstance(value, Path):
        return os.path.abspath(value)
    return json.dumps(_plain(value), default=str, sort_keys=True)


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
