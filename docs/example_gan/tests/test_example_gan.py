"""The example GAN plugin, installed as a real distribution, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import ganenc
from ganenc.cli.main import cli

HERE = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Weights tags are fetched into a throw-away cache, never the user's."""
    monkeypatch.setenv("GANENC_HOME", str(tmp_path / "ganenc-home"))


def test_it_is_found_through_its_entry_point():
    rows = json.loads(CliRunner().invoke(cli, ["list", "--json"]).output)
    mine = {(row["kind"], row["name"]) for row in rows if row["plugin"] == "example_gan"}
    assert mine == {("generator", "tinygan"), ("encoder", "tinygan-encoder")}
    assert ganenc.get_registry().get("weights", "tinygan:demo").distribution == (
        "ganenc-example-gan"
    )


def test_the_weights_tag_loads_the_checkpoint_file_it_points_at():
    from ganenc_example_gan.generator import build_tinygan

    generator = ganenc.load_generator("tinygan", "tinygan:demo")
    assert generator.resolution == 32 and not generator.training
    expected = build_tinygan(seed=1).state_dict()  # what the shipped file was written from
    for key, value in generator.model.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_a_checkpoint_file_fixes_the_architecture(tmp_path):
    from ganenc_example_gan.generator import build_tinygan, save_tinygan

    path = tmp_path / "g.pt"
    save_tinygan(build_tinygan(resolution=16, channels=4, seed=3), path)
    generator = ganenc.load_generator("tinygan", str(path))
    assert generator.geometry().encoder_latents == {"w_plus": (3, 16)}
    with pytest.raises(ganenc.ConfigError, match=r"resolution=32 \(the file gives 16\)"):
        ganenc.load_generator("tinygan", str(path), resolution=32)
    with pytest.raises(ganenc.ConfigError, match=r"channels=8 \(used only for random weights\)"):
        ganenc.load_generator("tinygan", str(path), channels=8)
    assert ganenc.load_generator("tinygan", str(path), resolution=16).resolution == 16
    with pytest.raises(ganenc.ConfigError, match="unknown setting 'channel'"):
        ganenc.load_generator("tinygan", channel=4)


def test_the_example_config_trains_and_inverts(tmp_path):
    run = tmp_path / "run"
    config = str(HERE / "train.yaml")
    result = CliRunner().invoke(cli, ["train", "--config", config, "--out", str(run)])
    assert result.exit_code == 0, result.output
    settings = json.loads((run / "config.json").read_text())
    assert settings["loss"]["image_terms"] == {"mse": 5.0, "cosine": 3.0, "ssim": 1.0}
    assert settings["encoder_options"] == {"width": 8}
    encoder = ganenc.load_encoder(run / "encoder.pt")
    assert encoder.ganenc_meta["builder"] == "tinygan-encoder"
    images = tmp_path / "images"
    images.mkdir()
    generator = ganenc.load_generator("tinygan", "tinygan:demo")
    from ganenc.images import save_image

    with torch.no_grad():
        save_image(generator.synthesize(generator.sample_latents(1, seed=5))[0], images / "a.png")
    out = tmp_path / "inverted"
    result = CliRunner().invoke(
        cli, ["invert", "--encoder", str(run), "--images", str(images), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (out / "latents" / "a.pt").is_file()


def test_the_hook_reference_shows_this_very_config():
    hooks = (HERE.parent / "hooks.md").read_text(encoding="utf-8")
    assert "```yaml\n" + (HERE / "train.yaml").read_text(encoding="utf-8") + "```" in hooks
