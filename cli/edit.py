"""``ganenc edit``: move latents along a learned direction and render an edit strip per image."""

from __future__ import annotations

import click

from .options import STRENGTHS, device_option, generator_option, parse_key_values


# Deliberately alike: click option blocks of different commands (own help, types and defaults)
@click.command("edit")
@click.option(
    "--latents",
    required=True,
    type=click.Path(exists=True),
    help="A latent file, a folder of them, or the output folder of 'ganenc invert'.",
)
@click.option(
    "--direction",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A direction file written by 'ganenc directions'.",
)
@click.option(
    "--strengths",
    type=STRENGTHS,
    default="-3,0,3",
    show_default=True,
    help="Comma-separated strengths along the direction, e.g. -3,0,3.",
)
@click.option(
    "--layers",
    help="Layers of a layer-wise code (w_plus) to edit, e.g. 0-7 or 0,2,4-6 (default all); for"
    " directions of that code or its per-layer space (w) only.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New output folder.")
@click.option("--gan", help="Generator family (default: the one the latent files record).")
@click.option("--checkpoint", help="Generator checkpoint (default: the recorded one).")
@generator_option(help="Generator option (repeatable; with --gan).")
@device_option()
def edit_command(latents, direction, strengths, layers, out, gan, checkpoint, gen_options, device):
    """Write edited latents and an edit strip (one image per strength) per latent file.

    \b
    Writes to --out:
      latents/<name>__<attribute>_<strength>.pt   edited latents (ganenc-latents/1)
      strips/<name>.png                           the images at each strength, left to right
      edits.json                                  what was done
    \b
    Example:
      ganenc edit --latents inverted/ --direction directions/smile.pt --strengths=-3,0,3 \\
          --layers 0-7 --out edits/
    """
    from ganenc.editing import edit_latents

    generator = None
    if gan or checkpoint or gen_options:
        from ganenc.encoder_runs import recorded_generator
        from ganenc.latents import read_latents

        generator = recorded_generator(
            read_latents(latents).generator_spec(),
            latents,
            gan=gan,
            checkpoint=checkpoint,
            generator_options=parse_key_values(gen_options, "-O/--option"),
        ).model_dump()
    summary = edit_latents(
        latents, direction, strengths, out, layers=layers, generator=generator, device=device
    )
    click.echo(
        f"edited {len(summary['edits'])} latent file(s) along {summary['attribute']!r}"
        f" at strengths {summary['strengths']}: {out}"
    )
