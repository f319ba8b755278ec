"""benchmarks/emoji_gan_gpu.sh, dry-run on the CPU: the one GPU call of issue 15 works as prepared."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch
from bash_scripts import run_bash_script

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "emoji"


@pytest.mark.slow
@pytest.mark.skipif(
    not (DATA / "labels.csv").is_file(), reason="emoji data not beside the checkout"
)
def test_the_gpu_script_trains_exports_measures_and_fits_what_out_brings_back(tmp_path):
    env = {
        **os.environ,
        "DEVICE": "cpu",
        "MINUTES": "0.02",
        "SAMPLES": "64",
        "DATA": str(DATA),
        "OUT": str(tmp_path / "out"),
        "WORK": str(tmp_path / "work"),
        "PYTHON": sys.executable,
        "OMP_NUM_THREADS": "1",
    }
    run_bash_script(ROOT / "benchmarks" / "emoji_gan_gpu.sh", env=env)
    files = sorted((tmp_path / "out").iterdir())
    # what the device tool brings back: at most 8 plain files of at most 16 MiB, 64 MiB in all
    assert len(files) <= 8 and all(f.stat().st_size <= 16 * 2**20 for f in files)
    assert sum(f.stat().st_size for f in files) <= 64 * 2**20
    state = tmp_path / "state.pt"
    state.write_bytes(b"".join(f.read_bytes() for f in files if f.name.startswith("state.pt.part")))
    step = torch.load(state, weights_only=True)["step"]
    assert step > 32_500  # the committed state, continued
    assert (tmp_path / "out" / f"stylegan2-emoji-64-step{step}.pt").is_file()
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["samples"] == 64
    assert (
        json.loads((tmp_path / "out" / "judge-curve.json").read_text())["points"][0]["step"] == step
    )


@pytest.mark.slow
@pytest.mark.skipif(
    not (DATA / "labels.csv").is_file(), reason="emoji data not beside the checkout"
)
def test_what_the_gpu_call_carries_fits_the_64_mib_that_travel():
    """Tracked files + the emoji data + the judge + pydantic's wheels (about 4 MB together)."""
    import subprocess

    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    tree = sum((ROOT / name.decode()).stat().st_size for name in tracked if name)
    data = sum(p.stat().st_size for p in (DATA / "noto64").iterdir())
    data += (DATA / "labels.csv").stat().st_size
    assert tree + data + 4_000_000 <= 64 * 2**20, (
        f"{(tree + data) / 2**20:.1f} MiB + 4 MB of judge and wheels: shrink the tracked tree or"
        " carry less (benchmarks/emoji_gan_gpu.sh)"
    )


def test_the_gpu_script_never_deletes_a_work_folder_it_did_not_make(tmp_path):
    """It began with rm -rf "$WORK": WORK=~/data would have deleted the user's data."""
    import subprocess

    work = tmp_path / "mine"
    work.mkdir()
    (work / "keep.txt").write_text("mine")
    env = {**os.environ, "DEVICE": "cpu", "WORK": str(work), "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "emoji_gan_gpu.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2 and "nothing was deleted" in result.stderr
    assert (work / "keep.txt").read_text() == "mine"
