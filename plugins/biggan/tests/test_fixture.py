"""The reference fixture (huggingface/pytorch-pretrained-BigGAN) reproduced through our loader."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

import ganenc
from ganenc_biggan.adapter import BigGANAdapter
from ganenc_biggan.model import stored_spectral_norm, truncation_statistics

CASES = {"t0400": 0.4, "t0433": 0.433, "t1000": 1.0}


def _max_error(generator, cases, name: str) -> float:
    latents = {"z": cases[f"z_{name}"], "class": cases["class_vector"]}
    with torch.no_grad():
        image = generator.synthesize(latents, truncation=CASES[name])
    expected = cases[f"image_{name}"]
    assert image.shape == expected.shape and image.dtype == torch.float32
    return (image - expected).abs().max().item()


@pytest.fixture(scope="module")
def fixture_generator(biggan_hf_folder):
    return ganenc.load_generator("biggan", str(biggan_hf_folder))


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_case_within_tolerance(fixture_generator, biggan_cases, biggan_manifest, name):
    tolerance = biggan_manifest["tolerance"]["max_abs"][f"image_{name}"]
    assert _max_error(fixture_generator, biggan_cases, name) < tolerance


def test_loaded_geometry_matches_config(fixture_generator, biggan_manifest):
    config = biggan_manifest["config"]
    assert isinstance(fixture_generator, BigGANAdapter)
    assert fixture_generator.family == "biggan"
    assert fixture_generator.resolution == config["output_dim"] == 64
    assert (fixture_generator.z_dim, fixture_generator.num_classes) == (128, 1000)
    assert fixture_generator.geometry().encoder_latents == {"z": (128,), "class": (1000,)}
    assert not any(p.requires_grad for p in fixture_generator.parameters())


def test_bin_path_and_explicit_config_load_the_same(biggan_hf_folder, biggan_cases, tmp_path):
    weights = tmp_path / "weights" / "pytorch_model.bin"
    weights.parent.mkdir()
    shutil.copy(biggan_hf_folder / "pytorch_model.bin", weights)
    config = tmp_path / "elsewhere.json"
    shutil.copy(biggan_hf_folder / "config.json", config)
    by_option = ganenc.load_generator("biggan-deep", str(weights), config=str(config))
    assert _max_error(by_option, biggan_cases, "t0433") < 1e-4

    shutil.copy(config, weights.parent / "config.json")
    beside = ganenc.load_generator("biggan", weights)  # a pathlib.Path works too
    assert _max_error(beside, biggan_cases, "t1000") < 1e-4


def test_statistics_between_rows_use_the_reference_weighting(fixture_generator):
    bn = fixture_generator.model.generator.layers[0].bn_0
    means, variances = bn.running_means, bn.running_vars
    coef, row = math.modf(0.433 / (1 / 50))
    assert int(row) == 21 and coef == pytest.approx(0.65)
    mean, variance = truncation_statistics(means, variances, 0.433)
    torch.testing.assert_close(mean, means[21] * coef + means[22] * (1 - coef))
    torch.testing.assert_close(variance, variances[21] * coef + variances[22] * (1 - coef))
    ordinary = means[21] * (1 - coef) + means[22] * coef
    assert (mean - ordinary).abs().max() > 0.05
    exact_mean, _ = truncation_statistics(means, variances, 0.4)
    torch.testing.assert_close(exact_mean, means[20], rtol=0, atol=0)


def test_spectral_norm_uses_the_stored_estimate_not_the_true_sigma(fixture_generator):
    layer = fixture_generator.model.generator.gen_z
    matrix = layer.weight_orig
    stored_sigma = torch.dot(layer.weight_u, matrix @ layer.weight_v)
    torch.testing.assert_close(layer.weight, matrix / stored_sigma)
    true_sigma = torch.linalg.matrix_norm(matrix, ord=2)
    assert true_sigma / stored_sigma > 1.05  # an exact SVD norm would not reproduce the fixture
    torch.testing.assert_close(
        stored_spectral_norm(matrix, layer.weight_u, layer.weight_v), layer.weight
    )


def test_train_mode_changes_nothing(biggan_hf_folder, biggan_cases):
    generator = ganenc.load_generator("biggan", str(biggan_hf_folder))
    u_before = generator.model.generator.gen_z.weight_u.clone()
    generator.model.train()
    assert _max_error(generator, biggan_cases, "t0400") < 1e-4
    assert torch.equal(generator.model.generator.gen_z.weight_u, u_before)


def test_fixture_config_round_trips(biggan_hf_folder, biggan_manifest):
    from ganenc_biggan.formats import read_config

    config = read_config(biggan_hf_folder / "config.json")
    assert json.loads(config.to_json_string()) == biggan_manifest["config"]
