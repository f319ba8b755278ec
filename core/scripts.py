"""argparse helpers for scripts built on ganenc, so that bad input is one line and writes nothing.

The ``ganenc`` commands get this from click and ``cli/options.py``; the scripts beside
them (``examples/``, ``benchmarks/``, and a user's own) use argparse, so the same rules
live here once: numbers are checked by their argparse ``type`` (one ``error:`` line
naming the option), a :class:`~ganenc.errors.GanencError` (missing data, a bad weights
file) becomes such a line too, and the files a script will write are checked free
before any work starts.
"""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Iterator
from pathlib import Path

from .errors import GanencError
from .files import check_output


def _number(text: str, kind: type, accept, wanted: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
    if not ((kind is int or math.isfinite(value)) and accept(value)):
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    return _number(text, float, lambda v: v > 0, "a finite number > 0")


def non_negative_float(text: str) -> float:
    return _number(text, float, lambda v: v >= 0, "a finite number >= 0")


def probability(text: str) -> float:
    return _number(text, float, lambda v: 0 <= v <= 1, "a probability in [0, 1]")


def positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "an integer >= 1")


def positive_int_list(text: str) -> list[int]:
    """A comma-separated list of integers >= 1, such as ``10,50,200``."""
    try:
        return [positive_int(part.strip()) for part in text.split(",")]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be integers >= 1 separated by commas (e.g. 10,50,200), got {text!r}"
        ) from None


@contextlib.contextmanager
def one_line_errors(parser: argparse.ArgumentParser) -> Iterator[None]:
    """Turn a :class:`GanencError` raised inside the block into ``parser.error``."""
    try:
        yield
    except GanencError as error:
        parser.error(str(error))


def check_outputs(
    parser: argparse.ArgumentParser, folder: Path, names: list[str], force: bool
) -> list[Path]:
    """``folder / name`` for each name, after checking that each may be written.

    An existing file is refused unless ``force`` (the script's ``--force``), so that a
    rerun never replaces a report or a trained network without being asked.
    """
    with one_line_errors(parser):
        return [check_output(folder / name, force=force) for name in names]
