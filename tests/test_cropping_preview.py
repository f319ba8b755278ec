"""``ganenc crop-preview``: boxes drawn on the images, options passed to the cropper, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganenc.cli.crop_preview import BOX_COLOURS, crop_preview_command


@pytest.fixture
def images(tmp_path):
    paths = []
    for index in range(2):
        folder = tmp_path / f"in{index}"
        folder.mkdir()
        path = folder / "face.png"  # same stem in two folders: two distinct outputs
        Image.new("RGB", (64, 64), (20, 20, 20)).save(path)
        paths.append(path)
    return paths


def test_center_boxes_are_drawn_and_saved(images, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        crop_preview_command, ["--attention", "center", *map(str, images), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.iterdir())
    assert written == ["face_2_crops.png", "face_crops.png"]
    assert "AT1 (8, 0, 56, 64)" in result.output and "AT2 (10, 10, 54, 54)" in result.output
    pixels = np.asarray(Image.open(out / "face_crops.png"))
    assert tuple(pixels[32, 8]) == BOX_COLOURS[0]  # AT1's left edge, x0 = 64 / 8
    assert tuple(pixels[32, 10]) == BOX_COLOURS[1]  # AT2's left edge, x0 = 64 / 8 + 64 / 32
    assert tuple(pixels[32, 32]) == (20, 20, 20)  # inside: untouched


@pytest.mark.parametrize("spelling", ["--crop-option", "-O", "--option"])
def test_options_reach_the_cropper(images, tmp_path, spelling, caplog):
    result = CliRunner().invoke(
        crop_preview_command,
        [
            "--attention",
            "center",
            str(images[0]),
            "--out",
            str(tmp_path / "out"),
            "--crop-option",
            "at1_margin_x=0.25",
            spelling,
            "at2_margin_y=0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "AT1 (16, 0, 48, 64)" in result.output and "AT2 (10, 0, 54, 64)" in result.output
    deprecated = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    if spelling == "--crop-option":
        assert not deprecated
    else:  # the old spelling still works, with a warning
        assert deprecated == [
            "crop-preview: -O/--option is deprecated here, use --crop-option"
            " (-O/--option means generator options in every other command)"
        ]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--attention", "nope"], "no cropper named 'nope'"),
        (["--attention", "center", "--crop-option", "wrong=1"], "unknown setting 'wrong'"),
        (["--attention", "center", "--crop-option", "at1_margin_x=0.7"], "at1_margin_x"),
    ],
)
def test_errors_are_one_line_messages(images, tmp_path, arguments, expected):
    result = CliRunner().invoke(
        crop_preview_command, [*arguments, str(images[0]), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 1
    assert expected in result.output
    assert "Traceback" not in result.output


def test_gradcam_without_weights_offline_names_the_file(images, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GANENC_OFFLINE", "1")
    result = CliRunner().invoke(
        crop_preview_command,
        ["--attention", "gradcam", str(images[0]), "--out", str(tmp_path / "out")],
    )
    assert result.exit_code == 1
    assert "vgg16-397923af.pth" in result.output
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in result.output


def test_a_folder_stands_for_its_image_files(images, tmp_path):
    folder = images[0].parent
    Image.new("RGB", (64, 64)).save(folder / "b.jpg")
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        crop_preview_command, ["--attention", "center", str(folder), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["b_crops.png", "face_crops.png"]
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(
        crop_preview_command, ["--attention", "center", str(empty), "--out", str(tmp_path / "o2")]
    )
    assert result.exit_code != 0 and "no readable images" in result.output
    assert not (tmp_path / "o2").exists()


def test_a_preview_never_overwrites_an_input_and_a_failure_leaves_no_folder(tmp_path):
    folder = tmp_path / "cl"
    folder.mkdir()
    Image.new("RGB", (32, 32), "red").save(folder / "a.png")
    Image.new("RGB", (32, 32), "blue").save(folder / "a_crops.png")  # the user's own image
    before = (folder / "a_crops.png").read_bytes()
    result = CliRunner().invoke(
        crop_preview_command,
        ["--attention", "center", "--out", str(folder), "--force", str(folder)],
    )
    assert result.exit_code == 1 and "is the input" in result.output  # no --out in an input
    result = CliRunner().invoke(
        crop_preview_command,
        ["--attention", "center", "--out", str(folder), "--force"]
        + [str(folder / "a.png"), str(folder / "a_crops.png")],
    )
    assert result.exit_code == 1 and "would overwrite the input" in result.output
    assert (folder / "a_crops.png").read_bytes() == before
    result = CliRunner().invoke(
        crop_preview_command,
        ["--attention", "gradcam", "--crop-option", "classifier_size=20000", "--out",
         str(tmp_path / "new"), str(folder / "a.png")],
    )  # fmt: skip
    assert result.exit_code == 1 and "classifier_size must be from 8 to 4096" in result.output
    assert not (tmp_path / "new").exists()


def test_size_crops_the_centre_as_training_reads_images(tmp_path):
    """--size squashed a 96 x 64 photo; training and invert centre-crop it first."""
    photo = tmp_path / "wide.png"
    wide = Image.new("RGB", (96, 64), (20, 20, 20))
    wide.paste((0, 0, 255), (0, 0, 16, 64))  # a blue band the centre crop leaves out
    wide.save(photo)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        crop_preview_command,
        ["--attention", "center", str(photo), "--size", "32", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "AT1 (4, 0, 28, 32)" in result.output  # boxes of the 32 px square
    pixels = np.asarray(Image.open(out / "wide_crops.png")).reshape(-1, 3)
    assert not ((pixels[:, 2] > 200) & (pixels[:, 0] < 60) & (pixels[:, 1] < 60)).any()
