"""``ganenc.scripts``: the argparse helpers behind the example and benchmark scripts."""

from __future__ import annotations

import argparse

import pytest

from ganenc.errors import GanencError
from ganenc.scripts import (
    check_outputs,
    non_negative_float,
    one_line_errors,
    positive_float,
    positive_int,
    positive_int_list,
    probability,
)


@pytest.mark.parametrize(
    ("convert", "good", "bad"),
    [
        (positive_float, {"0.5": 0.5, "1e3": 1000.0}, ["0", "-1", "nan", "inf", "x"]),
        (non_negative_float, {"0": 0.0, "2": 2.0}, ["-0.1", "nan", "-inf"]),
        (probability, {"0": 0.0, "1": 1.0, "0.9": 0.9}, ["1.01", "-0.01", "nan"]),
        (positive_int, {"1": 1, "9" * 400: int("9" * 400)}, ["0", "-2", "1.5", "nan", ""]),
        (positive_int_list, {"10,50, 200": [10, 50, 200], "7": [7]}, ["10,,5", "10,0", "a"]),
    ],
)
def test_types_accept_good_values_and_refuse_bad_ones(convert, good, bad):
    for text, value in good.items():
        assert convert(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match="must be"):
            convert(text)


def _parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog="script.py")


def test_a_ganenc_error_becomes_one_error_line(capsys):
    with pytest.raises(SystemExit) as stopped, one_line_errors(_parser()):
        raise GanencError("emoji data set not found: x")
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "script.py: error: emoji data set not found: x"
    )


def test_outputs_are_refused_when_present_unless_forced(tmp_path, capsys):
    (tmp_path / "report.json").write_text("{}")
    with pytest.raises(SystemExit):
        check_outputs(_parser(), tmp_path, ["plot.png", "report.json"], force=False)
    assert "report.json exists; pass --force" in capsys.readouterr().err
    paths = check_outputs(_parser(), tmp_path, ["plot.png", "report.json"], force=True)
    assert paths == [tmp_path / "plot.png", tmp_path / "report.json"]
    assert (tmp_path / "report.json").read_text() == "{}"  # checked, not touched
