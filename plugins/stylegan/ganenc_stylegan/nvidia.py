"""NVIDIA's network pickles (stylegan2-ada-pytorch, stylegan3) read without NVIDIA's code.

NVIDIA's official ``.pkl`` files are plain pickles of ``{"G", "D", "G_ema",
"augment_pipe", "training_set_kwargs"}`` whose networks are
``torch_utils.persistence`` objects: each one carries the full Python source of
its module and is rebuilt, by NVIDIA's own loader, by *executing* that source.
Loading them with ``pickle.load`` therefore runs whatever code the file holds.

:class:`RestrictedUnpickler` reads them without running or importing anything
from the file:

- ``torch_utils.persistence._reconstruct_persistent_obj`` becomes an inert
  :class:`PersistentObject` holding the class name and the module's ``__dict__``
  (``module_src`` is dropped unread);
- ``dnnlib.util.EasyDict`` becomes a plain ``dict`` subclass;
- tensors are rebuilt by torch's own rebuild functions from storages that
  ``torch.load(..., weights_only=True)`` reads out of the embedded bytes;
- numpy scalars and arrays are decoded from their raw bytes with :mod:`struct`
  (numeric dtypes only; numpy is never asked to unpickle anything);
- ``collections.OrderedDict`` and ``builtins.set`` are allowed as themselves;
- every other global is refused with a :class:`~ganenc.errors.CheckpointError`
  before anything is called.

The generator is always ``G_ema`` (the moving average of the weights, the one
NVIDIA's own tools use).  Its tensors, walked in ``nn.Module.state_dict`` order,
are mapped onto this plugin's :class:`~ganenc_stylegan.stylegan2.StyleGAN2Generator`
(the StyleGAN2-ADA math is the same, see :func:`stylegan2_from_nvidia`) or
:class:`~ganenc_stylegan.stylegan3.StyleGAN3Generator`.

Networks always compute in float32: this is NVIDIA's ``force_fp32=True``;
NVIDIA's default runs the highest-resolution blocks in float16 on a GPU.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import struct
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ganenc.errors import CheckpointError, ConfigError

from .formats import FAMILY_NAMES, KeyMap, _external_state, _load_with_plan
from .stylegan2 import StyleGAN2Config, StyleGAN2Generator, fir_kernel

#: Bytes of a file searched for the persistence module name when sniffing its format.
SNIFF_BYTES = 1 << 16
PERSISTENCE_MARKER = b"torch_utils"
#: The first object of a legacy (non-zip) ``torch.save`` file: its magic number.
LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_TORCH_PREFIX = pickle.dumps(LEGACY_TORCH_MAGIC, protocol=2)[:-1]

# ----------------------------------------------------------------------------------------
# Inert stand-ins for the objects of NVIDIA's pickles.


class PersistentObject:
    """What a ``torch_utils.persistence`` object holds, without its class or its source.

    ``class_name`` is the name of NVIDIA's class (``"Generator"``,
    ``"SynthesisLayer"``...), ``state`` the module's ``__dict__`` at pickling
    time (``_parameters``, ``_buffers``, ``_modules``, ``_init_kwargs`` and the
    attributes its constructor set).
    """

    def __init__(self, class_name: str, state: Mapping[str, Any], version: Any = None) -> None:
        self.class_name = class_name
        self.state = state
        self.version = version

    def __repr__(self) -> str:
        return f"PersistentObject({self.class_name!r})"

    def __setstate__(self, state: Any) -> None:
        raise CheckpointError("a torch_utils.persistence object carries extra state; refused")

    def attr(self, name: str, default: Any = None) -> Any:
        """An attribute the constructor set (``state[name]``), or ``default``."""
        return self.state.get(name, default)

    @property
    def init_kwargs(self) -> dict[str, Any]:
        kwargs = self.state.get("_init_kwargs")
        return dict(kwargs) if isinstance(kwargs, Mapping) else {}

    def _table(self, name: str) -> Mapping[str, Any]:
        table = self.state.get(name)
        return table if isinstance(table, Mapping) else {}

    @property
    def modules(self) -> dict[str, PersistentObject]:
        """The direct submodules (``None`` slots left out)."""
        return {
            name: module
            for name, module in self._table("_modules").items()
            if isinstance(module, PersistentObject)
        }

    def module(self, path: str) -> PersistentObject | None:
        """The submodule at a dotted ``path`` (``"synthesis.b4.conv1"``), or ``None``."""
        node: PersistentObject | None = self
        for part in path.split("."):
            if node is None:
                return None
            node = node.modules.get(part)
        return node

    def named_tensors(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """``(key, value)`` in ``nn.Module.state_dict`` order: parameters, buffers, submodules.

        ``None`` slots and non-persistent buffers are skipped, as torch does.
        """
        for name, value in self._table("_parameters").items():
            if value is not None:
                yield prefix + name, value
        skipped = self.state.get("_non_persistent_buffers_set") or ()
        for name, value in self._table("_buffers").items():
            if value is not None and name not in skipped:
                yield prefix + name, value
        for name, module in self.modules.items():
            yield from module.named_tensors(f"{prefix}{name}.")

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The module's state dict (keys as ``nn.Module.state_dict`` would name them)."""
        state = {}
        for key, value in self.named_tensors():
            if not isinstance(value, torch.Tensor):
                raise CheckpointError(f"entry {key!r} is a {type(value).__name__}, not a tensor")
            state[key] = value
        return state


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a plain dict (no attribute magic)."""

    def __setstate__(self, state: Any) -> None:
        raise CheckpointError("a dnnlib EasyDict carries extra state; refused")


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    if not isinstance(meta, Mapping) or meta.get("type") != "class":
        raise CheckpointError(
            "a torch_utils.persistence object is malformed (expected meta with type 'class')"
        )
    class_name, state = meta.get("class_name"), meta.get("state")
    if not isinstance(class_name, str) or not isinstance(state, Mapping):
        raise CheckpointError("a torch_utils.persistence object has no class name or state")
    # meta["module_src"] (NVIDIA's source code) is deliberately never looked at.
    return PersistentObject(class_name, state, meta.get("version"))


# -- numpy without numpy ---------------------------------------------------------------------

#: numpy type codes (``dtype.str`` without the byte order) -> struct format characters.
_NUMERIC_CODES = {
    "f2": "e",
    "f4": "f",
    "f8": "d",
    "i1": "b",
    "i2": "h",
    "i4": "i",
    "i8": "q",
    "u1": "B",
    "u2": "H",
    "u4": "I",
    "u8": "Q",
    "b1": "?",
}
_NUMPY_ALIASES = {
    "float16": "f2",
    "float32": "f4",
    "float64": "f8",
    "int8": "i1",
    "int16": "i2",
    "int32": "i4",
    "int64": "i8",
    "uint8": "u1",
    "uint16": "u2",
    "uint32": "u4",
    "uint64": "u8",
    "bool": "b1",
}


class NumpyDType:
    """Stand-in for ``numpy.dtype(code, align, copy)``: numeric types only."""

    def __init__(self, code: Any, align: Any = False, copy: Any = True) -> None:
        code = str(code)
        code = _NUMPY_ALIASES.get(code, code)
        if code not in _NUMERIC_CODES:
            raise CheckpointError(
                f"the pickle holds a numpy value of dtype {code!r}; only numeric dtypes are read"
            )
        self.code = code
        self.byteorder = "<"

    def __setstate__(self, state: Any) -> None:
        # (version, byteorder, subarray, names, fields, elsize, alignment, flags)
        if not isinstance(state, tuple) or len(state) < 2:
            raise CheckpointError("malformed numpy dtype in the pickle")
        order = state[1]
        if order not in ("<", ">", "|", "="):
            raise CheckpointError(f"malformed numpy dtype byte order {order!r}")
        if any(item is not None for item in state[2:5]):
            raise CheckpointError("structured numpy dtypes are not read")
        self.byteorder = ">" if order == ">" else "<"

    def unpack(self, raw: Any, count: int) -> tuple:
        if not isinstance(raw, (bytes, bytearray)):
            raise CheckpointError("a numpy value in the pickle has no raw bytes")
        fmt = f"{self.byteorder}{count}{_NUMERIC_CODES[self.code]}"
        try:
            return struct.unpack(fmt, bytes(raw))
        except struct.error as exc:
            raise CheckpointError(f"malformed numpy data in the pickle ({exc})") from None


class _NumpyArrayType:
    """Stand-in for the ``numpy.ndarray`` class object (only passed to ``_reconstruct``)."""


def _numpy_scalar(dtype: Any, raw: Any = None) -> int | float | bool:
    """``numpy.core.multiarray.scalar``: a Python number from the dtype and raw bytes."""
    if not isinstance(dtype, NumpyDType):
        raise CheckpointError("a numpy scalar in the pickle has no numeric dtype")
    return dtype.unpack(raw, 1)[0]


class NumpyArray:
    """Stand-in for a numeric numpy array: ``values`` (flat tuple) and ``shape``."""

    def __init__(self) -> None:
        self.shape: tuple[int, ...] = (0,)
        self.values: tuple = ()

    def __setstate__(self, state: Any) -> None:
        # (version, shape, dtype, is_fortran, raw bytes)
        if not isinstance(state, tuple) or len(state) != 5:
            raise CheckpointError("malformed numpy array in the pickle")
        _, shape, dtype, fortran, raw = state
        if not isinstance(dtype, NumpyDType) or not isinstance(shape, tuple):
            raise CheckpointError("a numpy array in the pickle has no numeric dtype")
        if fortran and len(shape) > 1:
            raise CheckpointError("Fortran-ordered numpy arrays are not read")
        self.shape = tuple(int(s) for s in shape)
        self.values = dtype.unpack(raw, math.prod(self.shape))

    def tolist(self) -> list:
        return list(self.values)

    def __repr__(self) -> str:
        return f"NumpyArray(shape={self.shape}, values={self.values})"


def _numpy_reconstruct(cls: Any, shape: Any = None, dtype_code: Any = None) -> NumpyArray:
    if cls is not _NumpyArrayType:
        raise CheckpointError("numpy's _reconstruct is only read for plain ndarrays")
    return NumpyArray()


# -- torch -----------------------------------------------------------------------------------


def _load_storage(data: Any) -> Any:
    """``torch.storage._load_from_bytes``: the embedded legacy ``torch.save`` of one storage."""
    if not isinstance(data, (bytes, bytearray)):
        raise CheckpointError("a tensor storage in the pickle is not a byte string")
    try:
        storage = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"a tensor storage in the pickle cannot be read ({message})"
        ) from None
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise CheckpointError("a tensor storage in the pickle holds something else")
    return storage


def _rebuild_tensor(
    storage: Any,
    offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    hooks: Any = None,
    *metadata: Any,
) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2`` on a checked storage, without backward hooks."""
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise CheckpointError("a tensor in the pickle has no storage")
    if hooks:
        raise CheckpointError("a tensor in the pickle carries backward hooks; refused")
    try:
        return torch._utils._rebuild_tensor_v2(
            storage, int(offset), tuple(size), tuple(stride), False, collections.OrderedDict()
        )
    except (RuntimeError, TypeError, ValueError) as exc:
        raise CheckpointError(f"a tensor in the pickle is malformed ({exc})") from None


def _rebuild_parameter(data: Any, requires_grad: Any = False, hooks: Any = None, *state: Any):
    """``torch._utils._rebuild_parameter``: the plain tensor (we never train NVIDIA's modules)."""
    if not isinstance(data, torch.Tensor):
        raise CheckpointError("a parameter in the pickle holds no tensor")
    if hooks:
        raise CheckpointError("a parameter in the pickle carries backward hooks; refused")
    return data


# -- the unpickler ---------------------------------------------------------------------------

_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("numpy", "dtype"): NumpyDType,
    ("numpy", "ndarray"): _NumpyArrayType,
}
for _numpy_core in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_numpy_core, "scalar")] = _numpy_scalar
    _ALLOWED[(_numpy_core, "_reconstruct")] = _numpy_reconstruct

#: The globals an NVIDIA network pickle may reference, as ``module.name`` strings.
ALLOWED_GLOBALS = tuple(sorted(f"{module}.{name}" for module, name in _ALLOWED))


class RefusedGlobalError(CheckpointError):
    """The pickle references a global outside NVIDIA's format: nothing was run."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals of :data:`ALLOWED_GLOBALS`, to inert stand-ins.

    It never imports a module named in the file; persistent ids are refused.
    """

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise RefusedGlobalError(
                f"refused: the pickle references {module}.{name}, which is not part of NVIDIA's"
                " network-pickle format (ganenc never runs code from checkpoint files)"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not part of NVIDIA's network pickles")


# ----------------------------------------------------------------------------------------
# Files.


def _is_zip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def is_nvidia_pickle(path: str | os.PathLike) -> bool:
    """Whether ``path`` should be read as an NVIDIA network pickle.

    True for a file named ``*.pkl`` and for any file that names NVIDIA's
    persistence module near its start, unless it is a ``torch.save`` file
    (zip, or legacy: a pickle that starts with torch's magic number).  Never
    unpickles.
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0 or _is_zip(path):
        return False
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if head.startswith(LEGACY_TORCH_PREFIX):
        return False
    return path.suffix.lower() == ".pkl" or PERSISTENCE_MARKER in head


def read_nvidia_pickle(path: str | os.PathLike) -> dict[str, Any]:
    """The top-level dict of an NVIDIA network pickle, networks as :class:`PersistentObject`.

    Raises :class:`~ganenc.errors.CheckpointError` for a missing, empty,
    truncated or foreign file, and for any global outside the format (before
    calling anything).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"expected a checkpoint file, got a directory: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    if _is_zip(path):
        raise CheckpointError(f"{path} is a torch.save zip archive, not an NVIDIA network pickle")
    try:
        with path.open("rb") as handle:
            obj = RestrictedUnpickler(handle).load()
    except CheckpointError as exc:  # a refused global, a malformed tensor...
        raise CheckpointError(f"{path}: {exc}") from None
    except EOFError:
        raise CheckpointError(f"{path} is truncated or corrupt (the pickle ends early)") from None
    except (
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        struct.error,
        MemoryError,
        RecursionError,
        zipfile.BadZipFile,
    ) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "truncated" in message or "ran out of input" in message.lower():
            raise CheckpointError(f"{path} is truncated or corrupt ({message})") from None
        raise CheckpointError(
            f"{path} is not an NVIDIA network pickle ganenc can read ({message})"
        ) from None
    if isinstance(obj, int) and obj == LEGACY_TORCH_MAGIC:
        raise CheckpointError(f"{path} is a legacy torch.save file, not an NVIDIA network pickle")
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{path} is a pickle of a {type(obj).__name__}, not an NVIDIA network pickle"
            " (a dict with 'G_ema')"
        )
    if not isinstance(obj.get("G_ema"), PersistentObject):
        keys = sorted(map(str, obj))[:6]
        what = (
            "its 'G_ema' is not a network"
            if "G_ema" in obj
            else f"it has no 'G_ema' (keys: {keys})"
        )
        raise CheckpointError(
            f"{path} is not an NVIDIA network pickle: {what}; expected the"
            " {'G', 'D', 'G_ema', ...} snapshot of stylegan2-ada-pytorch or stylegan3"
        )
    return dict(obj)


def nvidia_family(generator: PersistentObject) -> str:
    """``"stylegan2"`` or ``"stylegan3"``: which synthesis network ``G_ema`` has."""
    synthesis = generator.module("synthesis")
    mapping = generator.module("mapping")
    if synthesis is None or mapping is None:
        raise CheckpointError(
            f"G_ema ({generator.class_name}) has no mapping and synthesis networks;"
            " not a StyleGAN generator"
        )
    if synthesis.module("input") is not None:
        return "stylegan3"
    if synthesis.module("b4") is not None:
        return "stylegan2"
    raise CheckpointError(
        f"G_ema's synthesis network ({synthesis.class_name}) is neither StyleGAN2 (b4 ...)"
        " nor StyleGAN3 (input, L0 ...)"
    )


@dataclass
class NvidiaGenerator:
    """``G_ema`` of an NVIDIA pickle: its family, the inert object and its state dict."""

    family: str
    network: PersistentObject
    state: dict[str, torch.Tensor]


def read_nvidia_generator(path: str | os.PathLike, family: str) -> NvidiaGenerator:
    """``G_ema`` of the pickle at ``path``, checked to be a ``family`` generator."""
    top = read_nvidia_pickle(path)
    network = top["G_ema"]
    try:
        found = nvidia_family(network)
        state = network.state_dict()
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise _malformed(path, exc) from None
    if found != family:
        raise CheckpointError(
            f"{path} is an NVIDIA {FAMILY_NAMES[found]} pickle, not a"
            f" {FAMILY_NAMES.get(family, family)} one; load it with --gan {found}"
        )
    c_dim = network.attr("c_dim", network.init_kwargs.get("c_dim", 0))
    if c_dim:
        raise CheckpointError(
            f"{path}: class-conditional NVIDIA generators (c_dim={c_dim}) are not supported"
        )
    channels = network.attr("img_channels", network.init_kwargs.get("img_channels", 3))
    if channels != 3:
        raise CheckpointError(
            f"{path}: only RGB generators are supported (img_channels={channels})"
        )
    return NvidiaGenerator(found, network, state)


# ----------------------------------------------------------------------------------------
# StyleGAN2 (stylegan2-ada-pytorch, and networks_stylegan2.py of the stylegan3 repository).


def nvidia_stylegan2_plan(config: StyleGAN2Config) -> list[KeyMap]:
    """Internal <-> NVIDIA ``Generator`` (networks.py / networks_stylegan2.py) state-dict keys.

    Same math as ours: the affine bias carries its +1, the upsampling weight is
    the one ``conv_transpose2d`` uses, ``noise_const`` is ``[r, r]``.
    """
    plan = []
    for i in range(config.mapping_layers):
        for name in ("weight", "bias"):
            plan.append(KeyMap(f"mapping.layers.{i}.{name}", f"mapping.fc{i}.{name}"))
    plan.append(KeyMap("w_avg", "mapping.w_avg"))
    plan.append(KeyMap("synthesis.const", "synthesis.b4.const", _add_batch, _drop_batch))
    for b, res in enumerate(config.resolutions):
        prefix = f"synthesis.blocks.{b}"
        block = f"synthesis.b{res}"
        convs = ["conv1"] if b == 0 else ["conv0", "conv1"]
        for j, conv in enumerate(convs):
            inner = f"{prefix}.convs.{j}"
            plan += [
                KeyMap(f"{inner}.conv.weight", f"{block}.{conv}.weight"),
                KeyMap(f"{inner}.conv.affine.weight", f"{block}.{conv}.affine.weight"),
                KeyMap(f"{inner}.conv.affine.bias", f"{block}.{conv}.affine.bias"),
                KeyMap(f"{inner}.noise_strength", f"{block}.{conv}.noise_strength"),
                KeyMap(f"{inner}.bias", f"{block}.{conv}.bias"),
                KeyMap(f"{inner}.noise", f"{block}.{conv}.noise_const", _add_two, _drop_two),
            ]
        plan += [
            KeyMap(f"{prefix}.to_rgb.conv.weight", f"{block}.torgb.weight"),
            KeyMap(f"{prefix}.to_rgb.conv.affine.weight", f"{block}.torgb.affine.weight"),
            KeyMap(f"{prefix}.to_rgb.conv.affine.bias", f"{block}.torgb.affine.bias"),
            KeyMap(f"{prefix}.to_rgb.bias", f"{block}.torgb.bias"),
        ]
    return plan


def _add_batch(x: torch.Tensor) -> torch.Tensor:
    return x[None]


def _drop_batch(x: torch.Tensor) -> torch.Tensor:
    return x[0]


def _add_two(x: torch.Tensor) -> torch.Tensor:
    return x[None, None]


def _drop_two(x: torch.Tensor) -> torch.Tensor:
    return x[0, 0]


def nvidia_stylegan2_filters(config: StyleGAN2Config) -> dict[str, torch.Tensor]:
    """The ``resample_filter`` buffers of an NVIDIA StyleGAN2 state dict (fixed values)."""
    kernel = fir_kernel(config.blur_kernel)
    filters = {}
    for b, res in enumerate(config.resolutions):
        block = f"synthesis.b{res}"
        filters[f"{block}.resample_filter"] = kernel.clone()
        for conv in ["conv1"] if b == 0 else ["conv0", "conv1"]:
            filters[f"{block}.{conv}.resample_filter"] = kernel.clone()
    return filters


def _count(state: Mapping[str, Any], pattern: str) -> int:
    n = 0
    while pattern.format(n) in state:
        n += 1
    return n


def _shape(state: Mapping[str, Any], key: str, where: str) -> tuple[int, ...]:
    value = state.get(key)
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"{where}: missing tensor {key!r}; not a complete generator")
    return tuple(value.shape)


def stylegan2_config_from_nvidia_state(
    state: Mapping[str, Any],
    where: str = "checkpoint",
    conv_clamp: float | None = None,
    mapping_lr_mul: float = 0.01,
) -> StyleGAN2Config:
    """The architecture of an NVIDIA StyleGAN2 ``G`` state dict, from its tensor shapes."""
    mapping_layers = _count(state, "mapping.fc{}.weight")
    if mapping_layers == 0:
        raise CheckpointError(f"{where}: no mapping layers ('mapping.fc0.weight') found")
    if "mapping.embed.weight" in state:
        raise CheckpointError(f"{where}: class-conditional generators are not supported")
    first = _shape(state, "mapping.fc0.weight", where)
    last = _shape(state, f"mapping.fc{mapping_layers - 1}.weight", where)
    const = _shape(state, "synthesis.b4.const", where)
    channels = {4: const[0]}
    resolution = 4
    while f"synthesis.b{resolution * 2}.conv0.weight" in state:
        resolution *= 2
        channels[resolution] = _shape(state, f"synthesis.b{resolution}.conv0.weight", where)[0]
    try:
        return StyleGAN2Config(
            resolution=resolution,
            z_dim=first[1],
            w_dim=last[0],
            mapping_layers=mapping_layers,
            mapping_hidden=first[0] if mapping_layers > 1 else None,
            channels=channels,
            conv_clamp=conv_clamp,
            mapping_lr_mul=mapping_lr_mul,
        )
    except ConfigError as exc:
        raise CheckpointError(f"{where}: unsupported architecture ({exc})") from None


def _noise_free(state: dict[str, torch.Tensor], config: StyleGAN2Config) -> None:
    """Fill in zero noise for generators built with ``use_noise=False`` (same output)."""
    for b, res in enumerate(config.resolutions):
        for conv in ["conv1"] if b == 0 else ["conv0", "conv1"]:
            key = f"synthesis.b{res}.{conv}"
            if f"{key}.weight" in state and f"{key}.noise_const" not in state:
                state[f"{key}.noise_const"] = torch.zeros(res, res)
                state[f"{key}.noise_strength"] = torch.zeros(())


def stylegan2_from_nvidia_state(
    state: Mapping[str, Any],
    where: str = "checkpoint",
    conv_clamp: float | None = None,
    mapping_lr_mul: float = 0.01,
) -> StyleGAN2Generator:
    """A generator from an NVIDIA StyleGAN2 ``G`` / ``G_ema`` state dict (w_avg included).

    A bare state dict does not record ``conv_clamp`` (default: no clamp) nor the
    mapping's learning-rate multiplier (default: NVIDIA's 0.01).
    """
    state = dict(state)
    config = stylegan2_config_from_nvidia_state(state, where, conv_clamp, mapping_lr_mul)
    _noise_free(state, config)
    model = _load_with_plan(
        config, state, nvidia_stylegan2_plan(config), nvidia_stylegan2_filters(config), where
    )
    model.has_w_avg = True
    return model


def _single_value(values: set, what: str, where: str) -> Any:
    if len(values) > 1:
        raise CheckpointError(f"{where}: layers disagree on {what} ({sorted(map(str, values))})")
    return next(iter(values)) if values else None


def stylegan2_from_nvidia(found: NvidiaGenerator, where: str) -> StyleGAN2Generator:
    """Our StyleGAN2 from an NVIDIA StyleGAN2(-ADA) ``G_ema``.

    Checked against the pickled attributes: the ``skip`` architecture, leaky
    ReLU activations, the ``[1, 3, 3, 1]`` resample filter, one ``conv_clamp``
    for every layer (kept, applied after each activation as NVIDIA does) and
    one learning-rate multiplier for the mapping layers (their ``bias_gain``).
    """
    synthesis = found.network.module("synthesis")
    mapping = found.network.module("mapping")
    assert synthesis is not None and mapping is not None
    clamps, architectures, activations, lr_muls = set(), set(), set(), set()
    for block in synthesis.modules.values():
        architectures.add(block.attr("architecture", "skip"))
        for layer in block.modules.values():
            if "conv_clamp" in layer.state:
                clamp = layer.attr("conv_clamp")
                clamps.add(None if clamp is None else float(clamp))
            if "activation" in layer.state:
                activations.add(layer.attr("activation"))
    for layer in mapping.modules.values():
        activations.add(layer.attr("activation", "lrelu"))
        if "bias_gain" in layer.state:
            lr_muls.add(float(layer.attr("bias_gain")))
    if activations - {"lrelu"}:
        raise CheckpointError(
            f"{where}: activations {sorted(map(str, activations))} are not supported (only lrelu)"
        )
    other = sorted(map(repr, architectures - {"skip"}))
    if other:
        raise CheckpointError(
            f"{where}: the {', '.join(other)} synthesis architecture is not supported (only"
            " 'skip', NVIDIA's default and that of every public StyleGAN2 generator)"
        )
    conv_clamp = _single_value(clamps, "conv_clamp", where)
    lr_mul = _single_value(lr_muls, "the mapping learning-rate multiplier", where)
    return stylegan2_from_nvidia_state(
        found.state, where, conv_clamp, 0.01 if lr_mul is None else lr_mul
    )


def nvidia_state_dict(model: StyleGAN2Generator) -> dict[str, torch.Tensor]:
    """The model as NVIDIA's StyleGAN2 ``Generator`` state dict (``G.load_state_dict`` loads it).

    It needs ``c_dim=0``, ``architecture='skip'`` and the file's resolution,
    ``z_dim``, ``w_dim`` and channels on NVIDIA's side.
    """
    from .formats import ensure_w_avg

    ensure_w_avg(model)
    config = model.config
    state = _external_state(model, nvidia_stylegan2_plan(config), {})
    ordered: dict[str, torch.Tensor] = {}
    filters = nvidia_stylegan2_filters(config)
    # NVIDIA's order: synthesis (per block: const, filter, layers), then mapping (w_avg first).
    for b, res in enumerate(config.resolutions):
        block = f"synthesis.b{res}"
        if b == 0:
            ordered[f"{block}.const"] = state[f"{block}.const"]
        ordered[f"{block}.resample_filter"] = filters[f"{block}.resample_filter"]
        for conv in ["conv1"] if b == 0 else ["conv0", "conv1"]:
            key = f"{block}.{conv}"
            for name in ("weight", "noise_strength", "bias"):
                ordered[f"{key}.{name}"] = state[f"{key}.{name}"]
            ordered[f"{key}.resample_filter"] = filters[f"{key}.resample_filter"]
            ordered[f"{key}.noise_const"] = state[f"{key}.noise_const"]
            ordered[f"{key}.affine.weight"] = state[f"{key}.affine.weight"]
            ordered[f"{key}.affine.bias"] = state[f"{key}.affine.bias"]
        for name in ("weight", "bias", "affine.weight", "affine.bias"):
            ordered[f"{block}.torgb.{name}"] = state[f"{block}.torgb.{name}"]
    ordered["mapping.w_avg"] = state["mapping.w_avg"]
    for i in range(config.mapping_layers):
        for name in ("weight", "bias"):
            ordered[f"mapping.fc{i}.{name}"] = state[f"mapping.fc{i}.{name}"]
    missing = set(state) - set(ordered)
    assert not missing, missing
    return ordered


def save_nvidia_state_dict(model: StyleGAN2Generator, path: str | os.PathLike) -> Path:
    """``torch.save`` of :func:`nvidia_state_dict`: a bare state dict with NVIDIA's key names."""
    path = Path(path)
    torch.save(nvidia_state_dict(model), path)
    return path


# ----------------------------------------------------------------------------------------
# Loading.


def _malformed(path: str | os.PathLike, exc: Exception) -> CheckpointError:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return CheckpointError(f"{path}: malformed NVIDIA generator ({message})")


def load_nvidia_stylegan2(path: str | os.PathLike) -> StyleGAN2Generator:
    """Our StyleGAN2 generator from an NVIDIA StyleGAN2(-ADA) pickle's ``G_ema``."""
    found = read_nvidia_generator(path, "stylegan2")
    try:
        return stylegan2_from_nvidia(found, str(path))
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise _malformed(path, exc) from None


def load_nvidia_stylegan3(path: str | os.PathLike) -> torch.nn.Module:
    """Our StyleGAN3 generator from an NVIDIA StyleGAN3 pickle's ``G_ema``."""
    from .stylegan3 import stylegan3_from_nvidia

    found = read_nvidia_generator(path, "stylegan3")
    try:
        return stylegan3_from_nvidia(found, str(path))
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise _malformed(path, exc) from None
