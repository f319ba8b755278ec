"""Bad input to ``directions`` and ``edit`` (CLI and Python): one clear error, nothing written.

Each case was a silent wrong result (a duplicated column learned from, a constant's channels
edited as layers, another generator's direction applied), a half-written output, or a raw
scikit-learn / Python error.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ganenc.cli.directions import directions_command
from ganenc.editing import (
    Direction,
    apply_direction,
    edit_latents,
    fit_direction,
    learn_directions,
    orthogonalize,
    parse_layers,
    parse_strengths,
    read_labels,
    save_directions,
)
from ganenc.errors import ConfigError, GanencError
from ganenc.latents import save_latent_file

LAYERS, WIDTH = 2, 8
EMOJI = {"gan": "stylegan2", "checkpoint": "stylegan2:emoji-64", "generator_options": {}}
#: a random generator whose latents have the shapes of the tiny ones below (w_plus [8, 512])
TINY = {
    "gan": "stylegan2",
    "checkpoint": "random",
    "generator_options": {"resolution": 32, "channel_max": 16},
}


def _latents(folder, count, generator=None, shape=(LAYERS, WIDTH), **others):
    """``count`` latent files ``img<i>.pt`` of random ``w_plus`` (and zero ``others`` of the
    shapes given), recording ``generator``."""
    rng = np.random.default_rng(0)
    extra = {"generator": generator} if generator else {}
    for i in range(count):
        w_plus = torch.from_numpy(rng.standard_normal((1, *shape)).astype(np.float32))
        zeros = {key: torch.zeros(1, *size) for key, size in others.items()}
        save_latent_file(folder / f"img{i}.pt", {"w_plus": w_plus, **zeros}, **extra)
    return folder


def _directions(*args):
    return CliRunner().invoke(directions_command, [str(a) for a in args])


def _unit(size):
    return torch.nn.functional.normalize(torch.ones(size), dim=0)


@pytest.mark.parametrize("header", ["image,smile,smile", "image,smile, smile"])
def test_a_duplicated_column_is_refused_not_learned_from(tmp_path, header):
    """The last of two 'smile' columns was learned from, silently."""
    latents = _latents(tmp_path / "latents", 8)
    labels = tmp_path / "dup.csv"
    labels.write_text(header + "\n" + "".join(f"img{i}.png,{i % 2},{i // 4}\n" for i in range(8)))
    with pytest.raises(GanencError, match=r"names column\(s\) \['smile'\] twice"):
        read_labels(labels)
    result = _directions("--latents", latents, "--labels", labels, "--out", tmp_path / "d")
    assert result.exit_code != 0 and "['smile'] twice" in str(result.exception)
    assert not (tmp_path / "d").exists()


def test_an_unnamed_column_is_refused_before_any_direction_is_written(tmp_path):
    """'image,smile,,age' wrote d/smile.pt, then failed on the unnamed attribute."""
    latents = _latents(tmp_path / "latents", 8)
    labels = tmp_path / "labels.csv"
    rows = "".join(f"img{i}.png,{i % 2},{i // 4},{i % 3}\n" for i in range(8))
    labels.write_text("image,smile,,age\n" + rows)
    with pytest.raises(GanencError, match=r"column\(s\) \[3\] of the header have no name"):
        read_labels(labels)
    result = _directions("--latents", latents, "--labels", labels, "--out", tmp_path / "d")
    assert result.exit_code != 0 and "have no name" in str(result.exception)
    assert not (tmp_path / "d").exists()
    # from Python: every direction is checked before the first file is written
    directions = [Direction("smile", "w", _unit(WIDTH)), Direction("", "w", _unit(WIDTH))]
    with pytest.raises(ConfigError, match="must be names"):
        save_directions(directions, {}, tmp_path / "py")
    assert not (tmp_path / "py").exists()


def test_rows_with_too_few_cells_are_refused_like_rows_with_too_many(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("image,smile,age\nimg0.png,1,30\nimg1.png,0\n\nimg2.png,1,40\nimg3.png\n")
    with pytest.raises(GanencError, match=r"fewer cells than the header .*lines \[3, 6\]"):
        read_labels(labels)


@pytest.mark.parametrize(("positive", "negative"), [(2, 2), (2, 10)])
def test_a_validation_split_that_leaves_no_training_class_says_what_works(
    tmp_path, positive, negative
):
    """--validation 0.9 on few labels was sklearn's 'the resulting train set will be empty'."""
    latents = _latents(tmp_path / "latents", positive + negative)
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "image,smile\n"
        + "".join(f"img{i}.png,{int(i < positive)}\n" for i in range(positive + negative))
    )
    args = ["--latents", latents, "--labels", labels, "--out", tmp_path / "d"]
    result = _directions(*args, "--validation", "0.9")
    message = str(result.exception)
    assert result.exit_code != 0 and isinstance(result.exception, GanencError), message
    assert f"({positive} positive, {negative} negative" in message
    assert "--validation 0 for no held-out accuracy" in message
    assert not (tmp_path / "d").exists()
    working = float(re.search(r"--validation ([0-9.]+) works", message).group(1))
    (direction,), _ = learn_directions(latents, labels, validation=working)
    assert direction.metadata["validation_samples"] > 0
    assert direction.metadata["train_samples"] >= 2


def test_an_attribute_given_twice_says_so(tmp_path):
    latents = _latents(tmp_path / "latents", 8)
    labels = tmp_path / "labels.csv"
    labels.write_text("image,smile\n" + "".join(f"img{i}.png,{i % 2}\n" for i in range(8)))
    out = tmp_path / "d"
    result = _directions(*["--latents", latents, "--labels", labels, "--out", out]
                         + ["--attribute", "smile", "--attribute", "smile"])  # fmt: skip
    assert result.exit_code != 0
    assert "['smile'] given twice" in str(result.exception)
    assert not out.exists()
    # one attribute as a string is one attribute (not its letters), like condition=
    (direction,), _ = learn_directions(latents, labels, attributes="smile", validation=0)
    assert direction.attribute == "smile"


def test_fit_direction_binarises_like_the_cli_and_checks_its_arguments(tmp_path):
    rng = np.random.default_rng(0)
    features = rng.standard_normal((20, 4))
    signs = np.where(features[:, 0] > 0, 1, -1)
    signs[:2], signs[2:4] = 1, -1  # both classes, whatever the draw
    normal, info = fit_direction(features, signs, validation=0)
    assert (info["positive"], info["negative"]) == ((signs == 1).sum(), (signs == -1).sum())
    assert normal[0] > 0.5  # towards the +1 side
    nan = features.copy()
    nan[3, 1] = np.nan
    for kwargs, message in [
        ({"features": nan}, "NaN"),
        ({"features": features[:, 0]}, "reshape"),
        ({"labels": signs[:-1]}, "one per sample"),
        ({"labels": np.where(signs > 0, 1.0, np.nan)}, "missing values"),
        ({"validation": 1.5}, "validation must be a fraction"),
        ({"validation": -0.2}, "validation must be a fraction"),
        ({"C": 0}, "C must be a finite number above 0"),
        ({"C": -1.0}, "C must be"),
        ({"seed": -1}, "seed must be a whole number"),
        ({"classifier": "tree"}, "classifier must be one of"),
    ]:
        arguments = {"features": features, "labels": signs, **kwargs}
        with pytest.raises(ConfigError, match=message):
            fit_direction(arguments.pop("features"), arguments.pop("labels"), **arguments)
    with pytest.raises(ConfigError, match="validation must be a fraction"):  # before reading
        learn_directions(tmp_path / "none", tmp_path / "none.csv", validation=-0.2)


def test_orthogonalize_without_conditions_is_still_a_unit_vector():
    assert orthogonalize(np.array([3.0, 4.0]), []) == pytest.approx([0.6, 0.8])
    with pytest.raises(GanencError, match="is zero"):
        orthogonalize(np.zeros(3), [])


def test_layers_pick_only_from_a_layer_wise_code():
    """--layers 0-1 on a 'const' direction edited channels 0-1 of the 4x4 constant."""
    latents = {"w_plus": torch.zeros(1, 8, 16), "const": torch.zeros(1, 32, 4, 4)}
    constant = Direction(
        "c", "const", torch.nn.functional.normalize(torch.ones(32, 4, 4), dim=None)
    )
    with pytest.raises(ConfigError, match="--layers needs a layer-wise code .*'const'"):
        apply_direction(latents, constant, 1.0, "0-1")
    moved = apply_direction(latents, constant, 1.0)  # without layers it is a whole-latent edit
    assert bool((moved["const"] != 0).all())
    per_layer = apply_direction(latents, Direction("a", "w", _unit(16)), 1.0, [0, 1])
    assert bool((per_layer["w_plus"][0, :2] != 0).all()) and not per_layer["w_plus"][0, 2:].any()


def test_edit_refuses_a_constant_direction_with_layers_before_writing(tmp_path):
    folder = tmp_path / "in"
    save_latent_file(
        folder / "a.pt", {"w_plus": torch.zeros(1, 8, 16), "const": torch.zeros(1, 32, 4, 4)}
    )
    constant = Direction(
        "c", "const", torch.nn.functional.normalize(torch.ones(32, 4, 4), dim=None)
    )
    with pytest.raises(ConfigError, match="--layers needs a layer-wise code"):
        edit_latents(folder, constant, "1", tmp_path / "out", layers="0-1", generator=TINY)
    assert not (tmp_path / "out").exists()


def test_a_direction_of_another_generator_is_refused(tmp_path):
    """A direction learned on emoji-64 latents moved a random generator's latents (same shapes)."""
    emoji = _latents(tmp_path / "emoji", 8, EMOJI, shape=(8, 512), const=(16, 4, 4))
    labels = tmp_path / "labels.csv"
    labels.write_text("image,smile\n" + "".join(f"img{i}.png,{i % 2}\n" for i in range(8)))
    (learned,), _ = learn_directions(emoji, labels, validation=0)
    assert learned.metadata["generator"] == EMOJI  # what edit compares with
    other = _latents(tmp_path / "other", 1, TINY, shape=(8, 512), const=(16, 4, 4))
    with pytest.raises(GanencError, match="was learned on latents of the generator .*learn a"):
        edit_latents(other, learned, "1", tmp_path / "out", device="cpu")
    assert not (tmp_path / "out").exists()
    # a direction of the latents' own generator edits them
    learned.metadata["generator"] = dict(TINY)
    summary = edit_latents(other, learned, "1", tmp_path / "out", device="cpu")
    assert len(summary["edits"]) == 1


def test_python_api_arguments_of_the_wrong_kind_are_config_errors(tmp_path):
    latents = {"w_plus": torch.zeros(1, 8, 16)}
    direction = Direction("a", "w", _unit(16))
    path = direction.save(tmp_path / "a.pt")
    save_latent_file(tmp_path / "in" / "b.pt", latents)
    for call, message in [
        (lambda: apply_direction(latents, direction, 1.0, layers=3), "layers must be text"),
        (lambda: apply_direction(latents, direction, "x"), "strength must be a finite number"),
        (lambda: apply_direction(latents, direction, float("nan")), "strength must be a finite"),
        (lambda: apply_direction(latents, _unit(16), 1.0), "must be a Direction .*not Tensor"),
        (lambda: apply_direction(latents, path, 1.0), "Direction.load"),
        (lambda: parse_strengths(3), "strengths must be text"),
        (lambda: parse_strengths(["a"]), "strengths must be text"),
        (lambda: parse_layers(2.5, 8), "layers must be text"),
        (lambda: edit_latents(tmp_path / "in", _unit(16), "1", tmp_path / "o"), "direction"),
    ]:
        with pytest.raises(ConfigError, match=message):
            call()
    assert parse_strengths(np.array([-1.0, 2.0])) == [-1.0, 2.0]
    assert parse_layers((0, np.int64(3)), 8) == [0, 3]


def test_a_family_alias_is_one_generator_in_records_and_comparisons():
    """--gan stylegan was recorded as written: a direction learned on its latents was
    refused on stylegan1's, and invert --gan stylegan1 dropped the recorded generator."""
    from ganenc.encoder_runs import recorded_generator
    from ganenc.training.settings import GeneratorSpec

    assert GeneratorSpec(gan="stylegan").record()["gan"] == "stylegan1"
    stored = {"gan": "stylegan", "checkpoint": "random", "generator_options": {"resolution": 32}}
    spec = recorded_generator(stored, "x.pt", gan="stylegan1")
    assert spec.checkpoint == "random" and spec.generator_options == {"resolution": 32}
