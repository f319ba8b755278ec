"""``ganenc convert``: NVIDIA pickles to rosinality files, and rosinality files to NVIDIA keys.

The command object is tested directly with click's runner; each written file is
loaded back through ``ganenc.load_generator`` and must reproduce the source
fixture's reference cases.
"""

from __future__ import annotations

from pathlib import Path

import torch
from click.testing import CliRunner

import ganenc
from ganenc.testing.fixtures import build_state_dict, load_manifest
from ganenc_stylegan.convert import convert_command, nvidia_constructor_kwargs

torch.set_num_threads(1)

FIXTURES = Path(__file__).parent / "fixtures"
ADA = FIXTURES / "stylegan2_ada_nvidia_pkl"
ROSINALITY = FIXTURES / "stylegan2_rosinality"


def _convert(*args) -> str:
    result = CliRunner().invoke(convert_command, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def _max_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    assert actual.shape == expected.shape
    return (actual - expected).abs().max().item()


@torch.no_grad()
def test_nvidia_pickle_to_rosinality(tmp_path):
    out = tmp_path / "ada.pt"
    output = _convert(ADA / "generator.pkl", out, "--to", "rosinality")
    assert f"wrote {out} (rosinality)" in output and "conv_clamp (256)" in output
    checkpoint = torch.load(out, weights_only=True)
    assert set(checkpoint) == {"g_ema", "latent_avg"}
    manifest = load_manifest(ADA / "manifest.json")
    expected = build_state_dict(manifest)
    assert torch.equal(checkpoint["latent_avg"], expected["mapping.w_avg"])
    assert "style.8.weight" in checkpoint["g_ema"] and "input.input" in checkpoint["g_ema"]
    assert checkpoint["g_ema"]["style.1.weight"].shape == (128, 128)  # z_dim 128, not 512
    g = ganenc.load_generator("stylegan2", out)
    cases = torch.load(ADA / "cases.pt", weights_only=True)
    tol = manifest["tolerance"]["max_abs"]
    assert _max_error(g.synthesize({"w_plus": cases["c_wp"]}), cases["c_image"]) <= tol["c_image"]
    image = g.synthesize({"z": cases["z"]}, truncation=0.5, truncation_layers=3)
    assert _max_error(image, cases["d_image"]) <= tol["d_image"]


@torch.no_grad()
def test_rosinality_to_nvidia_state_dict(tmp_path):
    manifest = load_manifest(ROSINALITY / "manifest.json")
    source = tmp_path / "rosinality.pt"
    latent_avg = build_state_dict(manifest, "extra_entries")["latent_avg"]
    torch.save({"g_ema": build_state_dict(manifest), "latent_avg": latent_avg}, source)
    out = tmp_path / "nvidia.pt"
    output = _convert(source, out, "--to", "nvidia-state-dict")
    assert "'z_dim': 512" in output and "'img_resolution': 32" in output
    state = torch.load(out, weights_only=True)
    assert torch.equal(state["mapping.w_avg"], latent_avg)
    assert state["synthesis.b4.const"].shape == (512, 4, 4)
    assert state["synthesis.b8.conv0.noise_const"].shape == (8, 8)
    assert state["synthesis.b32.resample_filter"].shape == (4, 4)
    g = ganenc.load_generator("stylegan2", out)
    cases = torch.load(ROSINALITY / "cases.pt", weights_only=True)
    tol = manifest["tolerance"]["max_abs"]
    image = g.synthesize({"w_plus": cases["b_wplus"]})
    assert _max_error(image, cases["b_image"]) <= tol["b_image"]
    assert _max_error(g.synthesize({"z": cases["a_z"]}, 0.7), cases["c_image"]) <= tol["c_image"]


def test_nvidia_pickle_to_nvidia_state_dict_is_g_ema_exactly(tmp_path):
    out = tmp_path / "G_ema.pt"
    output = _convert(ADA / "generator.pkl", out, "--to", "nvidia-state-dict")
    assert "'conv_clamp': 256" in output and "'channel_base': 512" in output
    state = torch.load(out, weights_only=True)
    expected = build_state_dict(load_manifest(ADA / "manifest.json"))
    assert list(state) == list(expected)
    assert all(torch.equal(state[key], tensor) for key, tensor in expected.items())


def test_constructor_kwargs_for_config_f():
    from ganenc_stylegan.stylegan2 import StyleGAN2Config

    kwargs = nvidia_constructor_kwargs(StyleGAN2Config(resolution=1024))
    assert kwargs["synthesis_kwargs"] == {"channel_base": 32768, "channel_max": 512}
    odd = StyleGAN2Config(resolution=8, channels={4: 8, 8: 32})
    assert nvidia_constructor_kwargs(odd) is None


def test_refusals_are_one_clear_line(tmp_path):
    runner = CliRunner()
    out = tmp_path / "exists.pt"
    out.write_bytes(b"keep me")
    result = runner.invoke(
        convert_command, [str(ADA / "generator.pkl"), str(out), "--to", "rosinality"]
    )
    assert result.exit_code == 1 and "exists; pass --force" in result.output
    assert out.read_bytes() == b"keep me"
    sg3 = FIXTURES / "stylegan3_nvidia_pkl" / "generator.pkl"
    result = runner.invoke(
        convert_command, [str(sg3), str(tmp_path / "x.pt"), "--to", "rosinality"]
    )
    assert result.exit_code == 1 and "NVIDIA StyleGAN3 pickle, not a StyleGAN2 one" in result.output
    assert not (tmp_path / "x.pt").exists() and not list(tmp_path.glob("*.partial"))
    result = runner.invoke(convert_command, [str(sg3), str(tmp_path / "y.pt"), "--to", "onnx"])
    assert result.exit_code == 2 and "'onnx' is not one of" in result.output
    result = runner.invoke(
        convert_command, [str(tmp_path / "missing.pkl"), str(tmp_path / "z.pt"), "--to", "genforce"]
    )
    assert result.exit_code == 1 and "not found" in result.output


def test_force_overwrites(tmp_path):
    out = tmp_path / "out.pth"
    out.write_bytes(b"old")
    _convert(ADA / "generator.pkl", out, "--to", "genforce", "--force")
    assert "generator_smooth" in torch.load(out, weights_only=True)


def test_the_plugin_adds_convert_to_the_command_line(tmp_path):
    """``ganenc convert`` comes from this plugin's ``register_commands``, not from the engine."""
    from ganenc.cli.main import cli

    commands = cli.plugin_commands()
    assert commands["convert"] is convert_command
    out = tmp_path / "ada.pth"
    result = CliRunner().invoke(
        cli, ["convert", str(ADA / "generator.pkl"), str(out), "--to", "genforce"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {out} (genforce)")


def test_out_may_be_in_a_new_folder_but_never_the_input(tmp_path):
    out = tmp_path / "new" / "folder" / "ada.pth"
    _convert(ADA / "generator.pkl", out, "--to", "genforce")
    assert "generator_smooth" in torch.load(out, weights_only=True)
    result = CliRunner().invoke(convert_command, [str(out), str(out), "--to", "rosinality"])
    assert result.exit_code == 1 and "OUT " in result.output and "is the input" in result.output
