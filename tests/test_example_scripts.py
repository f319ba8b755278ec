"""The scripts behind the emoji models and benchmarks: bad input is one ``error:`` line.

They are the documented way to reproduce the shipped networks and the measured tables, so
a user meets them as often as the ``ganenc`` commands and gets the same treatment: bad
numbers, missing data or weights, outputs that already exist and a cache computed with
other settings are refused before any work starts, and nothing is written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DATA = ROOT.parent / "shared" / "data" / "emoji"
needs_data = pytest.mark.skipif(
    not (DATA / "labels.csv").is_file(), reason="emoji data not beside the checkout"
)
ASSETS = ROOT / "plugins" / "stylegan" / "ganenc_stylegan" / "assets"


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    if script.endswith(".py"):
        command = [sys.executable, str(EXAMPLES / script), *args]
    else:  # a benchmark module, run as its docs say: python -m benchmarks.NAME
        command = [sys.executable, "-m", f"benchmarks.{script}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=ROOT)


def _one_error_line(result: subprocess.CompletedProcess, script: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    program = script if script.endswith(".py") else f"{script}.py"  # argparse names the file
    assert last.startswith(f"{program}: error: "), result.stderr
    return last


@pytest.mark.parametrize(
    ("script", "options", "says"),
    [
        ("train_emoji_gan.py", ["--projected", "nan"], "--projected: must be a finite number"),
        ("train_emoji_gan.py", ["--lr", "-1"], "--lr: must be a finite number > 0"),
        ("train_emoji_gan.py", ["--batch-size", "6"], "multiple of 4"),
        ("train_emoji_gan.py", ["--data", "{tmp}/no-data"], "emoji data set not found"),
        ("train_emoji_gan.py", ["--export-only"], "needs a state to export"),
        ("train_emoji_classifier.py", ["--epochs", "0"], "--epochs: must be an integer >= 1"),
        ("train_emoji_classifier.py", ["--data", "{tmp}/no-data"], "emoji data set not found"),
        ("emoji_encoder_report.py", ["--threads", "0"], "--threads: must be an integer >= 1"),
        ("emoji_encoder_report.py", ["--data", "{tmp}/no-data"], "emoji data set not found"),
        ("emoji_gan_report.py", ["--curve-seeds", "0"], "--curve-seeds: must be an integer"),
        ("emoji_ablations", ["--iterations", "-3"], "--iterations: must be an integer >= 1"),
        ("emoji_ablations", ["--folds", "1"], "--folds must be at least 2"),
        ("emoji_ablations", ["--tables", "5"], "--tables takes 4, 6 and 7"),
        ("emoji_ablations", ["--arms", "no-such-arm"], "--arms: unknown no-such-arm"),
        ("emoji_ablations", ["--data", "{tmp}/no-data"], "emoji data set not found"),
        ("emoji_frontier", ["--hybrid-steps", "10,x"], "integers >= 1 separated by commas"),
        ("emoji_frontier", ["--finetune-images", "0"], "must be an integer >= 1"),
        pytest.param(
            "emoji_encoder_report.py",
            ["--data", str(DATA), "--encoder", "{tmp}/no-encoder"],
            "encoder not found",
            marks=needs_data,
        ),
        pytest.param(
            "train_emoji_classifier.py",
            ["--data", str(DATA), "--batch-size", "100000"],
            "larger than the train split",
            marks=needs_data,
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, script, options, says):
    out, work = tmp_path / "out", tmp_path / "work"
    options = [option.replace("{tmp}", str(tmp_path)) for option in options]
    if script == "emoji_ablations":
        options += ["--work", str(work)]
    result = _run(script, "--out", str(out), "--threads", "1", *options)
    assert says in _one_error_line(result, script)
    assert not out.exists() and not work.exists()


def test_an_ablation_cache_computed_with_other_settings_is_refused(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    (work / "arms" / "no-attention").mkdir(parents=True)
    command = ["--work", str(work), "--out", str(out), "--tables", "6", "--arms", "no-attention"]
    last = _one_error_line(_run("emoji_ablations", *command), "emoji_ablations")
    assert "does not say what it was computed with" in last  # a cache from before the record

    recorded = {"iterations": 500, "batch_size": 8, "lr": 0.0015, "generator_sha256": "0" * 64}
    (work / "computed-with.json").write_text(json.dumps(recorded))
    last = _one_error_line(
        _run("emoji_ablations", *command, "--iterations", "1000"), "emoji_ablations"
    )
    assert "iterations 500 -> 1000" in last and "generator_sha256 '000" in last
    assert "batch_size" not in last and "choose a new --work" in last
    assert not out.exists()
    assert json.loads((work / "computed-with.json").read_text()) == recorded  # untouched


def test_a_trained_classifier_or_a_report_is_not_replaced_without_force(tmp_path):
    (tmp_path / "emoji-cnn.pt").write_bytes(b"a classifier the user trained")
    (tmp_path / "encoder-report.json").write_text("{}")
    for script in ("train_emoji_classifier.py", "emoji_encoder_report.py"):
        last = _one_error_line(_run(script, "--out", str(tmp_path)), script)
        assert "exists; pass --force" in last and "nothing was overwritten" in last
    assert (tmp_path / "emoji-cnn.pt").read_bytes() == b"a classifier the user trained"
    assert (tmp_path / "encoder-report.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emoji-cnn.pt", "encoder-report.json"]


def test_shipping_a_missing_encoder_run_leaves_the_packaged_file_alone(tmp_path):
    packaged = {p.name: p.read_bytes() for p in ASSETS.iterdir() if p.is_file()}
    result = _run("ship_emoji_encoder.py", str(tmp_path / "no-run"))
    assert "encoder not found" in _one_error_line(result, "ship_emoji_encoder.py")
    assert {p.name: p.read_bytes() for p in ASSETS.iterdir() if p.is_file()} == packaged


def test_demo_summary_names_what_the_run_folder_lacks(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "val.json").write_text("{}")
    last = _one_error_line(_run("demo_summary.py", str(tmp_path)), "demo_summary.py")
    assert "invert/index.json" in last and "train/val.json" not in last
    assert "make demo" in last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]
