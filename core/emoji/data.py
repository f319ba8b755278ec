"""The Noto emoji data set (``labels.csv`` + ``noto64/``): splits, groups and attributes.

The data set itself is not shipped (it lives in ``shared/data/emoji``); a few
held-out images are (``heldout/``), for tests and the demo.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import GanencError

#: The nine Unicode emoji groups, in CLDR order: the classifier's classes.
GROUPS = (
    "Smileys & Emotion",
    "People & Body",
    "Animals & Nature",
    "Food & Drink",
    "Travel & Places",
    "Activities",
    "Objects",
    "Symbols",
    "Flags",
)
#: The binary attributes of ``labels.csv`` (the classifier's second head; label directions).
ATTRIBUTES = (
    "is_face",
    "has_skin_tone",
    "is_flag",
    "is_animal",
    "is_food",
    "is_person",
    "is_heart",
)
SPLITS = ("train", "heldout")


@dataclass
class EmojiSplit:
    """One split: images uint8 ``[N, 3, R, R]``, group indices ``[N]``, attributes ``[N, 7]``.

    ``bases``: each image's base emoji (its file stem without skin-tone modifiers), shared
    by the up to 26 skin-tone variants of one person emoji.
    """

    images: object
    groups: object
    attributes: object
    files: list[str]
    names: list[str]
    bases: list[str]


def read_labels(root: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of ``root/labels.csv``; one clear error when the data set is not there."""
    path = Path(root) / "labels.csv"
    if not path.is_file():
        raise GanencError(
            f"emoji data set not found: {path} is missing (expected the folder with labels.csv"
            " and noto64/, e.g. shared/data/emoji)"
        )
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load_split(root: str | os.PathLike, split: str = "train", resolution: int = 64) -> EmojiSplit:
    """All images of one split of the 64 px set (resized when ``resolution`` differs)."""
    import torch

    from ..data import load_image

    if split not in SPLITS:
        raise GanencError(f"unknown emoji split {split!r}; use one of {', '.join(SPLITS)}")
    rows = [row for row in read_labels(root) if row["split"] == split]
    folder = Path(root) / "noto64"
    images = torch.stack([load_image(folder / row["file"], resolution) for row in rows])
    images = ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    groups = torch.tensor([GROUPS.index(row["group"]) for row in rows])
    attributes = torch.tensor([[int(row[a]) for a in ATTRIBUTES] for row in rows])
    return EmojiSplit(
        images=images,
        groups=groups,
        attributes=attributes.float(),
        files=[row["file"] for row in rows],
        names=[row["name"] for row in rows],
        bases=[row["base"] for row in rows],
    )


def heldout_examples() -> Path:
    """The folder of the 16 shipped held-out emoji (PNG, 64 px); their rows of
    ``labels.csv`` are in ``heldout.csv`` beside it."""
    return Path(__file__).with_name("heldout")


def skin_tone_examples() -> Path:
    """60 shipped *train* emoji: 10 people and hands, each without and with the 5 skin
    tones; ``skin-tones.csv`` beside the folder labels ``has_skin_tone`` (demo directions)."""
    return Path(__file__).with_name("skin-tones")
