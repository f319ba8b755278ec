"""`ganenc sample` on a StyleGAN2 checkpoint file: grid, latents, truncation."""

from __future__ import annotations

import numpy as np
import torch
from click.testing import CliRunner
from PIL import Image

import ganenc
from ganenc.cli.main import cli
from ganenc.images import to_uint8
from ganenc_stylegan.formats import save_rosinality


def test_sample_writes_the_truncated_images_and_their_latents(tmp_path):
    generator = ganenc.load_generator("stylegan2", resolution=32, channel_max=32, seed=3)
    checkpoint = save_rosinality(generator.model, tmp_path / "g.pt")
    out = tmp_path / "grid.png"
    result = CliRunner().invoke(
        cli,
        ["sample", "--gan", "stylegan2", "--checkpoint", str(checkpoint), "-n", "4", "--seed", "7",
         "--truncation", "0.7", "--truncation-layers", "4", "--out", str(out), "--save-latents",
         "--device", "cpu"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = torch.load(out.with_suffix(".latents.pt"), weights_only=True)
    assert saved["latents"]["z"].shape == (4, 512)
    assert (saved["truncation"], saved["truncation_layers"]) == (0.7, 4)
    loaded = ganenc.load_generator("stylegan2", str(checkpoint))
    with torch.no_grad():
        expected = loaded.synthesize(saved["latents"], truncation=0.7, truncation_layers=4)
    grid = torch.from_numpy(np.asarray(Image.open(out)))
    first = grid[2 : 2 + 32, 2 : 2 + 32]  # the first cell, after the 2 px padding
    assert (first.int() - to_uint8(expected[:1])[0].int()).abs().max() <= 1


def test_an_option_the_checkpoint_contradicts_is_one_line_and_writes_nothing(tmp_path):
    generator = ganenc.load_generator("stylegan2", resolution=32, channel_max=32, seed=3)
    checkpoint = save_rosinality(generator.model, tmp_path / "g.pt")
    out = tmp_path / "grid.png"
    command = ["sample", "--gan", "stylegan2", "--checkpoint", str(checkpoint), "-n", "2",
               "--out", str(out), "--device", "cpu"]  # fmt: skip
    result = CliRunner().invoke(cli, [*command, "-O", "resolution=64", "-O", "channel_base=99"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "resolution=64 (the file gives 32)" in result.output
    assert "channel_base=99 (used only for random weights)" in result.output
    assert not out.exists()  # refused, not a 32 px grid for a user who asked for 64
    restated = CliRunner().invoke(cli, [*command, "-O", "resolution=32"])
    assert restated.exit_code == 0, restated.output
    assert Image.open(out).size == (70, 36)  # two 32 px images in one row, 2 px padding


def test_a_weights_tag_names_its_family_so_gan_may_be_left_out(tmp_path):
    out = tmp_path / "grid.png"
    command = ["sample", "--checkpoint", "stylegan2:emoji-64", "-n", "2", "--device", "cpu"]
    result = CliRunner().invoke(cli, [*command, "--out", str(out), "--save-latents"])
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (134, 68)  # two 64 px emoji in one row, 2 px padding
    assert torch.load(out.with_suffix(".latents.pt"), weights_only=True)["gan"] == "stylegan2"
    other = tmp_path / "other.png"
    contradicted = CliRunner().invoke(cli, [*command, "--gan", "stylegan3", "--out", str(other)])
    assert contradicted.exit_code != 0 and "Traceback" not in contradicted.output
    assert "are for the 'stylegan2' generator, not 'stylegan3'" in contradicted.output
    assert not other.exists()


def test_an_output_name_no_image_format_writes_is_refused_before_sampling(tmp_path):
    out = tmp_path / "grid.txt"
    result = CliRunner().invoke(
        cli, ["sample", "--checkpoint", "stylegan2:emoji-64", "-n", "2", "--out", str(out)]
    )
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "must end in one of" in result.output and ".png" in result.output
    assert "unexpected error" not in result.output and not out.exists()
