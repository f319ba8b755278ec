"""Reference compatibility: NVIDIA's StyleGAN2-ADA pickle through ``ganenc.load_generator``.

The fixture ``stylegan2_ada_nvidia_pkl`` is a real stylegan2-ada-pytorch
snapshot (z_dim = w_dim = 128, 32 px, conv_clamp 256) with the source code
removed.  ``G_ema`` is loaded into our one StyleGAN2 implementation and every
reference case (run by NVIDIA with ``force_fp32=True``) is reproduced within the
manifest's tolerance through the adapter API.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import ganenc
from ganenc.testing.fixtures import build_state_dict, load_manifest
from ganenc_stylegan.nvidia import nvidia_state_dict, stylegan2_from_nvidia_state

torch.set_num_threads(1)

FOLDER = Path(__file__).parent / "fixtures" / "stylegan2_ada_nvidia_pkl"
MANIFEST = load_manifest(FOLDER / "manifest.json")
TOL = MANIFEST["tolerance"]["max_abs"]


@pytest.fixture(autouse=True)
def _no_tf32():
    """On a GPU the bounds hold only without TF32."""
    previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture(scope="module")
def g():
    return ganenc.load_generator("stylegan2", FOLDER / "generator.pkl").to(_device())


@pytest.fixture(scope="module")
def cases():
    return torch.load(FOLDER / "cases.pt", weights_only=True)


def _check(actual: torch.Tensor, expected: torch.Tensor, name: str) -> float:
    error = (actual.detach().cpu().float() - expected).abs().max().item()
    print(f"stylegan2-ada {name}: max abs error {error:.3g} (tolerance {TOL[name]})")
    assert actual.shape == expected.shape, name
    assert error <= TOL[name], f"{name}: max abs error {error} > {TOL[name]}"
    return error


def test_architecture_comes_from_the_pickle(g):
    assert g.family == "stylegan2"
    assert (g.resolution, g.num_ws, g.z_dim, g.w_dim) == (32, 8, 128, 128)
    config = g.model.config
    assert config.mapping_layers == 8 and config.conv_clamp == 256.0
    blocks = MANIFEST["derived"]["blocks"]
    assert config.channels == {b["resolution"]: b["out_channels"] for b in blocks}
    assert g.const_shape == (32, 4, 4)
    assert g.model.has_w_avg
    expected = build_state_dict(MANIFEST)["mapping.w_avg"]
    torch.testing.assert_close(g.w_avg.cpu(), expected, atol=0, rtol=0)


@torch.no_grad()
def test_a_z_to_image_and_mapping(g, cases):
    _check(g.mapping(cases["z"]), cases["a_w"], "a_w")
    _check(g.encoder_targets({"z": cases["z"]})["w_plus"], cases["a_wp"], "a_wp")
    _check(g.synthesize({"z": cases["z"]}), cases["a_image"], "a_image")


@pytest.mark.parametrize(("case", "psi", "cutoff"), [("b", 0.7, 8), ("d", 0.5, 3)])
@torch.no_grad()
def test_truncation_toward_the_stored_w_avg(g, cases, case, psi, cutoff):
    targets = g.encoder_targets({"z": cases["z"]}, truncation=psi, truncation_layers=cutoff)
    _check(targets["w_plus"], cases[f"{case}_wp"], f"{case}_wp")
    image = g.synthesize({"z": cases["z"]}, truncation=psi, truncation_layers=cutoff)
    _check(image, cases[f"{case}_image"], f"{case}_image")
    _check(g.synthesize(targets), cases[f"{case}_image"], f"{case}_image")


@torch.no_grad()
def test_c_ws_into_synthesis(g, cases):
    _check(g.synthesize({"w_plus": cases["c_wp"]}), cases["c_image"], "c_image")


def test_export_to_nvidia_keys_gives_back_g_ema_exactly(g):
    state = nvidia_state_dict(g.model)
    expected = build_state_dict(MANIFEST)
    assert list(state) == list(expected)
    for key, tensor in expected.items():
        assert torch.equal(state[key].cpu(), tensor), key


@torch.no_grad()
def test_a_bare_nvidia_state_dict_loads_too(tmp_path, cases):
    path = tmp_path / "G_ema.pt"
    torch.save(build_state_dict(MANIFEST), path)
    g = ganenc.load_generator("stylegan2", path)
    assert g.model.config.conv_clamp is None  # not recorded in a state dict
    _check(g.synthesize({"w_plus": cases["c_wp"]}), cases["c_image"], "c_image")


@torch.no_grad()
def test_conv_clamp_is_applied_to_every_layer_output(cases):
    state = build_state_dict(MANIFEST)
    w_plus = cases["c_wp"]
    unclamped = stylegan2_from_nvidia_state(state).synthesis(w_plus)
    clamped = stylegan2_from_nvidia_state(state, conv_clamp=256).synthesis(w_plus)
    tight = stylegan2_from_nvidia_state(state, conv_clamp=0.5).synthesis(w_plus)
    assert torch.equal(unclamped, clamped)  # nothing comes near 256 here
    assert (tight - unclamped).abs().max() > 0.5
    # the skip image is a sum of clamped ToRGB outputs: 4 blocks, each within +-0.5, upsampled
    # by a filter with gain 4 spread over 4 phases (each phase sums to 1)
    assert tight.abs().max() <= 4 * 0.5 + 1e-5


def test_use_noise_false_generators_load_with_zero_noise(cases):
    state = {k: v for k, v in build_state_dict(MANIFEST).items() if "noise" not in k}
    model = stylegan2_from_nvidia_state(state)
    assert all(not b.abs().sum() for n, b in model.named_buffers() if n.endswith(".noise"))
    with torch.no_grad():
        assert model.synthesis(cases["c_wp"]).isfinite().all()


@pytest.mark.parametrize(
    ("module", "attr", "value", "message"),
    [
        ("synthesis.b16", "architecture", "resnet", "'resnet' synthesis architecture"),
        ("synthesis.b16.conv1", "activation", "relu", r"activations \['lrelu', 'relu'\]"),
        ("synthesis.b16.conv1", "conv_clamp", None, "layers disagree on conv_clamp"),
    ],
)
def test_unsupported_variants_are_refused(module, attr, value, message):
    from ganenc.errors import CheckpointError
    from ganenc_stylegan.nvidia import read_nvidia_generator, stylegan2_from_nvidia

    found = read_nvidia_generator(FOLDER / "generator.pkl", "stylegan2")
    found.network.module(module).state[attr] = value
    with pytest.raises(CheckpointError, match=message):
        stylegan2_from_nvidia(found, "edited.pkl")


def test_the_mapping_learning_rate_multiplier_is_read_from_the_layers(cases):
    from ganenc_stylegan.nvidia import read_nvidia_generator, stylegan2_from_nvidia

    found = read_nvidia_generator(FOLDER / "generator.pkl", "stylegan2")
    assert stylegan2_from_nvidia(found, "fixture").config.mapping_lr_mul == 0.01
    for layer in found.network.module("mapping").modules.values():
        layer.state["bias_gain"] = 0.5
    assert stylegan2_from_nvidia(found, "edited").config.mapping_lr_mul == 0.5
