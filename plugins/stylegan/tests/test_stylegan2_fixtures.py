"""Reference compatibility: the public StyleGAN2 fixtures, loaded through ``ganenc.load_generator``.

Each fixture's weights are rebuilt from its manifest, saved in the documented
checkpoint layout, loaded by our loader (architecture inferred from the file)
and every reference case is reproduced through the adapter API within the
manifest's tolerance.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import ganenc
from ganenc.testing.fixtures import build_state_dict, load_manifest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _no_tf32():
    """On a GPU the bounds hold only without TF32."""
    previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _check(actual: torch.Tensor, expected: torch.Tensor, tolerance: float, what: str) -> float:
    error = (actual.detach().cpu().float() - expected).abs().max().item()
    print(f"{what}: max abs error {error:.3g} (tolerance {tolerance})")
    assert actual.shape == expected.shape, what
    assert error < tolerance, f"{what}: max abs error {error} >= {tolerance}"
    return error


# -- rosinality ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rosinality(tmp_path_factory):
    folder = FIXTURES / "stylegan2_rosinality"
    manifest = load_manifest(folder / "manifest.json")
    state = build_state_dict(manifest)
    latent_avg = build_state_dict(manifest, "extra_entries")["latent_avg"]
    path = tmp_path_factory.mktemp("rosinality") / "fixture.pt"
    torch.save({"g_ema": state, "latent_avg": latent_avg}, path)
    generator = ganenc.load_generator("stylegan2", path).to(_device())
    cases = torch.load(folder / "cases.pt", weights_only=True)
    return generator, cases, manifest["tolerance"]["max_abs"]


def test_rosinality_architecture_is_inferred(rosinality) -> None:
    generator, cases, _ = rosinality
    assert generator.family == "stylegan2"
    assert (generator.resolution, generator.num_ws, generator.w_dim, generator.z_dim) == (
        32,
        8,
        512,
        512,
    )
    assert generator.model.has_w_avg
    torch.testing.assert_close(generator.w_avg.cpu(), cases["latent_avg"], atol=0, rtol=0)


@torch.no_grad()
def test_rosinality_a_z_to_image(rosinality) -> None:
    g, cases, tol = rosinality
    image = g.synthesize({"z": cases["a_z"]}, truncation=1.0)
    _check(image, cases["a_image"], tol["a_image"], "rosinality a_image")


@torch.no_grad()
def test_rosinality_a_mapping(rosinality) -> None:
    g, cases, tol = rosinality
    _check(g.mapping(cases["a_z"]), cases["a_w"], tol["a_w"], "rosinality a_w")


@torch.no_grad()
def test_rosinality_b_w_plus_into_synthesis(rosinality) -> None:
    g, cases, tol = rosinality
    image = g.synthesize({"w_plus": cases["b_wplus"]})
    _check(image, cases["b_image"], tol["b_image"], "rosinality b_image")


@torch.no_grad()
def test_rosinality_c_truncation_toward_latent_avg(rosinality) -> None:
    g, cases, tol = rosinality
    image = g.synthesize({"z": cases["a_z"]}, truncation=0.7)
    _check(image, cases["c_image"], tol["c_image"], "rosinality c_image")
    targets = g.encoder_targets({"z": cases["a_z"]}, truncation=0.7)
    _check(g.synthesize(targets), cases["c_image"], tol["c_image"], "rosinality c via targets")


@torch.no_grad()
def test_rosinality_d_style_mixing(rosinality) -> None:
    g, cases, tol = rosinality
    inject = int(cases["d_inject_index"])
    w1, w2 = g.mapping(cases["a_z"]), g.mapping(cases["d_z2"])
    w_plus = torch.cat(
        [w1[:, None].repeat(1, inject, 1), w2[:, None].repeat(1, g.num_ws - inject, 1)], dim=1
    )
    _check(g.synthesize({"w_plus": w_plus}), cases["d_image"], tol["d_image"], "rosinality d")


# -- genforce ------------------------------------------------------------------------------


def _genforce_manifest():
    manifest = load_manifest(FIXTURES / "stylegan2_genforce" / "manifest.json")
    return manifest, build_state_dict(manifest)


@pytest.fixture(scope="module")
def genforce(tmp_path_factory):
    manifest, state = _genforce_manifest()
    path = tmp_path_factory.mktemp("genforce") / "fixture.pth"
    torch.save({"generator_smooth": state}, path)
    generator = ganenc.load_generator("stylegan2", path).to(_device())
    cases = torch.load(FIXTURES / "stylegan2_genforce" / "cases.pt", weights_only=True)
    return generator, cases, manifest["tolerance"]["max_abs"]


def test_genforce_architecture_is_inferred(genforce) -> None:
    g, _, _ = genforce
    manifest, state = _genforce_manifest()
    assert (g.resolution, g.num_ws, g.w_dim, g.z_dim) == (32, 8, 512, 512)
    assert g.model.config.channels == {
        int(k): v for k, v in manifest["derived"]["channels"].items()
    }
    torch.testing.assert_close(g.w_avg.cpu(), state["truncation.w_avg"], atol=0, rtol=0)


@torch.no_grad()
def test_genforce_a_z_to_image_and_w(genforce) -> None:
    g, cases, tol = genforce
    _check(g.mapping(cases["z"]), cases["a_w"], tol["a_w"], "genforce a_w")
    _check(g.synthesize({"z": cases["z"]}), cases["a_image"], tol["a_image"], "genforce a_image")


@pytest.mark.parametrize(("case", "psi", "layers"), [("b", 0.7, 8), ("d", 0.5, 3)])
@torch.no_grad()
def test_genforce_truncation(genforce, case, psi, layers) -> None:
    g, cases, tol = genforce
    targets = g.encoder_targets({"z": cases["z"]}, truncation=psi, truncation_layers=layers)
    _check(targets["w_plus"], cases[f"{case}_wp"], tol[f"{case}_wp"], f"genforce {case}_wp")
    image = g.synthesize({"z": cases["z"]}, truncation=psi, truncation_layers=layers)
    _check(image, cases[f"{case}_image"], tol[f"{case}_image"], f"genforce {case}_image")
    _check(g.synthesize(targets), cases[f"{case}_image"], tol[f"{case}_image"], "via targets")


@torch.no_grad()
def test_genforce_c_w_plus_into_synthesis(genforce) -> None:
    g, cases, tol = genforce
    image = g.synthesize({"w_plus": cases["c_wp"]})
    _check(image, cases["c_image"], tol["c_image"], "genforce c_image")


@pytest.mark.parametrize("layout", ["generator", "runner"])
@torch.no_grad()
def test_other_genforce_layouts_load_the_same_generator(genforce, tmp_path, layout) -> None:
    """Zoo files with only "generator", and the runner's nested, "module."-prefixed layout."""
    g, cases, tol = genforce
    _, state = _genforce_manifest()
    if layout == "generator":
        checkpoint = {"generator": state, "discriminator": {}}
    else:
        prefixed = {f"module.{key}": value for key, value in state.items()}
        checkpoint = {"models": {"generator_smooth": prefixed}, "running_metadata": {"iter": 1}}
    torch.save(checkpoint, tmp_path / "other.pth")
    other = ganenc.load_generator("stylegan2", tmp_path / "other.pth")
    image = other.synthesize({"w_plus": cases["c_wp"]})
    _check(image, cases["c_image"], tol["c_image"], f"genforce {layout} c_image")
