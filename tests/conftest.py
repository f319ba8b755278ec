"""Shared fixtures for ganenc's own tests."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Downloads and hash records of a test go to a private GANENC_HOME, never the user's."""
    monkeypatch.setenv("GANENC_HOME", str(tmp_path_factory.mktemp("ganenc-home")))


@pytest.fixture(autouse=True)
def _fresh_global_registry(monkeypatch):
    """Each test sees the registry as installed, unaffected by plugin env vars of the caller."""
    from ganenc.registry import set_registry

    for variable in (
        "GANENC_PLUGINS",
        "GANENC_DISABLE_PLUGINS",
        "GANENC_STRICT_PLUGINS",
        "GANENC_TRACEBACK",
    ):
        monkeypatch.delenv(variable, raising=False)
    previous = set_registry(None)
    yield
    set_registry(previous)


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """Install a throw-away distribution with a ``ganenc`` entry point, on sys.path only."""
    import importlib

    def install(dist: str, plugin: str, source: str, version: str = "1.0") -> Path:
        module = f"{dist.replace('-', '_')}_plugin"
        root = tmp_path / dist
        root.mkdir()
        (root / f"{module}.py").write_text(textwrap.dedent(source))
        info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[ganenc]\n{plugin} = {module}\n")
        monkeypatch.syspath_prepend(str(root))
        importlib.invalidate_caches()
        monkeypatch.delitem(sys.modules, module, raising=False)
        return root

    return install


@pytest.fixture
def emoji_gan_script():
    """``examples/train_emoji_gan.py`` as a module (its networks and helpers, no training)."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "examples" / "train_emoji_gan.py"
    spec = importlib.util.spec_from_file_location("train_emoji_gan", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
