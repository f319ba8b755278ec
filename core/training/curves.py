"""Training curves a person can look at: ``curves.png`` and, when installed, TensorBoard events.

:class:`RunDirectory` hands every record it appends to ``metrics.jsonl`` to
:class:`RunCurves` (the one place a run logs metrics), so pre-training and
fine-tuning get both without code of their own:

- ``curves.png`` (next to ``metrics.jsonl``) is redrawn from ``metrics.jsonl``
  on a logged step or a checkpoint at most every :data:`REDRAW_SECONDS`, and
  always when the run ends (also on an interruption or an error).  matplotlib
  draws it (Agg, no display needed).
- ``tensorboard/`` holds event files (``torch.utils.tensorboard``) when the
  optional ``tensorboard`` package is installed (``pip install
  ganenc[tensorboard]``); without it nothing is imported and nothing fails.

Drawing or event writing that fails is reported once as a warning; it never
stops training.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from ..files import atomic_path

logger = logging.getLogger(__name__)

CURVES_FILE = "curves.png"
TENSORBOARD_DIR = "tensorboard"
#: Between checkpoints the plot is redrawn on a logged step at most this often.
REDRAW_SECONDS = 60.0
#: Record fields that are not curves.
_NOT_CURVES = {"step", "time"}


def summary_writer_class() -> Any:
    """torch's TensorBoard ``SummaryWriter``, or ``None`` when ``tensorboard`` is not installed."""
    try:
        if importlib.util.find_spec("tensorboard") is None:
            return None
        from torch.utils.tensorboard import SummaryWriter
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return None
    return SummaryWriter


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl``, one per step (after a resume, the newest wins)."""
    by_step: dict[int, dict[str, Any]] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:  # a line cut short by a crash
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            by_step[record["step"]] = record
    return [by_step[step] for step in sorted(by_step)]


def curve_series(records: list[dict[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    """``{name: (steps, values)}`` of every numeric field, finite values only."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for record in records:
        for name, value in record.items():
            if name in _NOT_CURVES or isinstance(value, bool):
                continue
            if isinstance(value, int | float) and math.isfinite(value):
                steps, values = series.setdefault(name, ([], []))
                steps.append(record["step"])
                values.append(float(value))
    return series


def curve_panels(
    series: dict[str, tuple[list[int], list[float]]],
) -> list[tuple[str, dict[str, tuple[list[int], list[float]]]]]:
    """Panels of ``(title, curves)``: the loss and its levels, the loss's terms, the rest one each.

    ``loss/total`` comes first (drawn thick, in the first colour); a name with
    two or more slashes (``loss/whole/mse``) is a term of a level.
    """

    def order(name: str) -> tuple[bool, str]:
        return name != "loss/total", name

    losses = sorted((n for n in series if n.startswith("loss/")), key=order)
    levels = {n: series[n] for n in losses if n.count("/") == 1}
    terms = {n: series[n] for n in losses if n.count("/") > 1}
    panels = [("loss", levels)] if levels else []
    panels += [("loss terms", terms)] if terms else []
    panels += [(name, {name: data}) for name, data in series.items() if name not in losses]
    return panels


def draw_curves(records: list[dict[str, Any]], path: str | os.PathLike, title: str = "") -> Path:
    """One PNG of :func:`curve_panels` (losses on a log scale when positive), written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = curve_panels(curve_series(records))
    rows = max(len(panels), 1)
    figure = Figure(figsize=(10, 0.6 + 2.8 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 1, squeeze=False, sharex=True)[:, 0]
    styles = ("-", "--", ":", "-.")
    for ax, (name, panel) in zip(axes, panels, strict=False):
        for index, (label, (steps, values)) in enumerate(panel.items()):
            thick = label == "loss/total"
            ax.plot(steps, values, styles[index // 10 % 4], label=label, lw=2.2 if thick else 1.0)
        positive = all(v > 0 for _, values in panel.values() for v in values)
        if name.startswith("loss") and positive:
            ax.set_yscale("log")
        ax.set_title(name, fontsize="medium", loc="left")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[-1].set_xlabel("step")
    if not panels:
        axes[0].text(0.5, 0.5, "no metrics logged yet", ha="center", va="center")
    if title:
        figure.suptitle(title)
    path = Path(path)
    with atomic_path(path) as staged:  # a kill mid-write leaves the previous curves, no litter
        figure.savefig(staged, format="png")
    return path


class RunCurves:
    """The curves of one run folder: ``curves.png`` and TensorBoard events (main process)."""

    def __init__(self, run_path: str | os.PathLike, *, tensorboard: bool = True) -> None:
        self.run_path = Path(run_path)
        self.tensorboard = tensorboard
        self._writer: Any = None
        self._last_drawn = time.monotonic()  # the first drawing is due after REDRAW_SECONDS
        self._warned: set[str] = set()

    @property
    def png(self) -> Path:
        return self.run_path / CURVES_FILE

    def log(self, record: dict[str, Any]) -> None:
        """One logged record: TensorBoard scalars now, the PNG when it is due."""
        writer = self._summary_writer()
        if writer is not None and isinstance(record.get("step"), int):
            for name, (_, values) in curve_series([record]).items():
                self._guard("TensorBoard", writer.add_scalar, name, values[0], record["step"])
        self.refresh_if_due()

    def refresh_if_due(self) -> None:
        """:meth:`refresh` when the last drawing is :data:`REDRAW_SECONDS` old (checkpoints)."""
        if time.monotonic() - self._last_drawn >= REDRAW_SECONDS:
            self.refresh()

    def refresh(self) -> None:
        """Redraw ``curves.png`` from ``metrics.jsonl`` and flush the TensorBoard events."""
        self._last_drawn = time.monotonic()
        records = read_records(self.run_path / "metrics.jsonl")
        if records:
            self._guard("curves.png", draw_curves, records, self.png, self.run_path.name)
        if self._writer is not None:
            self._guard("TensorBoard", self._writer.flush)

    def close(self) -> None:
        """Final redraw; closes the TensorBoard writer."""
        self.refresh()
        if self._writer is not None:
            self._guard("TensorBoard", self._writer.close)
            self._writer = None

    def _summary_writer(self) -> Any:
        if self._writer is None and self.tensorboard:
            writer_class = summary_writer_class()
            if writer_class is None:
                self.tensorboard = False  # not installed: never look again
                return None
            self._writer = self._guard(
                "TensorBoard", writer_class, log_dir=str(self.run_path / TENSORBOARD_DIR)
            )
            self.tensorboard = self._writer is not None
        return self._writer

    def _guard(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - a plot must never stop a training run
            if what not in self._warned:
                self._warned.add(what)
                logger.warning(
                    "%s of %s not written: %s: %s", what, self.run_path, type(exc).__name__, exc
                )
            return None
