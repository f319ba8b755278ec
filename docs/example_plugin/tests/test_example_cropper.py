"""The example plugin, installed as a real distribution, end to end."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

import ganenc
from ganenc.cli.main import cli
from ganenc.testing import contract_tests


def test_it_is_found_through_its_entry_point():
    spec = ganenc.get_registry().get("cropper", "fractions")
    assert (spec.plugin, spec.distribution) == ("example_cropper", "ganenc-example-cropper")
    rows = json.loads(CliRunner().invoke(cli, ["list", "--kind", "cropper", "--json"]).output)
    assert "fractions" in {row["name"] for row in rows}


test_contracts = contract_tests("ganenc-example-cropper")  # every component, its contract check


def test_boxes_follow_the_fractions():
    cropper = ganenc.create("cropper", "fractions", levels=[(0.5, 0.0, 1.0, 0.5)])
    (boxes,) = cropper.boxes(torch.zeros(3, 3, 64, 32))
    assert boxes.tolist() == [[16, 0, 32, 32]] * 3


def test_options_are_validated():
    with pytest.raises(ganenc.ConfigError, match="must satisfy"):
        ganenc.create("cropper", "fractions", levels=[(0.6, 0.0, 0.5, 1.0)])
