"""Settings: files, precedence, errors that name field and value, run metadata."""

from __future__ import annotations

import json

import pytest
from pydantic import Field

from ganenc.config import Settings, read_config_file, resolve_settings, write_run_metadata
from ganenc.errors import ConfigError


class TrainLike(Settings):
    gan: str
    iterations: int = Field(100, ge=1)
    lr: float = 0.0015
    betas: tuple[float, float] = (0.0, 0.99)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("c.yaml", "gan: stylegan2\niterations: 7\n"),
        ("c.yml", "gan: stylegan2\niterations: 7\n"),
        ("c.toml", 'gan = "stylegan2"\niterations = 7\n'),
        ("c.json", '{"gan": "stylegan2", "iterations": 7}'),
    ],
)
def test_files_of_each_format_load(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    settings = resolve_settings(TrainLike, tmp_path / name)
    assert (settings.gan, settings.iterations, settings.lr) == ("stylegan2", 7, 0.0015)


def test_command_line_overrides_file_and_none_means_not_given(tmp_path):
    (tmp_path / "c.yaml").write_text("gan: stylegan2\niterations: 7\nlr: 0.1\n")
    settings = resolve_settings(TrainLike, tmp_path / "c.yaml", {"iterations": 9, "lr": None})
    assert (settings.iterations, settings.lr) == (9, 0.1)


def test_errors_name_the_field_and_the_value(tmp_path):
    with pytest.raises(
        ConfigError, match=r"iterations = 0: Input should be greater than or equal to 1"
    ):
        resolve_settings(TrainLike, None, {"gan": "x", "iterations": 0})
    with pytest.raises(
        ConfigError, match=r"unknown setting 'iteration' \(value 5\).*known settings: gan"
    ):
        resolve_settings(TrainLike, None, {"gan": "x", "iteration": 5})
    with pytest.raises(ConfigError, match="missing setting 'gan'"):
        resolve_settings(TrainLike, None, {})
    (tmp_path / "c.yaml").write_text("gan: x\nbetas: [0.0]\n")
    with pytest.raises(ConfigError, match=r"from .*c\.yaml.*betas"):
        resolve_settings(TrainLike, tmp_path / "c.yaml")


class Optimizer(Settings):
    lr: float = 0.0015
    eps: float = 1e-8


class Nested(Settings):
    gan: str = "x"
    optimizer: Optimizer = Field(default_factory=Optimizer)


def test_an_unknown_nested_setting_lists_the_settings_beside_it_not_the_top_level():
    with pytest.raises(ConfigError) as caught:
        resolve_settings(Nested, None, {"optimizer": {"betas": [0, 1]}})
    message = str(caught.value)
    assert "unknown setting 'optimizer.betas'" in message
    assert "(known settings of 'optimizer': lr, eps)" in message
    assert "known settings: gan" not in message
    with pytest.raises(ConfigError, match=r"known settings: gan, optimizer\) \(known settings of"):
        resolve_settings(Nested, None, {"optimizer": {"betas": 1}, "iters": 2})


def test_bad_files(tmp_path):
    (tmp_path / "c.ini").write_text("[x]")
    (tmp_path / "broken.yaml").write_text("gan: [unclosed\n")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must end in"):
        read_config_file(tmp_path / "c.ini")
    with pytest.raises(ConfigError, match="cannot parse"):
        read_config_file(tmp_path / "broken.yaml")
    with pytest.raises(ConfigError, match="mapping"):
        read_config_file(tmp_path / "list.yaml")


def test_run_metadata_records_settings_and_plugin_versions(tmp_path):
    write_run_metadata(tmp_path / "run", TrainLike(gan="stylegan2"))
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config == {"gan": "stylegan2", "iterations": 100, "lr": 0.0015, "betas": [0.0, 0.99]}
    assert resolve_settings(TrainLike, tmp_path / "run" / "config.json") == TrainLike(
        gan="stylegan2"
    )
    versions = json.loads((tmp_path / "run" / "versions.json").read_text())
    assert versions["packages"]["ganenc-stylegan"] == "0.1.0"
    assert "torch" in versions


def test_shared_option_pieces_accept_paths_and_name_noise_modes(tmp_path):
    from ganenc.adapters import NOISE_MODES, check_noise_mode
    from ganenc.config import PathText, Settings

    class Options(Settings):
        checkpoint: PathText | None = None

    assert Options(checkpoint=tmp_path / "g.pt").checkpoint == str(tmp_path / "g.pt")
    assert Options().checkpoint is None
    assert check_noise_mode("random") == "random" and NOISE_MODES == ("const", "random", "none")
    with pytest.raises(ConfigError, match="noise_mode must be one of"):
        check_noise_mode("loud")


def test_a_config_file_that_does_not_parse_is_one_line(tmp_path):
    (tmp_path / "c.yaml").write_text("a: [1,\n")
    with pytest.raises(ConfigError) as raised:
        read_config_file(tmp_path / "c.yaml")
    message = str(raised.value)
    assert "\n" not in message and message.endswith("(line 2, column 1)")
