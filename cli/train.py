"""``ganenc train``: self-supervised pre-training of an encoder for any registered GAN."""

from __future__ import annotations

import click

from ganenc.training.settings import TrainSettings

from .options import (
    SEED,
    FiniteFloat,
    config_option,
    crop_option,
    default_of,
    encoder_option,
    generator_option,
    given_run_options,
    loss_option,
    parse_key_values,
    run_options,
    run_settings,
    speed_options,
    step_options,
)


@click.command("train")
@click.option("--gan", help="Generator family (see 'ganenc list --kind generator').")
@click.option(
    "--attention",
    help="Cropper for AT1/AT2 (center, gradcam, ... or none;"
    f" default {default_of(TrainSettings, 'attention')}).",
)
@click.option(
    "--checkpoint",
    help="Generator checkpoint file, weights tag (e.g. stylegan2:ffhq-1024), or 'random'.",
)
@click.option("--resolution", type=int, help="Resolution of a random generator.")
@generator_option(help="Generator option, e.g. -O channel_max=64 (repeatable).")
@encoder_option(help="Encoder option (repeatable).")
@crop_option(help="Cropper option (repeatable).")
@loss_option()
# Deliberately alike: option blocks of two commands, each with its own help texts
@step_options(
    TrainSettings,
    iterations="Training steps (default {}, the reference's).",
    batch_size="Images per step and process (default {}).",
    lr="Adam learning rate (default {}).",
)
@click.option(
    "--truncation",
    type=FiniteFloat(),
    help="Truncation psi of the training images (family default).",
)
@click.option("--truncation-layers", type=int, help="Truncate only the first N layers.")
@click.option("--seed", type=SEED, help="Seed of the batch order and initialisation.")
@click.option(
    "--val-samples",
    type=int,
    help=f"Held-out samples for val.json (default {default_of(TrainSettings, 'val_samples')}).",
)
@run_options(TrainSettings, "train")
@speed_options
@config_option
def train_command(
    config_file,
    gen_options,
    encoder_options,
    crop_options,
    loss_options,
    resolution,
    lr,
    feature_weights,
    **given,
):
    """Pre-train an encoder on images the generator synthesises (self-supervised).

    \b
    Example:
      ganenc train --gan stylegan2 --checkpoint stylegan2-ffhq-config-f.pt --attention center
    """
    from ganenc.training.pretrain import pretrain

    given_run_options(given, gen_options, crop_options, lr, loss_options, feature_weights)
    if resolution is not None:
        given["generator_options"] = {
            **(given["generator_options"] or {}),
            "resolution": resolution,
        }
    given["encoder_options"] = parse_key_values(encoder_options, "--encoder-option") or None
    settings = run_settings(TrainSettings, config_file, "train settings", given)
    run = pretrain(settings)
    click.echo(f"run directory: {run}")
    click.echo(f"  encoder: {run / 'encoder.pt'}   held-out metrics: {run / 'val.json'}")
    click.echo(f"  training curves: {run / 'curves.png'}")
