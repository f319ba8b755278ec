"""The layout of the checkpoint code: one job per module, imports one way, one sniff per load.

The import graph is read from the source (every ``import``, at module level or
inside a function), so a cycle that happens to import fine in one order is
still caught.
"""

from __future__ import annotations

import ast
import builtins
import os
import sys
from pathlib import Path

import pytest
import torch

import ganenc_stylegan
from ganenc.errors import CheckpointError
from ganenc_stylegan import checkpoints, formats, nvidia
from ganenc_stylegan.checkpoints import dispatch, nvidia_pickle
from ganenc_stylegan.stylegan2 import StyleGAN2Config, StyleGAN2Generator

PACKAGE = Path(ganenc_stylegan.__file__).parent
FIXTURES = Path(__file__).parent / "fixtures"
#: Modules that only re-export names for old imports.
COMPAT_MODULES = {"formats", "nvidia"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    where = PACKAGE / name.replace(".", "/")
    return where.with_suffix(".py").exists() or (where / "__init__.py").exists()


def _imports(path: Path) -> set[str]:
    """The plugin's own modules that ``path`` imports (names relative to the package root)."""
    name = _module_name(path).split(".") if _module_name(path) else []
    package = name if path.name == "__init__.py" else name[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
            found |= {m.split(".", 1)[1] for m in modules if m.startswith("ganenc_stylegan.")}
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 0:
            if not (node.module or "").startswith("ganenc_stylegan"):
                continue
            base = (node.module or "").split(".")[1:]
        else:
            base = package[: len(package) - node.level + 1] + (node.module or "").split(".")
        target = ".".join(part for part in base if part)
        for alias in node.names:  # `from . import x` may name a module
            child = f"{target}.{alias.name}".lstrip(".")
            found.add(child if _is_module(child) else target)
    return {name for name in found if name}


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py") if _module_name(p)}


def test_the_plugin_has_no_import_cycle():
    graph = _graph()
    assert "checkpoints.dispatch" in graph and "checkpoints.keymaps" in graph
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        assert name not in path, f"import cycle: {' -> '.join([*path, name])}"
        if name in done:
            return
        for target in sorted(graph.get(name, ())):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_dependencies_go_one_way():
    graph = _graph()
    inside = {name for name in graph if name.startswith("checkpoints.")}
    for name in ("checkpoints.keymaps", "checkpoints.nvidia_unpickler"):
        assert not graph[name] & inside, f"{name} is a leaf: {graph[name] & inside}"
    for name in inside - {"checkpoints.dispatch"}:
        assert "checkpoints.dispatch" not in graph[name], name
    for name, targets in graph.items():
        if name not in COMPAT_MODULES:
            assert not targets & COMPAT_MODULES, f"{name} imports a compatibility module"
    # the adapter and the convert command reach the checkpoint code through the dispatcher
    for user in ("adapter", "convert", "identify"):
        used = {t for t in graph[user] if t.startswith("checkpoints")}
        assert used <= {"checkpoints", "checkpoints.dispatch"}, (user, used)
    assert graph["checkpoints"] == set(), "the package module stays import-free (no torch)"


def test_old_modules_re_export_the_same_objects():
    assert "compatibility" in formats.__doc__ and "compatibility" in nvidia.__doc__
    assert formats.load_stylegan2_checkpoint is dispatch.load_stylegan2_checkpoint
    assert formats.FAMILY_NAMES is checkpoints.FAMILY_NAMES
    assert nvidia.is_nvidia_pickle is nvidia_pickle.is_nvidia_pickle
    assert all(hasattr(formats, name) for name in formats.__all__)
    assert all(hasattr(nvidia, name) for name in nvidia.__all__)
    assert tuple(dispatch.WRITERS) == checkpoints.WRITE_LAYOUTS


def _small_generator() -> StyleGAN2Generator:
    torch.manual_seed(0)
    config = StyleGAN2Config(resolution=8, channel_base=32, channel_max=8, z_dim=8, w_dim=8)
    return StyleGAN2Generator(config).eval()


@pytest.fixture
def file_use(monkeypatch):
    """Records each NVIDIA-pickle detection ("sniff") and each open of a file, by path."""
    events: list[tuple[str, Path]] = []
    for detector in ("is_nvidia_pickle", "looks_like_nvidia_pickle"):
        original = getattr(nvidia_pickle, detector)

        def counting(path, *args, _original=original):
            events.append(("sniff", Path(path)))
            return _original(path, *args)

        for name, module in list(sys.modules.items()):
            if name.startswith("ganenc_stylegan") and hasattr(module, detector):
                monkeypatch.setattr(module, detector, counting)
    path_open, builtin_open = Path.open, builtins.open

    def counting_path_open(self, *args, **kwargs):
        events.append(("open", Path(self)))
        return path_open(self, *args, **kwargs)

    def counting_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)):
            events.append(("open", Path(file)))
        return builtin_open(file, *args, **kwargs)

    monkeypatch.setattr(Path, "open", counting_path_open)
    monkeypatch.setattr(builtins, "open", counting_open)
    return events


@pytest.mark.parametrize("layout", ["rosinality", "genforce", "nvidia-state-dict"])
def test_a_torch_file_is_opened_and_sniffed_once_per_load(tmp_path, file_use, layout):
    model = _small_generator()
    path = dispatch.write_stylegan2_checkpoint(model, tmp_path / "g.pt", layout)
    file_use.clear()
    loaded = dispatch.load_stylegan2_checkpoint(path)
    assert [event for event in file_use if event[1] == path] == [("open", path), ("sniff", path)]
    assert torch.equal(loaded.synthesis.const, model.synthesis.const)


@pytest.mark.parametrize(
    ("folder", "load"),
    [
        ("stylegan2_ada_nvidia_pkl", dispatch.load_stylegan2_checkpoint),
        ("stylegan3_nvidia_pkl", dispatch.load_stylegan3_checkpoint),
    ],
)
def test_an_nvidia_pickle_is_opened_and_sniffed_once_per_load(file_use, folder, load):
    path = FIXTURES / folder / "generator.pkl"
    load(path)
    assert [event for event in file_use if event[1] == path] == [("open", path), ("sniff", path)]


def test_the_wrong_family_is_named_after_one_sniff(file_use):
    path = FIXTURES / "stylegan2_ada_nvidia_pkl" / "generator.pkl"
    with pytest.raises(CheckpointError, match="load it with --gan stylegan2"):
        dispatch.load_stylegan3_checkpoint(path)
    assert [event for event in file_use if event[1] == path] == [("open", path), ("sniff", path)]
