"""Evaluation of reconstructions: PSNR, SSIM, MSE, LPIPS and FID, by maintained libraries.

- PSNR, SSIM, MSE: :mod:`ganenc.metrics` (torchmetrics), images mapped to [0, 1].
- LPIPS: the ``lpips`` package (v0.1, VGG), per image, backbone weights found by
  :mod:`ganenc.features` (explicit path, torch's hub cache, or a download).
- FID: torchmetrics' ``FrechetInceptionDistance`` on the 2048-d pool
  features of torch-fidelity's InceptionV3 (TensorFlow's FID network, the
  ``2015-12-05`` graph; TF-compatible bilinear resize to 299, no antialias, as
  the FID numbers of the literature).  Its weights (``features:inception-fid``)
  come from an explicit path, torch's hub cache (pytorch-fid's or
  torch-fidelity's file name), or a download unless ``GANENC_OFFLINE=1``;
  otherwise a clear :class:`~ganenc.WeightsNotFoundError`.  FID is refused below
  ``fid_min_images`` images (default 50): with few images it measures its own
  bias more than the reconstructions.

Folders are paired by file name without extension (``a.jpg`` with
``a.png``); any name found in only one folder is an error that lists them,
never a silent mismatch.  An unreadable real image is skipped and listed, as
``--encoder`` mode skips it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, GanencError

METRICS = ("psnr", "ssim", "mse", "lpips", "fid")
PER_IMAGE_METRICS = ("psnr", "ssim", "mse", "lpips")
#: Higher is better for these; lower for the rest (shown in the table).
HIGHER_IS_BETTER = {"psnr", "ssim"}
DEFAULT_FID_MIN_IMAGES = 50
#: The feature network of :mod:`ganenc.features` whose weights FID uses.
FID_WEIGHTS = "inception-fid"


# -- which metrics a job computes -----------------------------------------------------------


@dataclass
class MetricPlan:
    """The metrics a job computes and, for each one it leaves out, why.

    ``not_computed`` maps a metric to a one-line reason (for instance the
    missing weights file and where to put it); JSON outputs write such a
    metric as ``null`` next to that reason, never as NaN.  ``lpips_term`` is
    the LPIPS metric when LPIPS is computed.
    """

    computed: tuple[str, ...]
    not_computed: dict[str, str] = field(default_factory=dict)
    lpips_term: Any = None

    def fill(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` with ``None`` for every metric left out (the JSON ``null``)."""
        return {**values, **{name: None for name in self.not_computed if name not in values}}


def plan_metrics(
    metrics: Iterable[str] | None = None,
    *,
    offered: Sequence[str] = METRICS,
    feature_weights: str | os.PathLike | None = None,
    fid_weights: str | os.PathLike | None = None,
    image_count: int | None = None,
    fid_min_images: int = DEFAULT_FID_MIN_IMAGES,
) -> MetricPlan:
    """Decide which metrics to compute: the one rule of every command that reports metrics.

    ``metrics=None`` asks for every ``offered`` metric as *optional*: each is
    computed when it can be, offline (no download is attempted), else left
    out with its reason.  An explicit list makes each named metric
    *required*: what cannot be computed is an error (a :class:`GanencError`
    naming the missing file; weights may be downloaded unless
    ``GANENC_OFFLINE=1``).  PSNR, SSIM and MSE need nothing; LPIPS needs
    VGG16 weights (random ones only when asked for explicitly: they make the
    number meaningless); FID needs the FID Inception weights, torch-fidelity
    and at least ``fid_min_images`` images (``image_count``).
    """
    explicit = metrics is not None
    if metrics is None:
        wanted = list(offered)
    else:
        wanted = [m.strip().lower() for m in metrics if m.strip()]
        unknown = sorted(set(wanted) - set(offered))
        if unknown or not wanted:
            raise ConfigError(f"unknown metric(s) {unknown}; choose from {list(offered)}")
    plan = MetricPlan(computed=())
    computed = []
    for name in dict.fromkeys(wanted):
        reason = None
        if name == "lpips":
            plan.lpips_term, reason = _lpips_or_reason(feature_weights, explicit)
        elif name == "fid":
            reason = _fid_reason(fid_weights, image_count, fid_min_images, explicit)
        if reason is None:
            computed.append(name)
        else:
            plan.not_computed[name] = reason
    plan.computed = tuple(computed)
    return plan


def _lpips_or_reason(
    feature_weights: str | os.PathLike | None, required: bool
) -> tuple[Any, str | None]:
    from .features import is_random

    if required:  # errors propagate; random weights were asked for twice, so they warn only
        return lpips_metric(feature_weights), None
    if is_random(feature_weights):
        return None, (
            "LPIPS not computed: the feature weights are random (the smoke-test opt-in), so"
            " LPIPS would mean nothing; give the real VGG16 file with --feature-weights PATH"
        )
    missing = _missing_weights("vgg16", feature_weights, "--feature-weights")
    if missing:
        return None, f"LPIPS not computed: {missing}"
    try:
        return lpips_metric(feature_weights), None
    except GanencError as exc:  # a file that is there but does not load
        return None, f"LPIPS not computed: {exc}"


def _missing_weights(network: str, path: str | os.PathLike | None, option: str) -> str | None:
    """What is missing for ``network``'s weights (found offline: ``None``), and where it goes."""
    from .features import feature_weights_entry, hub_checkpoint_dir, resolve_weights_file

    try:
        resolve_weights_file(network, path, download=False)
        return None
    except GanencError as exc:
        if path is not None:  # the file given is not there: that message says so
            return str(exc)
    entry = feature_weights_entry(network)
    return (
        f"needs the file {entry.filename} in {hub_checkpoint_dir()} (torch's hub cache): run"
        f" 'ganenc weights download features:{entry.name}' or save {entry.url} there,"
        f" or give the file with {option} PATH"
    )


def _fid_reason(
    weights: str | os.PathLike | None, count: int | None, min_images: int, required: bool
) -> str | None:
    """Why FID cannot be computed (``None`` when it can); raised instead when ``required``."""
    from .features import is_random

    too_few = _fid_count_problem(count, min_images) if count is not None else None
    if required:  # the first problem is the error; the weights may be downloaded
        if too_few:
            raise ConfigError(too_few)
        fid_weights_file(weights)
        return None
    problems = []
    if is_random(weights):
        problems.append("random Inception weights make FID meaningless; give the real file")
    elif missing := _missing_weights(FID_WEIGHTS, weights, "--fid-weights"):
        problems.append(missing)
    if importlib.util.find_spec("torch_fidelity") is None:
        problems.append("needs torch-fidelity (pip install torch-fidelity)")
    if too_few:
        problems.append(f"needs >= {max(min_images, 2)} images, got {count} (--fid-min-images)")
    return "FID not computed: " + "; ".join(problems) if problems else None


def _fid_count_problem(count: int, min_images: int) -> str | None:
    """Why ``count`` images are too few for FID, or ``None``."""
    if count >= max(min_images, 2):
        return None
    return (
        f"FID refused: {count} image(s), fewer than the minimum of {max(min_images, 2)}."
        " FID from few images is dominated by its bias (thousands are usual; the paper's"
        " folds have 150); evaluate more images or lower --fid-min-images knowingly"
    )


# -- per-image metrics -----------------------------------------------------------------------


def reconstruction_metrics(
    prediction: Any, target: Any, plan: MetricPlan | None = None
) -> dict[str, float | None]:
    """Mean metrics of a batch as ``plan`` decides (default PSNR, SSIM, MSE); left out: ``None``.

    ``plan``: see :func:`validation_metric_plan` (training's held-out metrics).
    """
    import torch

    with torch.no_grad():
        rows = per_image_metrics(prediction, target, plan.lpips_term if plan else None)
    return mean_metrics(rows, plan)


def mean_metrics(
    rows: Sequence[dict[str, float]], plan: MetricPlan | None = None
) -> dict[str, float | None]:
    """The mean of every column of per-image ``rows``; with ``plan``, left-out metrics as ``None``."""
    means = {name: stats["mean"] for name, stats in summarize(rows).items()}
    return plan.fill(means) if plan is not None else means


def validation_metric_plan(feature_weights: str | None) -> MetricPlan:
    """Which held-out metrics a training run reports: all it can offline, the rest with why not."""
    return plan_metrics(offered=PER_IMAGE_METRICS, feature_weights=feature_weights)


def lpips_or_reason(feature_weights: str | None) -> tuple[Any, str | None]:
    """An LPIPS metric with real VGG16 weights (never downloaded here), or ``(None, why not)``.

    Kept for callers of the old name; :func:`plan_metrics` decides it.
    """
    plan = validation_metric_plan(feature_weights)
    return plan.lpips_term, plan.not_computed.get("lpips")


def lpips_metric(feature_weights: str | None = None) -> Any:
    """The LPIPS (VGG, v0.1) metric; raises a clear error when its weights cannot be found."""
    from .registry import create

    return create("loss", "lpips", feature_weights=feature_weights)


def lpips_per_image(term: Any, prediction: Any, target: Any) -> Any:
    """LPIPS of each pair ``[N]`` (the ``lpips`` network without the batch mean)."""
    import torch

    with torch.no_grad():
        model = getattr(term, "model", None)
        if model is not None:
            return model(prediction.float(), target.float()).flatten()
        return torch.stack(
            [term(prediction[i : i + 1], target[i : i + 1]) for i in range(prediction.shape[0])]
        )


def per_image_metrics(
    prediction: Any, target: Any, lpips_term: Any = None, device: Any = "cpu", batch_size: int = 16
) -> list[dict[str, float]]:
    """PSNR, SSIM, MSE (and LPIPS with a term) of every pair of ``[N, 3, H, W]`` in [-1, 1]."""
    from . import metrics

    if prediction.shape != target.shape:
        raise ConfigError(
            f"cannot compare images of shapes {list(prediction.shape)} and {list(target.shape)}"
        )
    if lpips_term is not None:
        lpips_term = lpips_term.to(device)
    rows: list[dict[str, float]] = []
    for start in range(0, prediction.shape[0], batch_size):
        p = prediction[start : start + batch_size].to(device)
        t = target[start : start + batch_size].to(device)
        values = {
            "psnr": metrics.psnr(p, t),
            "ssim": metrics.ssim(p, t),
            "mse": metrics.mse(p, t),
        }
        if lpips_term is not None:
            values["lpips"] = lpips_per_image(lpips_term, p, t)
        for i in range(p.shape[0]):
            rows.append({k: float(v[i]) for k, v in values.items()})
    return rows


def summarize(rows: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean, sample standard deviation (ddof 1; 0 for one value) and count of every column."""
    summary: dict[str, dict[str, float]] = {}
    for key in rows[0] if rows else []:
        summary[key] = mean_std([row[key] for row in rows])
    return summary


def mean_std(values: Iterable[float]) -> dict[str, float]:
    """``{"mean", "std", "n"}``; infinite values (PSNR of identical images) give an infinite mean."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    if any(math.isinf(v) for v in values):
        finite = all(math.isinf(v) and v > 0 for v in values)
        return {"mean": float("inf"), "std": 0.0 if finite else float("nan"), "n": n}
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "n": n}


# -- FID -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _weights_only_loads() -> Iterator[None]:
    """torch-fidelity loads its weights with ``weights_only=False``: force the safe loader."""
    previous = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = previous


def fid_weights_file(path: str | os.PathLike | None = None, download: bool | None = None) -> Path:
    """The FID Inception weights: ``path``, else torch's hub cache, else a download."""
    from .features import resolve_weights_file

    return resolve_weights_file(FID_WEIGHTS, path, download=download)


def fid_metric(weights: str | os.PathLike | None = None, device: Any = "cpu") -> Any:
    """torchmetrics' ``FrechetInceptionDistance`` on the 2048-d pool features of the FID Inception.

    The network is torch-fidelity's port of TensorFlow's FID Inception (TF-1.x
    compatible bilinear resize to 299), built by :mod:`ganenc.features` from
    checked weights; ``weights="random"`` is refused.
    """
    import torch
    from torch import nn

    from .features import build_feature_network, is_random

    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError as exc:  # pragma: no cover - torchmetrics is a dependency
        raise GanencError(f"FID needs torchmetrics: {exc}") from None
    if is_random(weights):
        raise ConfigError("FID with random Inception weights means nothing; give the real file")
    with _weights_only_loads():
        network = build_feature_network(FID_WEIGHTS, weights)

    class PoolFeatures(nn.Module):
        """The extractor's 2048-d pool features as one tensor (what torchmetrics expects)."""

        num_features = 2048

        def __init__(self, extractor: nn.Module) -> None:
            super().__init__()
            self.extractor = extractor

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            output = self.extractor(images)
            features = output[0] if isinstance(output, tuple | list) else output
            return features.reshape(images.shape[0], -1)

    return FrechetInceptionDistance(feature=PoolFeatures(network), normalize=False).to(device)


def fid(
    real: Any,
    fake: Any,
    *,
    weights: str | os.PathLike | None = None,
    device: Any = "cpu",
    min_images: int = DEFAULT_FID_MIN_IMAGES,
    batch_size: int = 32,
) -> float:
    """FID between two image sets ``[N, 3, H, W]`` in [-1, 1] (sizes may differ).

    Refused (``ConfigError``) when either set has fewer than ``min_images``.
    """
    too_few = _fid_count_problem(min(real.shape[0], fake.shape[0]), min_images)
    if too_few:
        raise ConfigError(too_few)
    from .images import to_uint8

    metric = fid_metric(weights, device)
    for images, is_real in ((real, True), (fake, False)):
        for start in range(0, images.shape[0], batch_size):
            chunk = to_uint8(images[start : start + batch_size]).permute(0, 3, 1, 2)
            metric.update(chunk.to(device), real=is_real)
    value = float(metric.compute())
    return 0.0 if value <= 0 else value  # identical sets give -0.0 or -1e-6 by rounding


# -- folders ---------------------------------------------------------------------------------


def image_files(folder: str | os.PathLike) -> tuple[dict[str, Path], dict[str, str]]:
    """Images of ``folder`` by name without extension (two files of one stem: an error), and
    the unreadable files with their reason (picked as every command picks a folder's images)."""
    from .data import image_candidates, no_readable_images

    paths, unreadable = image_candidates(folder)
    found: dict[str, Path] = {}
    clashes: list[str] = []
    for path in paths:
        if path.stem in found:
            clashes.append(f"{found[path.stem].name} / {path.name}")
            continue
        found[path.stem] = path
    if clashes:
        raise GanencError(
            f"{folder}: files that differ only by extension cannot be paired: {'; '.join(clashes)}"
        )
    if not found:
        raise no_readable_images(folder, unreadable)
    return found, unreadable


def pair_folders(
    real: str | os.PathLike, recon: str | os.PathLike, skipped: dict[str, str] | None = None
) -> list[tuple[str, Path, Path]]:
    """``(name, real file, reconstruction file)`` matched by name without extension.

    Every name must be in both folders; otherwise a :class:`GanencError` lists
    the unmatched names of each folder.  An unreadable real image is skipped (as
    ``--encoder`` mode skips it, so the folds of both modes are drawn over the same
    images), with its reconstruction if there is one; an unreadable reconstruction of a
    readable image is an error.  ``skipped`` (a dict) receives the files left out.
    """
    (real_files, real_bad), (recon_files, recon_bad) = image_files(real), image_files(recon)
    bad_stems = {Path(name).stem for name in real_bad}
    recon_files = {stem: path for stem, path in recon_files.items() if stem not in bad_stems}
    broken = [reason for name, reason in recon_bad.items() if Path(name).stem in real_files]
    if broken:
        raise GanencError("unreadable image(s): " + "; ".join(broken))
    only_real = sorted(set(real_files) - set(recon_files))
    only_recon = sorted(set(recon_files) - set(real_files))
    # Deliberately alike: a two-sided mismatch message; other sides and wording than genforce's keys
    if only_real or only_recon:
        parts = []
        if only_real:
            parts.append(f"{len(only_real)} only in {real}: {_listing(only_real)}")
        if only_recon:
            parts.append(f"{len(only_recon)} only in {recon}: {_listing(only_recon)}")
        raise GanencError(
            "cannot pair the folders by file name (extension ignored): " + "; ".join(parts)
        )
    if skipped is not None:
        skipped.update(real_bad)
        extra = {n: r for n, r in recon_bad.items() if Path(n).stem not in real_files}
        skipped.update({str(Path(recon) / n): r for n, r in extra.items()})
    ordered = sorted(real_files, key=lambda stem: real_files[stem].name)  # as a folder reads
    return [(stem, real_files[stem], recon_files[stem]) for stem in ordered]


def _listing(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" ... (+{len(names) - limit} more)" if len(names) > limit else "")


def load_pairs(
    pairs: Sequence[tuple[str, Path, Path]], resolution: int | None = None
) -> tuple[Any, Any, int]:
    """Both images of every pair at one square ``resolution`` (default: the first reconstruction's).

    Two :class:`~ganenc.data.ImageSet`: decoded up front when small, else batch by batch
    as the metrics and FID go through them.  A real image whose pixels do not decode is
    left out with its reconstruction (listed in the real set's ``skipped``), as ``--encoder``
    mode leaves it out; a reconstruction that does not decode is an error.
    """
    from .data import ImageSet
    from .geometry import MAX_RESOLUTION
    from .images import image_size

    if not pairs:
        raise GanencError("no image pairs to compare")
    if resolution is None:
        width, height = image_size(pairs[0][2])
        resolution = min(width, height)
        if not 8 <= resolution <= MAX_RESOLUTION:
            raise GanencError(
                f"the reconstruction {pairs[0][2]} is {width} x {height}; images are compared"
                f" at its shorter side, which must be 8 to {MAX_RESOLUTION}: give --resolution"
            )
    real = ImageSet.from_paths([p[1] for p in pairs], resolution, strict=False)
    kept = set(real.paths)
    recon = ImageSet.from_paths([p[2] for p in pairs if p[1] in kept], resolution)
    return real, recon, resolution


# -- reports ---------------------------------------------------------------------------------


@dataclass
class EvaluationReport:
    """Per-image rows, their summary, FID, and (with folds) one summary per fold.

    ``not_computed`` maps each metric left out to its reason (see
    :func:`plan_metrics`); such a metric is ``None`` in ``summary`` (``fid``:
    ``None``) and JSON ``null``.
    """

    names: list[str]
    rows: list[dict[str, float]]
    summary: dict[str, dict[str, float] | None]
    fid: float | None = None
    notes: list[str] = field(default_factory=list)
    folds: list[dict[str, Any]] | None = None
    fold_summary: dict[str, dict[str, float]] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    not_computed: dict[str, str] = field(default_factory=dict)

    # Deliberately alike: each record class lists its own fields as plain data
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (NaN as ``None``, infinities as ``"inf"``)."""
        from .files import json_safe

        data = {
            **self.details,
            "summary": self.summary,
            "fid": self.fid,
            "not_computed": self.not_computed,
            "notes": self.notes,
            "images": [{"image": n, **row} for n, row in zip(self.names, self.rows, strict=True)],
        }
        if self.folds is not None:
            data["folds"] = self.folds
            data["fold_summary"] = self.fold_summary
        return json_safe(data)


def evaluate_images(
    real: Any,
    recon: Any,
    names: Sequence[str],
    *,
    metrics: Iterable[str] | None = None,
    feature_weights: str | None = None,
    fid_weights: str | os.PathLike | None = None,
    fid_min_images: int = DEFAULT_FID_MIN_IMAGES,
    device: Any = "cpu",
    folds: Sequence[Sequence[int]] | None = None,
    plan: MetricPlan | None = None,
) -> EvaluationReport:
    """Metrics of ``recon`` against ``real`` (``[N, 3, R, R]`` in [-1, 1]), optionally per fold.

    ``metrics=None`` computes every metric that can be computed offline and
    records the others as not computed with the reason (missing weights, too
    few images for FID); metrics named explicitly are computed or an error
    (:func:`plan_metrics`).  ``plan``: one decided already (before a slow step).
    ``names``: one per pair, in order.
    """
    names = _checked_pairs(real, recon, names)
    if plan is None:
        plan = plan_metrics(
            metrics,
            feature_weights=feature_weights,
            fid_weights=fid_weights,
            image_count=min(real.shape[0], recon.shape[0]),
            fid_min_images=fid_min_images,
        )
    rows = per_image_metrics(recon, real, plan.lpips_term, device)
    rows = [{k: v for k, v in row.items() if k in plan.computed} for row in rows]
    summary: dict[str, dict[str, float] | None] = dict(summarize(rows))
    summary.update({m: None for m in plan.not_computed if m in PER_IMAGE_METRICS})
    report = EvaluationReport(names, rows, summary, notes=[], not_computed=dict(plan.not_computed))

    def fid_of(indices: Sequence[int] | None) -> float:
        selected_real = real if indices is None else _subset(real, indices)
        selected_recon = recon if indices is None else _subset(recon, indices)
        return fid(
            selected_real,
            selected_recon,
            weights=fid_weights,
            device=device,
            min_images=fid_min_images,
        )

    computes_fid = "fid" in plan.computed
    if computes_fid:
        report.fid = fid_of(None)
    if folds is not None:
        report.folds = []
        fid_per_fold = computes_fid and min(len(m) for m in folds) >= max(fid_min_images, 2)
        for index, members in enumerate(folds):
            fold_rows = [rows[i] for i in members]
            entry: dict[str, Any] = {"fold": index, "images": len(members)}
            entry.update({k: v["mean"] for k, v in summarize(fold_rows).items()})
            if fid_per_fold:
                entry["fid"] = fid_of(members)
            report.folds.append(entry)
        keys = [k for k in report.folds[0] if k not in {"fold", "images"}]
        report.fold_summary = {k: mean_std(f[k] for f in report.folds) for k in keys}
        if computes_fid and not fid_per_fold:
            report.notes.append(
                f"FID per fold needs folds of >= {max(fid_min_images, 2)} images; FID is given"
                " over all images instead"
            )
    return report


def _checked_pairs(real: Any, recon: Any, names: Sequence[str]) -> list[str]:
    """The names of the pairs, once both image sets are what
    :func:`~ganenc.data.check_image_tensor` takes (finite, [-1, 1]) and of one shape.

    NaN targets made every metric silently ``None``, and a short list of names misnamed rows.
    """
    from .data import check_image_tensor

    shapes = [getattr(images, "shape", None) for images in (real, recon)]
    sides = [int(shape[-1]) for shape in shapes if shape is not None and len(shape) == 4]
    if not sides:
        raise ConfigError(
            "real and recon must be image tensors [N, 3, R, R] in [-1, 1], not"
            f" {type(real).__name__} and {type(recon).__name__}"
        )
    for what, images in (("real", real), ("recon", recon)):
        try:
            check_image_tensor(images, sides[0])
        except ConfigError as exc:
            raise ConfigError(f"{what}: {exc}") from None
    if real.shape[0] != recon.shape[0]:
        raise ConfigError(
            f"{real.shape[0]} real images but {recon.shape[0]} reconstructions; give one"
            " reconstruction per image"
        )
    listed = list(names) if isinstance(names, Iterable) and not isinstance(names, str) else None
    if listed is None or not all(isinstance(name, str) for name in listed):
        raise ConfigError("names must be a list of image names (str), one per pair")
    if len(listed) != real.shape[0]:
        raise ConfigError(f"{len(listed)} names for {real.shape[0]} image pairs; give one each")
    return listed


def _subset(images: Any, indices: Sequence[int]) -> Any:
    """``images[indices]``; an :class:`~ganenc.data.ImageSet` stays one (decoded as it goes)."""
    return images.subset(indices) if hasattr(images, "subset") else images[list(indices)]


def evaluate_folders(
    real: str | os.PathLike,
    recon: str | os.PathLike,
    *,
    resolution: int | None = None,
    folds: int | None = None,
    seed: int = 0,
    **options: Any,
) -> EvaluationReport:
    """Pair two folders by name (an error lists unmatched names) and evaluate the pairs.

    ``folds``: K random folds as in :func:`evaluate_encoder`, drawn over the pairs in the
    order of the real files' names, so ``ganenc invert`` then this gives the folds (and,
    but for the 8-bit reconstructions, the numbers) of ``eval --encoder``.
    """
    skipped: dict[str, str] = {}
    pairs = pair_folders(real, recon, skipped)
    real_images, recon_images, resolution = load_pairs(pairs, resolution)
    skipped.update(real_images.skipped)
    count = len(real_images)
    fold_indices = kfold_indices(count, folds, seed) if folds else None
    report = evaluate_images(
        real_images, recon_images, real_images.names, folds=fold_indices, **options
    )
    report.details = {
        "mode": "pairs",
        "real": str(real),
        "recon": str(recon),
        "resolution": resolution,
        "pairs": count,
        "folds": folds,
        "seed": seed,
        "skipped": skipped,
    }
    _note_skipped(report, skipped)
    cropped = _not_square(recon_images.paths)
    if cropped:
        report.notes.append(
            f"{len(cropped)} reconstruction(s) are not square (e.g. {cropped[0].name}): their"
            " centre square was compared"
        )
    return report


def _not_square(paths: Sequence[Path]) -> list[Path]:
    """The images of ``paths`` that are not square (read from their headers)."""
    from .images import image_size

    return [path for path in paths if len(set(image_size(path))) > 1]


def _note_skipped(report: EvaluationReport, skipped: dict[str, str]) -> None:
    """The note of files left out (their reasons are in the report's ``skipped``)."""
    if skipped:
        report.notes.append(f"{len(skipped)} unreadable file(s) skipped: {_listing(list(skipped))}")


def kfold_indices(count: int, folds: int, seed: int = 0) -> list[list[int]]:
    """``folds`` disjoint random folds covering ``range(count)`` (sizes differ by at most one)."""
    import torch

    if folds < 2:
        raise ConfigError(f"--folds must be >= 2, got {folds}")
    if folds > count:
        raise ConfigError(f"--folds {folds} needs at least {folds} images, got {count}")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).tolist()
    return [sorted(order[k::folds]) for k in range(folds)]


def evaluate_encoder(
    inverter: Any,
    images: str | os.PathLike,
    *,
    folds: int | None = None,
    seed: int = 0,
    refine: str = "none",
    steps: int | None = None,
    batch_size: int = 8,
    progress: bool = False,
    **options: Any,
) -> EvaluationReport:
    """Invert a folder and evaluate; with ``folds``, mean ± std over K random folds.

    Each image is inverted on its own (encoder pass, optionally refined), so a
    fold's numbers do not depend on the other folds: the folds measure how
    much the metrics vary between subsets, as the paper's Table 2.
    """
    from .data import ImageSet

    folder = ImageSet(images, inverter.generator.resolution)  # large folders: decoded as used
    fold_indices = kfold_indices(len(folder.names), folds, seed) if folds else None
    plan = plan_metrics(  # before inverting: a metric asked for but impossible fails now
        options.pop("metrics", None),
        feature_weights=options.pop("feature_weights", None),
        fid_weights=options.get("fid_weights"),
        image_count=len(folder.names),
        fid_min_images=options.get("fid_min_images", DEFAULT_FID_MIN_IMAGES),
    )
    from .inversion import invert_with_progress

    result = invert_with_progress(
        inverter,
        folder,
        refine=refine,
        steps=steps,
        batch_size=batch_size,
        progress=progress,
    )
    report = evaluate_images(
        folder,
        result.reconstructions,
        folder.names,
        device=inverter.device,
        folds=fold_indices,
        plan=plan,
        **options,
    )
    report.details = {
        "mode": "encoder",
        "encoder": inverter.encoder_path,
        "images": str(images),
        "refine": result.refine,
        "steps": result.steps,
        "count": len(folder.names),
        "folds": folds,
        "seed": seed,
        "seconds_per_image": result.seconds_per_image,
        "skipped": folder.skipped,
    }
    _note_skipped(report, folder.skipped)
    return report


def _format(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if math.isnan(value):
        return "nan"
    return f"{value:.{digits}f}"


def render_report(report: EvaluationReport, console: Any = None, notes: Any = None) -> None:
    """Print the report as rich tables (summary, then folds when there are any) on ``console``
    (default stdout), and its notes on ``notes`` (default stderr).

    ``↑``/``↓`` and ``±`` become ``(higher)``/``(lower)`` and ``+/-`` on a console whose
    encoding cannot show them (``PYTHONIOENCODING=ascii``).
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from .progress import fitting, literal, stderr_console

    console = console or Console()
    notes = notes or stderr_console()
    plus_minus = fitting(console, "±", "+/-")
    higher, lower = fitting(console, "↑", "(higher)"), fitting(console, "↓", "(lower)")
    better = {key: higher if key in HIGHER_IS_BETTER else lower for key in METRICS}
    table = Table(title=f"Reconstruction metrics ({len(report.names)} images)")
    table.add_column("metric", overflow="fold")
    table.add_column(f"mean {plus_minus} std", justify="right", overflow="fold")
    table.add_column("n", justify="right", overflow="fold")
    source = report.fold_summary if report.fold_summary else report.summary
    for key, stats in source.items():
        if stats is None:
            continue
        spread = f"{_format(stats['mean'])} {plus_minus} {_format(stats['std'])}"
        table.add_row(f"{key.upper()} {better[key]}", spread, str(int(stats["n"])))
    if report.fid is not None and not (report.fold_summary and "fid" in report.fold_summary):
        table.add_row(
            f"FID {better['fid']} (all images)", _format(report.fid), str(len(report.names))
        )
    for key in report.not_computed:
        table.add_row(f"{key.upper()} {better[key]}", "not computed (see below)", "-")
    if report.fold_summary:
        table.caption = f"mean {plus_minus} std over {len(report.folds or [])} folds"
    console.print(table)
    if report.folds:
        folds = Table(title="Folds")
        keys = [k for k in report.folds[0] if k != "fold"]
        folds.add_column("fold", justify="right", overflow="fold")
        for key in keys:
            folds.add_column(key, justify="right", overflow="fold")
        for entry in report.folds:
            folds.add_row(
                str(entry["fold"]),
                *[str(entry[k]) if k == "images" else _format(entry.get(k)) for k in keys],
            )
        console.print(folds)
    for note in [*report.not_computed.values(), *report.notes]:
        notes.print(Text.assemble(("note:", "yellow"), " ", literal(notes, note)))
