"""``ganenc sample``: draw images from any registered generator."""

from __future__ import annotations

from pathlib import Path

import click
from pydantic import Field, field_validator

from ganenc.config import Seed, Truncation
from ganenc.training.settings import GeneratorSpec

from .options import (
    DEVICE,
    SEED,
    FiniteFloat,
    config_option,
    default_of,
    generator_option,
    parse_key_values,
    settings_from_cli,
)

#: The most images one grid holds (a 64 x 64 grid).
MAX_SAMPLES = 4096


class SampleSettings(GeneratorSpec):
    n: int = Field(16, ge=1, le=MAX_SAMPLES)
    seed: Seed = 0
    truncation: Truncation = 1.0
    truncation_layers: int | None = Field(None, ge=1)
    out: Path = Path("samples.png")
    save_latents: bool = False
    device: str = "auto"
    batch_size: int = Field(8, ge=1)

    @field_validator("out")
    @classmethod
    def _image_name(cls, out: Path) -> Path:
        from ganenc.images import check_image_suffix

        return check_image_suffix(out)


@click.command("sample")
@click.option(
    "--gan",
    help="Generator family (see 'ganenc list --kind generator'); a weights tag names its own.",
)
@click.option(
    "--checkpoint",
    help="Checkpoint file, a weights tag such as stylegan2:ffhq-1024 (downloaded once; see"
    " 'ganenc weights list'), or 'random' for random weights.",
)
@generator_option(help="Generator option, e.g. -O resolution=64 (repeatable).")
@click.option(
    "-n",
    "n",
    type=int,
    help=f"Number of images, at most {MAX_SAMPLES} (default {default_of(SampleSettings, 'n')}).",
)
@click.option(
    "--seed", type=SEED, help=f"Seed of the latents (default {default_of(SampleSettings, 'seed')})."
)
@click.option(
    "--truncation",
    type=FiniteFloat(),
    help=f"Truncation psi (default {default_of(SampleSettings, 'truncation'):g}: none).",
)
@click.option("--truncation-layers", type=int, help="Truncate only the first N layers.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help=f"Output image grid: .png, .jpg, .webp... (default {default_of(SampleSettings, 'out')}).",
)
@click.option("--save-latents", is_flag=True, default=None, help="Also save the latents (.pt).")
@click.option(
    "--device",
    type=DEVICE,
    help=f"auto, cpu or cuda (default {default_of(SampleSettings, 'device')}).",
)
@click.option("--force", is_flag=True, help="Overwrite --out (and its latents file) if they exist.")
@config_option
def sample_command(config_file, gen_options, force, **given):
    """Write a grid of samples from a generator (and optionally their latents)."""
    import torch

    from ganenc.devices import resolve_device
    from ganenc.files import check_output
    from ganenc.images import save_grid
    from ganenc.latents import save_latent_file

    if gen_options:
        given["generator_options"] = parse_key_values(gen_options, "-O/--option")
    settings = settings_from_cli(SampleSettings, config_file, "sample settings", **given)
    check_output(settings.out, force=force)
    latents_path = Path(settings.out).with_suffix(".latents.pt")
    if settings.save_latents:
        check_output(latents_path, force=force)
    device = resolve_device(settings.device)
    generator = settings.load().to(device)
    generator.follow_truncation(settings.truncation)
    latents = generator.sample_latents(settings.n, seed=settings.seed, device=device)
    images = []
    with torch.no_grad():
        for start in range(0, settings.n, settings.batch_size):
            chunk = {k: v[start : start + settings.batch_size] for k, v in latents.items()}
            images.append(
                generator.synthesize(chunk, settings.truncation, settings.truncation_layers).cpu()
            )
    path = save_grid(torch.cat(images), settings.out)
    click.echo(f"wrote {path}")
    if settings.save_latents:
        save_latent_file(
            latents_path,
            latents,
            gan=settings.gan,
            generator=settings.record(),
            seed=settings.seed,
            truncation=settings.truncation,
            truncation_layers=settings.truncation_layers,
            # sampled (not encoder) latents: synthesize applies the truncation itself
            synthesis_options={
                "truncation": settings.truncation,
                "truncation_layers": settings.truncation_layers,
            },
        )
        click.echo(f"wrote {latents_path}")
