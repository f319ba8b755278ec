"""Hook implementation: the ``ganenc studio`` command (no torch or web import until it runs)."""

from __future__ import annotations

import ipaddress
import socket

import click

from ganenc import hookimpl
from ganenc.errors import GanencError

#: The most torch CPU threads --threads accepts: far more than any machine's cores, yet an
#: int torch can take (a huge number is one line from click, not an error from torch).
MAX_THREADS = 1024


def bare_host(host: str) -> str:
    """``host`` as sockets take it: an IPv6 address without its brackets (``[::1]`` -> ``::1``).

    One line for an empty host or unbalanced brackets (``[::1``), before anything is loaded.
    """
    inner = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if "[" in inner or "]" in inner:
        raise GanencError(f"--host {host!r}: put brackets around a whole IPv6 address, as in [::1]")
    if not inner.strip():
        raise GanencError("--host is empty; give an address such as 127.0.0.1")
    return inner


def url_host(host: str) -> str:
    """``host`` as a URL or a Host header names it: an IPv6 address in brackets (``[::1]``)."""
    bare = bare_host(host)
    return f"[{bare}]" if ":" in bare else bare


def is_loopback(host: str) -> bool:
    """Whether ``host`` only answers this machine (``localhost``, 127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def port_to_listen_on(host: str, port: int) -> int:
    """The port to listen on (``0``: a free one, so the printed address is the real one), or
    one clear line when the address cannot be bound, before anything is loaded."""
    address = bare_host(host)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as exc:
            raise GanencError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); pass another --port"
                " or --host"
            ) from None
        return probe.getsockname()[1]


@click.command("studio")
@click.option(
    "--encoder",
    help="Training run directory, encoder file or weights tag"
    " (default: the packaged emoji encoder, encoder:stylegan2-emoji-64).",
)
@click.option(
    "--directions",
    type=click.Path(file_okay=False),
    help="Folder of direction files written by 'ganenc directions': one slider each.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback lets other machines use the studio.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option(
    "--threads",
    type=click.IntRange(1, MAX_THREADS),
    help="CPU threads of torch (default: torch's); 1 keeps edits fast on a busy machine.",
)
def studio_command(encoder, directions, port, host, device, threads):
    """Invert and edit images in the browser, offline, on this machine.

    \b
    Opens a page at http://HOST:PORT/ to upload an image (or pick a held-out
    emoji), compare the encoder's and a refined reconstruction (PSNR, SSIM,
    time), move sliders along --directions, draw generator samples with a
    truncation slider, and download the edited PNG and its latent file.
    Files go only to a temporary folder, printed at start and removed at exit.
    \b
    Example:
      ganenc studio --encoder runs/train-stylegan2-... --directions directions/
    """
    bare_host(host)  # a bad --host is the only line, not after a warning about it
    if not is_loopback(host):
        click.secho(
            f"warning: listening on {host}: anyone who can reach this machine can use the"
            " studio (upload images, run refinements); use --host 127.0.0.1 to keep it local",
            fg="yellow",
            err=True,
        )
    port = port_to_listen_on(host, port)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    from .server import serve

    serve(encoder=encoder, directions=directions, host=host, port=port, device=device)


@hookimpl
def register_commands(cli):
    cli.add_command(studio_command)
