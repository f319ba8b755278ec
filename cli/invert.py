"""``ganenc invert``: invert a folder of images with a trained encoder (optionally refined)."""

from __future__ import annotations

from typing import Any

import click

from ganenc.training.settings import REFINE_MODES, RefinementSettings

from .options import (
    FiniteFloat,
    crop_option,
    default_of,
    device_option,
    generator_option,
    loss_option,
    parse_key_values,
)


def generator_override_options(function):
    """``--gan``, ``--checkpoint`` and ``-O`` options that override what the encoder records."""
    function = generator_option(help="Generator option overriding the recorded ones (repeatable).")(
        function
    )
    function = click.option(
        "--checkpoint", help="Generator checkpoint overriding the one the encoder records."
    )(function)
    function = click.option(
        "--gan", help="Generator family overriding the one the encoder records."
    )(function)
    return function


def refinement_options(function):
    """Options of the per-image refinement shared by ``invert`` and ``eval``."""
    options = [
        click.option(
            "--refine",
            type=click.Choice(REFINE_MODES),
            default="none",
            show_default=True,
            help="none: encoder only; optimize: latent optimisation from the encoder's output"
            " (hybrid); finetune: the paper's per-image encoder fine-tuning.",
        ),
        click.option(
            "--steps",
            type=click.IntRange(min=1),
            help="Refinement steps per image (default"
            f" {default_of(RefinementSettings, 'optimize_steps')} for optimize,"
            f" {default_of(RefinementSettings, 'finetune_steps')} for finetune).",
        ),
        click.option(
            "--lr",
            type=FiniteFloat(min=0, min_open=True, max=1),
            help="Adam learning rate of the refinement (default"
            f" {default_of(RefinementSettings, 'optimize_lr')} optimize,"
            f" {default_of(RefinementSettings, 'finetune_lr')} finetune).",
        ),
        click.option(
            "--anchor-weight",
            type=FiniteFloat(min=0, max=1e6),
            default=0.0,
            help="optimize: weight of a penalty keeping latents near the encoder's estimate.",
        ),
        click.option(
            "--loss-term",
            "loss_terms",
            multiple=True,
            metavar="NAME=WEIGHT",
            help="Image loss of the refinement, replacing the training run's (repeatable),"
            " e.g. --loss-term mse=1 --loss-term lpips=1.",
        ),
        click.option(
            "--attention", help="Cropper of the refinement (default: the training run's)."
        ),
        crop_option(help="Cropper option of the refinement, replacing the run's (repeatable)."),
        loss_option(),
        click.option(
            "--batch-size",
            type=click.IntRange(min=1),
            default=8,
            show_default=True,
            help="Images per encoder pass and per optimisation batch.",
        ),
        click.option(
            "--feature-weights",
            help="VGG16 weights file for LPIPS (loss and metric) and Grad-CAM.",
        ),
        device_option(),
        click.option(
            "--no-progress", "progress", flag_value=False, default=True, help="No progress bar."
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return generator_override_options(function)


def build_inverter(
    encoder: str,
    *,
    gan: str | None,
    checkpoint: str | None,
    gen_options: tuple[str, ...],
    refine: str,
    lr: float | None,
    anchor_weight: float,
    loss_terms: tuple[str, ...],
    loss_options: tuple[str, ...],
    attention: str | None,
    crop_options: tuple[str, ...],
    feature_weights: str | None,
    device: str,
    steps: int | None = None,
) -> Any:
    """An :class:`~ganenc.inversion.Inverter` from the command-line options.

    Refinement options without a refinement are refused, not ignored.
    """
    unused = [
        option
        for option, given, used_by in (
            ("--steps", steps is not None, ("optimize", "finetune")),
            ("--lr", lr is not None, ("optimize", "finetune")),
            ("--anchor-weight", anchor_weight != 0, ("optimize",)),
            ("--loss-term", bool(loss_terms), ("optimize", "finetune")),
            ("--loss-option", bool(loss_options), ("optimize", "finetune")),
            ("--attention", attention is not None, ("optimize", "finetune")),
            ("--crop-option", bool(crop_options), ("optimize", "finetune")),
        )
        if given and refine not in used_by
    ]
    if unused and refine == "none":
        raise click.UsageError(
            f"{', '.join(unused)} only change(s) a refinement, and --refine is none:"
            " add --refine optimize or finetune, or drop them"
        )
    if unused:  # only --anchor-weight is one refinement's
        raise click.UsageError(
            f"{', '.join(unused)} only change(s) --refine optimize (it keeps latents near the"
            f" encoder's; {refine} fine-tunes the encoder): drop it, or use --refine optimize"
        )
    from ganenc.encoder_runs import EncoderRun
    from ganenc.inversion import Inverter

    loss = parse_key_values(loss_options, "--loss-option")
    if loss_terms:
        loss["image_terms"] = parse_key_values(loss_terms, "--loss-term", names=True)
    run = EncoderRun.open(
        encoder,
        gan=gan,
        checkpoint=checkpoint,
        generator_options=parse_key_values(gen_options, "-O/--option") or None,
        loss=loss or None,
        attention=attention,
        cropper_options=parse_key_values(crop_options, "--crop-option") or None,
        feature_weights=feature_weights,
    )
    options: dict[str, Any] = {"anchor_weight": anchor_weight}
    if lr is not None:
        options["finetune_lr" if refine == "finetune" else "optimize_lr"] = lr
    return Inverter.from_run(run, device=device, **options)


@click.command("invert")
@click.option(
    "--encoder", required=True, type=click.Path(), help="Training run directory or encoder file."
)
@click.option("--images", required=True, type=click.Path(file_okay=False), help="Folder of images.")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="New output folder (latents, reconstructions, grid, metrics); with --resume, the"
    " unfinished one.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted inversion in --out (same options): finished images are kept.",
)
@refinement_options
def invert_command(
    encoder, images, out, resume, refine, steps, batch_size, feature_weights, progress, **options
):
    """Invert every image of a folder: latents, reconstructions, a grid and metrics.

    \b
    Writes to --out:
      latents/<name>.pt          one latent file per image (ganenc-latents/1)
      index.json                 images, files, settings, time per image, mean metrics
      reconstructions/<name>.png
      grid.png                   original | reconstruction pairs
      metrics.csv                PSNR, SSIM, MSE (LPIPS with VGG16 weights), seconds
      (a metric not computed is null in index.json, its reason under not_computed)
    Images are read and written 64 at a time (a refinement: a batch, finetune: one image);
    an interrupted run continues with --resume.
    \b
    Example:
      ganenc invert --encoder runs/train-stylegan2-... --images photos/ --out inverted/ \\
          --refine optimize --steps 200
    """
    import shlex
    import sys
    from pathlib import Path

    from ganenc.inversion import UNFINISHED_FILE, invert_folder

    inverter = build_inverter(
        encoder, refine=refine, feature_weights=feature_weights, steps=steps, **options
    )
    try:
        index = invert_folder(
            inverter,
            images,
            out,
            refine=refine,
            steps=steps,
            batch_size=batch_size,
            feature_weights=feature_weights,
            progress=progress,
            resume=resume,
        )
    except KeyboardInterrupt:
        if not (Path(out) / UNFINISHED_FILE).is_file():
            raise
        from ganenc.errors import run_interrupted

        again = shlex.join(a for a in sys.argv[1:] if a != "--resume")
        raise run_interrupted(f"; the finished images are in {out}", f"{again} --resume") from None
    count = len(index["images"])
    click.echo(
        f"inverted {count} image(s) on {index['device']} ({refine}"
        + (f", {index['steps']} steps" if refine != "none" else "")
        + f"): {index['seconds_per_image']:.4f} s per image"
        f" (encoder {index['encoder_seconds_per_image']:.4f} s,"
        f" {'' if refine == 'none' else 'refinement and '}rendering"
        f" {index['refine_seconds_per_image']:.4f} s)"
    )
    means = ", ".join(
        f"{name.upper()} {stats['mean']:.4f}"
        for name, stats in index["metrics"].items()
        if stats is not None
    )
    click.echo(f"mean {means}")
    for reason in index["not_computed"].values():
        click.echo(f"note: {reason}", err=True)
    if index["skipped"]:
        click.echo(
            f"skipped {len(index['skipped'])} unreadable file(s): see {Path(out) / 'index.json'}",
            err=True,
        )
    click.echo(f"output: {out}")
