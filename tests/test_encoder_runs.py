"""One way to open a trained encoder run, and one per-image fine-tuning (issue 19, items 1-2)."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

import ganenc
from ganenc.cli.main import cli
from ganenc.encoder_runs import EncoderRun
from ganenc.inversion import Inverter
from ganenc.latents import read_latents
from ganenc.training.finetune import Finetuner
from ganenc.training.settings import FinetuneSettings

pytest_plugins = ("inversion_fixtures",)


def _cli(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def reads(monkeypatch):
    """Counts the reads of encoder files."""
    import ganenc.encoders

    paths = []
    original = ganenc.encoders.read_encoder_checkpoint

    def counting(path, *args, **kwargs):
        paths.append(path)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(ganenc.encoders, "read_encoder_checkpoint", counting)
    return paths


def test_every_command_reads_the_encoder_file_once(tiny_run, photos, tmp_path, reads):
    Inverter.from_encoder(tiny_run, device="cpu")
    assert len(reads) == 1
    Finetuner(
        FinetuneSettings(
            encoder=tiny_run, images=photos, out=tmp_path / "ft", device="cpu", progress=False
        )
    )
    assert len(reads) == 2


def test_finetune_and_invert_open_a_run_with_the_same_defaults(photos, tmp_path):
    """An encoder file that records neither settings nor a run folder: pre-training's defaults."""
    generator = ganenc.load_generator("stylegan2", resolution=32, channel_max=32)
    encoder = ganenc.build_encoder(generator, max_channels=32)
    encoder.ganenc_meta["generator"] = {
        "gan": "stylegan2",
        "checkpoint": "random",
        "generator_options": {"resolution": 32, "channel_max": 32},
    }
    path = ganenc.save_encoder(encoder, tmp_path / "bare" / "encoder.pt")
    opened = EncoderRun.open(path)
    assert opened.attention == "center" and opened.truncation == {
        "truncation": 0.7,
        "truncation_layers": 8,
    }
    inverter = Inverter.from_encoder(path, device="cpu", loss={"image_terms": {"mse": 1.0}})
    tuner = Finetuner(
        FinetuneSettings(
            encoder=path,
            images=photos,
            out=tmp_path / "ft",
            device="cpu",
            progress=False,
            loss={"image_terms": {"mse": 1.0}},
        )
    )
    assert type(inverter.cropper) is type(tuner.cropper) and inverter.cropper is not None
    assert inverter.synthesis_options == tuner.synthesis_options
    assert inverter.loss.settings == tuner.loss.settings


def test_a_partial_loss_override_keeps_the_training_runs_terms(tiny_run):
    opened = EncoderRun.open(tiny_run, loss={"latent_scale": 0.5})
    assert opened.loss_settings.image_terms == {"mse": 5.0}  # the run's, not the defaults
    assert opened.loss_settings.latent_scale == 0.5


def test_a_loss_override_that_drops_a_term_drops_its_recorded_options():
    """finetune --loss-option 'image_terms={mse: 1}' on a run with SSIM options was refused."""
    from ganenc.encoder_runs import resolve_loss

    trained = {"image_terms": {"mse": 5, "ssim": 1}, "term_options": {"ssim": {"window": 5}}}
    resolved = resolve_loss(trained, {"image_terms": {"mse": 1}})
    assert resolved.image_terms == {"mse": 1} and resolved.term_options == {}
    kept = resolve_loss(trained, {"image_terms": {"ssim": 2}})
    assert kept.term_options == {"ssim": {"window": 5}}
    with pytest.raises(ganenc.errors.ConfigError, match="terms not in image_terms"):
        resolve_loss(trained, {"image_terms": {"mse": 1}, "term_options": {"ssim": {}}})


def test_per_image_finetune_and_invert_refine_finetune_give_the_same_latents(
    tiny_run, photos, tmp_path
):
    common = ["--device", "cpu", "--no-progress"]
    _cli(
        "finetune", "--encoder", tiny_run, "--images", photos, "--mode", "per-image",
        "--iterations", 3, "--out", tmp_path / "ft", *common,
    )  # fmt: skip
    _cli(
        "invert", "--encoder", tiny_run, "--images", photos, "--refine", "finetune",
        "--steps", 3, "--out", tmp_path / "inv", *common,
    )  # fmt: skip
    tuned, inverted = read_latents(tmp_path / "ft"), read_latents(tmp_path / "inv")
    assert tuned.names == inverted.names and len(tuned.names) == 4
    for key, value in tuned.latents.items():
        assert torch.equal(value, inverted.latents[key]), key
    # the per-image fine-tuning did move the latents away from the plain encoder's
    plain = Inverter.from_encoder(tiny_run, device="cpu").invert(
        torch.stack([_photo(photos, n) for n in tuned.names])
    )
    assert not torch.equal(plain.latents["w_plus"], tuned.latents["w_plus"])
    assert tuned.generator_spec() == inverted.generator_spec()


def _photo(folder, stem):
    from ganenc.data import load_image

    return load_image(folder / f"{stem}.png", 32)


def test_another_checkpoint_drops_the_recorded_random_architecture_options(tiny_run, tmp_path):
    """The tiny run records -O resolution=32 -O channel_max=32 of a random generator; given the
    same generator as a file, those options do not apply to it (load_generator refuses
    architecture options next to a file), while an explicit -O still reaches the loader."""
    from ganenc_stylegan.formats import save_rosinality

    recorded = EncoderRun.open(tiny_run)
    path = save_rosinality(recorded.generator.model, tmp_path / "g.pt")
    run = EncoderRun.open(tiny_run, checkpoint=str(path))
    assert run.generator_spec.generator_options == {}
    assert run.generator.checkpoint == str(path)
    latents = recorded.generator.sample_latents(2, seed=0)
    assert torch.equal(recorded.generator.synthesize(latents), run.generator.synthesize(latents))
    with pytest.raises(ganenc.ConfigError, match=r"channel_max=16 \(used only for random"):
        EncoderRun.open(tiny_run, checkpoint=str(path), generator_options={"channel_max": 16})


def test_an_option_override_replaces_only_its_own_key(tiny_run):
    """-O seed=5 on a run recorded with resolution=32, channel_max=32 keeps those two (it
    replaced every recorded option, so the generator became a 256 px default and was refused)."""
    run = EncoderRun.open(tiny_run, generator_options={"seed": 5})
    assert run.generator_spec.generator_options == {"resolution": 32, "channel_max": 32, "seed": 5}
    assert run.generator.resolution == 32
