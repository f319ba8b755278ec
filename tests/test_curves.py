"""Training curves: curves.png next to metrics.jsonl, TensorBoard events only when installed."""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
import pytest
from PIL import Image
from training_helpers import tiny_train_settings

from ganenc.training import curves
from ganenc.training.curves import CURVES_FILE, TENSORBOARD_DIR, RunCurves, read_records
from ganenc.training.pretrain import pretrain

#: matplotlib's first two default line colours (the first panel's first curves)
BLUE, ORANGE = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)


def _pixels_near(path, colour, tolerance=40) -> int:
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int((np.abs(pixels - np.array(colour)).sum(-1) < tolerance).sum())


def _without_tensorboard(monkeypatch):
    """As if ``tensorboard`` were not installed (an import of it raises ImportError)."""
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)


def test_a_tiny_run_draws_its_curves_without_tensorboard(tmp_path, monkeypatch, caplog):
    _without_tensorboard(monkeypatch)
    assert curves.summary_writer_class() is None
    with caplog.at_level(logging.WARNING, logger="ganenc.training.curves"):
        run = pretrain(tiny_train_settings(tmp_path / "run", iterations=6, val_samples=4))
    png = run / CURVES_FILE
    assert png.is_file() and png.stat().st_size > 5_000
    width, height = Image.open(png).size
    assert width >= 600 and height >= 400
    # loss/total and the next curve are drawn in matplotlib's first two colours
    assert _pixels_near(png, BLUE) > 100 and _pixels_near(png, ORANGE) > 50
    assert not (run / TENSORBOARD_DIR).exists()
    assert not caplog.records, [r.getMessage() for r in caplog.records]


def test_the_plot_is_redrawn_from_metrics_jsonl_and_takes_only_finite_numbers(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    lines = [
        {"step": 1, "loss/total": 2.0, "loss/latent": 0.5, "images_per_s": 10.0},
        {"step": 2, "loss/total": float("nan"), "loss/latent": 0.4, "images_per_s": 11.0},
        {"step": 2, "loss/total": 1.5, "loss/latent": 0.4, "images_per_s": 11.0},  # resumed
        {"step": 3, "loss/total": 1.0, "loss/latent": float("inf"), "images_per_s": 12.0},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n" + '{"step": 4, "loss/to'
    (run / "metrics.jsonl").write_text(text)
    records = read_records(run / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3] and records[1]["loss/total"] == 1.5
    series = curves.curve_series(records)
    assert series["loss/total"] == ([1, 2, 3], [2.0, 1.5, 1.0])
    assert series["loss/latent"] == ([1, 2], [0.5, 0.4])
    assert set(series) == {"loss/total", "loss/latent", "images_per_s"}
    RunCurves(run, tensorboard=False).close()
    assert (run / CURVES_FILE).stat().st_size > 5_000


def test_a_failing_plot_is_a_warning_never_a_failed_run(tmp_path, monkeypatch, caplog):
    _without_tensorboard(monkeypatch)

    def broken(*args, **kwargs):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(curves, "draw_curves", broken)
    with caplog.at_level(logging.WARNING, logger="ganenc.training.curves"):
        run = pretrain(tiny_train_settings(tmp_path / "run", iterations=3, val_samples=4))
    assert (run / "encoder.pt").is_file() and not (run / CURVES_FILE).exists()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "no fonts" in warnings[0]


def test_tensorboard_event_files_when_it_is_installed(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = pretrain(tiny_train_settings(tmp_path / "run", iterations=4, val_samples=4))
    events = EventAccumulator(str(run / TENSORBOARD_DIR))
    events.Reload()
    assert "loss/total" in events.Tags()["scalars"]
    assert [e.step for e in events.Scalars("loss/total")] == [1, 2, 3, 4]
