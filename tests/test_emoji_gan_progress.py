"""The progress picture stacks the chosen steps' sample grids and never overwrites a file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "emoji_gan_progress.py"


def _grid(path: Path, colour: tuple[int, int, int]) -> None:
    # an 8 x 8 grid of 64 px tiles with 2 px padding, as the training script saves it
    Image.new("RGB", (530, 530), colour).save(path)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )


def test_progress_picture_from_two_steps(tmp_path):
    (tmp_path / "samples").mkdir()
    _grid(tmp_path / "samples" / "step-000500.png", (255, 0, 0))
    _grid(tmp_path / "samples" / "step-001000.png", (0, 0, 255))
    out = tmp_path / "progress.png"
    result = _run(str(tmp_path), "--steps", "500", "1000", "--out", str(out))
    assert result.returncode == 0, result.stderr
    with Image.open(out) as picture:
        colours = {c for _, c in picture.convert("RGB").getcolors(1 << 20)}
    assert (255, 0, 0) in colours and (0, 0, 255) in colours

    again = _run(str(tmp_path), "--steps", "500", "--out", str(out))
    assert again.returncode == 2 and "exists" in again.stderr and "Traceback" not in again.stderr


def test_missing_step_is_one_clear_line(tmp_path):
    (tmp_path / "samples").mkdir()
    result = _run(str(tmp_path), "--steps", "700", "--out", str(tmp_path / "p.png"))
    assert result.returncode == 2
    assert "step-000700.png" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "p.png").exists()


def test_a_band_from_another_run_compares_two_recipes(tmp_path):
    plain, other = tmp_path / "plain", tmp_path / "other"
    for run, colour in ((plain, (255, 0, 0)), (other, (0, 255, 0))):
        (run / "samples").mkdir(parents=True)
        _grid(run / "samples" / "step-000500.png", colour)
    out = tmp_path / "compare.png"
    result = _run(str(plain), "--steps", "500", f"{other}:500", "--out", str(out))
    assert result.returncode == 0, result.stderr
    with Image.open(out) as picture:
        colours = {c for _, c in picture.convert("RGB").getcolors(1 << 20)}
    assert (255, 0, 0) in colours and (0, 255, 0) in colours

    bad = _run(str(plain), "--steps", f"{other}:five", "--out", str(tmp_path / "bad.png"))
    assert bad.returncode == 2 and "want STEP or RUN:STEP" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "bad.png").exists()


def test_rows_and_out_are_checked_before_drawing(tmp_path):
    (tmp_path / "samples").mkdir()
    grid = tmp_path / "samples" / "step-000500.png"
    _grid(grid, (255, 0, 0))
    out = str(tmp_path / "p.png")
    for rows, message in (("0", "--rows"), ("9", "holds 8 rows; ask for at most that many")):
        result = _run(str(tmp_path), "--steps", "500", "--rows", rows, "--out", out)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and not Path(out).exists()
    result = _run(str(tmp_path), "--steps", "500", "--out", str(grid), "--force")
    assert result.returncode == 2 and "is one of the sample grids it reads" in result.stderr
