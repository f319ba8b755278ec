"""Images in and out: user images read safely; grids and single images saved from [-1, 1]."""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import ConfigError, ImageReadError, first_line
from .files import atomic_path


def to_uint8(images):
    """[N,3,H,W] in [-1, 1] -> uint8 [N,H,W,3] on the CPU (values outside are clamped)."""
    return (
        ((images.detach().float().clamp(-1, 1) + 1) * 127.5)
        .round()
        .to("cpu")
        .byte()
        .permute(0, 2, 3, 1)
    )


def check_image_suffix(path: str | os.PathLike) -> Path:
    """``path`` if its extension names an image format, else a clear error.

    Checked before any work is done: Pillow only fails on an unknown extension when it saves.
    """
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ConfigError(
            f"{path}: an image file name must end in one of {', '.join(IMAGE_SUFFIXES)}"
            f" (got {path.suffix or 'no extension'!r})"
        )
    return path


def save_grid(images, path: str | os.PathLike, nrow: int | None = None, padding: int = 2) -> Path:
    """Write a PNG grid of ``images`` ([N,3,H,W] in [-1, 1])."""
    from PIL import Image
    from torchvision.utils import make_grid

    path = Path(path)
    nrow = nrow or max(1, math.ceil(math.sqrt(images.shape[0])))
    grid = make_grid(
        images.detach().float().cpu().clamp(-1, 1),
        nrow=nrow,
        padding=padding,
        value_range=(-1, 1),
        normalize=True,
    )
    array = (grid * 255).round().byte().permute(1, 2, 0).numpy()
    with atomic_path(path) as staged:  # whole or absent, as every file ganenc writes
        Image.fromarray(array).save(staged)
    return path


def save_image(image, path: str | os.PathLike) -> Path:
    """Write one [3,H,W] image in [-1, 1] as PNG."""
    from PIL import Image

    path = Path(path)
    with atomic_path(path) as staged:
        Image.fromarray(to_uint8(image[None])[0].numpy()).save(staged)
    return path


# -- reading user images ------------------------------------------------------------------------

#: The only decoders a user image may use.  Pillow otherwise picks any decoder it knows from the
#: file's bytes: a PostScript file named ``photo.png`` would start Ghostscript.
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
#: File name extensions of images, read and written (the formats of ``IMAGE_FORMATS``).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
#: Size limits read from the header, before a pixel is decoded (a 177-byte PNG can declare
#: 1 x 100,000 pixels, a decompression bomb gigapixels).
MAX_IMAGE_SIDE = 16_384
MAX_IMAGE_PIXELS = 8_192 * 8_192


@contextlib.contextmanager
def _checked_image(path: str | os.PathLike) -> Iterator[Any]:
    """The PIL image at ``path``, header read and checked, pixels not yet decoded.

    Every failure becomes one :class:`ImageReadError` naming the file: a stranger's bytes can
    break a decoder with almost any exception, and none of them is the user's to debug.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    _check_regular_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=IMAGE_FORMATS) as image:
                width, height = image.size
                if max(width, height) > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
                    raise ImageReadError(
                        f"{path} declares {width} x {height} pixels; images may have at most"
                        f" {MAX_IMAGE_SIDE} pixels a side and {MAX_IMAGE_PIXELS:,} in all"
                        " (resize it first)"
                    )
                yield image
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(
            f"{path} is not an image in an allowed format ({', '.join(IMAGE_FORMATS)})"
        ) from None
    except PermissionError:
        raise ImageReadError(f"{path} cannot be read: permission denied (check its mode)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageReadError(f"{path} declares too many pixels (a decompression bomb?)") from None
    except Exception as exc:  # noqa: BLE001 - decoders fail with many types on damaged bytes
        detail = first_line(exc)
        raise ImageReadError(f"{path} is damaged or truncated ({detail})") from None


def _check_regular_file(path: Path) -> None:
    """Raise unless ``path`` is a regular file (through links): a FIFO would block the read
    and a device never end, so what is wrong is said, not "not found" or "damaged"."""
    import errno
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            raise ImageReadError(f"{path} is a broken symbolic link (its target is gone)") from None
        raise ImageReadError(f"image not found: {path}") from None
    except PermissionError:
        raise ImageReadError(f"{path} cannot be read: permission denied (check its mode)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageReadError(f"{path} is a symbolic link loop") from None
        raise ImageReadError(f"{path} cannot be read ({first_line(exc)})") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO, device or socket"
        raise ImageReadError(f"{path} is not a regular file ({kind}); give an image file")


#: EXIF orientations that turn the picture a quarter turn (its width and height swap).
_QUARTER_TURNS = {5, 6, 7, 8}


def _orientation(image: Any) -> int:
    """The EXIF orientation (1: as stored); a damaged EXIF block counts as none."""
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a bad EXIF block should not make the pixels unreadable
        return 1


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of a user image as shown (EXIF orientation applied), from its header."""
    with _checked_image(path) as image:
        width, height = image.size
        if image.format == "TIFF":  # Pillow reports a TIFF's size turned already
            return width, height
        return (height, width) if _orientation(image) in _QUARTER_TURNS else (width, height)


def open_image(path: str | os.PathLike):
    """A user image as 8-bit RGB PIL image: allowed formats only, sizes checked before decoding.

    Turned as its EXIF orientation says (phone photos are stored sideways and tagged), as
    every viewer shows it.  Transparent pixels are composed on white; 16-bit and float
    images are scaled to 8 bits (a plain ``convert("RGB")`` clips them to almost white).
    """
    from PIL import ImageOps

    with _checked_image(path) as image:
        image.load()
        if _orientation(image) != 1:
            image = ImageOps.exif_transpose(image)
        return _to_rgb(image)


def _to_rgb(image):
    """8-bit RGB from any mode Pillow decodes the allowed formats to.

    A transparent colour (``tRNS`` of RGB, L and 16-bit PNGs) counts as transparency too.
    """
    import numpy as np
    from PIL import Image

    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        clear = image.info.get("transparency")
        gray = Image.fromarray(_scaled_to_8_bits(values, image.mode), mode="L")
        if isinstance(clear, int | float):  # the transparent value, before scaling hides it
            gray.putalpha(Image.fromarray(np.where(values == clear, 0, 255).astype(np.uint8)))
        image = gray
    if image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def _scaled_to_8_bits(values, mode: str):
    """``uint8`` of a 16-bit, 32-bit integer or float image, by the range its values use.

    16-bit modes are 0..65,535; others take the first usual range that holds every finite
    value (floats 0..1, then 0..255, then 0..65,535), else their own minimum (at most 0)
    to maximum: a float TIFF of 0..255 is not all white, nor an int one of 100,000 black.
    """
    import numpy as np

    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if mode.startswith("I;16"):
        usual = (65_535.0,)
    else:
        usual = (1.0, 255.0, 65_535.0) if mode == "F" else (255.0, 65_535.0)
    floor, top = 0.0, next((top for top in usual if low >= 0 and high <= top), None)
    if top is None:
        floor, top = min(low, 0.0), high
    scaled = (values - floor) / max(top - floor, 1e-12)
    return (
        (np.nan_to_num(scaled, nan=0.0, posinf=1.0, neginf=0.0).clip(0, 1) * 255)
        .round()
        .astype(np.uint8)
    )
