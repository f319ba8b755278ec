"""User images as they come: odd names, links, FIFOs, tRNS, float TIFFs, one folder rule for all."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganenc.cli.crop_preview import crop_preview_command
from ganenc.cli.evaluate import eval_command
from ganenc.data import ImageSet, image_candidates
from ganenc.errors import GanencError, ImageReadError
from ganenc.evaluation import evaluate_folders, pair_folders
from ganenc.images import image_size, open_image
from ganenc.inversion import invert_folder

pytest_plugins = ("inversion_fixtures",)


def _png(path, colour="red", size=(16, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def _truncated(path):
    """A PNG whose header reads but whose pixels are cut short."""
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:200])
    return path


# -- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [b"caf\xe9.png", b"a\nb.png", b"a\rb.png"])
def test_a_name_that_cannot_be_written_is_refused_before_anything_is(tmp_path, name, tiny_inverter):
    folder = tmp_path / "wn"
    _png(folder / "ok.png")
    shutil.copy(folder / "ok.png", os.path.join(os.fsencode(folder), name))
    for read in (image_candidates, lambda f: ImageSet(f, 8)):  # invert, eval, finetune
        with pytest.raises(GanencError, match="rename it") as caught:
            read(folder)
        assert "\n" not in str(caught.value) and str(caught.value).isascii()
    out = tmp_path / "out"
    with pytest.raises(GanencError, match="rename it"):
        invert_folder(tiny_inverter, folder, out)
    assert not out.exists()


# -- links, FIFOs, permissions -----------------------------------------------------------------


def test_broken_links_loops_and_fifos_in_a_folder_are_listed_as_skipped(tmp_path):
    folder = tmp_path / "in"
    _png(folder / "a.png")
    os.symlink(tmp_path / "gone.png", folder / "broken.png")
    os.symlink(folder / "loop.png", folder / "loop.png")
    os.mkfifo(folder / "fifo.png")
    paths, skipped = image_candidates(folder)
    assert [p.name for p in paths] == ["a.png"]
    assert "broken symbolic link" in skipped["broken.png"]
    assert "symbolic link loop" in skipped["loop.png"]
    assert "not a regular file" in skipped["fifo.png"]
    assert set(ImageSet(folder, 8).skipped) == {"broken.png", "loop.png", "fifo.png"}


def test_a_fifo_a_device_and_an_unreadable_file_say_what_they_are(tmp_path, monkeypatch):
    os.mkfifo(tmp_path / "pipe.png")
    for path in (tmp_path / "pipe.png", "/dev/zero"):
        with pytest.raises(ImageReadError, match="not a regular file"):
            open_image(path)
    png = _png(tmp_path / "a.png")

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Image, "open", refused)
    with pytest.raises(ImageReadError, match="permission denied"):
        image_size(png)


# -- pixels --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_trns_transparent_colour_is_put_on_white(tmp_path, mode):
    image = Image.new(mode, (16, 16))
    image.paste("red" if mode == "RGB" else 200, (4, 4, 12, 12))
    image.save(tmp_path / "t.png", transparency=(0, 0, 0) if mode == "RGB" else 0)
    rgb = open_image(tmp_path / "t.png")
    assert rgb.getpixel((0, 0)) == (255, 255, 255)
    assert rgb.getpixel((8, 8)) == ((255, 0, 0) if mode == "RGB" else (200, 200, 200))


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_image_size_agrees_with_the_opened_image_when_turned(tmp_path, suffix):
    exif = Image.Exif()
    exif[0x0112] = 6  # a quarter turn
    path = tmp_path / f"turned{suffix}"
    Image.new("RGB", (40, 20), "red").save(path, exif=exif)
    assert image_size(path) == open_image(path).size == (20, 40)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.full((8, 8), 128.0, np.float32), 128),  # a float TIFF of 0..255: not all white
        (np.full((8, 8), 0.5, np.float32), 128),  # of 0..1, as before
        (np.linspace(0, 100_000, 64, dtype=np.int32).reshape(8, 8), 255),  # not black
    ],
)
def test_float_and_32_bit_tiffs_are_scaled_by_the_range_they_use(tmp_path, values, expected):
    Image.fromarray(values).save(tmp_path / "x.tif")
    pixels = np.asarray(open_image(tmp_path / "x.tif"))
    assert abs(int(pixels[-1, -1, 0]) - expected) <= 1


# -- decoded on demand ---------------------------------------------------------------------------


def test_a_truncated_image_is_skipped_when_preloaded_and_named_when_decoded_on_demand(tmp_path):
    """A set too large to keep is checked by header only (decoding 70,000 photos up front
    would cost an epoch): pixels cut short fail when indexed, with one line naming the file."""
    folder = tmp_path / "in"
    _png(folder / "a.png")
    _truncated(folder / "b.png")
    images = ImageSet(folder, 8, preload=True)
    assert images.names == ["a.png"] and "b.png" in images.skipped
    assert images[0:1].shape == (1, 3, 8, 8)
    lazy = ImageSet(folder, 8, preload=False)
    assert lazy[0:1].shape == (1, 3, 8, 8)
    with pytest.raises(GanencError, match="b.png.*its pixels do not: remove it"):
        lazy[1:2]


# -- crop-preview --------------------------------------------------------------------------------


def test_crop_preview_replaces_a_link_at_its_target_and_never_follows_it(tmp_path):
    image = _png(tmp_path / "real" / "a.png", size=(32, 32))
    precious = tmp_path / "precious.txt"
    precious.write_text("keep")
    out = tmp_path / "cpl"
    out.mkdir()
    os.symlink("../precious.txt", out / "a_crops.png")
    result = CliRunner().invoke(
        crop_preview_command,
        ["--attention", "center", str(image), "--out", str(out), "--force"],
    )
    assert result.exit_code == 0, result.output
    assert precious.read_text() == "keep"
    assert not (out / "a_crops.png").is_symlink() and open_image(out / "a_crops.png")
    assert [p.name for p in out.iterdir()] == ["a_crops.png"]  # no temporary left


def test_crop_preview_refuses_to_write_into_an_input_folder(tmp_path):
    folder = tmp_path / "real2"
    _png(folder / "a.png", size=(32, 32))
    result = CliRunner().invoke(
        crop_preview_command,
        ["--attention", "center", str(folder), "--out", str(folder), "--force"],
    )
    assert result.exit_code == 1 and "is the input" in result.output
    assert [p.name for p in folder.iterdir()] == ["a.png"]


def test_crop_preview_picks_a_folders_images_by_content_and_decodes_one_at_a_time(tmp_path):
    folder = tmp_path / "in"
    _png(folder / "a.png", size=(32, 32))
    _png(folder / "photo.jfif", size=(32, 32))  # a PNG under another name: read by content
    (folder / "notes.png").write_text("not an image")
    _truncated(folder / "z.png")  # its header reads: found only when decoded, then skipped
    out = tmp_path / "out"
    result = CliRunner().invoke(
        crop_preview_command, ["--attention", "center", str(folder), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a_crops.png", "photo_crops.png"]
    assert "notes.png is not an image" in result.output and "z.png is damaged" in result.output


# -- eval ----------------------------------------------------------------------------------------


def test_eval_refuses_a_default_resolution_out_of_range_in_one_line(tmp_path):
    real = _png(tmp_path / "real" / "a.png").parent
    recon = _png(tmp_path / "recon" / "a.png", size=(1, 1)).parent
    result = CliRunner().invoke(eval_command, ["--real", str(real), "--recon", str(recon)])
    assert result.exit_code != 0 and "give --resolution" in str(result.exception)
    assert isinstance(result.exception, GanencError)


def test_eval_pairs_skips_unreadable_real_images_as_encoder_mode_does(tmp_path):
    real, recon = tmp_path / "c", tmp_path / "recon"
    for index, name in enumerate(["a", "b", "d"]):
        _png(real / f"{name}.png", (index * 90, 0, 0))
        _png(recon / f"{name}.png", (index * 90, 10, 0), size=(16, 8) if name == "d" else (16, 16))
    shutil.copy(real / "a.png", real / "e.jfif")
    _png(recon / "e.png")
    (real / "zzbad.png").write_text("unreadable: invert skipped it")
    _truncated(real / "yy.png")  # decodes badly: skipped, with its reconstruction
    _png(recon / "yy.png")
    assert [p[0] for p in pair_folders(real, recon)] == ["a", "b", "d", "e", "yy"]
    report = evaluate_folders(real, recon, metrics=["psnr"], folds=2).to_dict()
    assert [row["image"] for row in report["images"]] == ["a.png", "b.png", "d.png", "e.jfif"]
    assert set(report["skipped"]) == {"zzbad.png", "yy.png"} and report["pairs"] == 4
    assert any("2 unreadable file(s) skipped" in note for note in report["notes"])
    assert any("1 reconstruction(s) are not square" in note for note in report["notes"])


def test_fid_of_identical_sets_is_not_negative_zero(monkeypatch):
    import ganenc.evaluation as evaluation

    class Metric:
        def update(self, *args, **kwargs):
            pass

        def compute(self):
            return torch.tensor(-0.0)

    monkeypatch.setattr(evaluation, "fid_metric", lambda *a, **k: Metric())
    images = torch.zeros(2, 3, 8, 8)
    assert str(evaluation.fid(images, images, min_images=2)) == "0.0"


def test_the_image_key_of_eval_is_the_file_name_in_both_modes(tmp_path):
    real = _png(tmp_path / "real" / "a.jpg").parent
    recon = _png(tmp_path / "recon" / "a.png").parent
    report = evaluate_folders(real, recon, metrics=["mse"]).to_dict()
    assert [row["image"] for row in report["images"]] == ImageSet(real, 8).names == ["a.jpg"]
