"""Damaged or crafted NVIDIA pickles: one clear line naming the file as damaged, never a crash.

Each file is a real fixture snapshot (or a bare ``G_ema``) read by the restricted
reader, edited as :class:`PersistentObject` values, and pickled again the way
NVIDIA's ``pickle.dump`` does: networks as ``torch_utils.persistence`` calls,
tensors and numpy arrays by their own reducers.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import ganenc
from ganenc.checkpoints import describe_checkpoint
from ganenc.cli.main import cli
from ganenc.encoders import ENCODER_FORMAT, read_encoder_checkpoint
from ganenc.errors import CheckpointError
from ganenc_stylegan.nvidia import NumpyArray, PersistentObject, read_nvidia_pickle

torch.set_num_threads(1)

FIXTURES = Path(__file__).parent / "fixtures"
ADA = FIXTURES / "stylegan2_ada_nvidia_pkl" / "generator.pkl"
SG3 = FIXTURES / "stylegan3_nvidia_pkl" / "generator.pkl"
DAMAGED = r"damaged NVIDIA pickle \("


class RawNumpy:
    """A numpy array pickled with any shape, Fortran flag, byte order and raw bytes."""

    def __init__(self, shape, raw=b"", fortran=False, order="<", code="f4"):
        self.shape, self.raw, self.fortran, self.order, self.code = shape, raw, fortran, order, code

    def __reduce__(self):
        dtype = (np.dtype, (self.code, False, True), (3, self.order, None, None, None, -1, -1, 0))
        return (
            np.ndarray.__reduce__(np.zeros(0, "f4"))[0],
            (np.ndarray, (0,), b"b"),
            (
                1,
                self.shape,
                _Reduced(dtype),
                self.fortran,
                self.raw,
            ),
        )


class _Reduced:
    def __init__(self, reduced):
        self.reduced = reduced

    def __reduce__(self):
        return self.reduced


@pytest.fixture
def write_pickle(monkeypatch, tmp_path):
    """``write(top, name)``: ``top`` pickled as NVIDIA does, networks included, to a file."""

    def _reconstruct_persistent_obj(meta):  # only its name is pickled
        raise AssertionError("never called")

    module = types.ModuleType("torch_utils.persistence")
    _reconstruct_persistent_obj.__module__ = module.__name__
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    module._reconstruct_persistent_obj = _reconstruct_persistent_obj
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, module.__name__, module)

    class Pickler(pickle.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, PersistentObject):
                meta = {"type": "class", "class_name": obj.class_name, "state": dict(obj.state)}
                return _reconstruct_persistent_obj, ({**meta, "version": 6, "module_src": ""},)
            if isinstance(obj, NumpyArray):
                return np.array(obj.values).reshape(obj.shape).__reduce__()
            if isinstance(obj, dict) and type(obj) not in (dict, collections.OrderedDict):
                return collections.OrderedDict, (list(obj.items()),)  # EasyDict
            return NotImplemented

    def write(top, name="crafted.pkl"):
        buffer = io.BytesIO()
        Pickler(buffer, protocol=4).dump(top)
        path = tmp_path / name
        path.write_bytes(buffer.getvalue())
        return path

    return write


def _bare_generator(**attrs):
    """A ``G_ema`` with no weights: enough to reach the value checks."""

    def network(class_name, modules=None, **state):
        return PersistentObject(
            class_name, {"_parameters": {}, "_buffers": {}, "_modules": modules or {}, **state}
        )

    synthesis = network("SynthesisNetwork", {"b4": network("SynthesisBlock")})
    generator = network("Generator", {"mapping": network("MappingNetwork"), "synthesis": synthesis})
    generator.state.update(attrs)
    return {"G_ema": generator, "D": None}


def test_a_repickled_snapshot_still_loads(write_pickle):
    """The edits below are the only difference: the unedited snapshots load as they are."""
    for family, fixture in (("stylegan2", ADA), ("stylegan3", SG3)):
        top = read_nvidia_pickle(fixture)
        path = write_pickle({"G_ema": top["G_ema"]}, f"{family}.pkl")
        assert (
            ganenc.load_generator(family, path).num_ws == {"stylegan2": 8, "stylegan3": 16}[family]
        )


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (RawNumpy((math.inf,)), r"shape holds inf, not a size"),
        (RawNumpy((-1,)), r"shape holds -1, not a size"),
        (RawNumpy(("x",)), r"shape holds 'x', not a size"),
        (RawNumpy((2.0,), b"\0" * 8), r"shape holds 2.0, not a size"),
        (RawNumpy((True,), b"\0" * 4), r"shape holds True, not a size"),
        (RawNumpy([2], b"\0" * 8), r"shape is a list, not a tuple of sizes"),
        (RawNumpy((10**18,)), r"far beyond NVIDIA's small vectors"),
        (RawNumpy((10**9, 10**9)), r"far beyond NVIDIA's small vectors"),
        (RawNumpy((2,), b"\0" * 4), r"2 f4 element\(s\) holds 4 bytes, not 8"),
        (RawNumpy((1,), "abcd"), r"no raw bytes"),
        (RawNumpy((2,), b"\0" * 8, fortran="yes"), r"Fortran flag is 'yes'"),
        (RawNumpy((2,), b"\0" * 8, order=5), r"byte order 5"),
        (RawNumpy((2,), b"\0" * 8, code=7), r"dtype is named by a int"),
    ],
)
def test_a_malformed_numpy_array_names_the_file_as_damaged(write_pickle, array, message):
    path = write_pickle(_bare_generator(c_dim=array))
    for family in ("stylegan2", "stylegan3"):
        with pytest.raises(CheckpointError, match=rf"^{path}: {DAMAGED}.*{message}"):
            ganenc.load_generator(family, path)


def test_the_probes_files_are_one_line_at_the_command_line(write_pickle, tmp_path):
    for attrs in (
        {"c_dim": RawNumpy((math.inf,))},
        {"c_dim": torch.ones(2)},
        {"img_channels": torch.tensor([3, 3])},
        {"_init_kwargs": {"c_dim": torch.ones(2)}},
    ):
        path = write_pickle(_bare_generator(**attrs))
        out = tmp_path / "x.png"
        result = CliRunner().invoke(
            cli,
            ["sample", "--gan", "stylegan2", "--checkpoint", str(path), "--out", str(out), "-n",
             "1", "--device", "cpu"],
        )  # fmt: skip
        assert result.exit_code != 0 and not out.exists()
        assert "damaged NVIDIA pickle" in result.output, result.output
        assert "unexpected error" not in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def _edit(top, path, value):
    """Set ``path`` (``"G_ema.synthesis.b4.attr"``, ``"..._init_kwargs.key"``) to ``value``."""
    *modules, name = path.split(".")
    node = top
    for part in modules:
        node = node[part] if isinstance(node, dict) else node.module(part) or node.state[part]
    target = node if isinstance(node, dict) else node.state
    target[name] = value


ADA_EDITS = [
    ("G_ema.c_dim", torch.ones(2), r"G_ema\.c_dim is a Tensor, where NVIDIA keeps plain values"),
    ("G_ema._init_kwargs.c_dim", torch.ones(2), r"G_ema\._init_kwargs\.c_dim is a Tensor"),
    ("G_ema.img_channels", torch.tensor([3, 3]), r"G_ema\.img_channels is a Tensor"),
    ("G_ema.img_channels", "3", r"img_channels is '3', expected an integer from 1 to"),
    ("G_ema.c_dim", -1, r"c_dim is -1, expected an integer from 0 to"),
    ("G_ema.c_dim", math.nan, r"c_dim is nan, expected an integer"),
    ("G_ema.c_dim", 10**40, r"c_dim is 1000000000000000000000000000000000000\.\.\., expected"),
    ("G_ema.c_dim", True, r"c_dim is True, expected an integer"),
    ("G_ema.z_dim", 0, r"z_dim is 0, expected an integer from 1"),
    ("G_ema.img_resolution", 48, r"img_resolution is 48, expected a power of two"),
    ("G_ema._init_kwargs.mapping_kwargs", "abc", r"mapping_kwargs is 'abc', not keyword"),
    ("G_ema._init_kwargs.mapping_kwargs", {"num_layers": -8}, r"num_layers is -8, expected"),
    ("G_ema.synthesis.b8.conv0.conv_clamp", "256", r"b8\.conv0\.conv_clamp is '256', expected"),
    ("G_ema.synthesis.b8.conv0.conv_clamp", math.inf, r"conv_clamp is inf, expected None or"),
    ("G_ema.synthesis.b8.conv0.conv_clamp", torch.tensor(256.0), r"conv_clamp is a Tensor"),
    ("G_ema.synthesis.b8.conv0.activation", ["lrelu"], r"activation is a list, expected the"),
    ("G_ema.synthesis.b8.architecture", 3, r"architecture is 3, expected the name of"),
    ("G_ema.mapping.fc0.bias_gain", [0.01], r"fc0\.bias_gain is a list, expected a number"),
    (
        "G_ema.synthesis.b8.conv0.padding",
        {"a": [collections.OrderedDict]},
        r"padding\.a\[0\] is a type",
    ),
    ("G_ema.synthesis.b8._parameters", {"x": "y"}, r"G_ema\.synthesis\.b8\.x is 'y', not a"),
    ("G_ema.synthesis.b8._modules", {"conv0": 3}, r"b8\.conv0 is 3, not a network"),
    ("G_ema.synthesis.b8._modules", [1], r"b8\._modules is a list, not a table"),
    ("G_ema.synthesis.b8._non_persistent_buffers_set", {torch.ones(1)}, r"set\[0\] is a Tensor"),
]


@pytest.mark.parametrize(("where", "value", "message"), ADA_EDITS)
def test_a_stylegan2_value_of_the_wrong_type_or_range_is_one_clear_error(
    write_pickle, where, value, message
):
    top = {"G_ema": read_nvidia_pickle(ADA)["G_ema"]}
    _edit(top, where, value)
    path = write_pickle(top)
    with pytest.raises(CheckpointError, match=rf"^{path}: {DAMAGED}.*{message}"):
        ganenc.load_generator("stylegan2", path)


SG3_EDITS = [
    ("G_ema._init_kwargs.channel_base", 1e300, r"channel_base is 1e\+300, expected an integer"),
    ("G_ema._init_kwargs.num_layers", 10**9, r"num_layers is 1000000000, expected an integer"),
    ("G_ema._init_kwargs.first_cutoff", 0, r"first_cutoff is 0, expected a number above 0"),
    ("G_ema._init_kwargs.lrelu_upsampling", 1e9, r"lrelu_upsampling is 1000000000.0"),
    ("G_ema._init_kwargs.use_radial_filters", "no", r"use_radial_filters is 'no', expected"),
    ("G_ema._init_kwargs.synthesis_kwargs", {"conv_kernel": 0}, r"conv_kernel is 0, expected"),
    ("G_ema._init_kwargs.img_resolution", torch.tensor(32), r"img_resolution is a Tensor"),
    ("G_ema.synthesis.output_scale", math.nan, r"output_scale is nan, expected a number"),
]


@pytest.mark.parametrize(("where", "value", "message"), SG3_EDITS)
def test_a_stylegan3_value_of_the_wrong_type_or_range_is_one_clear_error(
    write_pickle, where, value, message
):
    top = {"G_ema": read_nvidia_pickle(SG3)["G_ema"]}
    _edit(top, where, value)
    path = write_pickle(top)
    with pytest.raises(CheckpointError, match=rf"^{path}: {DAMAGED}.*{message}"):
        ganenc.load_generator("stylegan3", path)


def test_a_numpy_geometry_value_out_of_range_is_one_clear_error(write_pickle):
    """A well-formed numpy array whose values make no geometry (inf) is the file's fault."""
    top = {"G_ema": read_nvidia_pickle(SG3)["G_ema"]}
    layer = top["G_ema"].module("synthesis.L0_36_24")
    layer.state["in_size"] = RawNumpy((2,), np.array([math.inf, 36.0], "<f4").tobytes())
    path = write_pickle(top)
    with pytest.raises(
        CheckpointError,
        match=rf"^{path}: {DAMAGED}malformed generator: cannot convert float infinity",
    ):
        ganenc.load_generator("stylegan3", path)


def test_networks_that_loop_or_nest_without_end_are_damaged(write_pickle):
    top = {"G_ema": read_nvidia_pickle(ADA)["G_ema"]}
    synthesis = top["G_ema"].module("synthesis")
    synthesis.state["_modules"]["again"] = synthesis
    with pytest.raises(CheckpointError, match=rf"{DAMAGED}.*met twice \(a loop"):
        ganenc.load_generator("stylegan2", write_pickle(top, "loop.pkl"))
    deep = _bare_generator()
    node = deep["G_ema"].module("synthesis.b4")
    for _ in range(40):
        child = PersistentObject("Layer", {"_parameters": {}, "_buffers": {}, "_modules": {}})
        node.state["_modules"]["x"] = child
        node = child
    with pytest.raises(CheckpointError, match=rf"{DAMAGED}.*networks nest more than 16 deep"):
        ganenc.load_generator("stylegan2", write_pickle(deep, "deep.pkl"))
    nested: list = []
    for _ in range(20):
        nested = [nested]
    with pytest.raises(CheckpointError, match=rf"{DAMAGED}.*nests values more than 8 deep"):
        ganenc.load_generator("stylegan2", write_pickle(_bare_generator(stuff=nested), "n.pkl"))


def test_an_unknown_encoder_format_version_is_described_as_such(tmp_path):
    assert describe_checkpoint({"format": ENCODER_FORMAT}) == "a ganenc encoder checkpoint"
    newer = describe_checkpoint({"format": "ganenc-encoder/2"})
    assert "'ganenc-encoder/2'" in newer and "upgrade ganenc" in newer
    odd = describe_checkpoint({"format": "ganenc-encoder/x"})
    assert "unknown format 'ganenc-encoder/x'" in odd and "upgrade" not in odd
    path = tmp_path / "future.pt"
    torch.save({"format": "ganenc-encoder/2"}, path)
    with pytest.raises(CheckpointError) as error:
        read_encoder_checkpoint(path)
    assert "(found a ganenc encoder checkpoint)" not in str(error.value)
    assert "upgrade ganenc" in str(error.value)


def test_a_weight_without_the_dimensions_its_sizes_are_read_from_is_one_clear_error(write_pickle):
    top = {"G_ema": read_nvidia_pickle(ADA)["G_ema"]}
    top["G_ema"].module("mapping.fc0").state["_parameters"]["weight"] = torch.tensor(1.0)
    path = write_pickle(top)
    with pytest.raises(CheckpointError, match=r"'mapping\.fc0\.weight' has shape \[\], expected"):
        ganenc.load_generator("stylegan2", path)
