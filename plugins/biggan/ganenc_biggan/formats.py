"""Reading and writing HuggingFace pytorch-pretrained-BigGAN files.

The format is a folder with ``config.json`` (``BigGANConfig.to_json_string()``)
and ``pytorch_model.bin`` (``torch.save(BigGAN.state_dict())``).  A checkpoint
may be named by the folder, by the ``.bin`` file (with ``config.json`` beside
it) or by the ``.bin`` file plus an explicit config path.  Every failure is one
:class:`ganenc.CheckpointError` whose message says what to fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ganenc.checkpoints import build_checked, describe_checkpoint, read_checkpoint
from ganenc.errors import CheckpointError, WeightsNotFoundError
from ganenc.files import strict_json

from .identify import HF_STATE_DICT
from .model import BigGAN, BigGANConfig

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "pytorch_model.bin"


class BigGANFileNotFoundError(CheckpointError, WeightsNotFoundError):
    """A BigGAN folder, weights file or config.json is missing (both kinds of error)."""


def resolve_files(
    checkpoint: str | os.PathLike, config: str | os.PathLike | None = None
) -> tuple[Path, Path | None]:
    """``(weights, config)`` paths for a folder or a ``.bin`` path; config ``None`` if missing."""
    path = Path(checkpoint).expanduser()
    if not path.exists():
        raise BigGANFileNotFoundError(
            f"BigGAN checkpoint not found: {path} (expected a folder holding {CONFIG_NAME} and"
            f" {WEIGHTS_NAME}, or the path of {WEIGHTS_NAME})"
        )
    if path.is_dir():
        weights = path / WEIGHTS_NAME
        if not weights.is_file():
            raise BigGANFileNotFoundError(
                f"BigGAN folder {path} has no {WEIGHTS_NAME}; put the weights file there"
                " (HuggingFace pytorch-pretrained-biggan format)"
            )
    else:
        weights = path
    if config is not None:
        config_path = Path(config).expanduser()
        if not config_path.is_file():
            raise BigGANFileNotFoundError(f"BigGAN config file not found: {config_path}")
        return weights, config_path
    beside = weights.parent / CONFIG_NAME
    return weights, beside if beside.is_file() else None


def read_config(path: str | os.PathLike) -> BigGANConfig:
    """A ``config.json`` as :class:`BigGANConfig` (missing fields take the reference defaults)."""
    path = Path(path)
    try:
        data = strict_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"cannot read BigGAN config {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(
            f"BigGAN config {path} must hold a JSON object, got {type(data).__name__}"
        )
    try:
        return BigGANConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"invalid BigGAN config {path}: {exc}") from None


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a ``pytorch_model.bin`` (``weights_only`` loading), or a CheckpointError."""
    state = read_checkpoint(path)
    kind = describe_checkpoint(state)
    if kind != HF_STATE_DICT:
        raise CheckpointError(
            f"{path} is {kind}, not a HuggingFace BigGAN-deep {WEIGHTS_NAME}"
            " (expected keys such as 'embeddings.weight' and 'generator.gen_z.weight_orig')"
        )
    bad = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: entries {bad[:3]} are not tensors; not a BigGAN state dict")
    return dict(state)


def check_state_dict(model: BigGAN, state: dict[str, torch.Tensor], where: str) -> None:
    """Missing, unexpected or mis-shaped entries -> one CheckpointError listing a few of each."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    wrong = [
        f"{key} {list(state[key].shape)} (config needs {list(value.shape)})"
        for key, value in expected.items()
        if key in state and state[key].shape != value.shape
    ]
    if not (missing or unexpected or wrong):
        return
    # Deliberately alike: each plugin words its own state-dict errors; no plugin imports another
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing, e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected, e.g. {unexpected[:3]}")
    if wrong:
        problems.append(f"{len(wrong)} with other shapes, e.g. {wrong[:3]}")
    details = "; ".join(problems)
    raise CheckpointError(
        f"BigGAN weights and config.json do not match ({where}): {details}."
        " Use the config.json that came with these weights."
    )


def load_hf(checkpoint: str | os.PathLike, config: str | os.PathLike | None = None) -> BigGAN:
    """A :class:`BigGAN` in eval mode from a HuggingFace folder or ``pytorch_model.bin`` path."""
    weights_path, config_path = resolve_files(checkpoint, config)
    if config_path is None:
        # Read the weights first: a file of another family deserves that hint, not "no config".
        read_state_dict(weights_path)
        raise BigGANFileNotFoundError(
            f"no {CONFIG_NAME} for BigGAN weights {weights_path}: put the {CONFIG_NAME} that came"
            f" with them at {weights_path.parent / CONFIG_NAME}, or pass config=<path>"
        )
    biggan_config = read_config(config_path)
    state = read_state_dict(weights_path)
    model = build_checked(lambda: BigGAN(biggan_config), f"{weights_path} with {config_path}")
    check_state_dict(model, state, f"{weights_path} with {config_path}")
    model.load_state_dict({key: value.float() for key, value in state.items()}, strict=True)
    return model.eval()


def save_hf(model: BigGAN, folder: str | os.PathLike) -> Path:
    """Write ``config.json`` and ``pytorch_model.bin`` into ``folder`` (created); returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_NAME).write_text(model.config.to_json_string(), encoding="utf-8")
    state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    torch.save(state, folder / WEIGHTS_NAME)
    return folder
