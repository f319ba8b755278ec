"""Running the repository's bash scripts from tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def run_bash_script(script: Path, *args: str, env: dict, timeout: int = 900):
    """``bash script args`` from the repository root; a failure shows the output's end."""
    result = subprocess.run(
        ["bash", str(script), *args],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result
