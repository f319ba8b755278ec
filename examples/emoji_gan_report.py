"""Evidence for ``stylegan2:emoji-64``: samples (also group by group), nearest neighbours, FID/KID,
group histogram.

Distances are measured in the feature space of the emoji classifier
(``features:emoji-cnn``, pooled 160-d features), not Inception's: no ImageNet
network can be downloaded here, and an emoji classifier knows emoji.  Two
references are measured the same way: the train split against the held-out
split (the floor: what a perfect generator of the train distribution scores)
and the untrained generator (the ceiling).  FID and KID come from torchmetrics
with the classifier as its ``feature`` network.

    python examples/emoji_gan_report.py --data ../shared/data/emoji --out docs/emoji --force

``--curve STEP=FILE ...`` measures only the generator's FID/KID (the same samples and
held-out set) for several exports of one run, and plots them against the training step
next to the floor: the run's measured curve (``curve.json``, ``curve.png``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

import ganenc
from ganenc.emoji import GROUPS, load_split
from ganenc.emoji.classifier import EmojiFeatures, normalise
from ganenc.errors import GanencError
from ganenc.features import build_feature_network
from ganenc.files import write_json
from ganenc.images import save_grid
from ganenc.scripts import check_outputs, one_line_errors, positive_int

REPORT_FILES = [
    "samples-psi1.png",
    "samples-psi0.7.png",
    "nearest-train.png",
    "samples-by-group.png",
    "group-histogram.png",
    "report.json",
]
CURVE_FILES = ["curve.json", "curve.png"]
#: Fewer samples than this make FID/KID meaningless (the outside-People FID halves them);
#: under ``FEW_SAMPLES`` they are only comparable at the same ``--samples``.
MIN_SAMPLES, FEW_SAMPLES = 20, 500
_STARTED = time.perf_counter()


def log(message: str) -> None:
    """A progress line on stderr (the report is minutes of work on a CPU)."""
    print(f"[{time.perf_counter() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


@torch.no_grad()
def sample_uint8(generator, n: int, seed: int, truncation: float = 1.0) -> torch.Tensor:
    """uint8 [n, 3, R, R] samples of an adapter (truncation towards the average latent)."""
    images = []
    for start in range(0, n, 100):
        count = min(100, n - start)
        latents = generator.sample_latents(count, seed=seed + start)
        out = generator.synthesize(latents, truncation=truncation)
        images.append(((out.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8))
    return torch.cat(images)


def distances(features: EmojiFeatures, fake: torch.Tensor, real: torch.Tensor) -> dict:
    """FID and KID (mean, std) between two uint8 image sets in the classifier's features."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    subset = min(100, len(fake), len(real))
    fid = FrechetInceptionDistance(feature=features, normalize=False)
    kid = KernelInceptionDistance(feature=features, subsets=50, subset_size=subset)
    for metric in (fid, kid):
        for chunk in real.split(500):
            metric.update(chunk, real=True)
        for chunk in fake.split(500):
            metric.update(chunk, real=False)
    torch.manual_seed(0)  # KID's random subsets: the same draw every run
    kid_mean, kid_std = kid.compute()
    return {"fid": fid.compute().item(), "kid": kid_mean.item(), "kid_std": kid_std.item()}


@torch.no_grad()
def predicted_groups(network, images: torch.Tensor) -> torch.Tensor:
    """The classifier's group index for each uint8 image."""
    return torch.cat([network(normalise(chunk)).argmax(1) for chunk in images.split(500)])


def group_histogram(groups: torch.Tensor) -> list[float]:
    """The share of each group among predicted group indices."""
    counts = torch.bincount(groups, minlength=len(GROUPS)).float()
    return (counts / counts.sum()).tolist()


def outside_people(images: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """The images whose group is not People & Body (59% of the train split, mostly skin
    tones): the hearts, animals, food, objects, symbols and flags a generator finds hardest."""
    return images[groups != GROUPS.index("People & Body")]


def sample_distances(features: EmojiFeatures, network, fake: torch.Tensor, heldout) -> dict:
    """FID/KID of samples against the held-out split, and FID of the samples the classifier
    puts outside People & Body against the held-out images outside it.

    Only the first half as many of those as there are samples are used: FID grows as the
    sample count shrinks, so a generator that draws more of them must not score better
    for that alone (every generator measured here draws more than half outside People).
    """
    run = distances(features, fake, heldout.images)
    outside = outside_people(fake, predicted_groups(network, fake))
    run["outside_people_fraction"] = len(outside) / len(fake)
    outside = outside[: len(fake) // 2]
    run["fid_outside_people"] = distances(
        features, outside, outside_people(heldout.images, heldout.groups)
    )["fid"]
    run["outside_people_samples"] = len(outside)
    return run


def nearest_grid(samples: torch.Tensor, train: torch.Tensor, path: Path, k: int = 3) -> None:
    """Each row: a sample, then its ``k`` nearest training images (pixel L2)."""
    flat_train = train.flatten(1).float()
    rows = []
    for sample in samples:
        distance = (flat_train - sample.flatten().float()).pow(2).sum(1)
        nearest = distance.topk(k, largest=False).indices
        rows.append(torch.cat([sample[None], train[nearest]]))
    grid = torch.cat(rows).float() / 127.5 - 1
    save_grid(grid, path, nrow=k + 1)


def group_rows(
    samples: torch.Tensor, groups: torch.Tensor, heldout, per_row: int = 8, real: int = 3
) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """Per Unicode group: ``real`` held-out emoji of it and the FIRST ``per_row`` samples the
    classifier puts in it (in seed order, not the most confident: what the generator draws
    when it draws that group, unpicked)."""
    return [
        (name, heldout.images[heldout.groups == index][:real], samples[groups == index][:per_row])
        for index, name in enumerate(GROUPS)
    ]


def plot_group_rows(rows: list, path: Path, per_row: int = 8, real: int = 3) -> None:
    """One labelled row per group: held-out real | samples (blank where fewer were drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchvision.utils import make_grid

    blank = torch.full((1, 3, 64, 64), 255, dtype=torch.uint8)
    figure, axes = plt.subplots(
        len(rows), 1, figsize=(0.75 * (real + per_row) + 1.6, 0.8 * len(rows)), squeeze=False
    )
    for axis, (name, real_images, samples) in zip(axes[:, 0], rows, strict=True):
        padded = [
            torch.cat([images, blank.expand(count - len(images), -1, -1, -1)])
            for images, count in ((real_images, real), (samples, per_row))
        ]
        row = torch.cat([padded[0], blank, padded[1]])  # a blank column between the two
        axis.imshow(
            make_grid(row, nrow=len(row), padding=2, pad_value=255).permute(1, 2, 0).numpy()
        )
        axis.set_xticks([])
        axis.set_yticks([])
        label = name if len(samples) == per_row else f"{name}\n(only {len(samples)} drawn)"
        axis.set_ylabel(label, rotation=0, ha="right", va="center")
    axes[0, 0].set_title(
        f"held-out real (first {real})  |  first samples the classifier puts in the group",
        fontsize=9,
    )
    figure.tight_layout(pad=0.2)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)


def plot_histogram(histograms: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.6))
    width = 0.8 / len(histograms)
    for i, (label, values) in enumerate(histograms.items()):
        ax.bar([x + i * width for x in range(len(GROUPS))], values, width, label=label)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(GROUPS))])
    ax.set_xticklabels([g.replace(" & ", "\n& ") for g in GROUPS], fontsize=8)
    ax.set_ylabel("fraction of images")
    ax.set_title("emoji-cnn's predicted group")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curve(points: list[dict], floors: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    steps = [p["step"] for p in points]
    lines = [("fid", "all samples", "C0"), ("fid_outside_people", "outside People & Body", "C1")]
    for key, what, colour in lines:
        if key not in points[0]:
            continue  # a curve.json measured before the outside-People FID existed
        ax.errorbar(
            steps,
            [p[key] for p in points],
            yerr=[p.get(f"{key}_std", 0.0) for p in points],
            fmt="o-",
            color=colour,
            capsize=3,
            label=f"{what} vs held-out, mean ± std over sample seeds",
        )
        ax.axhline(
            floors[key],
            color=colour,
            linestyle="--",
            alpha=0.6,
            label=f"floor, {what}: train vs held-out ({floors[key]:.2f})",
        )
        for point in points:
            ax.annotate(
                f"{point[key]:.2f}",
                (point["step"], point[key]),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=7,
            )
    # Deliberately alike: matplotlib axis labelling, as in the frontier plot (other axes)
    ax.set_xlabel("training step")
    ax.set_ylabel("FID, emoji-cnn features")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_curve(values: list[str]) -> list[tuple[int, str]]:
    points = []
    for value in values:
        step, sep, file = value.partition("=")
        if not sep or not step.isdigit() or not Path(file).is_file():
            raise GanencError(f"--curve wants STEP=FILE with an existing file, got {value!r}")
        points.append((int(step), file))
    return sorted(points)


def load_curve(values: list[str]) -> list[tuple[int, str, object]]:
    """``(step, file, generator)`` of each ``--curve`` point, every export loaded (a bad one
    is a :class:`GanencError` naming its file, raised before anything is written)."""
    points = []
    for step, file in parse_curve(values):
        try:
            generator = ganenc.load_generator("stylegan2", file)
        except GanencError as error:
            raise GanencError(f"--curve {step}={file}: {error}") from None
        points.append((step, file, generator.freeze()))
    return points


def curve(args, points, features: EmojiFeatures, network, train, heldout) -> None:
    """FID/KID of several exports of one run (``load_curve``'s), against the training step."""
    measured = []
    for step, file, generator in points:
        log(f"step {step}: sampling and measuring {args.curve_seeds} seed(s)")
        # FID of 2,000 samples against 298 images moves with the sample seed: repeat it
        runs = [
            sample_distances(
                features, network, sample_uint8(generator, args.samples, seed), heldout
            )
            for seed in range(args.seed, args.seed + args.curve_seeds)
        ]
        point = {"step": step, "checkpoint": file}
        for key in ("fid", "fid_outside_people"):
            values = torch.tensor([run[key] for run in runs])
            point[key] = values.mean().item()
            point[f"{key}_std"] = values.std().item() if len(runs) > 1 else 0.0
        measured.append({**point, "per_seed": runs})
        print(
            f"step {step}: FID {point['fid']:.2f} ± {point['fid_std']:.2f}, outside People &"
            f" Body {point['fid_outside_people']:.2f} ± {point['fid_outside_people_std']:.2f}"
            f" ({len(runs)} seeds)",
            flush=True,
        )
    log("the floor: train against held-out")
    floor = distances(features, train.images, heldout.images)
    floor["fid_outside_people"] = distances(
        features,
        outside_people(train.images, train.groups),
        outside_people(heldout.images, heldout.groups),
    )["fid"]
    seeds = list(range(args.seed, args.seed + args.curve_seeds))
    report = {
        "samples": args.samples,
        "seeds": seeds,
        "feature_weights": args.feature_weights or "features:emoji-cnn (shipped)",
        "points": measured,
        "floor": floor,
    }
    write_json(args.out / "curve.json", report)
    plot_curve(measured, floor, args.out / "curve.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/emoji"))
    parser.add_argument("--checkpoint", default="stylegan2:emoji-64")
    parser.add_argument("--out", type=Path, default=Path("docs/emoji"))
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--curve", nargs="+", metavar="STEP=FILE", help="only the FID curve")
    parser.add_argument(
        "--curve-seeds", type=positive_int, default=3, help="sample seeds per point"
    )
    parser.add_argument(
        "--feature-weights",
        help="another emoji-cnn weights file to measure in (a judge classifier trained with"
        " another seed, for generators trained against the shipped one); default: the shipped",
    )
    parser.add_argument("--force", action="store_true", help="replace the report in --out")
    args = parser.parse_args()
    if args.samples < MIN_SAMPLES:
        parser.error(
            f"--samples must be at least {MIN_SAMPLES} (FID/KID of fewer mean nothing; the"
            f" report's numbers use 2000), got {args.samples}"
        )
    if args.samples < FEW_SAMPLES:
        print(
            f"warning: FID/KID from {args.samples} samples are noisy and biased upwards: compare"
            " them only with numbers measured at the same --samples (the report's use 2000)",
            file=sys.stderr,
        )
    check_outputs(parser, args.out, CURVE_FILES if args.curve else REPORT_FILES, args.force)
    torch.set_num_threads(args.threads)
    started = time.time()
    log("loading the data, the classifier and the generator(s)")
    with one_line_errors(parser):  # everything that can fail on bad input, before writing
        points = load_curve(args.curve) if args.curve else None
        train_split = load_split(args.data, "train")
        heldout_split = load_split(args.data, "heldout")
        network = build_feature_network("emoji-cnn", args.feature_weights)
        generator = None if args.curve else ganenc.load_generator("stylegan2", args.checkpoint)
    features = EmojiFeatures(network)
    args.out.mkdir(parents=True, exist_ok=True)
    if points is not None:
        curve(args, points, features, network, train_split, heldout_split)
        return
    train, heldout = train_split.images, heldout_split.images

    generator = generator.freeze()
    untrained = ganenc.load_generator(  # the same architecture, untrained (seed 0)
        "stylegan2",
        None,
        resolution=64,
        z_dim=128,
        w_dim=128,
        mapping_layers=4,
        channel_base=512,
        channel_max=256,
    ).freeze()

    log(f"sampling {args.samples} images")
    fake = sample_uint8(generator, args.samples, args.seed)
    save_grid(fake[:64].float() / 127.5 - 1, args.out / "samples-psi1.png", nrow=8)
    save_grid(
        sample_uint8(generator, 64, args.seed, truncation=0.7).float() / 127.5 - 1,
        args.out / "samples-psi0.7.png",
        nrow=8,
    )
    nearest_grid(fake[:8], train, args.out / "nearest-train.png")
    fake_groups = predicted_groups(network, fake)
    random_fake = sample_uint8(untrained, args.samples, args.seed)

    log("FID/KID: the generator, the floor (train) and the ceiling (untrained)")
    report = {
        "checkpoint": args.checkpoint,
        "samples": args.samples,
        "heldout_images": len(heldout),
        "feature_space": "features:emoji-cnn pooled features (160-d)",
        "generator_vs_heldout": distances(features, fake, heldout),
        "train_vs_heldout (floor)": distances(features, train, heldout),
        "untrained_generator_vs_heldout (ceiling)": distances(features, random_fake, heldout),
    }
    histograms = {
        "held-out real": group_histogram(predicted_groups(network, heldout)),
        "train real": group_histogram(predicted_groups(network, train)),
        "stylegan2:emoji-64 samples": group_histogram(fake_groups),
    }
    report["predicted_group_histogram"] = {
        label: dict(zip(GROUPS, values, strict=True)) for label, values in histograms.items()
    }
    log("plots")
    try:
        plot_histogram(histograms, args.out / "group-histogram.png")
        plot_group_rows(
            group_rows(fake, fake_groups, heldout_split), args.out / "samples-by-group.png"
        )
    except ImportError:
        print("matplotlib is not installed: no plots (the numbers are in report.json)")
    report["seconds"] = round(time.time() - started, 1)
    report["machine"] = (
        f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    write_json(args.out / "report.json", report)
    print(json.dumps({k: v for k, v in report.items() if "histogram" not in k}, indent=2))


if __name__ == "__main__":
    main()
