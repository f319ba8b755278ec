"""Shared fixtures of the BigGAN plugin tests: the reference fixture on disk, a tiny generator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import ganenc
from ganenc.testing.fixtures import build_state_dict, load_manifest

FIXTURE_DIR = Path(__file__).parent / "fixtures" / "biggan_deep_hf"

#: A small random BigGAN-deep: 32 px, 4 base channels, 16-d z, 10 classes.
TINY_OPTIONS = {"resolution": 32, "channel_width": 4, "z_dim": 16, "num_classes": 10}


@pytest.fixture(scope="session")
def biggan_manifest() -> dict:
    return load_manifest(FIXTURE_DIR / "manifest.json")


@pytest.fixture(scope="session")
def biggan_cases() -> dict[str, torch.Tensor]:
    return torch.load(FIXTURE_DIR / "cases.pt", weights_only=True)


@pytest.fixture(scope="session")
def biggan_hf_folder(biggan_manifest, tmp_path_factory) -> Path:
    """The fixture weights saved in the HuggingFace format: config.json + pytorch_model.bin."""
    folder = tmp_path_factory.mktemp("biggan_deep_hf")
    (folder / "config.json").write_text(json.dumps(biggan_manifest["config"]), encoding="utf-8")
    torch.save(build_state_dict(biggan_manifest), folder / "pytorch_model.bin")
    return folder


@pytest.fixture(scope="session")
def tiny_options() -> dict:
    """Options of :func:`tiny_biggan` (a copy: tests may change it)."""
    return dict(TINY_OPTIONS)


@pytest.fixture(scope="session")
def tiny_biggan():
    """A random tiny BigGAN adapter (frozen, CPU); do not modify it in tests."""
    return ganenc.load_generator("biggan", **TINY_OPTIONS)
