"""Packaging: every sub-package ships, every plugin is its own distribution, torch is a range."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

import ganenc
from ganenc.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = {
    "stylegan": "ganenc-stylegan",
    "pggan": "ganenc-pggan",
    "biggan": "ganenc-biggan",
    "attention_center": "ganenc-attention-center",
    "attention_gradcam": "ganenc-attention-gradcam",
    "studio": "ganenc-studio",
}


def _pyproject(path: Path) -> dict:
    return tomllib.loads(path.read_text())


def test_every_core_and_cli_package_is_listed():
    listed = set(_pyproject(ROOT / "pyproject.toml")["tool"]["setuptools"]["packages"])
    found = set()
    for base, prefix in ((ROOT / "core", "ganenc"), (ROOT / "cli", "ganenc.cli")):
        for init in base.rglob("__init__.py"):
            parts = init.parent.relative_to(base).parts
            found.add(".".join((prefix, *parts)))
    assert found == listed


def test_torch_is_a_range_not_a_pin():
    deps = _pyproject(ROOT / "pyproject.toml")["project"]["dependencies"]
    torch = [d for d in deps if re.match(r"torch\b", d) and not d.startswith("torchvision")]
    assert torch and "==" not in torch[0] and ">=" in torch[0]


@pytest.mark.parametrize(("folder", "dist"), sorted(PLUGINS.items()))
def test_each_plugin_is_its_own_distribution(folder, dist):
    project = _pyproject(ROOT / "plugins" / folder / "pyproject.toml")["project"]
    assert project["name"] == dist
    assert any(
        dep.startswith("ganenc") and not dep.startswith("ganenc-")
        for dep in project["dependencies"]
    )
    assert project["entry-points"]["ganenc"] == {folder: f"ganenc_{folder}.plugin"}
    info = ganenc.get_registry().plugins[folder]
    assert (info.status, info.distribution) == ("ok", dist)


def test_removing_a_plugin_removes_its_components_and_nothing_else(monkeypatch):
    from ganenc.geometry import GeneratorGeometry
    from ganenc.registry import set_registry

    monkeypatch.setenv("GANENC_DISABLE_PLUGINS", "stylegan")
    set_registry(None)
    rows = json.loads(CliRunner().invoke(cli, ["list", "--json"]).output)
    names = {row["name"] for row in rows}
    assert "stylegan2" not in names and "stylegan-adaptive" not in names
    assert {"pggan", "biggan", "center", "gradcam", "mse"} <= names
    with pytest.raises(ganenc.UnknownComponentError):
        ganenc.load_generator("stylegan2")
    geometry = GeneratorGeometry("stylegan2", 32, {"w_plus": (8, 512)})
    with pytest.raises(ganenc.GanencError, match="no encoder builder"):
        ganenc.build_encoder(geometry)
