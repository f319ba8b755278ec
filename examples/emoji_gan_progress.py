"""Draw the emoji GAN's progress: its EMA generator on the same fixed latents, step by step.

``examples/train_emoji_gan.py`` writes ``samples/step-NNNNNN.png`` (an 8-wide grid of the EMA
generator on fixed latents) every ``--sample-every`` steps; this script stacks the first rows
of chosen steps, one labelled band per step, so a reader sees the same latents mature.
``RUN:STEP`` takes a band from another run (its grids use the same fixed latents), to
compare two recipes continued from one state.

    python examples/emoji_gan_progress.py runs/emoji-gan --steps 1000 5000 11500 21000 \
        --out docs/emoji/gan-progress.png --force
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ganenc.errors import GanencError  # noqa: E402
from ganenc.images import open_image  # noqa: E402
from ganenc.scripts import check_outputs, one_line_errors, positive_int  # noqa: E402

TILE = 64
PAD = 2  # torchvision's save_grid default padding


def first_rows(path: Path, rows: int):
    """The first ``rows`` rows (PIL image) of a sample grid written by the training script."""
    grid = open_image(path)
    height = PAD + rows * (TILE + PAD)
    if height > grid.height:
        raise GanencError(
            f"{path} holds {(grid.height - PAD) // (TILE + PAD)} rows; ask for at most that many"
            " with --rows"
        )
    return grid.crop((0, 0, grid.width, height))


def band_spec(text: str) -> tuple[Path | None, int]:
    """``STEP`` (of the run given first) or ``RUN:STEP`` (another run resumed from the same
    state, whose grids use the same fixed latents: two recipes side by side)."""
    run, _, step = text.rpartition(":")
    if not step.isdigit():
        raise argparse.ArgumentTypeError(f"want STEP or RUN:STEP, got {text!r}")
    return (Path(run) if run else None), int(step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the training run's --out folder")
    parser.add_argument(
        "--steps",
        type=band_spec,
        nargs="+",
        required=True,
        help="STEP of the run, or RUN:STEP of another run (the same fixed latents)",
    )
    parser.add_argument("--rows", type=positive_int, default=2, help="rows of 8 latents per step")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    args = parser.parse_args()
    paths = [(run or args.run) / "samples" / f"step-{step:06d}.png" for run, step in args.steps]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no sample grid at {', '.join(missing)}; pick steps the run saved")
    if args.out.resolve() in {p.resolve() for p in paths}:
        parser.error(f"--out {args.out} is one of the sample grids it reads; choose another")
    check_outputs(parser, args.out.parent, [args.out.name], args.force)
    with one_line_errors(parser):
        bands = [first_rows(p, args.rows) for p in paths]
    figure, axes = plt.subplots(
        len(bands), 1, figsize=(6.2, 1.55 * args.rows * len(bands) / 2), squeeze=False
    )
    for axis, band, (run, step) in zip(axes[:, 0], bands, args.steps, strict=True):
        axis.imshow(band)
        axis.set_xticks([])
        axis.set_yticks([])
        label = f"step {step:,}" + (f"\n{run.name}" if run else "")
        axis.set_ylabel(label, rotation=0, ha="right", va="center")
    figure.tight_layout(pad=0.2)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(args.out, dpi=110, bbox_inches="tight")
    except OSError as error:
        parser.error(f"cannot write {args.out}: {error.strerror or error}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
