"""The architecture page names only things that exist: every module, class and function."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
#: A dotted ganenc name in a diagram: ``ganenc.inversion.Inverter.from_run``, ``ganenc_pggan.plugin``.
DOTTED = re.compile(r"\b(ganenc(?:_[a-z_]+)?(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def diagram_names() -> list[str]:
    """Dotted names in the code blocks of the architecture page, in order, once each."""
    blocks = re.findall(r"```\n(.*?)```", ARCHITECTURE.read_text(encoding="utf-8"), re.DOTALL)
    names = DOTTED.findall("\n".join(blocks))
    return list(dict.fromkeys(name.rstrip(".") for name in names))


def resolve(name: str) -> object:
    """Import the longest module prefix of ``name``, then follow attributes."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ModuleNotFoundError(name)


def test_the_diagrams_name_modules_of_every_kind():
    names = diagram_names()
    assert "ganenc.encoder_runs.EncoderRun.open" in names
    assert "ganenc.training.loop.training_loop" in names
    assert {"ganenc_stylegan.plugin", "ganenc_pggan.plugin", "ganenc_biggan.plugin"} <= set(names)


@pytest.mark.parametrize("name", diagram_names())
def test_every_name_in_the_architecture_diagrams_exists(name):
    assert resolve(name) is not None


def test_every_plugin_module_in_the_diagram_is_an_installed_entry_point():
    import importlib_metadata

    entry_points = {ep.value for ep in importlib_metadata.entry_points(group="ganenc")}
    named = {n for n in diagram_names() if n.startswith("ganenc_") and n.endswith(".plugin")}
    assert named <= entry_points
