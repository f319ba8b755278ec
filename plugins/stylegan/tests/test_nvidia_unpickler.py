"""The restricted reader of NVIDIA network pickles: what it reads, what it refuses, and that
it runs nothing from the file.

The fixtures' ``generator.pkl`` files are real NVIDIA snapshots (protocol 3 from
stylegan2-ada-pytorch, protocol 4 from stylegan3) with the embedded source
replaced by a placeholder.  Variants (another numpy module spelling, a
forbidden global, a cut-off file) are made by editing their bytes.
"""

from __future__ import annotations

import os
import pickle
import pickletools
import sys
from pathlib import Path

import pytest
import torch

import ganenc
from ganenc.errors import CheckpointError
from ganenc.testing.fixtures import build_state_dict, load_manifest
from ganenc_stylegan.nvidia import (
    ALLOWED_GLOBALS,
    NumpyArray,
    PersistentObject,
    is_nvidia_pickle,
    read_nvidia_pickle,
)

torch.set_num_threads(1)

FIXTURES = Path(__file__).parent / "fixtures"
ADA = FIXTURES / "stylegan2_ada_nvidia_pkl"  # protocol 3
SG3 = FIXTURES / "stylegan3_nvidia_pkl"  # protocol 4


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _unframed(data: bytes) -> bytes:
    """The same protocol-4 pickle without its (optional) FRAME opcodes, so strings may change
    length."""
    ops = list(pickletools.genops(data))
    out = bytearray()
    for index, (op, _, pos) in enumerate(ops):
        end = ops[index + 1][2] if index + 1 < len(ops) else len(data)
        if op.name != "FRAME":
            out += data[pos:end]
    return bytes(out)


def _globals(data: bytes) -> set[str]:
    """Every global a pickle names (GLOBAL and STACK_GLOBAL), found without unpickling.

    STACK_GLOBAL takes its two names from the stack: pushed strings or memo lookups.
    """
    found: set[str] = set()
    pushed: list = []
    memo: dict = {}
    for op, arg, _ in pickletools.genops(data):
        name = op.name
        if name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            pushed.append(arg)
        elif name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[arg] = pushed[-1] if pushed else None
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            pushed.append(memo.get(arg))
        elif name == "STACK_GLOBAL":
            found.add(f"{pushed[-2]}.{pushed[-1]}")
            pushed.append(None)
        elif name == "GLOBAL":
            found.add(arg.replace(" ", "."))
            pushed.append(None)
        else:
            pushed.append(None)
    return found


@pytest.mark.parametrize(("folder", "protocol"), [(ADA, 3), (SG3, 4)])
def test_g_ema_is_read_bit_exactly_from_both_protocols(folder, protocol):
    data = (folder / "generator.pkl").read_bytes()
    assert next(pickletools.genops(data))[1] == protocol
    manifest = load_manifest(folder / "manifest.json")
    assert _globals(data) == set(manifest["format"]["globals"])
    assert _globals(data) <= set(ALLOWED_GLOBALS)
    top = read_nvidia_pickle(folder / "generator.pkl")
    assert set(top) == set(manifest["format"]["top_level_keys"])
    assert isinstance(top["G_ema"], PersistentObject) and top["G_ema"].class_name == "Generator"
    assert top["augment_pipe"] is None and isinstance(top["training_set_kwargs"], dict)
    state = top["G_ema"].state_dict()
    expected = build_state_dict(manifest)
    assert list(state) == list(expected)  # nn.Module.state_dict order
    for key, tensor in expected.items():
        assert torch.equal(state[key], tensor), key
    # G is another network (the instantaneous weights); the loader must not take it
    g_state = top["G"].state_dict()
    assert not torch.equal(g_state["mapping.fc0.weight"], state["mapping.fc0.weight"])
    # init kwargs come back as plain Python values (EasyDicts as dicts)
    assert top["G_ema"].init_kwargs == manifest["config"]


def test_numpy_values_are_decoded_without_numpy_unpickling():
    top = read_nvidia_pickle(SG3 / "generator.pkl")
    layer = top["G_ema"].module("synthesis.L5_52_24")
    assert isinstance(layer.attr("in_size"), NumpyArray)
    assert layer.attr("in_size").tolist() == [36, 36]
    assert layer.attr("out_size").tolist() == [52, 52]
    assert layer.attr("tmp_sampling_rate") == 64.0
    assert layer.attr("padding") == [-6, -9, -6, -9]
    ada = read_nvidia_pickle(ADA / "generator.pkl")
    conv = ada["G_ema"].module("synthesis.b8.conv0")
    assert conv.attr("act_gain") == pytest.approx(2**0.5, abs=1e-15)


def test_loading_imports_and_runs_no_nvidia_code():
    for name in ("torch_utils", "dnnlib"):
        sys.modules.pop(name, None)
    ganenc.load_generator("stylegan2", ADA / "generator.pkl")
    ganenc.load_generator("stylegan3", SG3 / "generator.pkl")
    loaded = [name for name in sys.modules if name.split(".")[0] in ("torch_utils", "dnnlib")]
    assert loaded == []


def test_numpy_2_module_spelling_reads_the_same(tmp_path):
    protocol3 = (ADA / "generator.pkl").read_bytes()
    renamed3 = protocol3.replace(b"cnumpy.core.multiarray\n", b"cnumpy._core.multiarray\n")
    assert renamed3 != protocol3
    protocol4 = _unframed((SG3 / "generator.pkl").read_bytes())
    short = b"\x8c\x15numpy.core.multiarray"
    renamed4 = protocol4.replace(short, b"\x8c\x16numpy._core.multiarray")
    assert renamed4 != protocol4
    for original, renamed, family in (
        (ADA / "generator.pkl", renamed3, "stylegan2"),
        (SG3 / "generator.pkl", renamed4, "stylegan3"),
    ):
        assert "numpy._core.multiarray.scalar" in _globals(renamed)
        path = _write(tmp_path / f"numpy2-{family}.pkl", renamed)
        first, second = read_nvidia_pickle(original), read_nvidia_pickle(path)
        for (key, a), b in zip(
            first["G_ema"].state_dict().items(), second["G_ema"].state_dict().values(), strict=True
        ):
            assert torch.equal(a, b), key
        g = ganenc.load_generator(family, path)
        assert g.num_ws == {"stylegan2": 8, "stylegan3": 16}[family]


class _RunsACommand:
    """Pickles as a call of ``os.system`` (what a malicious checkpoint does)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("protocol", [0, 2, 3, 4, 5])
def test_a_forbidden_global_is_refused_before_anything_runs(tmp_path, protocol):
    marker = tmp_path / "ran"
    payload = {"G_ema": _RunsACommand(f"touch {marker}")}
    path = _write(tmp_path / "evil.pkl", pickle.dumps(payload, protocol=protocol))
    if protocol >= 2:
        assert _globals(path.read_bytes()) == {f"{os.system.__module__}.system"}
    for family in ("stylegan2", "stylegan3"):
        with pytest.raises(CheckpointError, match=r"refused: .*system.* not part of NVIDIA"):
            ganenc.load_generator(family, path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "global_line",
    [b"cos\nsystem\n", b"cbuiltins\neval\n", b"ctorch_utils.persistence\npersistent_class\n"],
)
def test_a_forbidden_global_inside_a_real_snapshot_is_refused(tmp_path, global_line):
    data = (ADA / "generator.pkl").read_bytes()
    edited = data.replace(b"ccollections\nOrderedDict\n", global_line, 1)
    assert edited != data
    path = _write(tmp_path / "edited.pkl", edited)
    name = global_line[1:].decode().strip().replace("\n", ".")
    with pytest.raises(CheckpointError, match=rf"refused: the pickle references {name}\b"):
        ganenc.load_generator("stylegan2", path)


def test_non_numeric_numpy_values_and_persistent_ids_are_refused(tmp_path):
    data = (ADA / "generator.pkl").read_bytes()
    object_dtype = data.replace(b"X\x02\x00\x00\x00f8", b"X\x02\x00\x00\x00O8")
    assert object_dtype != data
    with pytest.raises(CheckpointError, match="only numeric dtypes"):
        read_nvidia_pickle(_write(tmp_path / "object.pkl", object_dtype))
    with pytest.raises(CheckpointError, match="persistent ids"):
        read_nvidia_pickle(_write(tmp_path / "pid.pkl", b"\x80\x03Pstorage\n."))


@pytest.mark.parametrize("folder", [ADA, SG3])
@pytest.mark.parametrize("fraction", [0.0005, 0.5, 0.999])
def test_a_truncated_pickle_is_one_clear_error(tmp_path, folder, fraction):
    data = (folder / "generator.pkl").read_bytes()
    path = _write(tmp_path / "cut.pkl", data[: int(len(data) * fraction)])
    family = "stylegan2" if folder == ADA else "stylegan3"
    with pytest.raises(CheckpointError, match=r"cut\.pkl is truncated or corrupt"):
        ganenc.load_generator(family, path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            pickle.dumps({"weights": [1.0, 2.0]}, protocol=4),
            r"not an NVIDIA network pickle: it has",
        ),
        (pickle.dumps([1, 2, 3], protocol=3), "a pickle of a list, not an NVIDIA network pickle"),
        (pickle.dumps({"G_ema": {"a": 1}}, protocol=3), "its 'G_ema' is not a network"),
        (b"\x80\x04not really a pickle", "not an NVIDIA network pickle ganenc can read"),
    ],
)
def test_a_pickle_that_is_not_an_nvidia_snapshot_is_one_clear_error(tmp_path, content, message):
    path = _write(tmp_path / "other.pkl", content)
    with pytest.raises(CheckpointError, match=message):
        ganenc.load_generator("stylegan2", path)


def test_legacy_torch_files_and_empty_files_are_named(tmp_path):
    legacy = tmp_path / "legacy.pkl"
    torch.save({"g_ema": {}}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="legacy torch.save file"):
        read_nvidia_pickle(legacy)
    with pytest.raises(CheckpointError, match="empty"):
        ganenc.load_generator("stylegan3", _write(tmp_path / "empty.pkl", b""))
    with pytest.raises(CheckpointError, match="not found"):
        ganenc.load_generator("stylegan3", tmp_path / "missing.pkl")


def test_files_are_routed_by_content_not_only_by_name(tmp_path):
    renamed = _write(tmp_path / "snapshot.bin", (ADA / "generator.pkl").read_bytes())
    assert is_nvidia_pickle(renamed) and is_nvidia_pickle(ADA / "generator.pkl")
    assert ganenc.load_generator("stylegan2", renamed).num_ws == 8
    zipped = tmp_path / "zip.pkl"
    torch.save({"weights": torch.zeros(1)}, zipped)
    assert not is_nvidia_pickle(zipped)
    with pytest.raises(CheckpointError, match="not a StyleGAN3 checkpoint"):
        ganenc.load_generator("stylegan3", zipped)


@pytest.mark.parametrize(
    ("family", "path", "hint"),
    [
        ("stylegan2", SG3 / "generator.pkl", "NVIDIA StyleGAN3 pickle, not a StyleGAN2 one"),
        ("stylegan3", ADA / "generator.pkl", "NVIDIA StyleGAN2 pickle, not a StyleGAN3 one"),
        ("stylegan1", ADA / "generator.pkl", "NVIDIA StyleGAN2 pickle, not a StyleGAN1 one"),
    ],
)
def test_a_pickle_given_to_another_family_names_the_right_one(family, path, hint):
    right = "stylegan3" if "StyleGAN3 pickle" in hint else "stylegan2"
    with pytest.raises(CheckpointError, match=rf"{hint}; load it with --gan {right}"):
        ganenc.load_generator(family, path)


def test_inert_stand_ins_take_no_extra_state(tmp_path):
    """A BUILD on a persistent object (to shadow its methods, say) is refused."""
    head = b"\x80\x02}VG_ema\n"  # {"G_ema": persistent object}
    persistent = (
        b"ctorch_utils.persistence\n_reconstruct_persistent_obj\n"
        b"}(Vtype\nVclass\nVclass_name\nVGenerator\nVstate\n}u\x85R"
    )
    top = read_nvidia_pickle(_write(tmp_path / "ok.pkl", head + persistent + b"s."))
    assert top["G_ema"].class_name == "Generator"
    with_state = head + persistent + b"}Vnamed_tensors\nK\x01sbs."
    with pytest.raises(CheckpointError, match="carries extra state; refused"):
        read_nvidia_pickle(_write(tmp_path / "build.pkl", with_state))
