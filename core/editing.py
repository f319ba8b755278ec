"""Label-based editing: one latent direction per attribute, learned by a linear classifier.

As InterFaceGAN (and the paper's section 4.4): latents of labelled images are
separated by a linear classifier per attribute (scikit-learn); the unit normal
of its hyperplane, pointing to the attribute's positive side, is the
direction.  An edit adds ``strength * direction`` to the latents (on chosen
layers of a layer-wise code such as StyleGAN's ``w_plus``).  "Conditional
manipulation" projects a direction onto the orthogonal complement of other
attributes' directions, so moving along it leaves their classifiers' scores
unchanged.

Spaces: any latent key the files hold (``w_plus``, ``const``, ``z``...), and for a
layer-wise key ``X_plus`` (``[N, layers, ...]``) its per-layer space ``X`` (its layer
mean; a direction there moves every chosen layer).  That naming is the core's latent
convention (see ``GeneratorAdapter``), so no family is named here: StyleGAN's ``w`` is
the per-layer space of its ``w_plus``.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .adapters import Latents
from .errors import CheckpointError, ConfigError, GanencError
from .files import check_output, plain_data, torch_save, write_json

DIRECTION_FORMAT = "ganenc-direction/1"
MAKE_DIRECTIONS = "'ganenc directions' writes direction files"
NAME_COLUMNS = ("image", "name", "file", "filename", "path")
MISSING = {"", "na", "nan", "none", "null", "?"}
TRUE_WORDS = {"true", "yes", "y", "t"}
FALSE_WORDS = {"false", "no", "n", "f"}
CLASSIFIERS = ("svm", "logistic")


@dataclass
class Direction:
    """A unit direction in one latent space, with how it was learned."""

    attribute: str
    space: str
    vector: torch.Tensor  # the latent's shape without batch, unit norm
    metadata: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the direction as :meth:`load` reads it; a vector it would refuse is refused."""
        return torch_save(self.payload(), path)

    def payload(self) -> dict[str, Any]:
        """What :meth:`save` writes, checked: callers writing several files check all first."""
        if not isinstance(self.vector, torch.Tensor) or not self.vector.is_floating_point():
            raise ConfigError(
                f"a direction's vector must be a float tensor, not {type(self.vector).__name__}"
            )
        if not all(isinstance(name, str) and name for name in (self.attribute, self.space)):
            raise ConfigError("a direction's attribute and space must be names (strings)")
        problem = direction_problem(self.vector)
        if problem:
            raise ConfigError(f"cannot save direction {self.attribute!r}: {problem}")
        return {
            "format": DIRECTION_FORMAT,
            "attribute": self.attribute,
            "space": self.space,
            "direction": self.vector.detach().cpu().float().clone(),
            "metadata": plain_data(self.metadata, "a direction's metadata"),
        }

    @classmethod
    def load(cls, path: str | os.PathLike) -> Direction:
        """Read a direction file safely (``weights_only``), with one clear error if it is not one."""
        from .checkpoints import read_ganenc_file

        path = Path(path)
        payload = read_ganenc_file(path, "direction file", MAKE_DIRECTIONS)
        if not isinstance(payload, dict) or payload.get("format") != DIRECTION_FORMAT:
            raise CheckpointError(f"{path} is not a ganenc direction file; {MAKE_DIRECTIONS}")
        vector, metadata = payload.get("direction"), payload.get("metadata") or {}
        problem = None
        if not all(isinstance(payload.get(key), str) for key in ("attribute", "space")):
            problem = "'attribute' and 'space' must be names"
        elif not isinstance(metadata, dict):
            problem = "'metadata' is not a mapping"
        elif not isinstance(vector, torch.Tensor) or not vector.is_floating_point():
            problem = "'direction' is not a float tensor"
        else:
            problem = direction_problem(vector)
        if problem:
            raise CheckpointError(f"{path} is a damaged direction file: {problem}")
        return cls(payload["attribute"], payload["space"], vector, dict(metadata))


def direction_problem(vector: torch.Tensor) -> str | None:
    """Why ``vector`` cannot be a direction (empty, NaN/inf, zero or not of unit length), or
    ``None``: a strength is a distance along it only when its length is 1."""
    if vector.numel() == 0:
        return "the direction is empty"
    if not bool(torch.isfinite(vector).all()):
        return "the direction holds NaN or infinite values"
    norm = float(vector.double().norm())
    if norm == 0:
        return "the direction is zero (it points nowhere)"
    if abs(norm - 1) > 1e-3:
        return (
            f"the direction's length is {norm:.6g}, not 1 (a strength is a distance along a unit"
            " vector: save direction / direction.norm())"
        )
    return None


# -- features of a latent space ---------------------------------------------------------------


#: A latent key ``X + LAYERWISE`` is the layer-wise form of the per-layer space ``X``.
LAYERWISE = "_plus"


def is_layerwise(key: str) -> bool:
    """Whether latent ``key`` is a layer-wise code (``X_plus``), the only kind ``layers`` pick
    from: the second dimension of another latent (a constant's channels) is no layer."""
    return key.endswith(LAYERWISE) and key != LAYERWISE


def latent_spaces(latents: Latents) -> list[str]:
    """The spaces ``latents`` offer: their keys, and each layer-wise key's per-layer space."""
    derived = [k[: -len(LAYERWISE)] for k in latents if is_layerwise(k)]
    return [*derived, *(k for k in latents if k not in derived)]


def default_space(latents: Latents) -> str:
    """Where directions are learned by default: the per-layer space of a layer-wise code
    (StyleGAN's ``w``, as InterFaceGAN), else the first latent (``z``)."""
    return latent_spaces(latents)[0]


def space_key(latents: Latents, space: str) -> str:
    """The latent a direction of ``space`` moves: ``space`` itself, or its layer-wise form."""
    if space in latents:
        return space
    if space + LAYERWISE in latents:
        return space + LAYERWISE
    raise ConfigError(f"the latents have no space {space!r}; available: {latent_spaces(latents)}")


def latent_features(latents: Latents, space: str) -> torch.Tensor:
    """``[N, ...]`` latents of ``space`` (a per-layer space: the layer mean of its layer-wise key)."""
    key = space_key(latents, space)
    return latents[key].float() if key == space else latents[key].float().mean(1)


# -- labels -------------------------------------------------------------------------------------


@dataclass
class Labels:
    """A labels CSV: image names and each attribute's raw cells."""

    names: list[str]
    columns: dict[str, list[str]]
    name_column: str


def read_labels(path: str | os.PathLike, latent_names: Sequence[str] | None = None) -> Labels:
    """A CSV with an image-name column (``image``/``name``/``file``..., else the first) and attributes.

    With ``latent_names``, of several name columns the one naming the most latent files
    is used (``labels.csv`` of the emoji data has ``file`` and a ``name`` of words); the
    other name columns are not attributes.
    """
    path = Path(path)
    if not path.is_file():
        raise GanencError(f"labels file not found: {path}")
    rows, lines = [], []  # each row's line (a quoted cell may span lines)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = list(reader.fieldnames or [])
            for row in reader:
                rows.append(row)
                lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise GanencError(f"labels file {path} is not UTF-8 text (save the CSV as UTF-8)") from None
    except csv.Error as exc:
        raise GanencError(f"labels file {path} is not a readable CSV: {exc}") from None
    _check_header(path, fields)
    if not rows:
        raise GanencError(f"{path} has a header but no rows of labels")
    longer = [line for line, row in zip(lines, rows, strict=True) if row.get(None)]
    shorter = [line for line, row in zip(lines, rows, strict=True) if None in row.values()]
    for odd, word in ((longer, "more"), (shorter, "fewer")):  # DictReader's overflow, restval
        if odd:
            raise GanencError(
                f"{path}: rows with {word} cells than the header has columns (lines {odd[:10]});"
                " give every row one cell per column (an empty cell leaves a label out)"
            )
    lowered = {f.strip().lower(): f for f in fields}
    candidates = [lowered[c] for c in NAME_COLUMNS if c in lowered] or [fields[0]]
    if latent_names is not None and len(candidates) > 1:
        known = set(latent_names)
        matched = {
            column: sum(_latent_key(row.get(column) or "", known) is not None for row in rows)
            for column in candidates
        }
        candidates.sort(key=lambda column: -matched[column])  # stable: ties keep the order
    name_column = candidates[0]
    names = [(row.get(name_column) or "").strip() for row in rows]
    empty = [line for line, name in zip(lines, names, strict=True) if not name]
    if empty:
        raise GanencError(f"{path}: rows without an image name (lines {empty[:10]})")
    columns = {
        f.strip(): [(row.get(f) or "").strip() for row in rows]
        for f in fields
        if f not in candidates
    }
    return Labels(names, columns, name_column)


def _check_header(path: Path, fields: Sequence[str]) -> None:
    """Refuse a header whose columns are not distinct names: ``csv.DictReader`` (and a dict of
    stripped names) would keep the last of two equal columns and learn from it silently."""
    names = [f.strip() for f in fields]
    if len(names) < 2:
        raise GanencError(f"{path} needs an image-name column and at least one attribute column")
    unnamed = [i + 1 for i, name in enumerate(names) if not name]
    if unnamed:
        raise GanencError(
            f"{path}: column(s) {unnamed} of the header have no name; name them or delete them"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise GanencError(
            f"{path}: the header names column(s) {repeated} twice; give each column its own name"
        )


def binarize(cells: Sequence[str], attribute: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Cells -> 1.0 / 0.0 / nan (missing), with how: two values, booleans, or above the median."""
    values = np.full(len(cells), np.nan)
    lowered = [c.strip().lower() for c in cells]
    present = [i for i, c in enumerate(lowered) if c not in MISSING]
    if all(lowered[i] in TRUE_WORDS | FALSE_WORDS for i in present) and present:
        for i in present:
            values[i] = 1.0 if lowered[i] in TRUE_WORDS else 0.0
        rule = {"rule": "boolean"}
    else:
        numbers = np.full(len(cells), np.nan)
        for i in present:
            try:
                numbers[i] = float(lowered[i])
            except ValueError:
                raise GanencError(
                    f"attribute {attribute!r}: cell {cells[i]!r} is neither a number nor a boolean"
                ) from None
            if not math.isfinite(numbers[i]):
                raise GanencError(
                    f"attribute {attribute!r}: cell {cells[i]!r} is not a finite number (leave"
                    " a label out with an empty cell)"
                )
        distinct = sorted({numbers[i] for i in present})
        if len(distinct) == 1:
            raise GanencError(
                f"attribute {attribute!r}: every label is {distinct[0]:g}; a direction needs"
                " images of both kinds"
            )
        if len(distinct) == 2:
            threshold = (distinct[0] + distinct[1]) / 2
            rule = {
                "rule": "two values",
                "negative": float(distinct[0]),
                "positive": float(distinct[1]),
            }
        else:
            threshold = float(np.median([numbers[i] for i in present])) if present else 0.0
            rule = {"rule": "above the median", "threshold": threshold}
        for i in present:
            values[i] = 1.0 if numbers[i] > threshold else 0.0
    return values, rule


def _latent_key(label_name: str, latent_names: Container[str]) -> str | None:
    """The latent file a label names: ``a.png``, ``a`` and ``dir/a.png`` all name ``a``."""
    base = Path(label_name.strip().replace("\\", "/")).name
    return next((k for k in (base, Path(base).stem) if k in latent_names), None)


def match_names(label_names: Sequence[str], latent_names: Sequence[str]) -> dict[str, Any]:
    """Label rows matched to latent files by name (``a.png``, ``a`` and ``dir/a.png`` match ``a``).

    Returns the ``(label row, latent index)`` pairs and the names left unmatched
    on either side, so that nothing is paired or dropped silently.
    """
    latent_index = {name: i for i, name in enumerate(latent_names)}
    pairs, without_latents, used = [], [], {}
    for row, name in enumerate(label_names):
        key = _latent_key(name, latent_index)
        if key is None:
            without_latents.append(Path(name.replace("\\", "/")).name)
            continue
        if key in used:
            raise GanencError(
                f"the labels name the latent {key!r} twice ({label_names[used[key]]!r} and {name!r})"
            )
        used[key] = row
        pairs.append((row, latent_index[key]))
    return {
        "pairs": pairs,
        "labels_without_latents": without_latents,
        "latents_without_labels": [n for n in latent_names if n not in used],
    }


# -- learning ---------------------------------------------------------------------------------


def fit_direction(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    classifier: str = "logistic",
    C: float = 1.0,
    validation: float = 0.2,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Unit normal of a linear classifier's hyperplane (pointing to the positive labels) and
    its accuracies.

    ``labels`` are binarised as a labels CSV's cells are (:func:`binarize`: ``-1/1``, booleans,
    above the median).  The classifier is fitted on a stratified training split;
    ``validation`` of the samples are held out and scored (none when a class is too small).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    features, labels = _checked_samples(features, labels)
    _check_fit_options(classifier, C, validation, seed)
    counts = {int(c): int((labels == c).sum()) for c in (0, 1)}
    if min(counts.values()) < 2:
        raise GanencError(
            f"need at least 2 samples of each class, got {counts[1]} positive and"
            f" {counts[0]} negative"
        )
    held = validation > 0 and min(counts.values()) * validation >= 1
    if held:
        split = _stratified_split(labels, validation, seed)
        if split is None:
            raise GanencError(_unsplittable(labels, counts, validation, seed))
        train, val = split
        x_train, x_val, y_train, y_val = features[train], features[val], labels[train], labels[val]
    else:
        x_train, y_train, x_val, y_val = features, labels, None, None
    if classifier == "svm":
        model = LinearSVC(C=C, class_weight="balanced", max_iter=20_000, random_state=seed)
    else:
        model = LogisticRegression(C=C, class_weight="balanced", max_iter=2000)
    model.fit(x_train, y_train)
    normal = np.asarray(model.coef_, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(normal))
    if not norm > 0:
        raise GanencError("the classifier found no direction (all weights are zero)")
    info: dict[str, Any] = {
        "classifier": classifier,
        "C": C,
        "train_accuracy": float(model.score(x_train, y_train)),
        "validation_accuracy": float(model.score(x_val, y_val)) if held else None,
        "train_samples": int(len(y_train)),
        "validation_samples": int(len(y_val)) if held else 0,
        "positive": counts[1],
        "negative": counts[0],
    }
    return normal / norm, info


def _checked_samples(features: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """``[N, D]`` finite float features and their labels binarised to 0/1, or a ConfigError
    (scikit-learn's own errors name none of the arguments)."""
    try:
        features = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError("features must be an [samples, dimensions] array of numbers") from None
    if features.ndim != 2 or 0 in features.shape:
        raise ConfigError(
            f"features must be a non-empty [samples, dimensions] array, not of shape"
            f" {list(features.shape)} (one feature per sample: features.reshape(-1, 1))"
        )
    if not np.isfinite(features).all():
        raise ConfigError("features hold NaN or infinite values; leave those samples out")
    try:
        cells = np.asarray(labels)
    except (TypeError, ValueError):
        raise ConfigError("labels must be a list of numbers or booleans, one per sample") from None
    if cells.ndim != 1 or len(cells) != len(features):
        raise ConfigError(
            f"labels must be one per sample: {len(features)} samples, labels of shape"
            f" {list(cells.shape)}"
        )
    texts = [str(cell) for cell in cells.tolist()]
    if any(text.strip().lower() in MISSING for text in texts):
        raise ConfigError("labels hold missing values (NaN, None); leave those samples out")
    try:
        values, _ = binarize(texts, "labels")
    except GanencError as exc:
        raise ConfigError(str(exc)) from None
    return features, values.astype(int)


def _check_fit_options(classifier: Any, C: Any, validation: Any, seed: Any) -> None:
    """The classifier's options, as the ``directions`` command checks its own."""
    from .config import MAX_SEED

    if classifier not in CLASSIFIERS:
        raise ConfigError(f"classifier must be one of {list(CLASSIFIERS)}, got {classifier!r}")
    if not _real(C) or not C > 0:
        raise ConfigError(f"C must be a finite number above 0, got {C!r}")
    if not _real(validation) or not 0 <= validation < 1:
        raise ConfigError(f"validation must be a fraction in [0, 1), got {validation!r}")
    if (
        isinstance(seed, bool)
        or not isinstance(seed, int | np.integer)
        or not 0 <= seed <= MAX_SEED
    ):
        raise ConfigError(f"seed must be a whole number in [0, {MAX_SEED}], got {seed!r}")


def _real(value: Any) -> bool:
    """A finite number (not a bool, a string or a tensor)."""
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _stratified_split(
    labels: np.ndarray, validation: float, seed: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Training and held-out indices with both classes on each side, or ``None``: with few
    labels a large ``validation`` leaves the training side one class (or nothing)."""
    from sklearn.model_selection import train_test_split

    try:
        train, val = train_test_split(
            np.arange(len(labels)), test_size=validation, random_state=seed, stratify=labels
        )
    except ValueError:  # a side smaller than the number of classes
        return None
    if len(set(labels[train].tolist())) < 2 or len(set(labels[val].tolist())) < 2:
        return None
    return train, val


def _unsplittable(labels: np.ndarray, counts: dict[int, int], validation: float, seed: int) -> str:
    """Why ``validation`` cannot split these labels, and which would."""
    smaller = min(counts.values())
    working = [
        v
        for v in (round(0.05 * k, 2) for k in range(1, 19))
        if smaller * v >= 1 and _stratified_split(labels, v, seed) is not None
    ]
    near = min(working, key=lambda v: abs(v - validation)) if working else None
    works = f"--validation {near:g} works, or " if near is not None else "use "
    return (
        f"--validation {validation:g} leaves too few samples to train on ({counts[1]} positive,"
        f" {counts[0]} negative; the training side needs both classes); {works}--validation 0 for no"
        " held-out accuracy (validation= in Python)"
    )


def orthogonalize(primal: np.ndarray, conditions: Sequence[np.ndarray]) -> np.ndarray:
    """``primal`` minus its projection on the span of ``conditions``, unit norm (InterFaceGAN)."""
    rest = np.asarray(primal, dtype=np.float64)
    if len(conditions):
        basis = np.stack(conditions, axis=1)  # [D, k]
        coefficients, *_ = np.linalg.lstsq(basis, rest, rcond=None)
        rest = rest - basis @ coefficients
    norm = float(np.linalg.norm(rest))
    if not norm >= 1e-6:  # NaN too
        where = (
            " lies in the span of the conditioning directions" if len(conditions) else " is zero"
        )
        raise GanencError(f"the direction{where}")
    return rest / norm


def _file_name(attribute: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", attribute).strip("._") or "attribute"


def learn_directions(
    latents: str | os.PathLike,
    labels: str | os.PathLike,
    *,
    space: str | None = None,
    attributes: str | Sequence[str] | None = None,
    condition: str | Sequence[str] | None = None,
    classifier: str = "logistic",
    C: float = 1.0,
    validation: float = 0.2,
    seed: int = 0,
) -> tuple[list[Direction], dict[str, Any]]:
    """One direction per attribute column, from latent files and a labels CSV.

    ``condition``: ``None`` (raw directions), ``"all"`` (each orthogonal to all
    other learned attributes) or a list of attribute names to be orthogonal to.
    Returns the directions and a report (matching, accuracies).
    """
    from .latents import read_latents

    _check_fit_options(classifier, C, validation, seed)  # before any file is read
    latent_set = read_latents(latents)
    table = read_labels(labels, latent_set.names)
    matching = match_names(table.names, latent_set.names)
    if not matching["pairs"]:
        raise GanencError(
            f"no label row matches a latent file by name; labels name e.g."
            f" {table.names[:5]}, latents are e.g. {latent_set.names[:5]}"
        )
    rows = [r for r, _ in matching["pairs"]]
    latent_rows = [i for _, i in matching["pairs"]]
    space = space or default_space(latent_set.latents)
    tensor = latent_features(latent_set.latents, space)[latent_rows]
    shape = tuple(tensor.shape[1:])
    features = tensor.reshape(tensor.shape[0], -1).double().numpy()
    chosen = [attributes] if isinstance(attributes, str) else list(attributes or table.columns)
    _check_once(chosen)
    unknown = [a for a in chosen if a not in table.columns]
    if unknown:
        raise ConfigError(f"no label column(s) {unknown}; the CSV has {list(table.columns)}")
    raw: dict[str, np.ndarray] = {}
    infos: dict[str, dict[str, Any]] = {}
    for attribute in chosen:
        values, rule = binarize([table.columns[attribute][r] for r in rows], attribute)
        keep = ~np.isnan(values)
        try:
            normal, info = fit_direction(
                features[keep],
                values[keep].astype(int),
                classifier=classifier,
                C=C,
                validation=validation,
                seed=seed,
            )
        except GanencError as exc:
            raise GanencError(f"attribute {attribute!r}: {exc}") from None
        info["binarized"] = rule
        info["missing_labels"] = int((~keep).sum())
        raw[attribute], infos[attribute] = normal, info
    if condition == "all":
        conditions = {a: [b for b in chosen if b != a] for a in chosen}
    elif condition:
        names = [condition] if isinstance(condition, str) else list(condition)
        missing = [n for n in names if n not in raw]
        if missing:
            raise ConfigError(f"cannot condition on {missing}: not among the learned {chosen}")
        conditions = {a: [b for b in names if b != a] for a in chosen}
    else:
        conditions = {a: [] for a in chosen}
    generator = latent_set.generator_spec()
    directions = []
    for attribute in chosen:
        vector = orthogonalize(raw[attribute], [raw[b] for b in conditions[attribute]])
        info = dict(infos[attribute])
        info["conditioned_on"] = conditions[attribute]
        info["cosine_with_raw"] = float(vector @ raw[attribute])
        metadata = {
            **info,
            "latent_shape": list(shape),
            "generator": generator,
            "synthesis_options": _synthesis_options(latent_set.records),
            "labels": str(labels),
            "latents": str(latents),
        }
        if conditions[attribute]:
            metadata["raw_direction"] = raw[attribute].tolist()
        directions.append(
            Direction(attribute, space, torch.from_numpy(vector).float().reshape(shape), metadata)
        )
    report = {
        "space": space,
        "latent_shape": list(shape),
        "matched": len(rows),
        "labels_without_latents": matching["labels_without_latents"],
        "latents_without_labels": matching["latents_without_labels"],
        "attributes": {
            d.attribute: {k: v for k, v in d.metadata.items() if k != "raw_direction"}
            for d in directions
        },
    }
    return directions, report


def _check_once(attributes: Sequence[str]) -> None:
    """Refuse an attribute named twice before its two directions collide as one file."""
    twice = sorted({a for a in attributes if attributes.count(a) > 1})
    if twice:
        raise ConfigError(f"attribute(s) {twice} given twice; name each attribute once")


def save_directions(
    directions: Sequence[Direction], report: dict[str, Any], out: str | os.PathLike
) -> list[Path]:
    """``out/<attribute>.pt`` for each direction and ``out/directions.json`` (the report).

    Every file is checked before the first is written: a bad direction leaves nothing behind.
    """
    out = check_output(out, folder=True)
    payloads = [d.payload() for d in directions]
    attributes = [d.attribute for d in directions]
    _check_once(attributes)
    names = [f"{_file_name(a)}.pt" for a in attributes]
    if len(set(names)) != len(names):
        raise ConfigError(f"attribute names {attributes} collide as file names: {names}")
    summary = dict(report)
    summary["files"] = dict(zip(attributes, names, strict=True))
    summary = plain_data(summary, "directions.json")
    paths = [torch_save(p, out / n) for p, n in zip(payloads, names, strict=True)]
    write_json(out / "directions.json", summary)  # strict JSON, whole or absent
    return paths


# -- applying -------------------------------------------------------------------------------


def parse_strengths(text: str | Sequence[float]) -> list[float]:
    """``"-3,0,3"`` -> ``[-3.0, 0.0, 3.0]``."""
    if not isinstance(text, str):
        items = _items(text)
        if items is None or not all(_real(v) for v in items):
            raise ConfigError(
                f"strengths must be text like '-3,0,3' or a list of finite numbers, not {text!r:.60}"
            )
        values = [float(v) for v in items]
    else:
        parts = [part.strip() for part in text.split(",")]
        if not all(parts):  # "1,,2" or a trailing comma: a value was left out
            raise ConfigError(f"strengths must be finite numbers separated by commas, got {text!r}")
        try:
            values = [float(part) for part in parts]
        except ValueError:
            raise ConfigError(
                f"strengths must be numbers separated by commas, got {text!r}"
            ) from None
    if not values or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"strengths must be finite numbers separated by commas, got {text!r}")
    tags = [_strength_tag(v) for v in values]  # each strength names its own file
    repeated = sorted({tag for tag in tags if tags.count(tag) > 1})
    if repeated:
        raise ConfigError(
            f"strengths {text!r} repeat {', '.join(repeated)} (to the 6 significant digits of"
            " the file names); give each strength once"
        )
    return values


def parse_layers(text: str | Sequence[int] | None, count: int) -> list[int] | None:
    """``"0-7"`` or ``"0,2,4-6"`` -> sorted layer indices below ``count``; ``None`` = all."""
    if text is None:
        return None
    if isinstance(text, str):
        chosen: set[int] = set()
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not match:
                raise ConfigError(f"layers must look like 0-7 or 0,2,4-6, got {text!r}")
            first, last = int(match.group(1)), int(match.group(2) or match.group(1))
            if last < first:
                raise ConfigError(f"layer range {part!r} runs backwards")
            if last >= count:  # checked before the range is expanded: '0-99999999999' is text
                first = max(first, count)
                missing = (
                    f"layers {first}-{last} do not" if last > first else f"layer {last} does not"
                )
                raise ConfigError(f"{missing} exist: the code has layers 0-{count - 1}")
            chosen.update(range(first, last + 1))
    elif (items := _items(text)) is not None and all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in items
    ):
        chosen = {int(v) for v in items}
    else:
        raise ConfigError(
            f"layers must be text like '0-7' or '0,2,4-6' or a list of layer numbers, not"
            f" {text!r:.60}"
        )
    if not chosen:
        raise ConfigError(f"no layers in {text!r}")
    outside = sorted(i for i in chosen if i < 0 or i >= count)
    if outside:
        raise ConfigError(f"layers {outside} do not exist: the code has layers 0-{count - 1}")
    return sorted(chosen)


def _items(value: Any) -> list[Any] | None:
    """The items of a list, tuple or array (not text), or ``None`` for anything else."""
    if isinstance(value, str | bytes):
        return None
    if isinstance(value, np.ndarray | torch.Tensor):
        value = value.tolist()  # Python numbers; a 0-d array gives one number: refused
    try:
        return list(value)
    except TypeError:
        return None


def apply_direction(
    latents: Latents,
    direction: Direction,
    strength: float,
    layers: Sequence[int] | str | None = None,
) -> Latents:
    """``latents`` moved by ``strength`` along ``direction`` (other keys unchanged).

    A direction of a per-layer space (``w``) moves every chosen layer of its layer-wise
    code (``w_plus``); a ``w_plus`` direction moves its own values of the chosen layers.
    """
    if not isinstance(direction, Direction):
        raise ConfigError(
            f"direction must be a Direction (Direction.load(path) reads a direction file), not"
            f" {type(direction).__name__}"
        )
    if not _real(strength):
        raise ConfigError(f"strength must be a finite number, not {strength!r:.60}")
    space, vector = direction.space, direction.vector.float()
    edited = {k: v.clone() for k, v in latents.items()}
    try:
        key = space_key(latents, space)
    except ConfigError:
        raise ConfigError(
            f"the direction is in space {space!r}, but the latents hold {sorted(latents)}"
        ) from None
    target = edited[key]
    delta = vector.to(target)
    if key != space:  # a per-layer direction on each layer of the layer-wise code
        if tuple(delta.shape) != tuple(target.shape[2:]):
            raise ConfigError(
                f"the direction has shape {list(delta.shape)}, the {key} layers"
                f" {list(target.shape[2:])}"
            )
        delta = delta.expand(target.shape[1], -1)
    elif tuple(delta.shape) != tuple(target.shape[1:]):
        raise ConfigError(
            f"the direction has shape {list(delta.shape)}, but latent {key!r} has"
            f" {list(target.shape[1:])}: it was learned for another generator"
        )
    chosen = parse_layers(layers, _layer_count(latents, space)) if layers is not None else None
    if chosen is not None:
        mask = torch.zeros(target.shape[1], *([1] * (target.dim() - 2)), dtype=target.dtype)
        mask[chosen] = 1
        delta = delta * mask.to(target.device)
    edited[key] = target + float(strength) * delta
    if not torch.isfinite(edited[key]).all():
        raise ConfigError(
            f"strength {strength:g} moves latent {key!r} beyond the range of its numbers;"
            " use a smaller strength (directions are unit vectors: a few units is a large edit)"
        )
    return edited


def _synthesis_options(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    for record in records:
        options = record.get("synthesis_options")
        if isinstance(options, dict):
            return options
    return {}


def _strength_tag(strength: float) -> str:
    return f"{strength:+g}"


def edit_latents(
    latents: str | os.PathLike,
    direction: str | os.PathLike | Direction,
    strengths: Sequence[float] | str,
    out: str | os.PathLike,
    *,
    layers: str | Sequence[int] | None = None,
    generator: Any = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Edited latent files and one edit strip (PNG, one image per strength) per latent file.

    ``generator``: an adapter, a spec dict ``{"gan", "checkpoint",
    "generator_options"}``, or ``None`` to use the one the latent files record.
    """
    from .devices import resolve_device
    from .images import save_grid
    from .latents import check_latents_fit, read_latents, save_latent_file

    out = check_output(out, folder=True)
    strengths = parse_strengths(strengths)
    if isinstance(direction, Direction):
        direction_source = direction.attribute
    elif isinstance(direction, str | os.PathLike):
        direction_source, direction = str(direction), Direction.load(direction)
    else:
        raise ConfigError(
            f"direction must be a direction file or a Direction, not {type(direction).__name__}"
        )
    source = read_latents(latents)
    _check_same_generator(direction, source.generator_spec(), latents)
    for strength in strengths:  # every edit checked before the generator loads or a file is written
        apply_direction(source.latents, direction, strength, layers)
    picked = None
    if layers is not None:
        picked = parse_layers(layers, _layer_count(source.latents, direction.space))
    if generator is None or isinstance(generator, dict):
        from .encoder_runs import recorded_generator

        spec = recorded_generator(
            generator or source.generator_spec() or direction.metadata.get("generator"),
            "the latent files",
        )
        generator = spec.load()
        spec_data = spec.model_dump(mode="json")
    else:
        spec_data = {"gan": generator.family}
    check_latents_fit(source.latents, generator, str(latents))
    device = resolve_device(device)
    generator = generator.to(device).freeze()
    options = _synthesis_options(source.records)
    index = []
    for position, name in enumerate(source.names):
        one = {k: v[position : position + 1] for k, v in source.latents.items()}
        batch = [apply_direction(one, direction, s, layers) for s in strengths]
        files = []
        for strength, edited in zip(strengths, batch, strict=True):
            path = save_latent_file(
                out
                / "latents"
                / f"{name}__{_file_name(direction.attribute)}_{_strength_tag(strength)}.pt",
                edited,
                image=source.records[position].get("image", name),
                gan=spec_data.get("gan"),
                generator=spec_data,
                synthesis_options=options,
                edit={
                    "source": str(source.paths[position]),
                    "attribute": direction.attribute,
                    "space": direction.space,
                    "strength": strength,
                    "layers": picked,
                },
            )
            files.append(path.relative_to(out).as_posix())
        merged = {k: torch.cat([e[k] for e in batch]).to(device) for k in batch[0]}
        with torch.no_grad():
            images = generator.synthesize(merged, **options).float().cpu()
        strip = save_grid(images, out / "strips" / f"{name}.png", nrow=len(strengths))
        index.append({"latents": name, "edited": files, "strip": strip.relative_to(out).as_posix()})
    summary = {
        "direction": direction_source,
        "attribute": direction.attribute,
        "space": direction.space,
        "strengths": strengths,
        "layers": layers if isinstance(layers, str) or layers is None else list(layers),
        "generator": spec_data,
        "edits": index,
    }
    write_json(out / "edits.json", summary)
    return summary


def _check_same_generator(
    direction: Direction, recorded: dict[str, Any] | None, latents: str | os.PathLike
) -> None:
    """Refuse a direction learned on another generator's latents than ``latents``: of equal
    shapes it would be applied without an error, and move them along a meaningless line."""
    learned = direction.metadata.get("generator")
    if not (isinstance(learned, dict) and isinstance(recorded, dict)):
        return  # one side does not say: nothing to compare
    from .encoder_runs import generator_name

    def same(key: str) -> bool:
        mine, theirs = learned.get(key) or None, recorded.get(key) or None
        if key == "gan" and isinstance(mine, str) and isinstance(theirs, str):
            return generator_name(mine) == generator_name(theirs)  # stylegan is stylegan1
        return mine == theirs

    fields = ("gan", "checkpoint", "generator_options")
    if all(same(k) for k in fields if k in learned and k in recorded):
        return
    raise GanencError(
        f"the direction {direction.attribute!r} was learned on latents of the generator"
        f" {learned}, but {latents} record {recorded}; learn a direction on these latents"
        f" ('ganenc directions --latents {latents} ...')"
    )


def _layer_count(latents: Latents, space: str) -> int:
    """How many layers ``layers`` may pick from in the latent a ``space`` direction moves; only
    a layer-wise code has them (a constant's second dimension is its channels)."""
    key = space_key(latents, space)
    if not (is_layerwise(key) and latents[key].dim() >= 3):
        raise ConfigError(
            f"--layers needs a layer-wise code (such as w_plus); latent {key!r} has no layers:"
            " leave --layers out (layers= in Python)"
        )
    return int(latents[key].shape[1])
