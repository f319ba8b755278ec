"""``ganenc finetune``: fine-tune a pre-trained encoder on a folder of real images."""

from __future__ import annotations

import click

from ganenc.training.settings import FinetuneSettings

from .options import (
    SEED,
    FiniteFloat,
    config_option,
    crop_option,
    default_of,
    generator_option,
    given_options,
    given_run_options,
    loss_option,
    run_options,
    run_settings,
    speed_options,
    step_options,
)


@click.command("finetune")
@click.option("--encoder", type=click.Path(), help="Pre-training run directory or encoder file.")
@click.option("--images", type=click.Path(), help="Folder of real images (PNG/JPEG, any size).")
@click.option(
    "--mode",
    type=click.Choice(["dataset", "per-image"]),
    help="One encoder for all images (default) or the paper's per-image tuning.",
)
@click.option("--gan", help="Override the generator family recorded with the encoder.")
@click.option(
    "--checkpoint",
    help="Override the generator checkpoint (file or weights tag) recorded with the encoder.",
)
@click.option("--attention", help="Cropper (default: the one used in pre-training).")
# Deliberately alike: option blocks of two commands, each with its own help texts
@step_options(
    FinetuneSettings,
    iterations="Steps (per image in per-image mode; default {}).",
    batch_size="Images per step in dataset mode (default {}).",
    lr="Adam learning rate (default {}, the reference's).",
)
@click.option(
    "--held-out",
    type=FiniteFloat(),
    help=f"Fraction of images held out in dataset mode (default {default_of(FinetuneSettings, 'held_out')}).",
)
@click.option("--seed", type=SEED, help="Seed of the split and the batch order.")
@generator_option(help="Generator option overriding the ones the encoder records (repeatable).")
@crop_option(help="Cropper option (repeatable).")
@loss_option()
@speed_options
@run_options(FinetuneSettings, "finetune")
@config_option
def finetune_command(
    config_file, gen_options, crop_options, loss_options, lr, feature_weights, **given
):
    """Fine-tune an encoder on real images (latent cycle and L2 regularisation).

    \b
    Example:
      ganenc finetune --encoder runs/train-stylegan2-... --images photos/ --mode per-image
    """
    from ganenc.training.finetune import finetune

    given_run_options(given, gen_options, crop_options, lr, loss_options, feature_weights)
    settings = run_settings(FinetuneSettings, config_file, "finetune settings", given)
    if settings.mode == "per-image":
        dataset_only = ("held_out", "batch_size", "checkpoint_every", "image_every", "log_every")
        if unused := given_options(*dataset_only):
            raise click.UsageError(
                f"{', '.join(unused)} shape(s) dataset fine-tuning; --mode per-image fine-tunes"
                " each image on its own (no split, batches or checkpoints): drop them"
            )
    run = finetune(settings)
    click.echo(f"run directory: {run}")
    skipped = run / "skipped.json"
    if skipped.is_file():  # as invert says it: unreadable files are not silently left out
        import json

        count = len(json.loads(skipped.read_text(encoding="utf-8")))
        click.echo(f"skipped {count} unreadable file(s): see {skipped}")
