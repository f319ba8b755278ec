"""Fixtures of the studio's tests: the engine's tiny encoder run, directions, a studio."""

from __future__ import annotations

import os
from pathlib import Path

import inversion_fixtures
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

#: The engine's tiny encoder run (32 px StyleGAN2, 5 steps), trained once per test process.
tiny_run = inversion_fixtures.tiny_run


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Weights lookups of a test go to a private GANENC_HOME, never the user's."""
    monkeypatch.setenv("GANENC_HOME", str(tmp_path_factory.mktemp("ganenc-home")))
    monkeypatch.setenv("GANENC_OFFLINE", "1")


@pytest.fixture(scope="session")
def directions_dir(tiny_run, tmp_path_factory) -> Path:
    """Two unit directions in w (as 'ganenc directions' writes them), fixed by a seed."""
    import torch

    from ganenc.editing import Direction
    from ganenc.inversion import Inverter

    probe = Inverter.from_encoder(tiny_run, device="cpu").encode(torch.zeros(1, 3, 32, 32))
    size = probe["w_plus"].shape[-1]
    folder = tmp_path_factory.mktemp("directions")
    generator = torch.Generator().manual_seed(0)
    for name in ("smile", "age"):
        vector = torch.randn(size, generator=generator)
        Direction(name, "w", vector / vector.norm(), {"validation_accuracy": 0.9}).save(
            folder / f"{name}.pt"
        )
    return folder


@pytest.fixture(scope="session")
def studio(tiny_run, directions_dir, tmp_path_factory):
    from ganenc_studio.session import Studio

    opened = Studio.open(str(tiny_run), directions_dir, device="cpu")
    yield opened
    opened.close()
