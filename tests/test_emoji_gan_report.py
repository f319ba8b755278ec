"""The GAN report's --curve mode: FID per export over several sample seeds, and clear refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "emoji"
SCRIPT = ROOT / "examples" / "emoji_gan_report.py"
SHIPPED = ROOT / "plugins" / "stylegan" / "ganenc_stylegan" / "assets" / "stylegan2-emoji-64.pt"


def _run(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), "--data", str(DATA), "--threads", "1", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_a_bad_curve_point_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    result = _run("--out", str(out), "--curve", f"step-one={SHIPPED}")
    assert result.returncode != 0 and "STEP=FILE" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
    missing = _run("--out", str(out), "--curve", f"100={tmp_path / 'nothing.pt'}")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr and not out.exists()


def test_bad_data_or_checkpoint_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    for args in (["--data", str(tmp_path / "no-data")], ["--checkpoint", str(tmp_path / "no.pt")]):
        command = [sys.executable, str(SCRIPT), "--threads", "1", "--out", str(out), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert not out.exists()


@pytest.mark.slow
@pytest.mark.skipif(
    not (DATA / "labels.csv").is_file(), reason="emoji data not beside the checkout"
)
def test_curve_measures_each_export_over_seeds(tmp_path):
    result = _run(
        "--out", str(tmp_path), "--samples", "40", "--curve-seeds", "2", "--curve", f"5={SHIPPED}"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "curve.json").read_text())
    (point,) = report["points"]
    assert report["seeds"] == [0, 1] and len(point["per_seed"]) == 2
    fids = [run["fid"] for run in point["per_seed"]]
    assert fids[0] != fids[1] and abs(point["fid"] - sum(fids) / 2) < 1e-6
    assert 0 < report["floor"]["fid"] < point["fid"]
    # the hearts, objects, flags...: samples the classifier puts outside People & Body
    assert all(0 < run["outside_people_fraction"] < 1 for run in point["per_seed"])
    assert 0 < report["floor"]["fid_outside_people"] < point["fid_outside_people"]
    assert (tmp_path / "curve.png").stat().st_size > 0


def test_group_rows_show_the_first_samples_of_each_group_unpicked(tmp_path):
    import importlib.util
    from types import SimpleNamespace

    import torch

    spec = importlib.util.spec_from_file_location("emoji_gan_report", SCRIPT)
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    samples = torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1).expand(20, 3, 64, 64)
    groups = torch.tensor([0, 1] * 9 + [0, 0])  # group 0: samples 0, 2, ..., 16, 18, 19
    heldout = SimpleNamespace(images=samples.flip(0), groups=torch.zeros(20, dtype=torch.long))
    rows = report.group_rows(samples, groups, heldout, per_row=8, real=3)
    assert [name for name, _, _ in rows] == list(report.GROUPS)
    name, real, drawn = rows[0]
    assert drawn[:, 0, 0, 0].tolist() == [0, 2, 4, 6, 8, 10, 12, 14]  # seed order, first 8
    assert real[:, 0, 0, 0].tolist() == [19, 18, 17]
    assert rows[1][2][:, 0, 0, 0].tolist() == [1, 3, 5, 7, 9, 11, 13, 15]
    assert len(rows[2][1]) == len(rows[2][2]) == 0  # nothing drawn: a blank row, no error
    report.plot_group_rows(rows, tmp_path / "rows.png", per_row=8, real=3)
    assert (tmp_path / "rows.png").stat().st_size > 0
