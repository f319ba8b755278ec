"""What goes where: results on stdout, progress and notes on stderr, user text shown as written.

Also the consoles whose encoding is not UTF-8, and ``--json`` targets that are not plain
files (``-``, devices, pipes, links).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganenc import hookimpl
from ganenc.cli.directions import directions_command
from ganenc.cli.invert import invert_command
from ganenc.cli.main import cli
from ganenc.errors import GanencError
from ganenc.files import check_output, write_json
from ganenc.inversion import save_latent_file
from ganenc.progress import Progress
from ganenc.testing import isolated_registry, register_plugin
from ganenc.weights import WeightsEntry, WeightsFile, register_entries

pytest_plugins = ("inversion_fixtures",)


# -- helpers -------------------------------------------------------------------------------------
def _labelled_latents(tmp_path, columns: list[str], count: int = 8):
    """``count`` latent files and a labels CSV with ``columns`` (each half positive) plus a
    row naming no latent file."""
    folder = tmp_path / "latents"
    rng = np.random.default_rng(0)
    for i in range(count):
        w_plus = torch.from_numpy(rng.standard_normal((1, 2, 8)).astype(np.float32))
        save_latent_file(folder / f"img{i}.pt", {"w_plus": w_plus})
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", *columns])
        for i in range(count):
            writer.writerow([f"img{i}.png", *[(i + j) % 2 for j in range(len(columns))]])
        writer.writerow(["ghost.png", *[1] * len(columns)])
    return folder, labels


def _folders(tmp_path):
    """Two folders of three 16 px images, paired by name."""
    rng = np.random.default_rng(0)
    for name in ("real", "recon"):
        (tmp_path / name).mkdir()
        for stem in ("a", "b", "c"):
            pixels = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{stem}.png")
    return ["--real", str(tmp_path / "real"), "--recon", str(tmp_path / "recon")]


@pytest.fixture
def no_feature_weights(tmp_path, monkeypatch):
    """An empty hub cache: LPIPS and FID are left out, with notes."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))
    monkeypatch.delenv("GANENC_OFFLINE", raising=False)


# -- user and plugin text is never markup ---------------------------------------------------------
def test_directions_show_markup_like_names_as_written_and_warn_on_stderr(tmp_path):
    latents, labels = _labelled_latents(tmp_path, ["smile[/]", "[bold]big"])
    out = tmp_path / "run[/]"
    result = CliRunner().invoke(
        directions_command,
        ["--latents", str(latents), "--labels", str(labels), "--out", str(out)]
        + ["--validation", "0"],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "smile[/]" in result.stdout and "[bold]big" in result.stdout
    assert "run[/]" in result.stdout
    assert "label rows without a latent file" in result.stderr
    assert "without a latent file" not in result.stdout


def test_directions_on_an_ascii_console_escape_what_it_cannot_show(tmp_path):
    latents, labels = _labelled_latents(tmp_path, ["\N{GRINNING FACE}"])
    result = CliRunner(charset="ascii").invoke(
        directions_command,
        ["--latents", str(latents), "--labels", str(labels), "--out", str(tmp_path / "d")]
        + ["--validation", "0"],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "\\U0001f600" in result.stdout


def test_weights_list_shows_plugin_descriptions_and_notes_as_written():
    entry = WeightsEntry(
        tag="toy:markup",
        files=(WeightsFile("m.pt", ("https://example.invalid/m.pt",)),),
        format="[red]toy",
        description="a [bold]model[/]",
        notes="see [/] there",
    )

    class Plugin:
        @hookimpl
        def register_weights(self, register):
            register_entries(register, [entry])

    with isolated_registry(), register_plugin(Plugin(), name="zoo"):
        result = CliRunner().invoke(cli, ["weights", "list", "--family", "toy"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    flat = " ".join(result.stdout.split())
    assert "a [bold]model[/]" in flat and "(see [/] there)" in flat and "[red]toy" in flat


# -- consoles that are not UTF-8 ------------------------------------------------------------------
@pytest.mark.parametrize("charset", ["ascii", "latin-1"])
def test_eval_on_a_non_utf8_console_uses_plain_characters(tmp_path, charset):
    report = tmp_path / "report.json"
    result = CliRunner(charset=charset).invoke(
        cli, ["eval", *_folders(tmp_path), "--metrics", "psnr,mse", "--json", str(report)]
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "PSNR (higher)" in result.stdout and "MSE (lower)" in result.stdout
    assert ("+/-" in result.stdout) == (charset == "ascii")
    assert json.loads(report.read_text())["summary"]["psnr"]["n"] == 3


def test_eval_writes_the_json_report_before_showing_it(tmp_path, monkeypatch):
    import ganenc.evaluation

    def broken(*args, **kwargs):
        raise RuntimeError("the table failed")

    monkeypatch.setattr(ganenc.evaluation, "render_report", broken)
    report = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli, ["eval", *_folders(tmp_path), "--metrics", "psnr", "--json", str(report)]
    )
    assert result.exit_code == 1 and "the table failed" in result.stderr
    assert json.loads(report.read_text())["summary"]["psnr"]["n"] == 3


# -- eval: the notes on stderr, --json - and targets that are not files --------------------------
def test_eval_notes_go_to_stderr(tmp_path, no_feature_weights):
    result = CliRunner().invoke(cli, ["eval", *_folders(tmp_path)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "PSNR" in result.stdout and "not computed" in result.stdout
    assert "note: LPIPS not computed" in result.stderr
    assert "note:" not in result.stdout


def test_eval_json_dash_prints_the_report_on_stdout_and_the_table_on_stderr(tmp_path, monkeypatch):
    folders = _folders(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["eval", *folders, "--metrics", "psnr", "--json", "-"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert json.loads(result.stdout)["summary"]["psnr"]["n"] == 3
    assert "PSNR" in result.stderr
    assert not (tmp_path / "-").exists()


# FIFOs in tmp_path stand for devices: a regression here, run as root, must not replace the
# machine's /dev/null with a file (it did once, while the old code was checked)
def test_eval_refuses_a_device_as_json_and_names_the_dash(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = CliRunner().invoke(cli, ["eval", *_folders(tmp_path), "--json", str(fifo), "--force"])
    assert result.exit_code == 1
    assert "not a regular file" in result.stderr and "--json -" in result.stderr
    assert "Traceback" not in result.output


def test_devices_fifos_and_links_to_them_are_refused_never_replaced(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "to-fifo").symlink_to(fifo)
    (tmp_path / "to-null").symlink_to(fifo)
    for target in (fifo, tmp_path / "to-fifo", tmp_path / "to-null"):
        with pytest.raises(GanencError, match="not a regular file"):
            check_output(target, force=True, option="--json")
        with pytest.raises(GanencError, match="not a regular file"):
            write_json(target, {"a": 1})
    assert (tmp_path / "to-null").is_symlink() and (tmp_path / "to-fifo").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "to-fifo", "to-null"]


def test_a_link_to_a_file_is_replaced_never_written_through(tmp_path):
    """A write changes only the path it was given: a link to a file elsewhere (in an output
    folder, written with --force) must not carry the write out of that folder."""
    (tmp_path / "shared").mkdir()
    target = tmp_path / "shared" / "report.json"
    target.write_text("{}")
    link = tmp_path / "report.json"
    link.symlink_to(target)
    check_output(link, force=True, option="--json")
    write_json(link, {"a": 1})
    assert not link.is_symlink() and json.loads(link.read_text()) == {"a": 1}
    assert target.read_text() == "{}"


def test_the_file_stdout_is_redirected_to_is_not_replaced(tmp_path):
    out = tmp_path / "out.txt"
    code = "from ganenc.files import check_output; check_output('out.txt', force=True)"
    with out.open("w") as stdout:
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert result.returncode != 0 and "is where this command's output goes" in result.stderr


# -- progress on stderr ---------------------------------------------------------------------------
def test_the_progress_bar_goes_to_stderr(capsys):
    bar = Progress(3, 0, True, "training-ish")
    bar.update(3, 0.5)
    bar.close()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "training-ish" in captured.err and "3/3" in captured.err and "0.5000" in captured.err


def test_invert_without_refinement_shows_images_done_on_stderr(
    tiny_run, photos, tmp_path, no_feature_weights
):
    result = CliRunner().invoke(
        invert_command,
        ["--encoder", str(tiny_run), "--images", str(photos), "--out", str(tmp_path / "inv")]
        + ["--device", "cpu", "--batch-size", "2"],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "inverting (none)" in result.stderr and "4/4" in result.stderr
    assert "img/s" in result.stderr and "loss" not in result.stderr
    assert "note: LPIPS not computed" in result.stderr
    assert "inverting" not in result.stdout and "note:" not in result.stdout
    assert "s per image" in result.stdout and "output:" in result.stdout
