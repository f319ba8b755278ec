"""Both public PGGAN formats reproduce the reference implementations' outputs (shared fixtures)."""

from __future__ import annotations

import pickle

import pytest
import torch

import ganenc


def _max_error(adapter, z: torch.Tensor, expected: torch.Tensor) -> float:
    with torch.no_grad():
        image = adapter.synthesize({"z": z})
    assert image.shape == expected.shape and image.dtype == torch.float32
    return (image - expected).abs().max().item()


def _gan_zoo_file(fixture, path, config=None, net_g=None):
    state = fixture["state"]
    stored = fixture["manifest"]["config"]["checkpoint_config"] if config is None else config
    ckpt = {"config": stored, "netG": net_g or state, "netD": {}, "avgG": state}
    torch.save(ckpt, path)
    return path


def test_gan_zoo_fully_grown_matches_reference(gan_zoo_fixture, tmp_path):
    path = _gan_zoo_file(gan_zoo_fixture, tmp_path / "celebaHQ_s3.pth")
    adapter = ganenc.load_generator("pggan", path)
    assert (adapter.resolution, adapter.z_dim) == (32, 512)
    assert adapter.config.channels == (64, 64, 48, 32)
    assert (adapter.checkpoint_format, adapter.state_key) == ("pytorch_GAN_zoo", "avgG")
    cases = gan_zoo_fixture["cases"]
    error = _max_error(adapter, cases["z"], cases["image"])
    print(f"pggan_gan_zoo fully_grown image: max abs error {error:.3g}")
    assert error < gan_zoo_fixture["tolerance"]["image"]


def test_gan_zoo_accepts_z_as_n_by_z_by_1_by_1(gan_zoo_fixture, tmp_path):
    adapter = ganenc.load_generator("pggan", _gan_zoo_file(gan_zoo_fixture, tmp_path / "g.pth"))
    cases = gan_zoo_fixture["cases"]
    error = _max_error(adapter, cases["z"][:, :, None, None], cases["image"])
    assert error < gan_zoo_fixture["tolerance"]["image"]


def test_gan_zoo_config_pickled_as_object_loads_without_its_code(
    gan_zoo_fixture, fake_gan_zoo_module, tmp_path
):
    config = fake_gan_zoo_module.BaseConfig()
    for key, value in gan_zoo_fixture["manifest"]["config"]["checkpoint_config"].items():
        setattr(config, key, value)
    path = tmp_path / "object_config.pth"
    state = gan_zoo_fixture["state"]
    fake_gan_zoo_module({"config": config, "netG": state, "netD": {}, "avgG": state}, path)
    with pytest.raises(pickle.UnpicklingError, match="models.utils.config"):
        torch.load(path, weights_only=True)  # plain weights_only refuses the config object
    adapter = ganenc.load_generator("pggan", path)
    cases = gan_zoo_fixture["cases"]
    assert _max_error(adapter, cases["z"], cases["image"]) < gan_zoo_fixture["tolerance"]["image"]


def test_gan_zoo_object_config_fields_are_used(gan_zoo_fixture, fake_gan_zoo_module, tmp_path):
    """alpha and the loss criterion come from the object config (shapes cannot tell them)."""
    config = fake_gan_zoo_module.BaseConfig()
    config.alpha = 0.25
    config.lossCriterion = "DCGAN"
    path = tmp_path / "growing.pth"
    state = gan_zoo_fixture["state"]
    fake_gan_zoo_module({"config": config, "netG": state, "netD": {}, "avgG": state}, path)
    adapter = ganenc.load_generator("pggan", path)
    assert adapter.config.lod == 0.25 and adapter.config.final_tanh
    image = adapter.synthesize({"z": gan_zoo_fixture["cases"]["z"]})
    assert image.abs().max() <= 1.0


def test_gan_zoo_uses_avg_g_when_present(gan_zoo_fixture, tmp_path):
    other = {k: v * 0.5 + 0.1 for k, v in gan_zoo_fixture["state"].items()}
    path = _gan_zoo_file(gan_zoo_fixture, tmp_path / "two.pth", net_g=other)
    cases = gan_zoo_fixture["cases"]
    tolerance = gan_zoo_fixture["tolerance"]["image"]
    averaged = ganenc.load_generator("pggan", path)
    assert averaged.state_key == "avgG"
    assert _max_error(averaged, cases["z"], cases["image"]) < tolerance
    raw = ganenc.load_generator("pggan", path, averaged=False)
    assert raw.state_key == "netG"
    assert _max_error(raw, cases["z"], cases["image"]) > 100 * tolerance
    # A file with only netG still loads.
    torch.save({"config": {}, "netG": gan_zoo_fixture["state"]}, tmp_path / "net_g_only.pth")
    only = ganenc.load_generator("pggan", tmp_path / "net_g_only.pth")
    assert only.state_key == "netG"
    assert _max_error(only, cases["z"], cases["image"]) < tolerance


def test_gan_zoo_legacy_keys_and_data_parallel_prefix(gan_zoo_fixture, tmp_path):
    state = gan_zoo_fixture["state"]
    legacy = {k.replace(".module.", "."): v for k, v in state.items()}
    parallel = {f"module.{k}": v for k, v in state.items()}
    cases = gan_zoo_fixture["cases"]
    for name, variant in (("legacy", legacy), ("parallel", parallel)):
        torch.save({"config": {}, "netG": variant, "avgG": variant}, tmp_path / f"{name}.pth")
        adapter = ganenc.load_generator("pggan", tmp_path / f"{name}.pth")
        assert _max_error(adapter, cases["z"], cases["image"]) < 2e-4, name


def test_genforce_cases_match_reference(genforce_fixture, tmp_path):
    path = tmp_path / "pggan_fixture32.pth"
    torch.save({"generator_smooth": genforce_fixture["state"]}, path)
    adapter = ganenc.load_generator("pggan", path)
    assert (adapter.resolution, adapter.z_dim) == (32, 512)
    assert adapter.config.channels == (64, 64, 32, 16)
    assert (adapter.checkpoint_format, adapter.state_key) == ("genforce", "generator_smooth")
    cases = genforce_fixture["cases"]
    for case, z_key in (("a", "z"), ("e", "e_z")):
        error = _max_error(adapter, cases[z_key], cases[f"{case}_image"])
        print(f"pggan_genforce case {case}: max abs error {error:.3g}")
        assert error <= genforce_fixture["tolerance"][f"{case}_image"], case


def test_genforce_prefers_generator_smooth_and_reads_runner_layout(genforce_fixture, tmp_path):
    state = genforce_fixture["state"]
    other = {k: (v * 0.5 + 0.1 if k != "lod" else v) for k, v in state.items()}
    cases = genforce_fixture["cases"]
    tolerance = genforce_fixture["tolerance"]["a_image"]

    torch.save(
        {"generator": other, "generator_smooth": state, "discriminator": {}}, tmp_path / "z.pth"
    )
    assert (
        _max_error(ganenc.load_generator("pggan", tmp_path / "z.pth"), cases["z"], cases["a_image"])
        <= tolerance
    )
    raw = ganenc.load_generator("pggan", tmp_path / "z.pth", averaged=False)
    assert raw.state_key == "generator"
    assert _max_error(raw, cases["z"], cases["a_image"]) > 100 * tolerance

    torch.save({"generator": state}, tmp_path / "g.pth")
    assert (
        _max_error(ganenc.load_generator("pggan", tmp_path / "g.pth"), cases["z"], cases["a_image"])
        <= tolerance
    )

    runner = {
        "models": {
            "generator": other,
            "generator_smooth": {f"module.{k}": v for k, v in state.items()},
        },
        "running_metadata": {"iter": 10},
    }
    torch.save(runner, tmp_path / "runner.pth")
    adapter = ganenc.load_generator("pggan", tmp_path / "runner.pth")
    assert _max_error(adapter, cases["z"], cases["a_image"]) <= tolerance

    torch.save(state, tmp_path / "bare.pth")  # a bare state dict
    adapter = ganenc.load_generator("pggan", tmp_path / "bare.pth")
    assert adapter.state_key == ""
    assert _max_error(adapter, cases["z"], cases["a_image"]) <= tolerance
