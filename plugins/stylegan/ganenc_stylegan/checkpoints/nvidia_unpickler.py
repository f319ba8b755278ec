"""The restricted unpickler for NVIDIA's network pickles: it runs and imports nothing.

NVIDIA's networks are ``torch_utils.persistence`` objects: each one carries the
full Python source of its module and is rebuilt, by NVIDIA's own loader, by
*executing* that source, so ``pickle.load`` would run whatever code the file
holds.  :class:`RestrictedUnpickler` resolves only the globals of
:data:`ALLOWED_GLOBALS`, to inert stand-ins:

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

What the unpickled objects mean (``G_ema``, its family) is the business of
:mod:`ganenc_stylegan.checkpoints.nvidia_pickle`.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import struct
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from ganenc.errors import CheckpointError, first_line

#: What every sign of a damaged or crafted file is called: the reader names the file first.
DAMAGED = "damaged NVIDIA pickle"


def damaged(what: str) -> CheckpointError:
    """The one error for a pickle whose content NVIDIA's code could not have written."""
    return CheckpointError(f"{DAMAGED} ({what}); download or export it again")


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

#: Most dimensions and elements of a pickled numpy array (NVIDIA's are a few small vectors).
MAX_NUMPY_DIMS = 32
MAX_NUMPY_ELEMENTS = 1 << 24

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
        if not isinstance(code, str):
            raise damaged(f"a numpy dtype is named by a {type(code).__name__}, not a type code")
        code = _NUMPY_ALIASES.get(code, code)
        if code not in _NUMERIC_CODES:
            raise CheckpointError(
                f"the pickle holds a numpy value of dtype {code[:20]!r}; only numeric dtypes"
                " are read"
            )
        self.code = code
        self.byteorder = "<"

    @property
    def itemsize(self) -> int:
        return struct.calcsize(_NUMERIC_CODES[self.code])

    def __setstate__(self, state: Any) -> None:
        # (version, byteorder, subarray, names, fields, elsize, alignment, flags)
        if not isinstance(state, tuple) or len(state) < 2:
            raise damaged("malformed numpy dtype")
        order = state[1]
        if not isinstance(order, str) or order not in ("<", ">", "|", "="):
            raise damaged(f"a numpy dtype has byte order {brief(order)}")
        if any(item is not None for item in state[2:5]):
            raise CheckpointError("structured numpy dtypes are not read")
        self.byteorder = ">" if order == ">" else "<"

    def unpack(self, raw: Any, count: int) -> tuple:
        if not isinstance(raw, (bytes, bytearray)):
            raise damaged("a numpy value has no raw bytes")
        if len(raw) != count * self.itemsize:
            raise damaged(
                f"a numpy value of {count} {self.code} element(s) holds {len(raw)} bytes,"
                f" not {count * self.itemsize}"
            )
        return struct.unpack(f"{self.byteorder}{count}{_NUMERIC_CODES[self.code]}", bytes(raw))


def brief(value: Any) -> str:
    """A short, one-line name for a value read from the file (its repr if plain and short)."""
    if isinstance(value, (bool, int, float, str, type(None))):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return f"a {type(value).__name__}"


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
            raise damaged("malformed numpy array")
        _, shape, dtype, fortran, raw = state
        if not isinstance(dtype, NumpyDType):
            raise CheckpointError("a numpy array in the pickle has no numeric dtype")
        self.shape = _numpy_shape(shape)
        if fortran is not False and fortran is not True:
            raise damaged(f"a numpy array's Fortran flag is {brief(fortran)}, not a bool")
        if fortran and len(self.shape) > 1:
            raise CheckpointError("Fortran-ordered numpy arrays are not read")
        self.values = dtype.unpack(raw, math.prod(self.shape))

    def tolist(self) -> list:
        return list(self.values)

    def __repr__(self) -> str:
        return f"NumpyArray(shape={self.shape}, values={self.values})"


def _numpy_shape(shape: Any) -> tuple[int, ...]:
    """A pickled numpy shape, checked: a short tuple of non-negative ints, of few elements."""
    if not isinstance(shape, tuple) or len(shape) > MAX_NUMPY_DIMS:
        raise damaged(f"a numpy array's shape is {brief(shape)}, not a tuple of sizes")
    for size in shape:
        if type(size) is not int or size < 0:  # bools, floats (inf), negatives...
            raise damaged(f"a numpy array's shape holds {brief(size)}, not a size")
    if math.prod(shape) > MAX_NUMPY_ELEMENTS:
        raise damaged(f"a numpy array's shape {shape} is far beyond NVIDIA's small vectors")
    return shape


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
    except Exception as exc:  # noqa: BLE001 - weights_only ran nothing; any failure is the bytes'
        message = first_line(exc)
        raise damaged(f"a tensor storage cannot be read: {message}") from None
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise CheckpointError("a tensor storage in the pickle holds something else")
    return storage


# Deliberately alike: only the parameter list matches another signature; the bodies differ
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
    except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
        raise damaged(f"a tensor is malformed: {first_line(exc)}") from None


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
