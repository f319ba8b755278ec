"""What the example and benchmark scripts write, and what they refuse to touch.

A script never replaces or deletes a user's file unasked, checks every output (and every
input it can) before any work, records what it really ran, and answers ``--help`` and bad
input with usage or one ``error:`` line, not a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import emoji_ablations as ablations  # noqa: E402
from benchmarks import emoji_frontier as frontier  # noqa: E402

EXAMPLES = ROOT / "examples"
ASSETS = ROOT / "plugins" / "stylegan" / "ganenc_stylegan" / "assets"
SHIPPED_ENCODER = ASSETS / "encoder-stylegan2-emoji-64.pt"
SHIPPED_GENERATOR = ASSETS / "stylegan2-emoji-64.pt"


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=180, cwd=ROOT, check=False, **kwargs
    )


def _script(script: str, *args: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, str(EXAMPLES / script), *args])


def _module(name: str, *args: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", f"benchmarks.{name}", *args])


def _error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "error: " in last, result.stderr
    return last


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


# -- ship_emoji_encoder.py: only the shipped generator's encoder, and never a user's file -------
@pytest.fixture(scope="module")
def shipped_payload() -> dict:
    from ganenc.encoders import read_encoder_checkpoint

    return read_encoder_checkpoint(SHIPPED_ENCODER)


def _encoder_file(path: Path, payload: dict, **changes) -> Path:
    torch.save({**payload, **changes}, path)
    return path


def test_an_encoder_of_another_generator_is_not_shipped(tmp_path, shipped_payload):
    packaged = _files(ASSETS)
    geometry = {**shipped_payload["geometry"], "resolution": 32}
    other = {"gan": "stylegan2", "checkpoint": "random", "generator_options": {"resolution": 32}}
    random32 = _encoder_file(tmp_path / "r.pt", shipped_payload, generator=other, geometry=geometry)
    last = _error_line(_script("ship_emoji_encoder.py", str(random32)))
    assert "trained for stylegan2 random" in last and "nothing was written" in last
    # the right tag but another geometry (an edited or mismatched file): refused as well
    resized = _encoder_file(tmp_path / "g.pt", shipped_payload, geometry=geometry)
    last = _error_line(_script("ship_emoji_encoder.py", str(resized)))
    assert "32" in last and "cannot be shipped" in last
    assert _files(ASSETS) == packaged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pt", "r.pt"]


def test_shipping_to_out_writes_fp16_there_and_keeps_an_existing_file(tmp_path, shipped_payload):
    packaged = _files(ASSETS)
    out = tmp_path / "shipped.pt"
    result = _script("ship_emoji_encoder.py", str(SHIPPED_ENCODER), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout and "sha256" in result.stdout
    written = torch.load(out, weights_only=True)
    assert written["generator"]["checkpoint"] == "stylegan2:emoji-64"
    assert all(
        v.dtype == torch.float16 for v in written["state_dict"].values() if v.is_floating_point()
    )
    out.write_bytes(b"the user's file")
    last = _error_line(_script("ship_emoji_encoder.py", str(SHIPPED_ENCODER), "--out", str(out)))
    assert "exists; pass --force" in last
    assert out.read_bytes() == b"the user's file"
    assert _files(ASSETS) == packaged


# -- make demo / cuda_smoke.sh: a folder they did not make is not deleted ----------------------
def _make_demo_folder(folder: Path) -> subprocess.CompletedProcess:
    return _run(["make", "--no-print-directory", "-s", "demo-folder", f"DEMO_OUT={folder}"])


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_refuses_a_folder_it_did_not_make_and_replaces_only_its_own(tmp_path):
    runs = tmp_path / "runs"
    (runs / "train").mkdir(parents=True)
    (runs / "train" / "encoder.pt").write_bytes(b"a week of training")
    result = _make_demo_folder(runs)
    assert result.returncode != 0
    assert "holds files 'make demo' did not write" in result.stderr
    assert (runs / "train" / "encoder.pt").read_bytes() == b"a week of training"
    assert sorted(p.name for p in runs.iterdir()) == ["train"]

    demo = tmp_path / "demo"  # a new folder, then an earlier demo's: its own parts replaced
    assert _make_demo_folder(demo).returncode == 0
    (demo / "invert").mkdir()
    (demo / "summary.png").write_bytes(b"old")
    (demo / "notes.txt").write_text("the user's notes")
    assert _make_demo_folder(demo).returncode == 0, result.stderr
    assert sorted(p.name for p in demo.iterdir()) == [".ganenc-demo", "notes.txt"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_cuda_smoke_refuses_a_folder_it_did_not_make(tmp_path):
    out = tmp_path / "runs"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    result = _run(["bash", str(ROOT / "benchmarks" / "cuda_smoke.sh"), str(out)])
    assert result.returncode == 2 and "did not write" in result.stderr, result.stderr
    assert "cuda smoke" not in result.stdout  # stopped before any command ran
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]


# -- emoji_ablations: every output checked, --work a folder, data in the fingerprint ----------
def test_ablations_refuse_to_replace_any_file_they_write(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    assert {"table4.png", "table6.png", "table7.png"} <= set(ablations.OUT_FILES)
    assert "table6-7-reconstructions.png" in ablations.OUT_FILES
    for name in ("table6.png", "table6-7-reconstructions.png", "table4-reconstructions.png"):
        (out / name).write_bytes(b"the user's picture")
        last = _error_line(_module("emoji_ablations", "--out", str(out), "--work", str(work)))
        assert f"{name} exists; pass --force" in last
        assert (out / name).read_bytes() == b"the user's picture"
        (out / name).unlink()
    assert not work.exists()


def test_ablations_work_that_is_a_file_is_one_error_line(tmp_path):
    work = tmp_path / "work.txt"
    work.write_text("not a folder")
    last = _error_line(
        _module("emoji_ablations", "--out", str(tmp_path / "out"), "--work", str(work))
    )
    assert "--work" in last and "is a file, not a folder" in last
    assert work.read_text() == "not a folder" and not (tmp_path / "out").exists()


def test_an_ablation_cache_of_other_data_is_refused(tmp_path):
    data, other = tmp_path / "data", tmp_path / "other"
    for folder, text in ((data, "file,split\na.png,heldout\n"), (other, "file,split\n")):
        folder.mkdir()
        (folder / "labels.csv").write_text(text)
    work = tmp_path / "work"
    (work / "arms").mkdir(parents=True)
    recorded = ablations.work_fingerprint(
        ablations.build_parser().parse_args(["--data", str(data)])
    )
    (work / ablations.FINGERPRINT).write_text(json.dumps(recorded))
    command = ["--out", str(tmp_path / "out"), "--work", str(work), "--data", str(other)]
    last = _error_line(_module("emoji_ablations", *command))
    assert "data_labels_sha256" in last and "choose a new --work" in last
    assert json.loads((work / ablations.FINGERPRINT).read_text()) == recorded
    assert not (tmp_path / "out").exists()


# -- emoji_frontier: the longest optimisation is the most steps; the real command -------------
def _row(psnr: float, seconds: float, images: int = 16) -> dict:
    return {"psnr": psnr, "ssim": 0.5, "seconds_per_image": seconds, "images": images}


def test_frontier_compares_with_the_most_optimisation_steps_in_any_order():
    rows = {
        "encoder": _row(15.0, 0.02),
        "encoder + 10 optimisation steps": _row(17.0, 0.1),
        "optimisation from the average latent, 1000 steps": _row(16.0, 10.0),
        "optimisation from the average latent, 50 steps": _row(12.0, 0.5),
    }
    summary = frontier.comparisons(rows, [1000, 50])
    versus = summary["encoder_vs_longest_optimisation"]
    assert versus["psnr_difference_db"] == pytest.approx(-1.0)
    assert versus["speed_up"] == pytest.approx(500.0)
    fastest = summary["fastest_reaching_longest_optimisation_psnr"]
    assert fastest["method"] == "encoder + 10 optimisation steps"
    assert fastest["speed_up"] == pytest.approx(100.0)


def test_frontier_records_the_command_it_ran(tmp_path):
    out = tmp_path / "out"
    options = ["--out", str(out), "--hybrid-steps", "1", "--optimize-steps", "2,1"]
    options += ["--finetune-steps", "1", "--finetune-images", "1", "--threads", "1"]
    result = _module("emoji_frontier", *options)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "frontier.json").read_text())
    assert report["command"] == " ".join(["python -m benchmarks.emoji_frontier", *options])
    rows = report["rows"]
    longest = rows["optimisation from the average latent, 2 steps"]
    assert report["encoder_vs_longest_optimisation"]["psnr_difference_db"] == pytest.approx(
        rows["encoder"]["psnr"] - longest["psnr"]
    )


# -- emoji_gan_report.py: a bad --curve export before anything is written; --samples ----------
def test_a_curve_export_that_is_not_a_generator_is_one_line_and_writes_nothing(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    out = tmp_path / "out"
    # --data is missing too: the export is checked first, without reading any data
    result = _script(
        "emoji_gan_report.py", "--out", str(out), "--data", str(tmp_path / "no-data"),
        "--curve", f"{5}={SHIPPED_GENERATOR}", f"10={garbage}", "--threads", "1",
    )  # fmt: skip
    last = _error_line(result)
    assert last.startswith("emoji_gan_report.py: error: --curve 10=") and "garbage.pt" in last
    assert not out.exists()


def test_gan_report_refuses_too_few_samples(tmp_path):
    out = tmp_path / "out"
    last = _error_line(_script("emoji_gan_report.py", "--out", str(out), "--samples", "2"))
    assert "--samples must be at least" in last and not out.exists()


# -- benchmarks.gpu: --help is help, on any machine --------------------------------------------
def test_gpu_benchmark_help_needs_no_gpu():
    result = _run(
        [sys.executable, "-m", "benchmarks.gpu", "--help"],
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m benchmarks.gpu")
    assert "--sections" in result.stdout and "CUDA GPU" not in result.stderr
