"""Reference compatibility: NVIDIA's StyleGAN3-T and -R pickles through ``ganenc.load_generator``.

The fixtures are real NVlabs/stylegan3 snapshots (T: z = w = 96, R: z = w = 64;
32 px, 16 ws) with the source code removed.  ``G_ema`` is loaded into our
StyleGAN3 and every reference case is reproduced within the manifest's
tolerance through the adapter API.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import ganenc
from ganenc.errors import ConfigError
from ganenc.testing.fixtures import build_state_dict, load_manifest

torch.set_num_threads(1)

ROOT = Path(__file__).parent / "fixtures" / "stylegan3_nvidia_pkl"
FOLDERS = {"T": ROOT, "R": ROOT / "stylegan3_r"}


@pytest.fixture(autouse=True)
def _no_tf32():
    """On a GPU the bounds hold only without TF32."""
    previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture(scope="module", params=sorted(FOLDERS))
def fixture(request):
    folder = FOLDERS[request.param]
    manifest = load_manifest(folder / "manifest.json")
    g = ganenc.load_generator("stylegan3", folder / "generator.pkl").to(_device())
    cases = torch.load(folder / "cases.pt", weights_only=True)
    return request.param, g, cases, manifest


def _check(config, actual, expected, name, manifest) -> float:
    tolerance = manifest["tolerance"]["max_abs"][name]
    error = (actual.detach().cpu().float() - expected).abs().max().item()
    print(f"stylegan3-{config} {name}: max abs error {error:.3g} (tolerance {tolerance})")
    assert actual.shape == expected.shape, name
    assert error <= tolerance, f"{config} {name}: max abs error {error} > {tolerance}"
    return error


def test_architecture_comes_from_the_pickle(fixture):
    config, g, _, manifest = fixture
    kwargs = manifest["config"]
    assert g.family == "stylegan3"
    assert (g.resolution, g.num_ws) == (32, 16)
    assert (g.z_dim, g.w_dim) == (kwargs["z_dim"], kwargs["w_dim"])
    model_config = g.model.config
    assert model_config.conv_kernel == (1 if config == "R" else 3)
    assert model_config.use_radial_filters == (config == "R")
    assert g.geometry().encoder_latents == {"w_plus": (16, kwargs["w_dim"])}
    state = g.model.state_dict()
    expected = build_state_dict(manifest)
    assert list(state) == list(expected)
    for key, tensor in expected.items():
        assert torch.equal(state[key].cpu(), tensor), key
    assert g.model.has_w_avg


@torch.no_grad()
def test_a_z_to_image_and_mapping(fixture):
    config, g, cases, manifest = fixture
    _check(config, g.mapping(cases["z"]), cases["a_w"], "a_w", manifest)
    _check(config, g.encoder_targets({"z": cases["z"]})["w_plus"], cases["a_wp"], "a_wp", manifest)
    _check(config, g.synthesize({"z": cases["z"]}), cases["a_image"], "a_image", manifest)


@pytest.mark.parametrize(("case", "psi", "cutoff"), [("b", 0.7, 8), ("d", 0.5, 3)])
@torch.no_grad()
def test_truncation_toward_the_stored_w_avg(fixture, case, psi, cutoff):
    config, g, cases, manifest = fixture
    targets = g.encoder_targets({"z": cases["z"]}, truncation=psi, truncation_layers=cutoff)
    assert set(targets) == {"w_plus"}
    _check(config, targets["w_plus"], cases[f"{case}_wp"], f"{case}_wp", manifest)
    image = g.synthesize({"z": cases["z"]}, truncation=psi, truncation_layers=cutoff)
    _check(config, image, cases[f"{case}_image"], f"{case}_image", manifest)
    _check(config, g.synthesize(targets), cases[f"{case}_image"], f"{case}_image", manifest)


@torch.no_grad()
def test_c_ws_into_synthesis(fixture):
    config, g, cases, manifest = fixture
    image = g.synthesize({"w_plus": cases["c_wp"]})
    _check(config, image, cases["c_image"], "c_image", manifest)
    # one sample at a time gives the same images (the style RMS is taken per batch,
    # but demodulation cancels it)
    single = torch.cat([g.synthesize({"w_plus": w[None]}) for w in cases["c_wp"]])
    assert (single - image).abs().max() < 1e-5
    # noise_mode has no effect in StyleGAN3 (no noise inputs)
    assert torch.equal(g.synthesize({"w_plus": cases["c_wp"]}, noise_mode="random"), image)


@torch.no_grad()
def test_the_fourier_transform_buffer_moves_the_image(fixture):
    """``synthesis.input.transform`` (what gen_images-style tools set) translates the input."""
    _, g, cases, _ = fixture
    transform = g.model.synthesis.input.transform
    before = g.synthesize({"w_plus": cases["c_wp"]})
    try:
        transform[0, 2] = 0.25
        moved = g.synthesize({"w_plus": cases["c_wp"]})
    finally:
        transform.copy_(torch.eye(3))
    assert (moved - before).abs().max() > 1e-3
    assert torch.equal(g.synthesize({"w_plus": cases["c_wp"]}), before)


def test_there_is_no_constant_to_give(fixture):
    _, g, cases, _ = fixture
    with pytest.raises(ConfigError, match="no constant input"):
        g.synthesize({"z": cases["z"], "const": torch.zeros(3, 4, 4, 4)})
    with pytest.raises(ConfigError, match=r"shape \[N, 16, "):
        g.synthesize({"w_plus": torch.zeros(1, 8, g.w_dim)})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"margin_size": 8}, "differ from those its kwargs describe"),
        ({"lrelu_upsampling": 4}, "has padding=.* where its kwargs give"),
        ({"last_stopband_rel": 2**0.5}, "half_width=.* where its kwargs give"),
        ({"mapping_kwargs": {"num_layers": 2, "lr_multiplier": 1.0}}, "bias_gain"),
        ({"unknown_option": 1}, "unsupported StyleGAN3 generator options"),
    ],
)
def test_a_variant_whose_kwargs_do_not_explain_its_layers_is_refused(change, message):
    from ganenc.errors import CheckpointError
    from ganenc_stylegan.nvidia import read_nvidia_generator
    from ganenc_stylegan.stylegan3 import stylegan3_from_nvidia

    found = read_nvidia_generator(ROOT / "generator.pkl", "stylegan3")
    found.network.state["_init_kwargs"] = {**found.network.init_kwargs, **change}
    with pytest.raises(CheckpointError, match=message):
        stylegan3_from_nvidia(found, "edited.pkl")


def test_every_w_of_w_plus_reaches_the_image_with_gradients(fixture):
    """The encoder trains through the generator: each of the 16 ws (input first) has a gradient."""
    _, g, cases, _ = fixture
    w_plus = cases["c_wp"].to(_device()).requires_grad_(True)
    g.synthesize({"w_plus": w_plus}).square().sum().backward()
    per_w = w_plus.grad.abs().sum(dim=(0, 2))
    assert per_w.shape == (16,) and bool((per_w > 0).all()), per_w
    assert all(p.grad is None for p in g.parameters())
