"""What a Python caller hands the inverter, the evaluation and the generators is checked first.

Each case used to run on (0..255 images, ignored options, NaN images) or fail deep inside
with a raw TypeError/ValueError/AttributeError; now it is one ConfigError before any work.
"""

from __future__ import annotations

import math

import pytest
import torch

import ganenc
from ganenc.data import pixel_scale_problem
from ganenc.errors import ConfigError
from ganenc.evaluation import evaluate_images
from ganenc.inversion import Inverter, invert

TINY = {"resolution": 32, "channel_base": 256, "channel_max": 16, "z_dim": 16, "w_dim": 16}


@pytest.fixture
def generator():
    return ganenc.load_generator("stylegan2", **TINY)


@pytest.fixture
def encoder(generator):
    torch.manual_seed(0)
    return ganenc.build_encoder(generator, start_channels=8, max_channels=16)


@pytest.fixture
def inverter(encoder, generator):
    return Inverter(encoder, generator, device="cpu")


@pytest.fixture
def images():
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1


# -- the [-1, 1] scale -------------------------------------------------------------------------


def test_bytes_with_a_dark_median_are_refused_and_generator_overshoot_is_not(inverter, images):
    """A bright square on black (0..255) has a median of 0: it went through as [-1, 1]."""
    patch = torch.zeros(2, 3, 32, 32)
    patch[:, :, 8:24, 8:24] = 255.0
    with pytest.raises(ConfigError, match=r"largest \|value\| of 255.*x / 127.5 - 1"):
        inverter.invert(patch)
    assert pixel_scale_problem(images * 4) is None  # generators overshoot [-1, 1] (emoji: ~3.8)
    assert pixel_scale_problem(images * 20) is None  # tiny random StyleGAN1s reach ~22


# -- ganenc.invert -----------------------------------------------------------------------------


def test_invert_refuses_options_it_would_ignore_with_an_inverter(inverter, images):
    with pytest.raises(ConfigError, match="device, optimize_lr open an encoder run"):
        invert(images, inverter, device="cuda", optimize_lr=-5)
    assert invert(images, inverter).count == 2


@pytest.mark.parametrize("given", ["module", None, 3])
def test_invert_takes_a_path_or_an_inverter(given, encoder, images):
    encoder_argument = encoder if given == "module" else given
    with pytest.raises(ConfigError, match="encoder must be a run folder or encoder file path"):
        invert(images, encoder_argument)


# -- Inverter ----------------------------------------------------------------------------------


def test_an_encoder_of_another_geometry_is_refused_at_construction(encoder):
    """It failed at the first image, with a raw ValueError from the adaptive encoder."""
    larger = ganenc.load_generator("stylegan2", **{**TINY, "resolution": 64})
    with pytest.raises(ConfigError, match="trained for stylegan2 at 32 px.*is stylegan2 at 64 px"):
        Inverter(encoder, larger, device="cpu")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seed": -1}, "seed = -1: Input should be greater than or equal to 0"),
        ({"seed": 1.7}, "seed = 1.7: Input should be a valid integer"),
        ({"seed": "x"}, "seed = 'x': give a number, not a str"),
        ({"loss": "mse"}, "loss must be a LossSettings, its dict"),
        ({"loss": {"image_terms": {"mse": 1}, "bogus": 1}}, "unknown setting 'bogus'"),
        ({"cropper": 3}, "cropper must be a registered cropper's name"),
    ],
)
def test_inverter_arguments_are_checked_when_it_is_made(encoder, generator, options, message):
    with pytest.raises(ConfigError, match=message):
        Inverter(encoder, generator, device="cpu", **options)


@pytest.mark.parametrize(
    ("encoder_given", "generator_given", "message"),
    [
        ("enc.pt", None, "encoder must be an encoder module .* Inverter.from_encoder"),
        (None, "stylegan2", "generator must be a generator adapter"),
    ],
)
def test_inverter_takes_modules(encoder, generator, encoder_given, generator_given, message):
    with pytest.raises(ConfigError, match=message):
        Inverter(encoder_given or encoder, generator_given or generator, device="cpu")


def test_a_cropper_may_be_named_and_a_loss_given_as_a_dict(encoder, generator, images):
    from ganenc.losses.options import LossSettings

    named = Inverter(
        encoder, generator, device="cpu", cropper="center", loss={"image_terms": {"mse": 1}}
    )
    assert type(named.cropper).__name__ == "CenterCropper"
    assert named.cropper_spec == {"attention": "center", "options": {}}
    assert isinstance(named._loss_settings, LossSettings)
    assert named.invert(images, refine="optimize", steps=1).steps == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": "8"}, "batch_size = '8': give a number, not a str"),
        ({"batch_size": None}, "batch_size = None: give a number"),
        ({"batch_size": 2.5}, "batch_size = 2.5: Input should be a valid integer"),
        ({"batch_size": 0}, "batch_size = 0: Input should be greater than or equal to 1"),
        ({"refine": "optimize", "steps": "abc"}, "steps = 'abc': give a number"),
        ({"refine": "optimize", "steps": math.nan}, "steps = nan: Input should be a finite"),
        ({"refine": "optimize", "steps": math.inf}, "steps = inf: Input should be a finite"),
        ({"refine": "optimize", "steps": 0.5}, "steps = 0.5: Input should be a valid integer"),
        ({"refine": "finetune", "steps": 0}, "steps = 0: Input should be greater than or equal"),
    ],
)
def test_invert_arguments_are_checked_before_any_work(inverter, images, options, message):
    with pytest.raises(ConfigError, match=message):
        inverter.invert(images, **options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"refine": "magic"}, "refine must be one of"),
        ({"batch_size": 0}, "batch_size = 0"),
        ({"refine": "optimize", "steps": "3"}, "steps = '3': give a number"),
    ],
)
def test_the_folder_inversion_checks_its_numbers_before_writing(
    inverter, tmp_path, options, message
):
    """A batch size of 0 or text steps failed inside, after the default loss was built."""
    from PIL import Image

    from ganenc.inversion import invert_folder, invert_with_progress

    (tmp_path / "images").mkdir()
    Image.new("RGB", (32, 32), "gray").save(tmp_path / "images" / "a.png")
    with pytest.raises(ConfigError, match=message):
        invert_folder(inverter, tmp_path / "images", tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match=message):
        invert_with_progress(inverter, torch.zeros(1, 3, 32, 32), **options)


def test_no_refinement_still_takes_zero_steps(inverter, images):
    """What ``invert_folder`` and ``eval`` pass without a refinement."""
    assert inverter.invert(images, steps=0, batch_size=1).steps == 0


# -- evaluate_images ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"names": ["x"]}, "1 names for 2 image pairs"),
        ({"names": "ab"}, "names must be a list of image names"),
        ({"real": "bytes"}, r"real: the images have a median \|value\|"),
        ({"real": "nan"}, r"real: image\(s\) \[1\] hold NaN"),
        ({"recon": "one"}, "2 real images but 1 reconstructions"),
        ({"recon": "small"}, r"recon: images must be \[N, 3, 32, 32\]"),
    ],
)
def test_evaluate_images_checks_its_inputs(images, change, message):
    variants = {
        "bytes": images * 127.5 + 127.5,
        "nan": torch.cat([images[:1], images[1:] * math.nan]),
        "one": images[:1],
        "small": images[:, :, :16, :16],
    }
    real = variants.get(change.get("real"), images)
    recon = variants.get(change.get("recon"), images)
    with pytest.raises(ConfigError, match=message):
        evaluate_images(real, recon, change.get("names", ["a", "b"]), metrics=["psnr"])
    report = evaluate_images(images, images * 0.9, ["a", "b"], metrics=["psnr"])
    assert report.names == ["a", "b"] and report.summary["psnr"]["n"] == 2


# -- generator adapters, every family ----------------------------------------------------------

FAMILIES = {
    "stylegan2": TINY,
    "pggan": {"resolution": 32, "fmaps_max": 16},
    "biggan": {"resolution": 32, "channel_width": 8, "z_dim": 16, "num_classes": 10},
}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda g, lat: g.synthesize(lat, truncation=math.nan), "truncation = nan: .*finite"),
        (lambda g, lat: g.synthesize(lat, truncation="0.7"), "truncation = '0.7': give a number"),
        (lambda g, lat: g.encoder_targets(lat, truncation=math.inf), "truncation = inf"),
        (lambda g, lat: g.sample_latents(2, seed="x"), "seed = 'x': give a number"),
        (lambda g, lat: g.sample_latents(2, seed=1.5), "seed = 1.5: Input should be a valid int"),
        (lambda g, lat: g.sample_latents(-1), "n = -1: Input should be greater than or equal"),
        (lambda g, lat: g.sample_latents(2.5), "n = 2.5: Input should be a valid integer"),
        (lambda g, lat: g.average_latents(1, samples=0), "samples = 0: Input should be greater"),
    ],
)
def test_generator_arguments_are_checked_in_every_family(family, call, message):
    generator = ganenc.load_generator(family, **FAMILIES[family])
    latents = generator.sample_latents(2, seed=0)
    with pytest.raises(ConfigError, match=message):
        call(generator, latents)
    assert generator.sample_latents(0, seed=0)[next(iter(latents))].shape[0] == 0
    assert torch.isfinite(generator.synthesize(latents, truncation=0.7)).all()


# -- the package -------------------------------------------------------------------------------


def test_dir_lists_the_lazily_loaded_names():
    listed = dir(ganenc)
    assert {"Inverter", "invert", "build_encoder", "load_encoder", "save_encoder"} <= set(listed)
    assert {"inversion", "weights"} <= set(listed) and "load_generator" in listed
