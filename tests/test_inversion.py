"""``ganenc invert`` and the Inverter: encoder pass, latent optimisation, per-image fine-tuning."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from ganenc.cli.invert import invert_command
from ganenc.data import load_image, load_image_folder
from ganenc.errors import ConfigError, GanencError
from ganenc.inversion import Inverter, invert, read_latent_file, read_latents

pytest_plugins = ("inversion_fixtures",)
#: the tiny generator's size and the number of photos (see inversion_fixtures)
RESOLUTION, PHOTOS = 32, 4


def _images(folder):
    return load_image_folder(folder, RESOLUTION).images


def test_invert_command_writes_latents_reconstructions_grid_and_metrics(
    tiny_run, photos, tmp_path, monkeypatch
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))  # no VGG16: LPIPS left out
    out = tmp_path / "inverted"
    result = CliRunner().invoke(
        invert_command,
        ["--encoder", str(tiny_run), "--images", str(photos), "--out", str(out)]
        + ["--device", "cpu", "--batch-size", "3", "--no-progress"],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "s per image" in result.output
    names = sorted(p.stem for p in photos.iterdir())
    assert sorted(p.stem for p in (out / "latents").glob("*.pt")) == names
    assert sorted(p.stem for p in (out / "reconstructions").glob("*.png")) == names
    assert (out / "grid.png").is_file()
    index = json.loads((out / "index.json").read_text())
    assert [entry["image"] for entry in index["images"]] == [f"{n}.png" for n in names]
    assert index["refine"] == "none" and index["seconds_per_image"] > 0
    assert index["metrics"]["lpips"] is None and index["metrics"]["psnr"]["n"] == len(names)
    assert "vgg16-397923af.pth" in index["not_computed"]["lpips"]
    assert "note: LPIPS not computed" in result.output
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [row["image"] for row in rows] == [f"{n}.png" for n in names]
    assert {"psnr", "ssim", "mse", "seconds"} <= set(rows[0])

    # a latent file decodes to the reconstruction that was written next to it
    payload = read_latent_file(out / "latents" / f"{names[0]}.pt")
    assert payload["image"] == f"{names[0]}.png"
    assert payload["generator"]["gan"] == "stylegan2"
    assert payload["latents"]["w_plus"].shape == (1, 8, 512)
    inverter = Inverter.from_encoder(tiny_run, device="cpu")
    with torch.no_grad():
        decoded = inverter.synthesize(payload["latents"]).clamp(-1, 1)
    written = load_image(out / "reconstructions" / f"{names[0]}.png", RESOLUTION)
    assert (decoded[0] - written).abs().max() <= 1.01 / 127.5
    # the metrics in the CSV are those of the written reconstruction against its photo
    photo = load_image(photos / f"{names[0]}.png", RESOLUTION)
    expected = ((decoded[0] - photo).clamp(-2, 2) / 2).pow(2).mean()
    assert float(rows[0]["mse"]) == pytest.approx(float(expected), rel=1e-3, abs=1e-6)


def test_invert_command_refuses_a_folder_that_holds_files(tiny_run, photos, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = CliRunner().invoke(
        invert_command,
        ["--encoder", str(tiny_run), "--images", str(photos), "--out", str(out), "--device", "cpu"],
    )
    assert isinstance(result.exception, GanencError)
    assert "already holds files" in str(result.exception)
    assert (out / "keep.txt").read_text() == "mine"


def test_optimize_improves_on_the_encoder_and_ignores_batch_composition(tiny_inverter, photos):
    images = _images(photos)
    plain = tiny_inverter.invert(images)
    tuned = tiny_inverter.invert(images, refine="optimize", steps=25, batch_size=4)
    alone = tiny_inverter.invert(images[:1], refine="optimize", steps=25, batch_size=1)

    def mse(result, target):
        return (result.reconstructions - target).pow(2).flatten(1).mean(1)

    assert (mse(tuned, images) < mse(plain, images)).all()
    assert tuned.refine == "optimize" and tuned.steps == 25
    assert len(tuned.seconds) == PHOTOS and tuned.refine_seconds > 0
    # each image is optimised on its own loss: its batch-mates do not change its result
    torch.testing.assert_close(
        alone.latents["w_plus"], tuned.latents["w_plus"][:1], atol=2e-4, rtol=0
    )


def test_finetune_tunes_a_copy_per_image_and_keeps_the_encoder(tiny_inverter, photos):
    images = _images(photos)[:2]
    before = {k: v.clone() for k, v in tiny_inverter.encoder.state_dict().items()}
    plain = tiny_inverter.invert(images)
    tuned = tiny_inverter.invert(images, refine="finetune", steps=3)
    for key, value in tiny_inverter.encoder.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert tuned.steps == 3 and len(tuned.final_losses) == 2
    assert not torch.allclose(tuned.latents["w_plus"], plain.latents["w_plus"])
    # the second image starts from the pre-trained encoder again: alone it gives the same
    second = tiny_inverter.invert(images[1:], refine="finetune", steps=3)
    torch.testing.assert_close(
        second.latents["w_plus"], tuned.latents["w_plus"][1:], atol=1e-4, rtol=0
    )


def test_python_api_and_its_errors(tiny_run, tiny_inverter, photos, tmp_path):
    images = _images(photos)
    result = invert(images, tiny_run, device="cpu")
    torch.testing.assert_close(
        result.latents["w_plus"], tiny_inverter.invert(images).latents["w_plus"]
    )
    with pytest.raises(ConfigError, match="refine must be one of"):
        tiny_inverter.invert(images, refine="magic")
    with pytest.raises(ConfigError, match=r"images must be \[N, 3, 32, 32\]"):
        tiny_inverter.invert(torch.zeros(1, 3, 16, 16))
    # what a Python caller hands over is checked before any work, in one clear error each
    bad = {
        "a ndarray": images.numpy(),
        "0 images": images[:0],
        r"torch.uint8; give floats in \[-1, 1\]": (images * 127.5 + 127.5).to(torch.uint8),
        r"image\(s\) \[1\] hold NaN": torch.cat([images[:1], images[:1] * float("nan")]),
        r"median \|value\| of 1\d\d": images * 127.5 + 127.5,
    }
    for message, given in bad.items():
        with pytest.raises(ConfigError, match=message):
            tiny_inverter.invert(given)
    as_double = tiny_inverter.invert(images[:1].double())  # any float type is converted
    torch.testing.assert_close(
        as_double.latents["w_plus"], tiny_inverter.invert(images[:1]).latents["w_plus"]
    )
    with pytest.raises(GanencError, match="trained for stylegan2 at 32 px"):
        Inverter.from_encoder(tiny_run, generator_options={"resolution": 64, "channel_max": 32})


def test_read_latents_rejects_mixed_generators(tiny_inverter, tmp_path):
    from ganenc.inversion import save_latent_file

    save_latent_file(tmp_path / "a.pt", {"w_plus": torch.zeros(1, 8, 512)})
    save_latent_file(tmp_path / "b.pt", {"w_plus": torch.zeros(1, 14, 512)})
    with pytest.raises(GanencError, match="different generators"):
        read_latents(tmp_path)
    (tmp_path / "b.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(GanencError, match="b.pt"):
        read_latents(tmp_path)


def test_invert_command_optimizes_with_the_given_loss_terms(tiny_run, photos, tmp_path):
    out = tmp_path / "optimized"
    result = CliRunner().invoke(
        invert_command,
        ["--encoder", str(tiny_run), "--images", str(photos), "--out", str(out)]
        + ["--refine", "optimize", "--steps", "3", "--loss-term", "mse=1", "--lr", "0.05"]
        + ["--attention", "none", "--device", "cpu", "--no-progress"],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "optimize, 3 steps" in result.output
    index = json.loads((out / "index.json").read_text())
    assert index["refine"] == "optimize" and index["steps"] == 3
    assert index["refine_seconds_per_image"] > 0
    payload = read_latent_file(out / "latents" / "photo0.pt")
    assert payload["refine"] == "optimize" and payload["steps"] == 3
    with pytest.raises(ConfigError, match="weight of 'mse' must be finite"):
        CliRunner().invoke(
            invert_command,
            ["--encoder", str(tiny_run), "--images", str(photos), "--out", str(tmp_path / "x")]
            + ["--refine", "optimize", "--loss-term", "mse=-1"],
            catch_exceptions=False,
        )


def test_an_unknown_refinement_loss_term_fails_before_the_progress_bar(tiny_run, photos, tmp_path):
    out = tmp_path / "x"
    result = CliRunner().invoke(
        invert_command,
        ["--encoder", str(tiny_run), "--images", str(photos), "--out", str(out)]
        + ["--refine", "optimize", "--steps", "2", "--loss-term", "foo=1", "--device", "cpu"],
    )
    assert result.exit_code != 0 and "no loss named 'foo'" in str(result.exception)
    assert "inverting" not in result.output and not out.exists()


def test_an_interrupted_folder_inversion_resumes_to_the_same_outputs(
    tiny_run, tiny_inverter, photos, tmp_path, monkeypatch
):
    import ganenc.inversion as inversion

    options = {"refine": "optimize", "steps": 2, "batch_size": 2}  # 4 photos: two chunks
    whole = inversion.invert_folder(tiny_inverter, photos, tmp_path / "whole", **options)
    calls, real = [], Inverter.invert

    def interrupted(self, images, **kwargs):
        calls.append(images.shape[0])
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C in the second chunk
        return real(self, images, **kwargs)

    monkeypatch.setattr(Inverter, "invert", interrupted)
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        inversion.invert_folder(tiny_inverter, photos, cut, **options)
    assert (cut / "unfinished.json").is_file() and not (cut / "index.json").exists()
    assert sorted(p.name for p in (cut / "latents").iterdir()) == ["photo0.pt", "photo1.pt"]
    with pytest.raises(GanencError, match="holds an unfinished inversion; add --resume"):
        inversion.invert_folder(tiny_inverter, photos, cut, **options)
    damaged = tmp_path / "damaged"
    shutil.copytree(cut, damaged)
    (damaged / "metrics.csv").write_text("image,psnr\nphoto0.png,not-a-number\n")
    with pytest.raises(GanencError, match="metrics.csv is damaged; start again"):
        inversion.invert_folder(tiny_inverter, photos, damaged, **options, resume=True)
    with pytest.raises(GanencError, match="started with other steps"):
        inversion.invert_folder(tiny_inverter, photos, cut, refine="optimize", steps=3, resume=True)
    with pytest.raises(GanencError) as caught:  # a refinement on one side: named once
        inversion.invert_folder(tiny_inverter, photos, cut, refine="none", resume=True)
    assert "refinement" in str(caught.value) and "refinement.loss" not in str(caught.value)
    # what shapes the refinement but is not a step count is held to the first run's too
    for attribute, value, named in (
        ("optimize_lr", 0.5, r"refinement.lr \(refinement.lr: 0.01\)"),
        ("anchor_weight", 3.0, "refinement.anchor_weight"),
    ):
        monkeypatch.setattr(tiny_inverter, attribute, value)
        with pytest.raises(GanencError, match=f"started with other {named}"):
            inversion.invert_folder(tiny_inverter, photos, cut, **options, resume=True)
        monkeypatch.undo()
        monkeypatch.setattr(Inverter, "invert", interrupted)
    resumed = inversion.invert_folder(tiny_inverter, photos, cut, **options, resume=True)
    assert calls == [2, 2, 2]  # the first chunk is not inverted again
    assert resumed["images"] == whole["images"] and resumed["skipped"] == {}
    assert resumed["metrics"]["psnr"]["mean"] == pytest.approx(whole["metrics"]["psnr"]["mean"])
    for entry in whole["images"]:
        before = read_latent_file(tmp_path / "whole" / entry["latents"])["latents"]
        after = read_latent_file(cut / entry["latents"])["latents"]
        assert all(torch.equal(before[k], after[k]) for k in before)
    assert (cut / "grid.png").read_bytes() == (tmp_path / "whole" / "grid.png").read_bytes()
    rows = list(csv.DictReader((cut / "metrics.csv").open()))
    assert [row["image"] for row in rows] == [e["image"] for e in whole["images"]]
    assert not (cut / "unfinished.json").exists()
    again = CliRunner().invoke(
        invert_command,
        ["--encoder", str(tiny_run), "--images", str(photos), "--out", str(cut)]
        + ["--resume", "--refine", "optimize", "--steps", "2", "--device", "cpu"],
    )
    assert again.exit_code != 0 and "finished inversion" in str(again.exception)


def test_the_invert_command_prints_how_to_resume_when_interrupted(
    tiny_run, photos, tmp_path, monkeypatch
):
    import ganenc.inversion as inversion

    monkeypatch.setattr(inversion, "CHUNK_IMAGES", 2)
    calls, real = [], Inverter.invert

    def interrupted(self, images, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, images, **kwargs)

    monkeypatch.setattr(Inverter, "invert", interrupted)
    out = tmp_path / "cut"
    command = ["--encoder", str(tiny_run), "--images", str(photos), "--out", str(out)]
    from ganenc.cli.main import cli

    result = CliRunner().invoke(cli, ["invert", *command, "--device", "cpu"])
    assert result.exit_code == 130 and "Continue with:" in result.output
    assert result.output.rstrip().endswith("--resume")
    monkeypatch.setattr(Inverter, "invert", real)
    resumed = CliRunner().invoke(invert_command, [*command, "--device", "cpu", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert len(json.loads((out / "index.json").read_text())["images"]) == 4


def test_a_per_image_refinement_is_written_image_by_image(
    tiny_inverter, photos, tmp_path, monkeypatch
):
    import ganenc.inversion as inversion

    sizes, real = [], Inverter.invert

    def counted(self, images, **kwargs):
        sizes.append(images.shape[0])
        return real(self, images, **kwargs)

    monkeypatch.setattr(Inverter, "invert", counted)
    inversion.invert_folder(tiny_inverter, photos, tmp_path / "ft", refine="finetune", steps=1)
    assert sizes == [1, 1, 1, 1]  # an interruption loses at most the image in progress
    inversion.invert_folder(
        tiny_inverter, photos, tmp_path / "opt", refine="optimize", steps=1, batch_size=3
    )
    assert sizes[4:] == [3, 1]


def test_the_recorded_encoder_is_found_from_anywhere(tiny_run, monkeypatch):
    monkeypatch.chdir(tiny_run.parent)
    inverter = Inverter.from_encoder(tiny_run.name, device="cpu")
    assert inverter.encoder_path == str(tiny_run.resolve() / "encoder.pt")
