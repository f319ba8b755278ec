"""StyleGAN1 against the genforce reference fixture (32 px, and 128 px for the fused up-conv).

The weights are rebuilt from each manifest, saved as a genforce ``.pth``
(``{"generator_smooth": sd}``), read back with ``weights_only=True`` and loaded
through our loader; every case of ``cases.pt`` must match within the manifest's
tolerance.  See ``fixtures/stylegan1_genforce/README.md`` for what each case calls.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from ganenc.testing.fixtures import build_state_dict, load_manifest
from ganenc_stylegan.stylegan1 import (
    EqualizedConv2d,
    FusedUpsampleConv2d,
    StyleGAN1Generator,
    stylegan1_from_genforce,
    stylegan1_to_genforce,
)

FIXTURE_ROOT = Path(__file__).parent / "fixtures" / "stylegan1_genforce"
FIXTURE_DIRS = {"res32": FIXTURE_ROOT, "res128_fused": FIXTURE_ROOT / "res128_fused"}

Z_CALL = "G(z, trunc_psi={psi}, trunc_layers={layers}, randomize_noise=False)"
SYNTHESIS_CALL = "G.synthesis({wp}, randomize_noise=False)"


def _case_ids() -> list[tuple[str, str]]:
    pairs = []
    for fixture, folder in FIXTURE_DIRS.items():
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        pairs += [(fixture, case["name"]) for case in manifest["cases"]]
    return pairs


def genforce_truncation(
    wp: torch.Tensor, w_avg: torch.Tensor, psi: float, layers: int
) -> torch.Tensor:
    """genforce ``TruncationModule``: ``w_avg + (wp - w_avg) * psi`` on layers ``< layers``.

    Applied to the per-layer code (w+ as well as a broadcast w), only when
    ``psi < 1`` and ``layers > 0``; genforce's default ``trunc_layers=None`` means 0,
    i.e. no truncation.
    """
    if psi >= 1.0 or layers <= 0:
        return wp
    coefs = torch.ones(wp.shape[1], 1, dtype=wp.dtype)
    coefs[:layers] = psi
    return w_avg + (wp - w_avg) * coefs


@pytest.fixture(scope="module", params=list(FIXTURE_DIRS))
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = FIXTURE_DIRS[request.param]
    manifest = load_manifest(folder / "manifest.json")
    state = build_state_dict(manifest)
    path = tmp_path_factory.mktemp(request.param) / "g.pth"
    torch.save({"generator_smooth": state}, path)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = stylegan1_from_genforce(checkpoint["generator_smooth"]).eval()
    cases = torch.load(folder / "cases.pt", map_location="cpu", weights_only=True)
    return request.param, model, manifest, cases, state, path


def run_reference_call(
    model: StyleGAN1Generator, case: dict[str, Any], inputs: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Reproduce one genforce call of the manifest with our model: ``{w, wp, image}``."""
    kwargs = case["kwargs"]
    if case["call"] == SYNTHESIS_CALL.format(wp=case["inputs"][0]):
        wp = inputs[case["inputs"][0]]
        return {"wp": wp, "image": model.synthesis(wp, noise_mode="const")}
    assert case["call"] == Z_CALL.format(psi=kwargs["trunc_psi"], layers=kwargs["trunc_layers"])
    w = model.mapping(inputs["z"])
    wp = w.unsqueeze(1).repeat(1, model.num_ws, 1)
    wp = genforce_truncation(wp, model.w_avg, kwargs["trunc_psi"], kwargs["trunc_layers"])
    return {"w": w, "wp": wp, "image": model.synthesis(wp, noise_mode="const")}


def max_errors(
    outputs: dict[str, torch.Tensor], case: dict[str, Any], expected: dict[str, torch.Tensor]
) -> dict[str, float]:
    errors = {}
    for name, source in case["returns"].items():
        key = source.removeprefix("result['").removesuffix("']")
        actual = outputs[key]
        assert actual.shape == expected[name].shape, name
        errors[name] = (actual - expected[name]).abs().max().item()
    return errors


@pytest.mark.parametrize(("loaded", "case_name"), _case_ids(), indirect=["loaded"])
def test_case_matches_reference(loaded: Any, case_name: str) -> None:
    fixture, model, manifest, cases, _, _ = loaded
    case = next(c for c in manifest["cases"] if c["name"] == case_name)
    with torch.no_grad():
        outputs = run_reference_call(model, case, cases)
    errors = max_errors(outputs, case, cases)
    tolerance = manifest["tolerance"]["max_abs"]
    for output, error in errors.items():
        assert error <= tolerance[output], f"{fixture}/{output}: max|diff| {error:.3g}"
    if "trunc_psi" in case["kwargs"]:  # the model's own truncation uses the same layer count
        with torch.no_grad():
            image = model(cases["z"], case["kwargs"]["trunc_psi"], case["kwargs"]["trunc_layers"])
        image_output = next(o for o, src in case["returns"].items() if src.endswith("['image']"))
        error = (image - cases[image_output]).abs().max().item()
        assert error <= tolerance[image_output], f"{fixture}/{image_output}: forward {error:.3g}"


def test_config_is_inferred_from_shapes(loaded: Any) -> None:
    _, model, manifest, _, _, _ = loaded
    config = manifest["config"]
    assert model.resolution == config["resolution"]
    assert (model.config.fmaps_base, model.config.fmaps_max) == (
        config["fmaps_base"],
        config["fmaps_max"],
    )
    assert model.num_ws == manifest["derived"]["num_layers"]
    for res, channels in manifest["derived"]["channels"].items():
        assert model.config.channels(int(res)) == channels
    assert model.has_w_avg


def test_fused_upconv_used_exactly_from_128(loaded: Any) -> None:
    name, model, _, _, _, _ = loaded
    fused = [
        index
        for index, layer in enumerate(model.synthesis_network.layers)
        if isinstance(layer.conv, FusedUpsampleConv2d)
    ]
    assert fused == ([10] if name == "res128_fused" else [])
    assert all(
        isinstance(layer.conv, EqualizedConv2d) for layer in model.synthesis_network.layers[1:]
    )


def test_to_genforce_gives_back_the_checkpoint(loaded: Any) -> None:
    _, model, _, _, state, _ = loaded
    exported = stylegan1_to_genforce(model)
    assert set(exported) == set(state)
    for key, tensor in state.items():
        assert torch.equal(exported[key], tensor), key


def test_w_avg_is_the_stored_truncation_average(loaded: Any) -> None:
    _, model, _, _, state, _ = loaded
    assert torch.equal(model.w_avg, state["truncation.w_avg"])


@pytest.mark.parametrize(("loaded", "case_name"), _case_ids(), indirect=["loaded"])
def test_case_through_generator_adapter(loaded: Any, case_name: str) -> None:
    """The same cases through ``ganenc.load_generator`` and the adapter's ``synthesize``."""
    pytest.importorskip("ganenc_stylegan.adapter")
    import ganenc

    _, _, manifest, cases, _, path = loaded
    case = next(c for c in manifest["cases"] if c["name"] == case_name)
    generator = ganenc.load_generator("stylegan1", str(path)).eval()
    kwargs = case["kwargs"]
    with torch.no_grad():
        if "trunc_psi" in kwargs:
            image = generator.synthesize(
                {"z": cases["z"]},
                truncation=kwargs["trunc_psi"],
                truncation_layers=kwargs["trunc_layers"],
            )
        else:
            image = generator.synthesize({"w_plus": cases[case["inputs"][0]]})
    image_output = next(out for out, src in case["returns"].items() if src.endswith("['image']"))
    error = (image - cases[image_output]).abs().max().item()
    assert error <= manifest["tolerance"]["max_abs"][image_output], f"max|diff| {error:.3g}"
