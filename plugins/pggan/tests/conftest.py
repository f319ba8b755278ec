"""Shared helpers of the pggan plugin's tests: fixture weights and a fake GAN zoo config class."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402 - after the thread setting

torch.set_num_threads(1)

FIXTURES = Path(__file__).parent / "fixtures"


def _fixture(name: str) -> dict:
    from ganenc.testing.fixtures import build_state_dict, load_manifest

    manifest = load_manifest(FIXTURES / name / "manifest.json")
    return {
        "manifest": manifest,
        "state": build_state_dict(manifest),
        "cases": torch.load(FIXTURES / name / "cases.pt", weights_only=True),
        "tolerance": manifest["tolerance"]["max_abs"],
    }


@pytest.fixture(scope="session")
def gan_zoo_fixture() -> dict:
    """The pytorch_GAN_zoo reference fixture: manifest, rebuilt state dict, cases, tolerances."""
    return _fixture("pggan_gan_zoo")


@pytest.fixture(scope="session")
def genforce_fixture() -> dict:
    """The genforce reference fixture: manifest, rebuilt state dict, cases, tolerances."""
    return _fixture("pggan_genforce")


@pytest.fixture
def fake_gan_zoo_module(monkeypatch):
    """A stand-in ``models.utils.config`` module whose ``BaseConfig`` pickles like GAN zoo's.

    Yields a function ``save(obj, path)`` that runs ``torch.save`` while the
    fake module is importable; the module is gone again when loading, so a
    loader that imported it would fail.
    """

    class BaseConfig:
        """Attribute bag, like pytorch_GAN_zoo's models.utils.config.BaseConfig."""

    BaseConfig.__module__ = "models.utils.config"
    BaseConfig.__qualname__ = "BaseConfig"

    def save(obj, path) -> None:
        with monkeypatch.context() as patch:
            for name in ("models", "models.utils", "models.utils.config"):
                module = types.ModuleType(name)
                patch.setitem(sys.modules, name, module)
            sys.modules["models.utils.config"].BaseConfig = BaseConfig
            torch.save(obj, path)
        assert "models.utils.config" not in sys.modules

    save.BaseConfig = BaseConfig
    return save
