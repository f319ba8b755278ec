"""Real images from a folder: any size and mode in, [-1, 1] tensors at the generator's size out."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, GanencError, ImageReadError


@dataclass
class ImageFolder:
    """Images of one folder, sorted by name, with the files that could not be read."""

    images: object  # torch.Tensor [N, 3, R, R] in [-1, 1]
    names: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # file name -> reason


def load_image(path: str | os.PathLike, resolution: int):
    """One image file -> [3, R, R] in [-1, 1]: RGB, centre square cropped, resized.

    Cropping before resizing keeps memory bounded by the file's pixels (a 1 x 10,000 image
    resized first would become 256 x 2,560,000).
    """
    return unit_range(load_image_uint8(path, resolution))


def load_image_uint8(path: str | os.PathLike, resolution: int):
    """:func:`load_image` before the conversion: ``uint8 [3, R, R]`` (a quarter of the memory,
    the same values: the resize already rounds to 8 bits)."""
    import torchvision.transforms.functional as TF

    from .images import open_image

    tensor = TF.pil_to_tensor(open_image(path))  # uint8 [3, H, W]
    side = min(tensor.shape[-2:])
    tensor = TF.center_crop(tensor, [side, side])
    return TF.resize(tensor, [resolution, resolution], antialias=True)


#: Median |pixel| above which images are not in ganenc's [-1, 1] convention.  Generous on
#: purpose: generated images overshoot (a trained StyleGAN2 reaches |x| ~ 7, randomly
#: initialised StyleGANs a median of ~3); images in 0..255 sit near 127.
MAX_MEDIAN_PIXEL = 16.0
#: Largest |pixel| of images in the [-1, 1] convention: 0..255 images with a dark median
#: (a bright patch on black) pass the median check but not this.  Far above the overshoot
#: of generators (the emoji StyleGAN reaches ~3.8, tiny random StyleGAN1s ~22).
MAX_PIXEL = 64.0
#: How many values of a tensor the scale check looks at, at most (about).
SCALE_SAMPLE = 1 << 20


def pixel_scale_problem(images: Any) -> str | None:
    """Why ``images`` (finite floats) are not on the [-1, 1] scale, or ``None``.

    The median of at most about a million evenly spaced values (a folder's worth of large
    images would otherwise be sorted whole), and the largest value of all (one pass).
    """
    import torch

    values = images.detach().reshape(-1)
    if values.numel() == 0:
        return None
    low, high = torch.aminmax(values)
    largest = max(-float(low), float(high))
    if values.numel() > SCALE_SAMPLE:
        values = values[:: values.numel() // SCALE_SAMPLE]
    median = float(values.abs().float().median())
    if median > MAX_MEDIAN_PIXEL:
        found = f"a median |value| of {median:.4g}"
    elif largest > MAX_PIXEL:
        found = f"a largest |value| of {largest:.4g}"
    else:
        return None
    return f"{found}; ganenc's images are in [-1, 1] (x / 127.5 - 1 for 0..255 values)"


def check_image_tensor(images: Any, resolution: int) -> Any:
    """Images handed over in Python, checked as one clear error: ``[N, 3, R, R]``, N >= 1,
    floating point, finite, on the [-1, 1] scale (the convention of every generator here).

    An :class:`ImageSet` (its files were checked when it was made) only shows its shape.
    """
    import torch

    if not isinstance(images, torch.Tensor | ImageSet):
        raise ConfigError(
            f"images must be a torch tensor [N, 3, {resolution}, {resolution}] in [-1, 1], not a"
            f" {type(images).__name__} (torch.as_tensor(...) converts an array)"
        )
    if len(images.shape) != 4 or tuple(images.shape[1:]) != (3, resolution, resolution):
        raise ConfigError(
            f"images must be [N, 3, {resolution}, {resolution}] for this generator,"
            f" got {list(images.shape)}"
        )
    if images.shape[0] == 0:
        raise ConfigError("no images: the tensor holds 0 images")
    if isinstance(images, ImageSet):
        return images
    if not images.is_floating_point():
        raise ConfigError(
            f"images are {images.dtype}; give floats in [-1, 1] (images.float() / 127.5 - 1 for"
            " 8-bit values)"
        )
    finite = torch.isfinite(images).flatten(1).all(1)
    if not bool(finite.all()):
        bad = (~finite).nonzero().flatten().tolist()
        raise ConfigError(f"image(s) {bad[:5]} hold NaN or infinite values")
    problem = pixel_scale_problem(images)
    if problem:
        raise ConfigError(f"the images have {problem}")
    return images


def unit_range(images):
    """8-bit images -> float32 in [-1, 1]."""
    import torch

    return images.to(torch.float32) / 127.5 - 1.0


def _folder_files(folder: str | os.PathLike) -> list[Path]:
    """The entries of ``folder`` that are not folders: not hidden, not recursive, sorted by name.

    Links that lead nowhere, FIFOs and the like are kept, so that reading their header lists
    them as skipped with the reason, instead of dropping them without a word.
    """
    folder = Path(folder)
    if folder.is_file():
        raise GanencError(f"{folder} is a file; give the folder that holds the images")
    if not folder.is_dir():
        raise GanencError(f"image folder not found: {folder}")
    found = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and not p.is_dir())
    for path in found:
        check_file_name(path)
    return found


def check_file_name(path: str | os.PathLike) -> None:
    """Refuse a file name that is not valid UTF-8 or holds a line break, before any work.

    The name is written into metrics.csv, index.json and the latent files, and read back
    line by line on ``--resume``: such a name failed halfway through a run, after files
    were written, and again on every resume.
    """
    path = Path(path)
    name = path.name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        problem = "is not valid UTF-8"
    else:
        problem = "holds a line break" if name.splitlines() != [name] else None
    if problem:
        raise GanencError(
            f"the file name {name!r} in {ascii(str(path.parent))[1:-1]} {problem}; rename it"
            " (nothing was written)"
        )


def image_candidates(folder: str | os.PathLike) -> tuple[list[Path], dict[str, str]]:
    """Files of ``folder`` whose image header reads, and the others with their reason.

    The one rule by which every command picks a folder's images: by content, not extension
    (a JPEG named ``.jfif`` is one, a text file named ``.png`` is not).  Not hidden, not
    recursive, sorted by name; only headers are read (nothing decoded), so a folder of
    thousands of large images is listed in moments.
    """
    return _readable_headers(_folder_files(folder))


def _readable_headers(paths: list[Path]) -> tuple[list[Path], dict[str, str]]:
    """``paths`` whose image header reads (nothing decoded), and the others' reasons."""
    from .images import image_size

    readable, skipped = [], {}
    for path in paths:
        try:
            image_size(path)
        except ImageReadError as exc:
            skipped[path.name] = str(exc)
            continue
        readable.append(path)
    return readable, skipped


def load_images(paths: list[Path], resolution: int) -> ImageFolder:
    """``paths`` decoded at ``resolution``; a file that fails to decode is listed, not fatal."""
    images, kept, skipped = _decode_uint8(paths, resolution)
    return ImageFolder(unit_range(images), [path.name for path in kept], skipped)


def _decode_uint8(paths: list[Path], resolution: int) -> tuple[Any, list[Path], dict[str, str]]:
    """``uint8 [N, 3, R, R]`` of the files that decode, those files, and the others' reasons."""
    import torch

    images, kept, skipped = [], [], {}
    for path in paths:
        try:
            images.append(load_image_uint8(path, resolution))
        except ImageReadError as exc:
            skipped[path.name] = str(exc)
            continue
        kept.append(path)
    empty = torch.empty(0, 3, resolution, resolution, dtype=torch.uint8)
    return (torch.stack(images) if images else empty), kept, skipped


def no_readable_images(folder: str | os.PathLike, skipped: dict[str, str]) -> GanencError:
    """The error of a folder without one readable image (naming the unreadable files)."""
    detail = (
        f" ({len(skipped)} unreadable file(s): {', '.join(sorted(skipped))})" if skipped else ""
    )
    return GanencError(f"no readable images in {folder}{detail}")


def load_image_folder(folder: str | os.PathLike, resolution: int) -> ImageFolder:
    """Every readable image of ``folder`` (not recursive); unreadable files are listed, not fatal."""
    paths, skipped = image_candidates(folder)
    loaded = load_images(paths, resolution)
    loaded.skipped = {**skipped, **loaded.skipped}
    if not loaded.names:
        raise no_readable_images(folder, loaded.skipped)
    return loaded


#: A folder up to this size decoded (8 bits a value: about 10,900 images at 256 px) is
#: decoded once and kept in memory; a larger one is decoded batch by batch as it is used,
#: so memory follows a batch, not the folder (30,000 images at 256 px are 5.9 GB).
PRELOAD_BYTES = 2 * 2**30


class ImageSet:
    """Images indexed like a ``[N, 3, R, R]`` tensor in [-1, 1], decoded up front or on demand.

    ``ImageSet(folder, R)`` holds a folder's readable images (unreadable ones listed in
    ``skipped``); :meth:`from_paths` given files, every one of which must read.  Sets up to
    :data:`PRELOAD_BYTES` are decoded once and kept; larger ones are checked by header and
    decoded when indexed.  ``images[[3, 1]]`` and ``images[1:3]`` are tensors either way;
    :meth:`subset` is a set again (for FID over a fold without decoding it at once).
    """

    def __init__(self, folder: str | os.PathLike, resolution: int, preload: bool | None = None):
        paths, skipped = image_candidates(folder)
        self._setup(Path(folder), paths, resolution, skipped, preload, strict=False)

    @classmethod
    def from_paths(
        cls, paths: list[Path], resolution: int, preload: bool | None = None, strict: bool = True
    ) -> ImageSet:
        """These files, in this order; one that does not read is an error naming it (with
        ``strict=False``, left out and listed in ``skipped``)."""
        paths, unreadable = _readable_headers(list(paths))
        if unreadable and strict:
            raise GanencError("unreadable image(s): " + "; ".join(unreadable.values()))
        images = cls.__new__(cls)
        folder = paths[0].parent if paths else Path(".")
        images._setup(folder, paths, resolution, unreadable, preload, strict=strict)
        return images

    def _setup(self, folder, paths, resolution, skipped, preload, strict) -> None:
        self.folder, self.resolution, self.skipped = folder, resolution, dict(skipped)
        if preload is None:
            preload = len(paths) * 3 * resolution**2 <= PRELOAD_BYTES
        self._decoded = None  # uint8 [N, 3, R, R] when preloaded
        if preload:
            self._decoded, paths, failed = _decode_uint8(paths, resolution)
        else:  # headers only: decoding a set too large to keep (70,000 photos) would take
            # as long as an epoch; pixels cut short after a good header fail when indexed
            failed = {}
        if strict and failed:
            raise GanencError("unreadable image(s): " + "; ".join(failed.values()))
        self.skipped.update(failed)
        if not paths:
            raise no_readable_images(folder, self.skipped)
        self.paths = paths
        self.names = [path.name for path in paths]

    @property
    def preloaded(self) -> bool:
        return self._decoded is not None

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), 3, self.resolution, self.resolution)

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices) -> ImageSet:
        """The images at ``indices``, decoded as this set is (up front or on demand)."""
        part = ImageSet.__new__(ImageSet)
        part.folder, part.resolution, part.skipped = self.folder, self.resolution, {}
        part.paths = [self.paths[int(i)] for i in indices]
        part.names = [path.name for path in part.paths]
        chosen = [int(i) for i in indices]
        part._decoded = self._decoded[chosen] if self._decoded is not None else None
        return part

    def __getitem__(self, index):
        if self._decoded is not None:
            return unit_range(self._decoded[index])
        import torch

        if isinstance(index, int):
            return self._decode(self.paths[index])
        if isinstance(index, slice):
            chosen = self.paths[index]
        else:
            chosen = [self.paths[int(i)] for i in index]
        images = [self._decode(path) for path in chosen]
        return (
            torch.stack(images) if images else torch.empty(0, 3, self.resolution, self.resolution)
        )

    def _decode(self, path: Path):
        try:
            return load_image(path, self.resolution)
        except ImageReadError as exc:
            raise GanencError(
                f"{exc}; its header read at the start, its pixels do not: remove it from"
                f" {path.parent} and run again (or resume)"
            ) from None
