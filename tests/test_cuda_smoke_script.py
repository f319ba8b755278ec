"""benchmarks/cuda_smoke.sh, dry-run on the CPU: every command it runs on a GPU works here."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from bash_scripts import run_bash_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_cuda_smoke_script_runs_on_the_cpu(tmp_path):
    """train, train --resume, finetune --mode per-image, invert with both refinements."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "ganenc").exists():
        pytest.skip("the ganenc command is not installed beside this Python")
    env = {
        **os.environ,
        "DEVICE": "cpu",
        "PRECISION": "fp32",
        "PYTHON": sys.executable,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "OMP_NUM_THREADS": "1",
    }
    out = tmp_path / "smoke"
    result = run_bash_script(ROOT / "benchmarks" / "cuda_smoke.sh", str(out), env=env, timeout=600)
    assert "train: last step 20" in result.stdout
    assert "all commands finished on cpu (fp32)" in result.stdout
    for refine in ("optimize", "finetune"):
        assert (out / f"invert-{refine}" / "metrics.csv").is_file()
    assert (out / "finetune" / "metrics.csv").is_file()
