"""``ganenc weights``: the model zoo's cache (list, download, verify, path).

Tags (``stylegan2:ffhq-1024``) come from plugins' ``register_weights`` hooks;
``--checkpoint TAG`` in other commands uses the same cache.  Nothing here
imports torch.
"""

from __future__ import annotations

import json

import click

from ganenc.errors import GanencError
from ganenc.weights.download import DEFAULT_DOWNLOAD_RETRIES, DEFAULT_DOWNLOAD_TIMEOUT

from .options import FiniteFloat, table_console


class _WeightsGroup(click.Group):
    """Turns :class:`GanencError` into a one-line message when used on its own."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except GanencError as exc:
            raise click.ClickException(str(exc)) from None


def _entries(tags: tuple[str, ...]):
    from ganenc.weights import weights_entry

    return [weights_entry(tag) for tag in tags]


@click.group("weights", cls=_WeightsGroup)
def weights_group() -> None:
    """Pretrained weights by tag: list them, download, verify and locate cached files.

    Files are cached under $GANENC_HOME/weights (default: the user cache folder,
    e.g. ~/.cache/ganenc); feature networks in torch's hub cache.
    GANENC_OFFLINE=1 forbids downloads.
    """


@weights_group.command("list")
@click.option("--family", help="Only tags of this family (e.g. stylegan2, features).")
@click.option("--cached", is_flag=True, help="Only tags whose files are all cached.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (URLs, hashes, paths, ...).")
def list_command(family: str | None, cached: bool, as_json: bool) -> None:
    """List weights tags with their format, resolution, licence and cache status."""
    from ganenc.weights import list_entries

    entries = list_entries(family)
    rows = [entry.summary() for entry in entries]
    if cached:
        rows = [row for row in rows if row["status"] in ("cached", "packaged")]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    from ganenc.progress import literal

    # tags, descriptions and notes are the plugins': shown as written, never as markup
    console = table_console()
    table = Table(title="ganenc weights")
    for column in ("tag", "format", "px", "status", "licence", "description"):
        table.add_column(column, overflow="fold")
    colours = {"cached": "green", "packaged": "green", "partial": "yellow", "missing": "dim"}
    for row in rows:
        description = literal(console, row["description"])
        if row["notes"]:
            description.append_text(literal(console, f" ({row['notes']})", "dim"))
        table.add_row(
            literal(console, row["tag"]),
            literal(console, row["format"]),
            str(row["resolution"] or "-"),
            literal(console, row["status"], colours[row["status"]]),
            literal(console, row["licence"]),
            description,
        )
    console.print(table)


@weights_group.command("download")
@click.argument("tags", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Download again even if cached.")
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: on a terminal)."
)
@click.option(
    "--timeout",
    type=FiniteFloat(min=0, min_open=True),
    help=f"Socket timeout in seconds (default {DEFAULT_DOWNLOAD_TIMEOUT:g}).",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    help=f"Retries after a failed attempt (default {DEFAULT_DOWNLOAD_RETRIES}).",
)
def download_command(
    tags: tuple[str, ...],
    force: bool,
    progress: bool | None,
    timeout: float | None,
    retries: int | None,
) -> None:
    """Download TAGS into the cache (verified) and print their paths."""
    from ganenc.weights import fetch

    for entry in _entries(tags):
        path = fetch(entry, force=force, progress=progress, timeout=timeout, retries=retries)
        click.echo(str(path))


@weights_group.command("verify")
@click.argument("tags", nargs=-1)
@click.option(
    "--forget", is_flag=True, help="Drop the recorded hashes first (upstream file replaced)."
)
def verify_command(tags: tuple[str, ...], forget: bool) -> None:
    """Check cached files against their sha256 (all cached tags without TAGS).

    A file that fails a published sha256 is deleted; one that differs only from
    the hash recorded at first download is kept (--forget accepts it); a file
    with no known hash gets one recorded.
    """
    from ganenc.weights import cache_status, list_entries, verify

    if tags:
        entries = _entries(tags)
    else:
        entries = [e for e in list_entries() if cache_status(e) != "missing"]
        if not entries:
            click.echo("no cached weights to verify")
            return
    failed = False
    for entry in entries:
        for result in verify(entry, forget=forget):
            line = f"{result.status:8} {result.tag} {result.path}"
            if result.sha256:
                line += f" sha256={result.sha256}"
            if result.detail:
                line += f" ({result.detail})"
            click.echo(line)
            failed |= result.status == "mismatch"
            if result.status == "missing" and tags:
                failed = True
    if failed:
        raise click.exceptions.Exit(1)


@weights_group.command("path")
@click.argument("tag")
def path_command(tag: str) -> None:
    """Print where TAG's checkpoint is (or goes); exit status 1 if it is not cached yet."""
    from ganenc.weights import cached_path, local_path, manual_instructions

    entry = _entries((tag,))[0]
    path = cached_path(entry)
    click.echo(str(path or local_path(entry)))
    if path is None:
        click.echo(
            f"not cached yet: run 'ganenc weights download {entry.tag}', or"
            f" {manual_instructions(entry)}",
            err=True,
        )
        raise click.exceptions.Exit(1)
