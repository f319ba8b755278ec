"""StyleGAN checkpoint files: shape inference, writers, layouts, average latent and bad files."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import pytest
import torch

import ganenc
from ganenc.errors import CheckpointError
from ganenc_stylegan import average_latent
from ganenc_stylegan.formats import (
    genforce_state_dict,
    load_stylegan2_checkpoint,
    rosinality_state_dict,
    save_genforce,
    save_rosinality,
)
from ganenc_stylegan.stylegan2 import StyleGAN2Config, StyleGAN2Generator

CONFIGS = {
    "32px-cm1": dict(resolution=32, channel_base=256, channel_multiplier=1, channel_max=16),
    "64px-deep-mapping": dict(
        resolution=64, channel_base=128, channel_max=32, z_dim=24, w_dim=16, mapping_layers=3
    ),
    "32px-one-mapping-layer": dict(
        resolution=32, channel_base=64, channel_max=8, z_dim=8, w_dim=12, mapping_layers=1
    ),
}


def random_generator(seed: int = 0, **fields) -> StyleGAN2Generator:
    """A small generator with every parameter random (noise strengths and biases too)."""
    fields = {**CONFIGS["32px-cm1"], **fields} if not fields else fields
    torch.manual_seed(seed)
    model = StyleGAN2Generator(StyleGAN2Config(**fields)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("affine.bias"):
                param.copy_(1.0 + 0.3 * torch.randn_like(param))
            elif name.endswith("bias") or name.endswith("noise_strength"):
                param.copy_(0.3 * torch.randn_like(param))
        model.set_w_avg(torch.randn(model.w_dim))
    return model


def images(model: torch.nn.Module, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    w_plus = torch.randn(2, model.num_ws, model.w_dim, generator=generator)
    with torch.no_grad():
        return model.synthesis(w_plus)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("layout", ["rosinality", "genforce"])
def test_architecture_is_inferred_and_outputs_survive_a_round_trip(tmp_path, name, layout) -> None:
    model = random_generator(**CONFIGS[name])
    path = tmp_path / f"g.{layout}"
    (save_rosinality if layout == "rosinality" else save_genforce)(model, path)
    loaded = load_stylegan2_checkpoint(path)
    config = loaded.config
    for field in ("resolution", "z_dim", "w_dim", "mapping_layers"):
        assert getattr(config, field) == getattr(model.config, field), field
    assert config.channels == {r: model.config.channels_at(r) for r in model.config.resolutions}
    assert loaded.has_w_avg
    torch.testing.assert_close(loaded.w_avg, model.w_avg, atol=0, rtol=0)
    z = torch.randn(3, model.z_dim)
    with torch.no_grad():
        torch.testing.assert_close(loaded.mapping(z), model.mapping(z), atol=0, rtol=0)
    if layout == "rosinality":  # identical tensors
        assert torch.equal(images(loaded), images(model))
    else:  # the +-1 of the modulation bias may round in the last bit
        torch.testing.assert_close(images(loaded), images(model), atol=1e-5, rtol=1e-5)


def test_format_conventions_modulation_bias_and_flipped_upsampling_weights() -> None:
    model = random_generator()
    internal = model.state_dict()
    ros, gen = rosinality_state_dict(model), genforce_state_dict(model)
    block1 = "synthesis.blocks.1.convs"
    # rosinality keeps the +1 in the modulation bias, genforce does not
    assert torch.equal(
        ros["convs.0.conv.modulation.bias"], internal[f"{block1}.0.conv.affine.bias"]
    )
    torch.testing.assert_close(
        gen["synthesis.layer1.style.bias"] + 1, internal[f"{block1}.0.conv.affine.bias"]
    )
    torch.testing.assert_close(
        gen["synthesis.output0.style.bias"] + 1,
        internal["synthesis.blocks.0.to_rgb.conv.affine.bias"],
    )
    # genforce stores upsampling weights flipped; the non-upsampling ones are as is
    assert torch.equal(
        gen["synthesis.layer1.weight"].flip([2, 3]), internal[f"{block1}.0.conv.weight"]
    )
    assert torch.equal(gen["synthesis.layer2.weight"], internal[f"{block1}.1.conv.weight"])
    assert torch.equal(ros["convs.0.conv.weight"][0], internal[f"{block1}.0.conv.weight"])
    # reference layouts: shapes of the public files
    assert ros["conv1.conv.weight"].shape == (
        1,
        *internal["synthesis.blocks.0.convs.0.conv.weight"].shape,
    )
    assert ros["to_rgb1.bias"].shape == (1, 3, 1, 1)
    assert ros["conv1.noise.weight"].shape == (1,)
    assert gen["synthesis.layer0.noise_strength"].shape == ()
    assert gen["synthesis.upsample.kernel"].shape == (1, 1, 4, 4)


def test_rosinality_to_genforce_conversion_keeps_the_images(tmp_path) -> None:
    model = random_generator()
    save_rosinality(model, tmp_path / "a.pt")
    save_genforce(load_stylegan2_checkpoint(tmp_path / "a.pt"), tmp_path / "b.pth")
    again = load_stylegan2_checkpoint(tmp_path / "b.pth")
    torch.testing.assert_close(images(again), images(model), atol=1e-5, rtol=1e-5)


def test_train_py_checkpoint_with_namespace_loads_and_estimates_w_avg(
    tmp_path, monkeypatch
) -> None:
    model = random_generator()
    state = rosinality_state_dict(model)
    args = argparse.Namespace(size=32, n_mlp=2, channel_multiplier=1, latent=16, iter=800000)
    checkpoint = {
        "g": state,
        "d": {},
        "g_ema": state,
        "g_optim": {"state": {}, "param_groups": []},
        "d_optim": {"state": {}, "param_groups": []},
        "args": args,
        "ada_aug_p": 0.25,
    }
    torch.save(checkpoint, tmp_path / "train.pt")
    calls = []
    original = average_latent.estimate_w_avg

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(average_latent, "estimate_w_avg", counting)
    g = ganenc.load_generator("stylegan2", tmp_path / "train.pt")
    assert not g.model.has_w_avg
    assert torch.equal(images(g.model), images(model))
    w_plus = torch.randn(2, g.num_ws, g.w_dim)
    first = g.synthesize({"w_plus": w_plus}, truncation=0.5)
    second = g.synthesize({"w_plus": w_plus}, truncation=0.5)
    assert len(calls) == 1, "w_avg must be estimated once and cached"
    assert torch.equal(first, second)
    assert g.model.has_w_avg
    # it is the mean of the mapping output over 10k z of the fixed seed
    expected = original(g.model, num_samples=10_000)
    torch.testing.assert_close(g.w_avg, expected)
    # and close to the mean over other z
    with torch.no_grad():
        other = g.model.mapping(torch.randn(20_000, g.z_dim)).mean(0)
    assert (other - g.w_avg).abs().max() < 0.1 * g.w_avg.abs().max() + 0.05


def test_rosinality_file_without_latent_avg_is_estimated_reproducibly(tmp_path) -> None:
    save_rosinality(random_generator(), tmp_path / "g.pt", latent_avg=False)
    assert "latent_avg" not in torch.load(tmp_path / "g.pt", weights_only=True)
    a = ganenc.load_generator("stylegan2", tmp_path / "g.pt")
    b = ganenc.load_generator("stylegan2", tmp_path / "g.pt")
    assert torch.equal(a.w_avg, b.w_avg)
    assert a.w_avg.abs().sum() > 0


def test_bare_state_dicts_load(tmp_path) -> None:
    model = random_generator()
    torch.save(rosinality_state_dict(model), tmp_path / "ros.pt")
    torch.save(genforce_state_dict(model), tmp_path / "gen.pth")
    assert torch.equal(images(load_stylegan2_checkpoint(tmp_path / "ros.pt")), images(model))
    torch.testing.assert_close(
        images(load_stylegan2_checkpoint(tmp_path / "gen.pth")), images(model), atol=1e-5, rtol=1e-5
    )


# -- bad files -----------------------------------------------------------------------------


class _CodeExecution:
    """Pickles as a call to print: a file that needs code execution to load."""

    def __reduce__(self):
        return (print, ("this must never run",))


def _bad_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.pt"
    if kind == "missing":
        return path
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random-bytes":
        path.write_bytes(random.Random(0).randbytes(4096))
    elif kind == "truncated":
        save_rosinality(random_generator(), path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "code-execution":
        torch.save(
            {"g_ema": rosinality_state_dict(random_generator()), "x": _CodeExecution()}, path
        )
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "not found"),
        ("empty", "empty"),
        ("random-bytes", "not a"),
        ("truncated", "truncated"),
        ("code-execution", "code execution"),
    ],
)
def test_unreadable_files_give_one_clear_error(tmp_path, kind, message, capsys) -> None:
    path = _bad_file(tmp_path, kind)
    with pytest.raises(CheckpointError, match=message):
        ganenc.load_generator("stylegan2", path)
    assert "this must never run" not in capsys.readouterr().out


def test_pggan_files_point_to_the_pggan_generator(tmp_path) -> None:
    zoo = {"config": {"depthScale0": 64}, "netG": {"formatLayer.module.weight": torch.zeros(2)}}
    zoo["avgG"], zoo["netD"] = zoo["netG"], {}
    torch.save(zoo, tmp_path / "zoo.pth")
    genforce_pggan = {"lod": torch.tensor(0.0), "layer0.weight": torch.zeros(4, 4, 4, 4)}
    torch.save({"generator_smooth": genforce_pggan}, tmp_path / "genforce.pth")
    for name in ("zoo.pth", "genforce.pth"):
        with pytest.raises(CheckpointError, match=r"PGGAN.*--gan pggan"):
            ganenc.load_generator("stylegan2", tmp_path / name)


def test_stylegan1_and_stylegan2_files_point_to_each_other(tmp_path) -> None:
    stylegan1 = {
        "mapping.dense0.weight": torch.zeros(8, 8),
        "truncation.w_avg": torch.zeros(8),
        "synthesis.lod": torch.tensor(0.0),
        "synthesis.layer0.const": torch.zeros(1, 8, 4, 4),
        "synthesis.layer0.apply_noise.weight": torch.zeros(8),
    }
    torch.save({"generator_smooth": stylegan1}, tmp_path / "sg1.pth")
    with pytest.raises(CheckpointError, match=r"StyleGAN1.*--gan stylegan1"):
        ganenc.load_generator("stylegan2", tmp_path / "sg1.pth")
    save_rosinality(random_generator(), tmp_path / "sg2.pt")
    save_genforce(random_generator(), tmp_path / "sg2.pth")
    for name in ("sg2.pt", "sg2.pth"):
        with pytest.raises(CheckpointError, match=r"StyleGAN2.*--gan stylegan2"):
            ganenc.load_generator("stylegan1", tmp_path / name)


def test_other_objects_are_named_in_the_error(tmp_path) -> None:
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a StyleGAN2 checkpoint.*g_ema"):
        ganenc.load_generator("stylegan2", tmp_path / "other.pt")
    torch.save([torch.zeros(3)], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="list"):
        ganenc.load_generator("stylegan2", tmp_path / "list.pt")


@pytest.mark.parametrize("damage", ["missing-entry", "extra-entry", "wrong-shape", "other-filter"])
def test_damaged_state_dicts_are_refused(tmp_path, damage) -> None:
    state = rosinality_state_dict(random_generator())
    if damage == "missing-entry":
        del state["convs.1.noise.weight"]
        match = "missing entry 'convs.1.noise.weight'"
    elif damage == "extra-entry":
        state["convs.99.conv.weight"] = torch.zeros(1)
        match = "unexpected entries"
    elif damage == "wrong-shape":
        state["convs.1.conv.modulation.weight"] = torch.zeros(3, 3)
        match = "convs.1.conv.modulation.weight"
    else:
        state["convs.0.conv.blur.kernel"] = torch.ones(4, 4) / 4
        match = "filter"
    torch.save({"g_ema": state}, tmp_path / "damaged.pt")
    with pytest.raises(CheckpointError, match=match):
        ganenc.load_generator("stylegan2", tmp_path / "damaged.pt")


def test_unsupported_genforce_variants_are_named(tmp_path) -> None:
    state = genforce_state_dict(random_generator())
    del state["synthesis.output0.weight"]  # "origin" architecture: only the last ToRGB
    torch.save({"generator_smooth": state}, tmp_path / "origin.pth")
    with pytest.raises(CheckpointError, match="skip"):
        ganenc.load_generator("stylegan2", tmp_path / "origin.pth")
