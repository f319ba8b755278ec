"""``ganenc convert``: write a StyleGAN2 generator in another tool's checkpoint layout.

Any StyleGAN2 file ganenc reads (NVIDIA's ``.pkl``, rosinality ``.pt``,
genforce ``.pth``, a bare NVIDIA state dict) goes in; out comes

- ``rosinality``: ``{"g_ema": state_dict, "latent_avg": w_avg}`` as
  rosinality/stylegan2-pytorch's ``convert_weight.py`` writes it;
- ``nvidia-state-dict``: a bare state dict with the key names of NVIDIA's
  ``Generator`` (stylegan2-ada-pytorch ``training/networks.py``), for
  ``G.load_state_dict(torch.load(OUT))``;
- ``genforce``: ``{"generator_smooth": state_dict}`` as in genforce's model zoo.

The written file is read back through ganenc's own loader and compared
tensor by tensor before the command reports success.  The command is the
StyleGAN plugin's: it reaches the command line through ``register_commands``
(as datasette's ``publish`` targets do), so the engine knows no GAN family.
This module imports only click at import time (``ganenc --help`` stays light).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from ganenc.errors import GanencError
from ganenc.files import check_output

from .checkpoints import WRITE_LAYOUTS as TARGETS  # the package module imports no torch


def nvidia_constructor_kwargs(config: Any) -> dict[str, Any] | None:
    """NVIDIA ``Generator`` kwargs that rebuild ``config``'s channels, or ``None`` if none do."""
    top = config.resolution
    channels = {int(r): int(config.channels_at(r)) for r in config.resolutions}
    channel_max = max(channels.values())
    channel_base = channels[top] * top
    if any(min(channel_base // r, channel_max) != c for r, c in channels.items()):
        return None
    mapping: dict[str, Any] = {"num_layers": config.mapping_layers}
    if config.hidden_dim != config.w_dim:
        mapping["layer_features"] = config.hidden_dim
    if config.mapping_lr_mul != 0.01:
        mapping["lr_multiplier"] = config.mapping_lr_mul
    return {
        "z_dim": config.z_dim,
        "w_dim": config.w_dim,
        "c_dim": 0,
        "img_resolution": top,
        "img_channels": 3,
        "mapping_kwargs": mapping,
        "synthesis_kwargs": {"channel_base": channel_base, "channel_max": channel_max},
    }


def convert_generator(source: str | os.PathLike, out: str | os.PathLike, target: str) -> list[str]:
    """Load the StyleGAN2 generator at ``source`` and write it to ``out`` in ``target`` layout.

    Returns notes for the user.  Raises :class:`~ganenc.errors.GanencError`.
    """
    import torch

    import ganenc

    from .checkpoints.dispatch import write_stylegan2_checkpoint

    if target not in TARGETS:
        raise GanencError(f"--to must be one of {', '.join(TARGETS)}, got {target!r}")
    model = ganenc.load_generator("stylegan2", str(source)).model
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    notes: list[str] = []
    try:
        write_stylegan2_checkpoint(model, tmp, target)
        back = ganenc.load_generator("stylegan2", str(tmp)).model
        ours, theirs = model.state_dict(), back.state_dict()
        if ours.keys() != theirs.keys() or any(
            not torch.equal(ours[key], theirs[key]) for key in ours
        ):
            raise GanencError(f"the written file does not read back identically ({out})")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    clamp = model.config.conv_clamp
    if clamp is not None and target != "nvidia-state-dict":
        notes.append(
            f"NVIDIA's conv_clamp ({clamp:g}) is not part of the {target} format and was"
            " dropped (it rarely changes an image at inference)"
        )
    if target == "nvidia-state-dict":
        kwargs = nvidia_constructor_kwargs(model.config)
        if clamp is not None and kwargs is not None:
            kwargs["synthesis_kwargs"]["conv_clamp"] = int(clamp) if clamp == int(clamp) else clamp
        notes.append(
            f"build NVIDIA's Generator with {kwargs}, then G.load_state_dict(torch.load(OUT))"
            if kwargs is not None
            else f"NVIDIA's Generator needs per-resolution channels {model.config.channels}"
        )
    return notes


@click.command("convert")
@click.argument("source", metavar="IN", type=click.Path(dir_okay=False))
@click.argument("out", metavar="OUT", type=click.Path(dir_okay=False))
@click.option(
    "--to",
    "target",
    required=True,
    type=click.Choice(TARGETS),
    help="Layout of OUT: rosinality .pt, NVIDIA's state-dict keys, or genforce .pth.",
)
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
def convert_command(source: str, out: str, target: str, force: bool) -> None:
    """Write the StyleGAN2 generator in IN (NVIDIA .pkl, rosinality, genforce) to OUT."""
    try:
        check_output(out, force=force, option="OUT", inputs=[source])
        notes = convert_generator(source, out, target)
    except GanencError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {out} ({target})")
    for note in notes:
        click.echo(f"note: {note}")
