"""HuggingFace folder format: writing, reading back, and one clear error per bad input."""

from __future__ import annotations

import json

import pytest
import torch

import ganenc
from ganenc import CheckpointError, ConfigError, WeightsNotFoundError
from ganenc_biggan.formats import CONFIG_NAME, WEIGHTS_NAME, load_hf, save_hf
from ganenc_biggan.model import BigGANConfig

HF_CONFIG_KEYS = {
    "attention_layer_position",
    "channel_width",
    "class_embed_dim",
    "eps",
    "layers",
    "n_stats",
    "num_classes",
    "output_dim",
    "z_dim",
}


@pytest.fixture()
def tiny_folder(tiny_biggan, tmp_path):
    return save_hf(tiny_biggan.model, tmp_path / "tiny")


def test_save_and_reload_gives_identical_outputs(tiny_biggan, tiny_folder):
    assert sorted(p.name for p in tiny_folder.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    config = json.loads((tiny_folder / CONFIG_NAME).read_text())
    assert set(config) == HF_CONFIG_KEYS
    assert config["output_dim"] == 32 and config["channel_width"] == 4

    reloaded = ganenc.load_generator("biggan", str(tiny_folder))
    # The architecture comes from config.json, not from the (default) options.
    assert (reloaded.resolution, reloaded.z_dim, reloaded.num_classes) == (32, 16, 10)
    assert reloaded.geometry() == tiny_biggan.geometry()
    latents = tiny_biggan.sample_latents(3, seed=5)
    for truncation in (0.4, 0.77, 1.0):
        expected = tiny_biggan.synthesize(latents, truncation=truncation)
        torch.testing.assert_close(
            reloaded.synthesize(latents, truncation=truncation), expected, rtol=0, atol=0
        )


def test_state_dict_uses_the_reference_names(tiny_biggan):
    keys = set(tiny_biggan.model.state_dict())
    # Self-attention takes index 4 (attention_layer_position) and shifts later blocks by one.
    assert tiny_biggan.config.attention_layer_position == 4
    assert {"generator.layers.4.gamma", "generator.layers.4.snconv1x1_o_conv.weight_v"} <= keys
    assert "generator.layers.6.conv_3.weight_orig" in keys  # 6 blocks + attention: 0..6
    assert "generator.layers.7.bn_0.running_means" not in keys
    for key in (
        "embeddings.weight",
        "generator.gen_z.bias",
        "generator.gen_z.weight_u",
        "generator.layers.0.bn_1.scale.weight_orig",
        "generator.layers.0.bn_1.running_vars",
        "generator.bn.running_means",
        "generator.bn.weight",
        "generator.conv_to_rgb.weight_v",
    ):
        assert key in keys
    assert not any(key.endswith(".weight") and "generator.layers" in key for key in keys)


def test_config_dataclass_defaults_are_biggan_deep_128():
    config = BigGANConfig()
    assert config == BigGANConfig.for_resolution(128)
    assert config.condition_dim == 256 and config.has_attention
    partial = BigGANConfig.from_dict({"output_dim": 128})  # missing keys: reference defaults
    assert partial == config


# -- bad inputs ----------------------------------------------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="not found") as info:
        ganenc.load_generator("biggan", str(tmp_path / "nowhere"))
    assert isinstance(info.value, WeightsNotFoundError)


def test_folder_without_config_names_the_file_and_where(tiny_folder):
    (tiny_folder / CONFIG_NAME).unlink()
    with pytest.raises(CheckpointError) as info:
        ganenc.load_generator("biggan", str(tiny_folder))
    message = str(info.value)
    assert CONFIG_NAME in message and str(tiny_folder / CONFIG_NAME) in message
    assert "config=" in message


def test_bin_without_config_beside_it(tiny_folder, tmp_path):
    lonely = tmp_path / "lonely.bin"
    lonely.write_bytes((tiny_folder / WEIGHTS_NAME).read_bytes())
    with pytest.raises(CheckpointError, match=f"put the {CONFIG_NAME}"):
        load_hf(lonely)


def test_folder_without_weights(tiny_folder):
    (tiny_folder / WEIGHTS_NAME).unlink()
    with pytest.raises(CheckpointError, match=WEIGHTS_NAME):
        load_hf(tiny_folder)


def test_missing_explicit_config(tiny_folder, tmp_path):
    with pytest.raises(CheckpointError, match="config file not found"):
        load_hf(tiny_folder, config=tmp_path / "absent.json")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_weights(tiny_folder, damage):
    weights = tiny_folder / WEIGHTS_NAME
    data = weights.read_bytes()
    weights.write_bytes(
        {"truncated": data[: len(data) // 2], "garbage": b"not a checkpoint" * 10, "empty": b""}[
            damage
        ]
    )
    with pytest.raises(CheckpointError, match=str(weights)):
        ganenc.load_generator("biggan", str(tiny_folder))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "cannot read BigGAN config"),
        ("[1, 2]", "JSON object"),
        ('{"z_dim": 16, "hidden_size": 3}', "unknown BigGAN config field"),
        ('{"layers": [[false, 16, 16]], "output_dim": 4}', "multiplier 1"),
        ('{"eps": NaN}', "NaN is not a number JSON allows"),
        ('{"eps": Infinity}', "Infinity"),
        ('{"eps": 1e999}', "eps must be a positive number"),
    ],
)
def test_invalid_config(tiny_folder, text, match):
    (tiny_folder / CONFIG_NAME).write_text(text)
    with pytest.raises(CheckpointError, match=match):
        load_hf(tiny_folder)


def test_config_that_does_not_match_the_weights(tiny_folder):
    config = json.loads((tiny_folder / CONFIG_NAME).read_text())
    config["channel_width"] = 8
    (tiny_folder / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not match") as info:
        load_hf(tiny_folder)
    assert "other shapes" in str(info.value)

    config["channel_width"] = 4
    config["attention_layer_position"] = 99  # no attention: its weights are unexpected
    (tiny_folder / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="unexpected"):
        load_hf(tiny_folder)


def _stylegan2_checkpoint() -> dict:
    return {
        "g_ema": {"style.1.weight": torch.zeros(4, 4), "conv1.conv.weight": torch.zeros(1, 4, 4)},
        "latent_avg": torch.zeros(4),
    }


def test_stylegan_file_given_to_biggan(tiny_folder, tmp_path):
    stylegan = tmp_path / "ffhq.pt"
    torch.save(_stylegan2_checkpoint(), stylegan)
    with pytest.raises(CheckpointError, match="StyleGAN2 checkpoint, not a HuggingFace BigGAN"):
        ganenc.load_generator("biggan", str(stylegan))
    # Also when it sits in a BigGAN folder under the HuggingFace name.
    torch.save(_stylegan2_checkpoint(), tiny_folder / WEIGHTS_NAME)
    with pytest.raises(CheckpointError, match="StyleGAN2"):
        ganenc.load_generator("biggan", str(tiny_folder))


def test_unknown_or_invalid_options(tiny_options):
    with pytest.raises(ConfigError, match="truncation_psi"):
        ganenc.load_generator("biggan", truncation_psi=0.5)
    with pytest.raises(ConfigError, match="resolution 48"):
        ganenc.load_generator("biggan", **{**tiny_options, "resolution": 48})
    with pytest.raises(ConfigError, match="default_truncation"):
        ganenc.load_generator("biggan", **tiny_options, default_truncation=1.5)
