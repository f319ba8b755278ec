"""NVIDIA's network pickles (``.pkl`` of stylegan2-ada-pytorch and stylegan3), without NVIDIA's code.

NVIDIA's official ``.pkl`` files are plain pickles of ``{"G", "D", "G_ema",
"augment_pipe", "training_set_kwargs"}`` read here by the restricted unpickler
of :mod:`.nvidia_unpickler`, never by ``torch.load``/``pickle.load``.

The generator is always ``G_ema`` (the moving average of the weights, the one
NVIDIA's own tools use).  Its tensors, walked in ``nn.Module.state_dict`` order,
form an NVIDIA state dict (:mod:`.nvidia_state`) mapped onto this plugin's
:class:`~ganenc_stylegan.stylegan2.StyleGAN2Generator` (the StyleGAN2-ADA math
is the same, see :func:`stylegan2_from_nvidia`) or
:class:`~ganenc_stylegan.stylegan3.StyleGAN3Generator`.

Networks always compute in float32: this is NVIDIA's ``force_fp32=True``;
NVIDIA's default runs the highest-resolution blocks in float16 on a GPU.
"""

from __future__ import annotations

import math
import os
import pickle
import struct
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch

from ganenc.checkpoints import existing_checkpoint
from ganenc.errors import CheckpointError, first_line

from ..stylegan2 import StyleGAN2Generator
from . import FAMILY_NAMES
from .nvidia_state import stylegan2_from_nvidia_state
from .nvidia_unpickler import (
    NumpyArray,
    PersistentObject,
    RestrictedUnpickler,
    brief,
    damaged,
)

#: Bytes of a file searched for the persistence module name when sniffing its format.
SNIFF_BYTES = 1 << 16
PERSISTENCE_MARKER = b"torch_utils"
#: The first object of a legacy (non-zip) ``torch.save`` file: its magic number.
LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_TORCH_PREFIX = pickle.dumps(LEGACY_TORCH_MAGIC, protocol=2)[:-1]
#: The first bytes of a zip archive (every ``torch.save`` file since torch 1.6).
ZIP_MAGIC = b"PK\x03\x04"

# ----------------------------------------------------------------------------------------
# Files.


def looks_like_nvidia_pickle(path: Path, head: bytes) -> bool:
    """Whether a file named ``path`` that starts with ``head`` is an NVIDIA network pickle.

    True for a file named ``*.pkl`` and for any file that names NVIDIA's
    persistence module near its start (``head`` is its first
    :data:`SNIFF_BYTES`), unless it is a ``torch.save`` file (zip, or legacy: a
    pickle that starts with torch's magic number).
    """
    if not head or head.startswith(ZIP_MAGIC) or head.startswith(LEGACY_TORCH_PREFIX):
        return False
    return path.suffix.lower() == ".pkl" or PERSISTENCE_MARKER in head


def is_nvidia_pickle(path: str | os.PathLike) -> bool:
    """Whether ``path`` should be read as an NVIDIA network pickle (never unpickles).

    The dispatcher, which opens the file anyway, asks :func:`looks_like_nvidia_pickle`.
    """
    path = Path(path)
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    return looks_like_nvidia_pickle(path, head)


def read_nvidia_pickle(path: str | os.PathLike, opened: BinaryIO | None = None) -> dict[str, Any]:
    """The top-level dict of an NVIDIA network pickle, networks as :class:`PersistentObject`.

    ``opened`` is a binary handle on ``path``, at its start, read instead of
    opening the file again.  Raises :class:`~ganenc.errors.CheckpointError` for
    a missing, empty, truncated or foreign file, and for any global outside the
    format (before calling anything).
    """
    path = existing_checkpoint(path)
    if opened is None:
        with path.open("rb") as handle:
            return read_nvidia_pickle(path, handle)
    if opened.read(len(ZIP_MAGIC)) == ZIP_MAGIC:
        raise CheckpointError(f"{path} is a torch.save zip archive, not an NVIDIA network pickle")
    opened.seek(0)
    obj = _unpickle(opened, path)
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


def _unpickle(handle: BinaryIO, path: Path) -> Any:
    """The restricted unpickler's result, its failures as one clear error about ``path``."""
    try:
        return RestrictedUnpickler(handle).load()
    except CheckpointError as exc:  # a refused global, a malformed tensor...
        raise CheckpointError(f"{path}: {exc}") from None
    except EOFError:
        raise CheckpointError(f"{path} is truncated or corrupt (the pickle ends early)") from None
    except (
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        KeyError,
        OverflowError,
        IndexError,
        AttributeError,
        struct.error,
        MemoryError,
        RecursionError,
        zipfile.BadZipFile,
    ) as exc:
        message = first_line(exc)
        if "truncated" in message or "ran out of input" in message.lower():
            raise CheckpointError(f"{path} is truncated or corrupt ({message})") from None
        raise CheckpointError(
            f"{path} is not an NVIDIA network pickle ganenc can read ({message})"
        ) from None


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


def read_nvidia_generator(
    path: str | os.PathLike, family: str, opened: BinaryIO | None = None
) -> NvidiaGenerator:
    """``G_ema`` of the pickle at ``path`` (or its open handle), checked to be a ``family`` one."""
    top = read_nvidia_pickle(path, opened)
    network = top["G_ema"]
    try:
        check_network(network)
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
    # Both are checked integers (check_network); the attribute is what the network was built with.
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
# The values of G_ema: checked once, before any reader trusts them.

#: Deepest nesting of networks (NVIDIA's: G_ema.synthesis.b4.conv1.affine) and of plain values.
MAX_NETWORK_DEPTH = 16
MAX_VALUE_DEPTH = 8
#: Bounds of what NVIDIA's networks are built with (far beyond any published generator).
MAX_DIM = 1 << 16
MAX_LAYERS = 256
MAX_RESOLUTION = 1 << 14
#: What a network's attributes and init kwargs may hold: plain data and small numpy arrays.
_PLAIN = (bool, int, float, str, bytes, type(None), NumpyArray)
_CONTAINERS = (list, tuple, set, frozenset)


def _integer(low: int, high: int, power_of_two: bool = False) -> Callable[[Any], str | None]:
    def problem(value: Any) -> str | None:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if type(value) is not int or not low <= value <= high:
            return f"an integer from {low} to {high}"
        if power_of_two and value & (value - 1):
            return f"a power of two from {low} to {high}"
        return None

    return problem


def _number(
    low: float, high: float, optional: bool = False, above_low: bool = False
) -> Callable[[Any], str | None]:
    def problem(value: Any) -> str | None:
        if optional and value is None:
            return None
        valid = (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and (low < value if above_low else low <= value)
            and value <= high
        )
        if valid:
            return None
        bound = f"above {low}" if above_low else f"from {low}"
        return f"{'None or ' if optional else ''}a number {bound} to {high}"

    return problem


def _is(kind: type, name: str, optional: bool = False) -> Callable[[Any], str | None]:
    def problem(value: Any) -> str | None:
        if (optional and value is None) or isinstance(value, kind):
            return None
        return f"{'None or ' if optional else ''}{name}"

    return problem


#: How each value the loaders read (as an attribute of a network or one of its init kwargs,
#: nested ``*_kwargs`` included) must look, by name; a name means the same in every network.
VALUE_RULES: dict[str, Callable[[Any], str | None]] = {
    "z_dim": _integer(1, MAX_DIM),
    "w_dim": _integer(1, MAX_DIM),
    "c_dim": _integer(0, MAX_DIM),
    "img_channels": _integer(1, MAX_DIM),
    "img_resolution": _integer(4, MAX_RESOLUTION, power_of_two=True),
    "num_ws": _integer(1, MAX_LAYERS),
    "num_layers": _integer(1, MAX_LAYERS),
    "num_critical": _integer(0, MAX_LAYERS),
    "num_fp16_res": _integer(0, MAX_LAYERS),
    "channel_base": _integer(1, 1 << 24),
    "channel_max": _integer(1, MAX_DIM),
    "margin_size": _integer(0, MAX_RESOLUTION),
    "conv_kernel": _integer(1, 64),
    "filter_size": _integer(1, 64),
    "first_cutoff": _number(0, MAX_RESOLUTION, above_low=True),
    "first_stopband": _number(0, MAX_RESOLUTION, above_low=True),
    "last_stopband_rel": _number(0, 64, above_low=True),
    "lrelu_upsampling": _number(0, 64, above_low=True),
    "output_scale": _number(-1e6, 1e6),
    "conv_clamp": _number(0, 1e12, optional=True),
    "lr_multiplier": _number(0, 1e6, above_low=True),
    "bias_gain": _number(-1e6, 1e6),
    "use_radial_filters": _is(bool, "a bool"),
    "activation": _is(str, "the name of an activation"),
    "architecture": _is(str, "the name of an architecture"),
}


def _plain_problem(value: Any, where: str) -> str | None:
    """Why ``value`` (named ``where``) is not plain data (a tensor, a storage...), or ``None``."""
    stack, seen = [(value, where, 0)], set()
    while stack:
        item, name, depth = stack.pop()
        if isinstance(item, _PLAIN):
            continue
        if not isinstance(item, (*_CONTAINERS, Mapping)):
            return f"{name} is {brief(item)}"
        if depth >= MAX_VALUE_DEPTH:
            return f"{name} nests values more than {MAX_VALUE_DEPTH} deep"
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Mapping):
            for key, child in item.items():
                stack.append((key, f"a key of {name}", depth + 1))
                label = key if isinstance(key, str) else brief(key)
                stack.append((child, f"{name}.{label}", depth + 1))
        else:
            stack.extend((child, f"{name}[{i}]", depth + 1) for i, child in enumerate(item))
    return None


def _check_values(values: Mapping[str, Any], where: str) -> None:
    """The rules of :data:`VALUE_RULES` on ``values`` and on its nested ``*_kwargs`` dicts."""
    for key, value in values.items():
        if key.endswith("_kwargs") and value is not None:
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                raise damaged(f"{where}.{key} is {brief(value)}, not keyword arguments")
            _check_values(value, f"{where}.{key}")
        rule = VALUE_RULES.get(key)
        expected = rule(value) if rule is not None else None
        if expected is not None:
            raise damaged(f"{where}.{key} is {brief(value)}, expected {expected}")


def _str_table(table: Any, where: str) -> Mapping[str, Any]:
    if table is None:
        return {}
    if not isinstance(table, Mapping) or not all(isinstance(key, str) for key in table):
        raise damaged(f"{where} is {brief(table)}, not a table of named entries")
    return table


def check_network(network: PersistentObject, name: str = "G_ema") -> None:
    """Check what every reader of ``network`` relies on, before any of them reads it.

    Networks form a tree (no loops, none shared, at most :data:`MAX_NETWORK_DEPTH`
    deep); ``_parameters``/``_buffers`` hold tensors; every other attribute and
    init kwarg is plain data (no tensor where NVIDIA keeps a number) and the
    values the loaders read (:data:`VALUE_RULES`) have their type and range.
    Raises :func:`~.nvidia_unpickler.damaged` errors.
    """
    seen: set[int] = set()
    stack = [(name, network, 0)]
    while stack:
        where, module, depth = stack.pop()
        if id(module) in seen:
            raise damaged(f"{where} is a network met twice (a loop or a shared network)")
        if depth > MAX_NETWORK_DEPTH:
            raise damaged(f"networks nest more than {MAX_NETWORK_DEPTH} deep at {where}")
        seen.add(id(module))
        state = _str_table(module.state, where)
        for table in ("_parameters", "_buffers"):
            for key, value in _str_table(state.get(table), f"{where}.{table}").items():
                if value is not None and not isinstance(value, torch.Tensor):
                    raise damaged(f"{where}.{key} is {brief(value)}, not a tensor")
        for key, child in _str_table(state.get("_modules"), f"{where}._modules").items():
            if child is not None and not isinstance(child, PersistentObject):
                raise damaged(f"{where}.{key} is {brief(child)}, not a network")
            if child is not None:
                stack.append((f"{where}.{key}", child, depth + 1))
        attributes = {
            key: value
            for key, value in state.items()
            if key not in ("_parameters", "_buffers", "_modules")
        }
        for key, value in attributes.items():
            problem = _plain_problem(value, f"{where}.{key}")
            if problem is not None:
                raise damaged(f"{problem}, where NVIDIA keeps plain values")
        _check_values({k: v for k, v in attributes.items() if k != "_init_kwargs"}, where)
        kwargs = attributes.get("_init_kwargs")
        if kwargs is not None:
            _check_values(_str_table(kwargs, f"{where}._init_kwargs"), f"{where}._init_kwargs")


# ----------------------------------------------------------------------------------------
# Building our generators.


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


def _malformed(path: str | os.PathLike, exc: Exception) -> CheckpointError:
    return CheckpointError(f"{path}: {damaged(f'malformed generator: {first_line(exc)}')}")


def generator_from_pickle(found: NvidiaGenerator, path: str | os.PathLike) -> torch.nn.Module:
    """Our generator of ``found.family`` from its ``G_ema``; a malformed network is the file's fault."""
    if found.family == "stylegan3":
        from ..stylegan3 import stylegan3_from_nvidia as build
    else:
        build = stylegan2_from_nvidia
    try:
        return build(found, str(path))
    except (TypeError, ValueError, AttributeError, KeyError, ArithmeticError) as exc:
        raise _malformed(path, exc) from None


def load_nvidia_stylegan2(path: str | os.PathLike) -> StyleGAN2Generator:
    """Our StyleGAN2 generator from an NVIDIA StyleGAN2(-ADA) pickle's ``G_ema``."""
    return generator_from_pickle(read_nvidia_generator(path, "stylegan2"), path)


def load_nvidia_stylegan3(path: str | os.PathLike) -> torch.nn.Module:
    """Our StyleGAN3 generator from an NVIDIA StyleGAN3 pickle's ``G_ema``."""
    return generator_from_pickle(read_nvidia_generator(path, "stylegan3"), path)
