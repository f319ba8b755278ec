"""The paper's ablations at small scale, on real held-out emoji (issue 16, item 2).

Every arm starts from the same seed with the same budget (iterations, batch,
learning rate, encoder widths); only the ablated setting differs:

- Table 6: no attention / AT1 / AT1+AT2, with centre and with Grad-CAM boxes
  (``features:emoji-cnn``);
- Table 7: AT1+AT2 Grad-CAM with and without the SSIM term;
- Table 4: the shipped pre-trained encoder, that encoder fine-tuned on the real
  *train* split (dataset mode), per-image fine-tuning, latent optimisation from
  the average latent and the hybrid (encoder + optimisation).

Scores are PSNR/SSIM on the whole image and PSNR inside the Grad-CAM AT1 and
AT2 boxes of the *real* image, on the 298 held-out emoji (Table 4's slow arms:
a fixed subset) split into K folds: mean +- std over the folds, as the paper
reports its K-fold cross-validation.  Everything is cached under ``--work``, so
a stopped run resumes where it was; ``--work`` records what its cache was computed
with (the budget options and the sha256 of the shipped generator and encoder), and a
rerun with other settings, other data (the sha256 of its ``labels.csv``) or other shipped
networks is refused instead of mixing old arms into new tables.  Writes ``ablations.json``,
``tables.md``, one bar chart per table and the reconstruction grids to ``--out``.

    python -m benchmarks.emoji_ablations --data ../shared/data/emoji --out docs/ablations --force
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import torch

import ganenc
from ganenc import metrics
from ganenc.cropping import attention_boxes, build_cropper, crop_and_resize
from ganenc.emoji import load_split, read_labels
from ganenc.encoder_runs import encoder_file
from ganenc.files import check_output, write_json
from ganenc.images import save_grid
from ganenc.scripts import (
    check_outputs,
    one_line_errors,
    positive_float,
    positive_int,
    positive_int_list,
)
from ganenc.training.finetune import finetune
from ganenc.training.pretrain import pretrain
from ganenc.training.settings import FinetuneSettings, TrainSettings

SHIPPED_GENERATOR = "stylegan2:emoji-64"
SHIPPED_ENCODER = "encoder:stylegan2-emoji-64"
#: The options whose values the cache in ``--work`` depends on (the others only score or
#: select: --folds, --tables, --arms, --threads, --out).
CACHE_OPTIONS = (
    "iterations",
    "batch_size",
    "lr",
    "start_channels",
    "max_channels",
    "seed",
    "table4_images",
    "finetune_iterations",
    "per_image_iterations",
    "optimize_steps",
)
FINGERPRINT = "computed-with.json"
#: What goes to ``--out``: the report, its Markdown tables, one bar chart per table and the
#: reconstruction grids.  The writer takes its names from here and every one is checked
#: before any work, whichever ``--tables`` (``--tables 7`` writes ``table6.png`` too).
REPORT_FILE, TABLES_FILE = "ablations.json", "tables.md"
CHART_FILES = {table: f"table{table}.png" for table in ("6", "7", "4")}
GRID_FILES = {"6-7": "table6-7-reconstructions.png", "4": "table4-reconstructions.png"}
OUT_FILES = [REPORT_FILE, TABLES_FILE, *CHART_FILES.values(), *GRID_FILES.values()]
#: ``ganenc finetune``'s learning rate: the arm every other method is compared with.
DEFAULT_FINETUNE_LR = FinetuneSettings.model_fields["optimizer"].default_factory().lr
GRADCAM = {"classifier": "emoji-cnn"}
#: The paper's image loss without LPIPS (examples/emoji-loss.yaml).
PAPER_TERMS = {"mse": 5.0, "cosine": 3.0, "ssim": 1.0}

#: name -> (table, attention, attention weights (whole, AT1, AT2), image terms)
ARMS: dict[str, tuple[str, str, list[float], dict[str, float]]] = {
    "no attention": ("6", "none", [1.0], PAPER_TERMS),
    "AT1, centre": ("6", "center", [1.0, 5.0, 0.0], PAPER_TERMS),
    "AT1+AT2, centre": ("6", "center", [1.0, 5.0, 9.0], PAPER_TERMS),
    "AT1, Grad-CAM": ("6", "gradcam", [1.0, 5.0, 0.0], PAPER_TERMS),
    "AT1+AT2, Grad-CAM": ("6", "gradcam", [1.0, 5.0, 9.0], PAPER_TERMS),
    "AT1+AT2, Grad-CAM, without SSIM": (
        "7",
        "gradcam",
        [1.0, 5.0, 9.0],
        {"mse": 5.0, "cosine": 3.0},
    ),
}


def data_sha256(data: Path) -> str | None:
    """The sha256 of ``data/labels.csv`` (which images, which split), or ``None`` without one."""
    labels = Path(data) / "labels.csv"
    return hashlib.sha256(labels.read_bytes()).hexdigest() if labels.is_file() else None


def work_fingerprint(args: argparse.Namespace) -> dict[str, Any]:
    """What the cached arms and scores in ``--work`` depend on."""
    from ganenc.weights import weights_entry

    return {
        **{option: getattr(args, option) for option in CACHE_OPTIONS},
        "data_labels_sha256": data_sha256(args.data),
        "generator_sha256": weights_entry(SHIPPED_GENERATOR).files[0].sha256,
        "encoder_sha256": weights_entry(SHIPPED_ENCODER).files[0].sha256,
    }


def check_work(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """Refuse a ``--work`` whose cache was computed with other settings or networks."""
    wanted = work_fingerprint(args)
    path = args.work / FINGERPRINT
    with one_line_errors(parser):  # a file, or a folder that cannot be written
        check_output(args.work, folder=True, force=True, option="--work")
    if not args.work.exists() or not any(args.work.iterdir()):
        return wanted
    if not path.is_file():
        parser.error(
            f"--work {args.work} holds a cache that does not say what it was computed with;"
            " choose a new --work (or move this one away) to measure afresh"
        )
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        parser.error(f"--work: {path} is not readable ({error}); choose a new --work")
    changed = [
        f"{key} {recorded.get(key)!r} -> {value!r}"
        for key, value in wanted.items()
        if recorded.get(key) != value
    ]
    if changed:
        parser.error(
            f"--work {args.work} was computed with other settings or networks"
            f" ({'; '.join(changed)}); choose a new --work to measure these, or give the"
            " options it was computed with"
        )
    return wanted


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


# -- scoring ------------------------------------------------------------------------------------
class Scorer:
    """Per-image PSNR/SSIM of reconstructions against the real held-out images, in K folds."""

    def __init__(self, real: torch.Tensor, folds: int, seed: int = 0) -> None:
        self.real = real
        cropper = build_cropper("gradcam", dict(GRADCAM), None)
        self.boxes = attention_boxes(cropper, real)  # AT1, AT2 of the real images
        order = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))
        self.folds = [order[i::folds] for i in range(folds)]

    def per_image(self, recon: torch.Tensor, index: torch.Tensor) -> dict[str, torch.Tensor]:
        recon, real = recon.float().clamp(-1, 1), self.real[index]
        scores = {"psnr": metrics.psnr(recon, real), "ssim": metrics.ssim(recon, real)}
        for level, boxes in zip(("at1", "at2"), self.boxes, strict=True):
            crops = (crop_and_resize(recon, boxes[index]), crop_and_resize(real, boxes[index]))
            scores[f"psnr_{level}"] = metrics.psnr(*crops)
        return scores

    def summary(self, per_image: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, Any]:
        """Mean +- std over the folds (each fold's mean over its images in ``index``)."""
        position = {int(i): p for p, i in enumerate(index.tolist())}
        out: dict[str, Any] = {"images": len(index)}
        for key, values in per_image.items():
            fold_means = []
            for fold in self.folds:
                picks = [position[int(i)] for i in fold.tolist() if int(i) in position]
                if picks:
                    fold_means.append(values[picks].mean().item())
            fold_means_t = torch.tensor(fold_means)
            out[key] = {
                "mean": fold_means_t.mean().item(),
                "std": fold_means_t.std().item() if len(fold_means) > 1 else 0.0,
                "folds": fold_means,
            }
        return out


# -- the arms -----------------------------------------------------------------------------------
def train_arm(name: str, work: Path, args: argparse.Namespace) -> Path:
    """Pre-train one Table 6/7 arm (resumes a stopped one); returns its run folder."""
    _, attention, weights, terms = ARMS[name]
    out = work / "arms" / slug(name)
    if (out / "encoder.pt").is_file():
        return out
    resume = (out / "checkpoints" / "last.pt").is_file()
    if out.exists() and not resume:
        shutil.rmtree(out)  # a start that never saved: begin again
    settings = TrainSettings(
        gan="stylegan2",
        checkpoint="stylegan2:emoji-64",
        attention=attention,
        cropper_options=dict(GRADCAM) if attention == "gradcam" else {},
        encoder_options={"start_channels": args.start_channels, "max_channels": args.max_channels},
        loss={"image_terms": dict(terms), "attention_weights": list(weights)},
        batch_size=args.batch_size,
        iterations=args.iterations,
        optimizer={"lr": args.lr},
        seed=args.seed,
        checkpoint_every=50,
        image_every=max(args.iterations // 2, 1),
        log_every=25,
        val_samples=64,
        out=out,
        device="cpu",
        resume=resume,
        progress=False,
    )
    began = time.perf_counter()
    pretrain(settings)
    seconds = time.perf_counter() - began
    timing = out / "wall_seconds.json"
    previous = json.loads(timing.read_text())["seconds"] if timing.is_file() else 0.0
    timing.write_text(json.dumps({"seconds": previous + seconds}) + "\n")
    return out


def finetune_on_train(work: Path, data: Path, args: argparse.Namespace, lr: float) -> Path:
    """The shipped encoder fine-tuned on the real train split (the paper's dataset mode)."""
    default = lr == DEFAULT_FINETUNE_LR
    out = work / "table4" / ("dataset-finetune" if default else f"dataset-finetune-lr{lr:g}")
    if (out / "encoder.pt").is_file():
        return out
    folder = work / "train-images"
    if not folder.is_dir():
        rows = [r for r in read_labels(data) if r["split"] == "train"]
        folder.mkdir(parents=True)
        for row in rows:
            shutil.copyfile(data / "noto64" / row["file"], folder / row["file"])
    resume = (out / "checkpoints" / "last.pt").is_file()
    if out.exists() and not resume:
        shutil.rmtree(out)
    settings = FinetuneSettings(
        encoder=Path(encoder_file(SHIPPED_ENCODER)),
        images=folder,
        mode="dataset",
        iterations=args.finetune_iterations,
        optimizer={"lr": lr},
        batch_size=args.batch_size,
        held_out=0.0,
        seed=0,
        checkpoint_every=50,
        image_every=max(args.finetune_iterations // 2, 1),
        log_every=25,
        out=out,
        device="cpu",
        resume=resume,
        progress=False,
    )
    finetune(settings)
    return out


def encoder_scores(run: Path | str, scorer: Scorer, index: torch.Tensor) -> tuple[dict, Any]:
    inverter = ganenc.Inverter.from_encoder(run, device="cpu")
    result = inverter.invert(scorer.real[index], batch_size=32)
    per_image = scorer.per_image(result.reconstructions, index)
    summary = scorer.summary(per_image, index)
    summary["seconds_per_image"] = result.seconds_per_image
    return summary, result.reconstructions


def cached(path: Path, compute) -> dict:
    """``compute()`` once; its per-image scores and reconstructions kept in ``path``."""
    if path.is_file():
        return torch.load(path, weights_only=True)
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(value, path)
    return value


def table4(scorer: Scorer, index: torch.Tensor, work: Path, data: Path, args) -> tuple[dict, dict]:
    """Pre-trained, dataset-fine-tuned, per-image fine-tuning, optimisation, hybrid."""
    rows, recons = {}, {}
    tuned = {lr: finetune_on_train(work, data, args, lr) for lr in args.finetune_lr}
    shipped = ganenc.Inverter.from_encoder(SHIPPED_ENCODER, device="cpu")
    images = scorer.real[index]
    steps, ft_steps = args.optimize_steps, args.per_image_iterations

    def by_inverter(inverter, refine: str = "none", steps: int | None = None, batch: int = 16):
        def compute():
            result = inverter.invert(images, refine=refine, steps=steps, batch_size=batch)
            return {
                "recon": result.reconstructions,
                "seconds": torch.tensor(result.seconds_per_image),
            }

        return compute

    def by_optimisation():
        began = time.perf_counter()
        parts = []
        for start in range(0, len(images), 16):
            chunk = images[start : start + 16]
            latents, _ = shipped.optimize(
                chunk, shipped.generator.average_latents(len(chunk)), steps
            )
            with torch.no_grad():
                parts.append(shipped.synthesize(latents).float())
        seconds = (time.perf_counter() - began) / len(images)
        return {"recon": torch.cat(parts), "seconds": torch.tensor(seconds)}

    def by_average_latent():
        with torch.no_grad():
            recon = shipped.synthesize(shipped.generator.average_latents(len(images))).float()
        return {"recon": recon, "seconds": torch.tensor(0.0)}

    plan = {
        "average latent (no inversion: the floor)": by_average_latent,
        "pre-trained encoder": by_inverter(shipped),
        **{
            f"dataset fine-tuned encoder ({args.finetune_iterations} its on the train split"
            + ("" if lr == DEFAULT_FINETUNE_LR else f", lr {lr:g}")
            + ")": by_inverter(ganenc.Inverter.from_encoder(run, device="cpu"))
            for lr, run in tuned.items()
        },
        f"per-image fine-tuning ({ft_steps} its)": by_inverter(shipped, "finetune", ft_steps, 1),
        f"optimisation from the average latent ({steps} steps)": by_optimisation,
        f"hybrid: encoder + {steps} optimisation steps": by_inverter(shipped, "optimize", steps),
    }
    for name, compute in plan.items():
        print(f"table 4: {name}", flush=True)
        value = cached(work / "table4" / f"{slug(name)}.pt", compute)
        summary = scorer.summary(scorer.per_image(value["recon"], index), index)
        summary["seconds_per_image"] = float(value["seconds"])
        rows[name], recons[name] = summary, value["recon"]
    return rows, recons


# -- pictures -----------------------------------------------------------------------------------
def bar_chart(rows: dict[str, dict], path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    names = list(rows)
    figure = Figure(figsize=(8, 0.6 + 0.45 * len(names)))
    axes = figure.subplots(1, 2, sharey=True)
    for ax, key, label in (
        (axes[0], "psnr", "PSNR (dB)"),
        (axes[1], "psnr_at2", "PSNR in AT2 (dB)"),
    ):
        means = [rows[n][key]["mean"] for n in names]
        stds = [rows[n][key]["std"] for n in names]
        ax.barh(range(len(names)), means, xerr=stds, color="#4c72b0", capsize=3)
        low = min(m - s for m, s in zip(means, stds, strict=True))
        ax.set_xlim(max(0.0, low - 1.0), max(m + s for m, s in zip(means, stds, strict=True)) + 0.5)
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(names)), names, fontsize=8)
    axes[0].invert_yaxis()
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def recon_grid(real: torch.Tensor, recons: dict[str, torch.Tensor], path: Path, n: int = 8) -> None:
    """Rows: the real images, then one row per arm (order of ``recons``)."""
    rows = [real[:n]] + [r[:n].float().clamp(-1, 1) for r in recons.values()]
    save_grid(torch.cat(rows), path, nrow=n)


def paired_difference(row: dict, base: dict, key: str) -> tuple[float, float]:
    """Mean +- std over the folds of ``row - base``: both arms scored on the same images,
    so the fold-to-fold spread of the images themselves cancels."""
    diff = torch.tensor(row[key]["folds"]) - torch.tensor(base[key]["folds"])
    return diff.mean().item(), (diff.std().item() if len(diff) > 1 else 0.0)


def markdown(report: dict[str, Any]) -> str:
    """The tables of ``report`` as Markdown (the numbers docs/ablations.md quotes)."""
    titles = {"6": "Table 6", "7": "Table 7", "4": "Table 4"}
    lines = []
    for table, rows in report["tables"].items():
        lines += [
            f"### {titles[table]}",
            "",
            "| arm | PSNR (dB) | SSIM | PSNR in AT1 | PSNR in AT2 | s/image | images"
            " | Δ PSNR vs first row (paired) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        first = next(iter(rows.values()))
        for name, row in rows.items():
            cells = [f"{row[k]['mean']:.2f} ± {row[k]['std']:.2f}" for k in ("psnr",)]
            cells.append(f"{row['ssim']['mean']:.3f} ± {row['ssim']['std']:.3f}")
            cells += [
                f"{row[k]['mean']:.2f} ± {row[k]['std']:.2f}" for k in ("psnr_at1", "psnr_at2")
            ]
            cells += [f"{row['seconds_per_image']:.3g}", str(row["images"])]
            delta = paired_difference(row, first, "psnr")
            cells.append("-" if row is first else f"{delta[0]:+.2f} ± {delta[1]:.2f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # Deliberately alike: argparse option blocks of different scripts (own options, defaults)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/emoji"))
    parser.add_argument("--out", type=Path, default=Path("docs/ablations"))
    parser.add_argument("--work", type=Path, default=Path("runs/ablations"))
    parser.add_argument(
        "--iterations", type=positive_int, default=500, help="every pre-training arm"
    )
    parser.add_argument("--batch-size", type=positive_int, default=8)
    parser.add_argument("--lr", type=positive_float, default=0.0015)
    parser.add_argument("--start-channels", type=positive_int, default=32)
    parser.add_argument("--max-channels", type=positive_int, default=256)
    parser.add_argument("--folds", type=positive_int, default=5, help="at least 2")
    parser.add_argument("--table4-images", type=positive_int, default=40)
    parser.add_argument("--finetune-iterations", type=positive_int, default=300)
    parser.add_argument(
        "--finetune-lr",
        type=positive_float,
        action="append",
        help="dataset fine-tuning learning rate(s); one row each (default: ganenc finetune's)",
    )
    parser.add_argument("--per-image-iterations", type=positive_int, default=100)
    parser.add_argument("--optimize-steps", type=positive_int, default=200)
    parser.add_argument("--tables", type=positive_int_list, default="6,7,4", help="of 4, 6, 7")
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument(
        "--seed", type=int, default=0, help="pre-training seed of every arm (use a new --work)"
    )
    parser.add_argument("--arms", default="", help="only these arms (slugs, comma-separated)")
    parser.add_argument("--force", action="store_true", help="replace the tables in --out")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.finetune_lr = args.finetune_lr or [DEFAULT_FINETUNE_LR]
    tables = {str(table) for table in args.tables}
    if args.folds < 2:
        parser.error(f"--folds must be at least 2 (the tables report a spread), got {args.folds}")
    if not tables <= {"4", "6", "7"}:
        parser.error(f"--tables takes 4, 6 and 7, got {args.tables}")
    unknown = set(filter(None, args.arms.split(","))) - {slug(name) for name in ARMS}
    if unknown:
        known = ", ".join(slug(name) for name in ARMS)
        parser.error(f"--arms: unknown {', '.join(sorted(unknown))}; the arms are {known}")
    check_outputs(parser, args.out, OUT_FILES, args.force)
    fingerprint = check_work(parser, args)
    torch.set_num_threads(args.threads)
    with one_line_errors(parser):
        heldout = load_split(args.data, "heldout")
    write_json(args.work / FINGERPRINT, fingerprint)

    real = heldout.images.float() / 127.5 - 1
    scorer = Scorer(real, args.folds)
    everything = torch.arange(len(real))
    report: dict[str, Any] = {
        "heldout_images": len(real),
        "folds": args.folds,
        "budget": {
            "iterations": args.iterations,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "encoder_channels": [args.start_channels, args.max_channels],
            "seed": args.seed,
        },
        "machine": f"{platform.machine()}, {args.threads} thread(s), CPU",
        "tables": {},
    }
    recons: dict[str, torch.Tensor] = {}
    for name, (table, *_rest) in ARMS.items():
        if table not in tables and not (table == "6" and "7" in tables and "Grad-CAM" in name):
            continue
        if args.arms and slug(name) not in args.arms.split(","):
            continue
        print(f"table {table}: {name}", flush=True)
        run = train_arm(name, args.work, args)
        summary, recon = encoder_scores(run, scorer, everything)
        timing = run / "wall_seconds.json"
        summary["training_seconds"] = json.loads(timing.read_text())["seconds"]
        summary["generated_val"] = json.loads((run / "val.json").read_text())["encoder"]
        report["tables"].setdefault(table, {})[name] = summary
        recons[name] = recon
    if "7" in report["tables"] and "AT1+AT2, Grad-CAM" in report["tables"].get("6", {}):
        report["tables"]["7"] = {
            "AT1+AT2, Grad-CAM, with SSIM": report["tables"]["6"]["AT1+AT2, Grad-CAM"],
            **report["tables"]["7"],
        }
    table4_recons: dict[str, torch.Tensor] = {}
    if "4" in tables:
        subset = torch.randperm(len(real), generator=torch.Generator().manual_seed(1))
        subset = subset[: args.table4_images].sort().values
        rows, table4_recons = table4(scorer, subset, args.work, args.data, args)
        report["tables"]["4"] = rows
        report["table4_images"] = subset.tolist()
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / REPORT_FILE, report)
    (args.out / TABLES_FILE).write_text(markdown(report))
    titles = {
        "6": "Table 6: attention levels and boxes (held-out real emoji, K-fold mean ± std)",
        "7": "Table 7: the SSIM term",
        "4": "Table 4: inversion methods (held-out subset)",
    }
    for table, rows in report["tables"].items():
        bar_chart(rows, args.out / CHART_FILES[table], titles[table])
        print(f"\nTable {table}")
        for name, row in rows.items():
            print(
                f"  {name:62s} PSNR {row['psnr']['mean']:6.2f} ± {row['psnr']['std']:.2f}"
                f"  SSIM {row['ssim']['mean']:.3f} ± {row['ssim']['std']:.3f}"
                f"  AT1 {row['psnr_at1']['mean']:6.2f}  AT2 {row['psnr_at2']['mean']:6.2f}"
                f"  {row['seconds_per_image']:.3f} s/image"
            )
    if recons:
        recon_grid(real, recons, args.out / GRID_FILES["6-7"])
    if table4_recons:
        recon_grid(real[report["table4_images"]], table4_recons, args.out / GRID_FILES["4"])


if __name__ == "__main__":
    main()
