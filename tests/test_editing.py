"""``ganenc directions`` and ``ganenc edit``: planted attributes, conditional directions, edits."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganenc.cli.directions import directions_command
from ganenc.cli.edit import edit_command
from ganenc.editing import (
    Direction,
    apply_direction,
    binarize,
    edit_latents,
    learn_directions,
    match_names,
    orthogonalize,
    parse_layers,
    parse_strengths,
    read_labels,
)
from ganenc.errors import CheckpointError, ConfigError, GanencError
from ganenc.inversion import invert_folder, read_latents, save_latent_file

LAYERS, WIDTH, SAMPLES = 2, 64, 400

pytest_plugins = ("inversion_fixtures",)
#: the tiny generator's size (see inversion_fixtures)
RESOLUTION = 32


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def _planted(tmp_path, truths: dict[str, np.ndarray], offset: float = 0.2, extra_rows=()):
    """Latent files with w_plus [1, 2, 64] and labels from hidden hyperplanes in w (layer mean)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "latents"
    w_plus = rng.standard_normal((SAMPLES, LAYERS, WIDTH)).astype(np.float32)
    w = w_plus.mean(1)
    rows = []
    for i in range(SAMPLES):
        save_latent_file(folder / f"img{i:04d}.pt", {"w_plus": torch.from_numpy(w_plus[i : i + 1])})
        rows.append(
            {"image": f"img{i:04d}.png"}
            | {name: int(w[i] @ truth + offset > 0) for name, truth in truths.items()}
        )
    save_latent_file(folder / "unlabelled.pt", {"w_plus": torch.zeros(1, LAYERS, WIDTH)})
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", *truths])
        writer.writeheader()
        writer.writerows(rows)
        writer.writerows(extra_rows)
    return folder, labels


def test_directions_command_recovers_a_planted_attribute(tmp_path):
    rng = np.random.default_rng(1)
    truth = _unit(rng.standard_normal(WIDTH))
    latents, labels = _planted(
        tmp_path, {"smile": truth}, extra_rows=[{"image": "ghost.png", "smile": 1}]
    )
    out = tmp_path / "directions"
    result = CliRunner().invoke(
        directions_command,
        ["--latents", str(latents), "--labels", str(labels), "--space", "w", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    direction = Direction.load(out / "smile.pt")
    assert direction.space == "w" and direction.vector.shape == (WIDTH,)
    assert float(direction.vector.norm()) == pytest.approx(1.0, abs=1e-5)
    cosine = float(direction.vector.double().numpy() @ truth)
    assert cosine > 0.9, cosine
    assert direction.metadata["validation_accuracy"] > 0.85
    assert direction.metadata["validation_samples"] == SAMPLES // 5
    report = json.loads((out / "directions.json").read_text())
    assert report["matched"] == SAMPLES
    assert report["labels_without_latents"] == ["ghost.png"]
    assert report["latents_without_labels"] == ["unlabelled"]
    assert "1 label rows without a latent file" in result.output


def test_w_plus_space_and_svm_also_find_it(tmp_path):
    rng = np.random.default_rng(2)
    truth = _unit(rng.standard_normal(WIDTH))
    latents, labels = _planted(tmp_path, {"age": truth})
    (direction,), _ = learn_directions(latents, labels, space="w_plus", classifier="svm")
    assert direction.vector.shape == (LAYERS, WIDTH)
    # in w_plus the hyperplane on the layer mean is the same normal on every layer; twice the
    # dimensions from the same samples: a looser estimate
    expected = _unit(np.concatenate([truth] * LAYERS))
    assert float(direction.vector.reshape(-1).double().numpy() @ expected) > 0.75


def test_orthogonal_directions_are_orthogonal_to_the_other_attributes(tmp_path):
    rng = np.random.default_rng(3)
    first = _unit(rng.standard_normal(WIDTH))
    second = _unit(first + 0.8 * _unit(rng.standard_normal(WIDTH)))  # correlated attributes
    latents, labels = _planted(tmp_path, {"smile": first, "age": second})
    raw, _ = learn_directions(latents, labels)
    conditioned, report = learn_directions(latents, labels, condition="all")
    raw_by = {d.attribute: d.vector.double() for d in raw}
    for direction in conditioned:
        other = "age" if direction.attribute == "smile" else "smile"
        assert abs(float(direction.vector.double() @ raw_by[other])) < 1e-5
        assert direction.metadata["conditioned_on"] == [other]
        assert float(direction.vector.double() @ raw_by[direction.attribute]) > 0.3
    assert abs(float(raw_by["smile"] @ raw_by["age"])) > 0.3  # they were entangled before
    with pytest.raises(ConfigError, match="cannot condition on"):
        learn_directions(latents, labels, condition=["gender"])


def test_edit_command_writes_edited_latents_and_strips(tiny_run, tiny_inverter, photos, tmp_path):
    inverted = tmp_path / "inverted"
    invert_folder(tiny_inverter, photos, inverted)
    vector = torch.from_numpy(_unit(np.random.default_rng(4).standard_normal(512))).float()
    direction_file = Direction("smile", "w", vector).save(tmp_path / "smile.pt")
    out = tmp_path / "edits"
    result = CliRunner().invoke(
        edit_command,
        ["--latents", str(inverted), "--direction", str(direction_file)]
        + ["--strengths=-3,0,3", "--layers", "0-3", "--out", str(out), "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    source = read_latents(inverted)
    edited = read_latents(out / "latents")
    assert len(edited.names) == 3 * len(source.names)
    name = source.names[0]
    plus = edited.latents["w_plus"][edited.names.index(f"{name}__smile_+3")]
    zero = edited.latents["w_plus"][edited.names.index(f"{name}__smile_+0")]
    original = source.latents["w_plus"][0]
    assert torch.equal(zero, original)
    torch.testing.assert_close(plus[:4], original[:4] + 3 * vector)
    assert torch.equal(plus[4:], original[4:])
    # the strip shows the three strengths side by side; strength 0 is the reconstruction
    strip = np.asarray(Image.open(out / "strips" / f"{name}.png"))
    pad = 2
    assert strip.shape == (RESOLUTION + 2 * pad, 3 * (RESOLUTION + pad) + pad, 3)
    middle = strip[pad : pad + RESOLUTION, 2 * pad + RESOLUTION : 2 * pad + 2 * RESOLUTION]
    recon = np.asarray(Image.open(inverted / "reconstructions" / f"{name}.png"))
    assert np.abs(middle.astype(int) - recon.astype(int)).max() <= 1
    left = strip[pad : pad + RESOLUTION, pad : pad + RESOLUTION]
    assert np.abs(left.astype(int) - recon.astype(int)).max() > 10  # the edit changed the image
    summary = json.loads((out / "edits.json").read_text())
    assert summary["strengths"] == [-3.0, 0.0, 3.0] and summary["layers"] == "0-3"


def test_edit_with_another_checkpoint_resolves_the_generator_like_invert(
    tiny_inverter, photos, tmp_path
):
    """The latents record a random 32 px generator (resolution=32, channel_max=32); the same
    generator as a file, given with --checkpoint, drops those architecture options."""
    from ganenc_stylegan.formats import save_rosinality

    inverted = tmp_path / "inverted"
    invert_folder(tiny_inverter, photos, inverted)
    checkpoint = save_rosinality(tiny_inverter.generator.model, tmp_path / "g.pt")
    direction_file = Direction("smile", "w", torch.ones(512) / 512**0.5).save(tmp_path / "d.pt")
    common = ["--latents", str(inverted), "--direction", str(direction_file), "--strengths=0"]
    runs = {}
    for name, extra in (("recorded", []), ("file", ["--checkpoint", str(checkpoint)])):
        result = CliRunner().invoke(
            edit_command, [*common, *extra, "--out", str(tmp_path / name), "--device", "cpu"]
        )
        assert result.exit_code == 0, result.output + repr(result.exception)
        runs[name] = np.asarray(Image.open(next((tmp_path / name / "strips").iterdir())))
    assert np.array_equal(runs["recorded"], runs["file"])


def test_apply_direction_checks_shapes_and_layers():
    latents = {"w_plus": torch.zeros(1, 8, 512), "const": torch.ones(1, 32, 4, 4)}
    wide = Direction("a", "w_plus", torch.ones(8, 512) / 64)
    moved = apply_direction(latents, wide, 2.0, "7")
    assert torch.equal(moved["w_plus"][0, :7], torch.zeros(7, 512))
    assert torch.allclose(moved["w_plus"][0, 7], torch.full((512,), 2 / 64))
    assert torch.equal(moved["const"], latents["const"])
    with pytest.raises(ConfigError, match="learned for another generator"):
        apply_direction(latents, Direction("a", "w_plus", torch.ones(14, 512)), 1.0)
    with pytest.raises(ConfigError, match="layers 0-7"):
        apply_direction(latents, wide, 1.0, "6-8")
    with pytest.raises(ConfigError, match="direction is in space .w_plus."):
        apply_direction({"z": torch.zeros(1, 4)}, wide, 1.0)
    with pytest.raises(ConfigError, match="no layers"):
        apply_direction({"z": torch.zeros(1, 4)}, Direction("a", "z", torch.ones(4)), 1.0, "0")
    with pytest.raises(ConfigError, match="strength 1e[+]300 moves latent 'w_plus' beyond"):
        apply_direction(latents, wide, 1e300)  # float32 overflows to inf: no inf latent file


def test_small_parsers_and_label_rules(tmp_path):
    assert parse_strengths("-3, 0,1.5") == [-3.0, 0.0, 1.5]
    with pytest.raises(ConfigError):
        parse_strengths("a,b")
    assert parse_layers("0-2,5", 8) == [0, 1, 2, 5]
    assert parse_layers(None, 8) is None
    with pytest.raises(ConfigError, match="layer 8 does not exist: the code has layers 0-7"):
        parse_layers("2,8", 8)
    # refused from the text, before a range of 10**14 layers is expanded into a set
    with pytest.raises(ConfigError, match="layers 8-99999999999999 do not exist"):
        parse_layers("0-99999999999999", 8)
    values, rule = binarize(["yes", "no", "", "TRUE"], "x")
    assert np.array_equal(values[[0, 1, 3]], [1, 0, 1]) and np.isnan(values[2])
    values, rule = binarize(["-1", "1", "1"], "x")
    assert values.tolist() == [0, 1, 1] and rule["rule"] == "two values"
    values, rule = binarize(["0.1", "0.5", "0.9"], "x")
    assert values.tolist() == [0, 0, 1] and rule["threshold"] == pytest.approx(0.5)
    with pytest.raises(GanencError, match="neither a number"):
        binarize(["maybe", "1"], "x")
    matching = match_names(["a.png", "dir/b.jpg", "c"], ["a", "b", "d"])
    assert matching["pairs"] == [(0, 0), (1, 1)]
    assert matching["labels_without_latents"] == ["c"]
    assert matching["latents_without_labels"] == ["d"]
    basis = _unit(np.array([1.0, 1.0, 0.0]))
    assert orthogonalize(basis, [np.array([1.0, 0.0, 0.0])]) == pytest.approx([0, 1, 0])
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="bad.pt"):
        Direction.load(tmp_path / "bad.pt")


def test_directions_error_when_nothing_matches(tmp_path):
    latents, labels = _planted(tmp_path, {"smile": _unit(np.ones(WIDTH))})
    other = tmp_path / "other.csv"
    other.write_text("image,smile\nnobody.png,1\n")
    with pytest.raises(GanencError, match="no label row matches"):
        learn_directions(latents, other)


def test_edit_asks_for_the_checkpoint_when_the_latents_name_only_the_family(tmp_path):
    # per-image fine-tuning records only the family: random weights must not be assumed
    save_latent_file(tmp_path / "in" / "a.pt", {"w_plus": torch.zeros(1, 8, 512)}, gan="stylegan2")
    direction = Direction("smile", "w", torch.ones(512) / 512**0.5)
    with pytest.raises(GanencError, match="pass --checkpoint"):
        edit_latents(tmp_path / "in", direction, "1", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # naming the family (or an option) on the command line does not make it random weights
    direction_file = direction.save(tmp_path / "d.pt")
    for extra in (["--gan", "stylegan2"], ["-O", "resolution=32"]):
        result = CliRunner().invoke(
            edit_command,
            ["--latents", str(tmp_path / "in"), "--direction", str(direction_file)]
            + ["--strengths=1", "--out", str(tmp_path / "out"), *extra],
        )
        assert result.exit_code != 0 and "pass --checkpoint" in str(result.exception)
        assert not (tmp_path / "out").exists()


def test_a_labels_file_that_is_not_utf8_text_is_one_clear_error(tmp_path):
    latin1 = tmp_path / "labels.csv"
    latin1.write_bytes("image,smiling\ncafé.png,1\n".encode("latin-1"))
    with pytest.raises(
        GanencError, match=r"labels\.csv is not UTF-8 text \(save the CSV as UTF-8\)"
    ):
        read_labels(latin1)
    latin1.write_text("image,smiling\ncafé.png,1\n", encoding="utf-8")
    assert read_labels(latin1).names == ["café.png"]


def test_labels_that_cannot_make_a_direction_say_why(tmp_path):
    latents, labels = _planted(tmp_path, {"smile": _unit(np.ones(WIDTH))})
    names = [p.stem for p in sorted(latents.glob("img*.pt"))]
    cases = {
        "all ones": ("image,smile\n" + "".join(f"{n}.png,1\n" for n in names), "every label is 1;"),
        "header only": ("image,smile\n", "has a header but no rows"),
        "an extra cell": (f"image,smile\n{names[0]}.png,1,2\n", r"more cells .*lines \[2\]"),
        "infinity": (
            "image,smile\n"
            + "".join(f"{n}.png,{i % 2}\n" for i, n in enumerate(names[1:]))
            + f"{names[0]}.png,inf\n",
            "cell 'inf' is not a finite number",
        ),
    }
    for text, message in cases.values():
        labels.write_text(text)
        with pytest.raises(GanencError, match=message):
            learn_directions(latents, labels)


def test_strengths_are_each_given_once_and_directions_are_unit_vectors(tmp_path):
    assert parse_strengths(" -3, 0 ,3") == [-3.0, 0.0, 3.0]
    for text, message in {
        "1,,2": "finite numbers separated by commas",
        "3,3": r"repeat \+3",
        "0.1234567,0.12345678": r"repeat \+0.123457 \(to the 6 significant digits",
    }.items():
        with pytest.raises(ConfigError, match=message):
            parse_strengths(text)
    Direction("smile", "w", torch.full((4,), 0.5)).save(tmp_path / "unit.pt")
    assert Direction.load(tmp_path / "unit.pt").vector.norm() == pytest.approx(1)
    torch.save(
        {
            "format": "ganenc-direction/1",
            "attribute": "a",
            "space": "w",
            "direction": torch.ones(4),
        },
        tmp_path / "long.pt",
    )
    with pytest.raises(CheckpointError, match="length is 2, not 1 .*direction / direction.norm"):
        Direction.load(tmp_path / "long.pt")


def test_latent_files_of_different_generators_are_not_mixed(tmp_path):
    w_plus = {"w_plus": torch.zeros(1, LAYERS, WIDTH)}
    emoji = {"gan": "stylegan2", "checkpoint": "stylegan2:emoji-64"}
    other = {"gan": "stylegan2", "checkpoint": "random", "generator_options": {"resolution": 32}}
    save_latent_file(tmp_path / "a.pt", w_plus, generator=emoji)
    save_latent_file(tmp_path / "b.pt", w_plus, generator=other)
    with pytest.raises(GanencError, match="a.pt and b.pt record different generators"):
        read_latents(tmp_path).generator_spec()
    (tmp_path / "b.pt").unlink()
    save_latent_file(tmp_path / "c.pt", w_plus, generator=emoji)
    assert read_latents(tmp_path).generator_spec() == emoji


def test_too_few_labels_for_a_held_out_split_say_so(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "latents"
    for i in range(6):
        w_plus = torch.from_numpy(rng.standard_normal((1, LAYERS, WIDTH)).astype(np.float32))
        save_latent_file(folder / f"img{i}.pt", {"w_plus": w_plus})
    labels = tmp_path / "labels.csv"
    labels.write_text("image,smile\n" + "".join(f"img{i}.png,{i % 2}\n" for i in range(6)))
    result = CliRunner().invoke(
        directions_command,
        ["--latents", str(folder), "--labels", str(labels), "--out", str(tmp_path / "d")],
    )
    assert result.exit_code == 0, result.output
    assert "no held-out accuracy for smile" in " ".join(result.output.split())


def test_of_two_name_columns_the_one_naming_the_latent_files_is_used(tmp_path):
    """The emoji labels.csv has 'file' (1f600.png) and 'name' (grinning face): the documented
    'ganenc directions' command matched no latent file."""
    labels = tmp_path / "labels.csv"
    labels.write_text("file,name,is_face\n1f600.png,grinning face,1\n1f601.png,beaming face,0\n")
    table = read_labels(labels, ["1f600", "1f601"])
    assert table.name_column == "file" and table.names == ["1f600.png", "1f601.png"]
    assert list(table.columns) == ["is_face"]  # the other name column is no attribute
    assert read_labels(labels).name_column == "name"  # without latents: the first by precedence


def test_the_default_space_follows_the_latents_naming_convention(tmp_path):
    """The default was StyleGAN's 'w', an error for PGGAN's z-only latents."""
    from ganenc.editing import default_space, latent_spaces, space_key

    assert default_space({"w_plus": torch.zeros(1, 2, 3), "const": torch.zeros(1, 4)}) == "w"
    assert latent_spaces({"w_plus": torch.zeros(1, 2, 3), "const": torch.zeros(1, 4)}) == [
        "w", "w_plus", "const",
    ]  # fmt: skip
    assert default_space({"z": torch.zeros(1, 5), "class": torch.zeros(1, 7)}) == "z"
    assert space_key({"w_plus": torch.zeros(1, 2, 3)}, "w") == "w_plus"
    with pytest.raises(ConfigError, match=r"no space 'y'; available: \['w', 'w_plus'\]"):
        space_key({"w_plus": torch.zeros(1, 2, 3)}, "y")
    rng = np.random.default_rng(4)
    truth = _unit(rng.standard_normal(WIDTH))
    folder = tmp_path / "z"
    z = rng.standard_normal((SAMPLES, WIDTH)).astype(np.float32)
    for i in range(SAMPLES):
        save_latent_file(folder / f"img{i:04d}.pt", {"z": torch.from_numpy(z[i : i + 1])})
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "image,smile\n"
        + "".join(f"img{i:04d}.png,{int(z[i] @ truth > 0)}\n" for i in range(SAMPLES))
    )
    (direction,), report = learn_directions(folder, labels)
    assert direction.space == report["space"] == "z"
    assert float(direction.vector.double().numpy() @ truth) > 0.9
