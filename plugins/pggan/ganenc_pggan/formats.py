"""Reading and writing the two public PGGAN checkpoint formats, without running pickled code.

pytorch_GAN_zoo (``BaseGAN.save``)
    ``{"config": ..., "netG": state_dict, "netD": ..., "avgG": state_dict}``.
    The averaged generator ``avgG`` is used when present (the torch.hub entry
    recommends it), else ``netG``.  ``config`` is a plain dict or a pickled
    ``models.utils.config.BaseConfig`` object; the object is read through an
    inert stand-in class (:class:`GanZooConfig`) that only stores the pickled
    attribute dict, via ``torch.load(weights_only=True)``'s allow-list, so no
    code of the file runs.  Any other pickled global is refused.  The
    architecture is inferred from the state dict's shapes; the config only
    supplies what shapes cannot tell (``alpha``, pixel norm, equalized LR,
    leakiness, the loss criterion that decides a final tanh).

genforce (``models/pggan_generator.py``)
    ``{"generator_smooth": sd, "generator": sd, "discriminator": ...}`` from the
    model zoo, or the training runner's ``{"models": {...}, ...}``.
    ``generator_smooth`` (the averaged generator) is used when present, else
    ``generator``.  ``fused_scale=True`` and conditional (``label_size > 0``)
    generators are not supported: no public model uses them.

A bare state dict of either layout is accepted too.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ganenc.checkpoints import (
    build_checked,
    describe_checkpoint,
    identify_checkpoint,
    read_checkpoint,
)
from ganenc.errors import CheckpointError

from .model import HE_GAIN, PGGANConfig, PGGANGenerator

GAN_ZOO = "pytorch_GAN_zoo"
GENFORCE = "genforce"

#: Where pytorch_GAN_zoo's config class lives when the repository (or its torch.hub copy) pickles it.
GAN_ZOO_CONFIG_CLASSES = (
    "models.utils.config.BaseConfig",
    "pytorch_GAN_zoo.models.utils.config.BaseConfig",
)

#: Loss criteria whose generator ends in tanh (pytorch_GAN_zoo base_loss_criterions).
_TANH_CRITERIA = {"MSE", "DCGAN"}


class GanZooConfig:
    """Inert stand-in for pytorch_GAN_zoo's pickled ``BaseConfig``: it only keeps the attribute dict.

    ``torch.load(weights_only=True)`` is allowed to build this class in place of
    the real one, so reading a config object never imports or runs the GAN zoo's
    code.  Only plain values (numbers, strings, booleans, None and lists, tuples
    or dicts of them) are kept.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["fields"] = {}

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slot state)
            state = state[0]
        fields = {}
        if isinstance(state, Mapping):
            fields = {str(k): v for k, v in state.items() if _is_plain(v)}
        self.__dict__["fields"] = fields

    def __repr__(self) -> str:
        return f"GanZooConfig({self.fields!r})"


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_is_plain(item) for item in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def read_pggan_file(path: str | os.PathLike) -> Any:
    """``torch.load(weights_only=True)`` that also accepts GAN zoo's config object, inertly."""
    return read_checkpoint(
        path, safe_globals=[(GanZooConfig, name) for name in GAN_ZOO_CONFIG_CLASSES]
    )


@dataclass
class LoadedPGGAN:
    """A generator read from a file, with where in the file it came from."""

    generator: PGGANGenerator
    format: str  # GAN_ZOO or GENFORCE
    state_key: str  # "avgG", "netG", "generator_smooth", "generator", "" for a bare state dict


def load_pggan_checkpoint(path: str | os.PathLike, *, averaged: bool = True) -> LoadedPGGAN:
    """Read a PGGAN generator of either format; the architecture comes from the file.

    ``averaged``: use the averaged generator (``avgG`` / ``generator_smooth``)
    when the file holds one.  Every failure is a :class:`CheckpointError`.
    """
    path = Path(path)
    obj = read_pggan_file(path)
    fmt, key, state, config = _locate(obj, path, averaged)
    state = _normalise_state(state, fmt, key, path)
    if fmt == GAN_ZOO:
        pgg_config = _gan_zoo_config(state, _config_fields(config), path, key)
        generator = build_checked(lambda: PGGANGenerator(pgg_config), str(path))
        _load_state(generator, state, gan_zoo_key, fmt, path, key)
    else:
        lod = state.pop("lod", None)
        pgg_config = _genforce_config(state, lod, path, key)
        generator = build_checked(lambda: PGGANGenerator(pgg_config), str(path))
        _load_state(generator, state, genforce_key, fmt, path, key)
    return LoadedPGGAN(generator=generator, format=fmt, state_key=key)


# -- locating the generator in the file --------------------------------------------


def _locate(obj: Any, path: Path, averaged: bool) -> tuple[str, str, Any, Any]:
    """(format, key, state dict, config) of the generator in a loaded checkpoint."""
    if not isinstance(obj, Mapping):
        raise _wrong_family(path, obj)
    if "avgG" in obj or "netG" in obj:
        if averaged and _non_empty(obj.get("avgG")):
            key = "avgG"
        else:
            key = "netG" if "netG" in obj else "avgG"
        return GAN_ZOO, key, obj[key], obj.get("config")
    container = obj
    models = obj.get("models")
    if isinstance(models, Mapping) and ("generator" in models or "generator_smooth" in models):
        container = models
    if "generator_smooth" in container or "generator" in container:
        if averaged and _non_empty(container.get("generator_smooth")):
            key = "generator_smooth"
        else:
            key = "generator" if "generator" in container else "generator_smooth"
        state = container[key]
        if isinstance(state, Mapping) and state and not _looks_genforce_pggan(state):
            raise _wrong_family(path, container)
        return GENFORCE, key, state, None
    if _all_tensors(obj):
        names = {_strip_parallel(str(k)) for k in obj}
        if names & {"formatLayer.module.weight", "formatLayer.weight"}:
            return GAN_ZOO, "", obj, None
        if _looks_genforce_pggan(obj):
            return GENFORCE, "", obj, None
    raise _wrong_family(path, obj)


def _non_empty(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) > 0


def _all_tensors(obj: Mapping) -> bool:
    return len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def _strip_parallel(key: str) -> str:
    return key[len("module.") :] if key.startswith("module.") else key


def _looks_genforce_pggan(state: Mapping) -> bool:
    names = {_strip_parallel(str(k)) for k in state}
    return (
        "layer0.weight" in names
        and "output0.weight" in names
        and not any("mapping" in n or "synthesis" in n or "style" in n for n in names)
    )


def _wrong_family(path: Path, obj: Any) -> CheckpointError:
    description = describe_checkpoint(obj)
    other = identify_checkpoint(obj)  # the family's own plugin names it: the engine knows none
    hint = ""
    if other is not None and other.gan != "pggan":
        hint = f"use --gan {other.gan}"
    elif "encoder" in description:
        hint = "load it with ganenc.load_encoder, not as a generator"
    message = f"{path} looks like {description}, not a PGGAN generator checkpoint"
    if hint:
        message += f"; {hint}"
    else:
        message += (
            " (expected pytorch_GAN_zoo {'netG'/'avgG': ...} or genforce"
            " {'generator_smooth'/'generator': ...})"
        )
    return CheckpointError(message)


def _unsupported(path: Path, fmt: str, key: str, detail: str) -> CheckpointError:
    where = f" (generator {key!r})" if key else ""
    return CheckpointError(f"{path}: unsupported {fmt} PGGAN layout{where}: {detail}")


def _normalise_state(state: Any, fmt: str, key: str, path: Path) -> dict[str, torch.Tensor]:
    """Tensors only, DataParallel ``module.`` prefixes removed, legacy GAN zoo keys updated."""
    if not isinstance(state, Mapping) or not state:
        raise _unsupported(path, fmt, key, "the generator state dict is empty or not a dict")
    bad = [str(k) for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise _unsupported(path, fmt, key, f"entries that are not tensors: {bad[:3]}")
    keys = [str(k) for k in state]
    strip = all(k.startswith("module.") for k in keys)
    result = {}
    for k, value in state.items():
        name = _strip_parallel(str(k)) if strip else str(k)
        if fmt == GAN_ZOO:
            name = _gan_zoo_modern_key(name)
        result[name] = value
    return result


def _gan_zoo_modern_key(key: str) -> str:
    """Legacy GAN zoo keys lack the ``.module.`` of ``ConstrainedLayer``; insert it."""
    stem, _, leaf = key.rpartition(".")
    if leaf in {"weight", "bias"} and stem and not stem.endswith(".module"):
        return f"{stem}.module.{leaf}"
    return key


def _config_fields(config: Any) -> dict[str, Any]:
    if isinstance(config, GanZooConfig):
        return dict(config.fields)
    if isinstance(config, Mapping):
        return {str(k): v for k, v in config.items()}
    return {}


# -- architecture inference --------------------------------------------------------


def _require(
    state: Mapping[str, torch.Tensor], key: str, ndim: int, fmt: str, path: Path, where: str
) -> torch.Tensor:
    if key not in state:
        raise _unsupported(path, fmt, where, f"missing {key!r}")
    tensor = state[key]
    if tensor.ndim != ndim:
        raise _unsupported(
            path, fmt, where, f"{key!r} has shape {list(tensor.shape)}, expected {ndim} dims"
        )
    return tensor


def _gan_zoo_config(
    state: Mapping[str, torch.Tensor], fields: Mapping[str, Any], path: Path, where: str
) -> PGGANConfig:
    def need(key: str, ndim: int) -> torch.Tensor:
        return _require(state, key, ndim, GAN_ZOO, path, where)

    project = need("formatLayer.module.weight", 2)
    out_features, z_dim = project.shape
    if out_features % 16:
        raise _unsupported(
            path, GAN_ZOO, where, f"formatLayer has {out_features} outputs, not 16 * channels"
        )
    channels = [out_features // 16]
    while f"scaleLayers.{len(channels) - 1}.0.module.weight" in state:
        channels.append(need(f"scaleLayers.{len(channels) - 1}.0.module.weight", 4).shape[0])
    image_channels = need("toRGBLayers.0.module.weight", 4).shape[0]
    if int(fields.get("categoryVectorDim") or 0) > 0:
        raise CheckpointError(
            f"{path} is a conditional (AC-GAN) pytorch_GAN_zoo model; only unconditional"
            " PGGAN generators are supported"
        )
    lod = _number(fields.get("alpha"), 0.0) if len(channels) > 1 else 0.0
    if not 0.0 <= lod <= 1.0:
        raise CheckpointError(f"{path}: config alpha = {lod} is outside [0, 1]")
    slope = fields.get("leakyReluLeak", 0.2)
    return PGGANConfig.gan_zoo(
        z_dim=int(z_dim),
        channels=tuple(int(c) for c in channels),
        image_channels=int(image_channels),
        pixel_norm=bool(fields.get("perChannelNormalization", True)),
        equalized_lr=bool(fields.get("equalizedlR", True)),
        leaky_slope=_number(slope, 0.2),
        final_tanh=str(fields.get("lossCriterion", "WGANGP")) in _TANH_CRITERIA,
        lod=lod,
    )


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return float(value)


def _genforce_config(
    state: Mapping[str, torch.Tensor], lod: torch.Tensor | None, path: Path, where: str
) -> PGGANConfig:
    def need(key: str, ndim: int) -> torch.Tensor:
        return _require(state, key, ndim, GENFORCE, path, where)

    project = need("layer0.weight", 4)
    if tuple(project.shape[2:]) != (4, 4):
        raise _unsupported(
            path, GENFORCE, where, f"layer0.weight is {list(project.shape)}, expected [C, z, 4, 4]"
        )
    blocks = 0
    while f"output{blocks}.weight" in state:
        blocks += 1
    channels = tuple(int(need(f"layer{2 * i + 1}.weight", 4).shape[0]) for i in range(blocks))
    lod_value = 0.0
    if lod is not None:
        if lod.numel() != 1:
            raise _unsupported(path, GENFORCE, where, f"'lod' has shape {list(lod.shape)}")
        lod_value = float(lod.reshape(()).item())
    if not 0.0 <= lod_value <= blocks - 1:
        raise CheckpointError(f"{path}: lod = {lod_value} is outside [0, {blocks - 1}]")
    return PGGANConfig.genforce(
        z_dim=int(project.shape[1]),
        channels=channels,
        image_channels=int(need("output0.weight", 4).shape[0]),
        lod=lod_value,
    )


# -- key names -----------------------------------------------------------------------

_INTERNAL = re.compile(
    r"blocks\.(\d+)\.(project|conv|conv0|conv1)\.(weight|bias)|to_rgb\.(\d+)\.(weight|bias)"
)


# Deliberately alike: one key translator per file layout (other names, other numbering)
def gan_zoo_key(internal: str) -> str:
    """Our parameter name -> pytorch_GAN_zoo's (``blocks.2.conv0.weight`` -> ``scaleLayers.1.0.module.weight``)."""
    match = _INTERNAL.fullmatch(internal)
    if match is None:
        raise KeyError(internal)
    block, layer, leaf, rgb, rgb_leaf = match.groups()
    if rgb is not None:
        return f"toRGBLayers.{rgb}.module.{rgb_leaf}"
    if layer == "project":
        return f"formatLayer.module.{leaf}"
    if layer == "conv":
        return f"groupScale0.0.module.{leaf}"
    return f"scaleLayers.{int(block) - 1}.{layer[-1]}.module.{leaf}"


# Deliberately alike: one key translator per file layout (other names, other numbering)
def genforce_key(internal: str) -> str:
    """Our parameter name -> genforce's (``blocks.2.conv0.weight`` -> ``layer4.weight``)."""
    match = _INTERNAL.fullmatch(internal)
    if match is None:
        raise KeyError(internal)
    block, layer, leaf, rgb, rgb_leaf = match.groups()
    if rgb is not None:
        return f"output{rgb}.{rgb_leaf}"
    index = 2 * int(block) + (0 if layer in {"project", "conv0"} else 1)
    return f"layer{index}.{leaf}"


def _load_state(
    generator: PGGANGenerator,
    state: Mapping[str, torch.Tensor],
    external: Callable[[str], str],
    fmt: str,
    path: Path,
    where: str,
) -> None:
    """Copy ``state`` (the file's names) into ``generator``, reporting differences in those names."""
    expected = {external(name): value for name, value in generator.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k} is {list(state[k].shape)}, expected {list(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    # Deliberately alike: each plugin words its own state-dict errors; no plugin imports another
    problems = []
    if missing:
        problems.append(f"missing {missing[:4]}")
    if unexpected:
        problems.append(f"unexpected {unexpected[:4]}")
    if mismatched:
        problems.append("shape mismatch: " + "; ".join(mismatched[:3]))
    if problems:
        raise _unsupported(path, fmt, where, ", ".join(problems))
    generator.load_state_dict(
        {name: state[external(name)] for name in generator.state_dict()}, strict=True
    )


# -- writers -------------------------------------------------------------------------


def _check_conventions(config: PGGANConfig, fmt: str) -> None:
    if fmt == GAN_ZOO:
        ok = config.projection == "dense" and config.scale_bias and config.rgb_gain == HE_GAIN
        ok = ok and config.lod <= 1.0
    else:
        ok = (
            config.projection == "conv"
            and not config.scale_bias
            and config.rgb_gain == 1.0
            and config.equalized_lr
            and config.pixel_norm
            and config.leaky_slope == 0.2
            and not config.final_tanh
        )
    if not ok:
        raise ValueError(f"this generator's conventions cannot be stored in the {fmt} format")


def gan_zoo_config_dict(config: PGGANConfig) -> dict[str, Any]:
    """The GAN zoo config fields that describe ``config`` (as ``BaseGAN.save`` would store)."""
    return {
        "depthScale0": config.channels[0],
        "depthOtherScales": list(config.channels[1:]),
        "noiseVectorDim": config.z_dim,
        "latentVectorDim": config.z_dim,
        "categoryVectorDim": 0,
        "dimOutput": config.image_channels,
        "alpha": float(config.lod),
        "perChannelNormalization": config.pixel_norm,
        "equalizedlR": config.equalized_lr,
        "leakyReluLeak": config.leaky_slope,
        "lossCriterion": "DCGAN" if config.final_tanh else "WGANGP",
        "initBiasToZero": True,
        "miniBatchStdDev": True,
    }


def gan_zoo_state_dict(generator: PGGANGenerator) -> dict[str, torch.Tensor]:
    """The generator's weights under pytorch_GAN_zoo's key names."""
    return {gan_zoo_key(k): v.detach().clone() for k, v in generator.state_dict().items()}


def genforce_state_dict(generator: PGGANGenerator) -> dict[str, torch.Tensor]:
    """The generator's weights under genforce's key names, with its ``lod`` buffer."""
    state = {"lod": torch.tensor(float(generator.config.lod))}
    state.update({genforce_key(k): v.detach().clone() for k, v in generator.state_dict().items()})
    return state


def save_gan_zoo(generator: PGGANGenerator, path: str | os.PathLike, *, config: Any = None) -> None:
    """Write ``{"config", "netG", "netD": {}, "avgG"}`` as ``BaseGAN.save`` does.

    ``config`` replaces the stored config (default: a plain dict of the GAN zoo
    fields); the generator must use GAN zoo conventions.
    """
    _check_conventions(generator.config, GAN_ZOO)
    state = gan_zoo_state_dict(generator)
    stored = gan_zoo_config_dict(generator.config) if config is None else config
    torch.save({"config": stored, "netG": state, "netD": {}, "avgG": dict(state)}, path)


def save_genforce(generator: PGGANGenerator, path: str | os.PathLike) -> None:
    """Write ``{"generator_smooth": state_dict}`` as the genforce model zoo files hold it."""
    _check_conventions(generator.config, GENFORCE)
    torch.save({"generator_smooth": genforce_state_dict(generator)}, path)
