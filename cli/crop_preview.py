"""``ganenc crop-preview``: draw a cropper's AT1/AT2 boxes on images, to check them by eye."""

from __future__ import annotations

from pathlib import Path

import click

from ganenc.images import MAX_IMAGE_SIDE

from .options import crop_option, device_option, parse_key_values

#: Outline colours of AT1, AT2, AT3 ... boxes.
BOX_COLOURS = ((255, 200, 0), (255, 40, 40), (40, 160, 255), (60, 220, 60))


def draw_boxes(image, boxes: list[tuple[int, int, int, int]]):
    """A copy of the PIL ``image`` with one outlined rectangle per box (ends exclusive)."""
    from PIL import ImageDraw

    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    line = max(1, min(out.size) // 128)
    for index, (x0, y0, x1, y1) in enumerate(boxes):
        colour = BOX_COLOURS[index % len(BOX_COLOURS)]
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=colour, width=line)
    return out


def _image_paths(given: tuple[Path, ...]) -> tuple[list[Path], dict[str, str]]:
    """Files as given (each must read); a folder stands for its readable images, picked as
    every command picks them (by header), the others skipped with their reason."""
    from ganenc.data import check_file_name, image_candidates, no_readable_images
    from ganenc.errors import GanencError
    from ganenc.images import image_size

    paths: list[Path] = []
    skipped: dict[str, str] = {}
    for path in given:
        if path.is_dir():
            found, unreadable = image_candidates(path)
            if not found:
                raise no_readable_images(path, unreadable)
            skipped.update({str(path / name): reason for name, reason in unreadable.items()})
            paths.extend(found)
        else:
            check_file_name(path)
            try:
                image_size(path)  # the header only: pixels are decoded one image at a time
            except GanencError as exc:
                raise GanencError(f"{exc} (nothing was written)") from None
            paths.append(path)
    return paths, skipped


@click.command("crop-preview")
@click.option(
    "--attention",
    required=True,
    help="Cropper name, e.g. center or gradcam (see 'ganenc list --kind cropper').",
)
@click.argument(
    "images",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, path_type=Path),
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the annotated PNGs.",
)
@crop_option(
    help="Cropper option, e.g. --crop-option thresholds=[0.3,0.6] (repeatable).",
    aliases=("-O", "--option"),
    deprecated="crop-preview: -O/--option is deprecated here, use --crop-option"
    " (-O/--option means generator options in every other command)",
)
@click.option(
    "--size",
    type=click.IntRange(8, MAX_IMAGE_SIDE),
    default=None,
    help="Centre-crop images to a square and resize them to SIZE x SIZE first, as training"
    " and invert read them.",
)
@device_option()
@click.option("--force", is_flag=True, help="Write into --out even if it holds files.")
def crop_preview_command(
    attention: str,
    images: tuple[Path, ...],
    out_dir: Path,
    crop_options: tuple[str, ...],
    size: int | None,
    device: str,
    force: bool,
) -> None:
    """Draw the AT1 (yellow) and AT2 (red) boxes of a cropper on IMAGES and save PNGs.

    IMAGES are image files or folders (their images, not recursive).
    """

    import ganenc
    from ganenc.devices import resolve_device
    from ganenc.errors import GanencError
    from ganenc.files import check_output

    try:
        paths, skipped = _image_paths(images)  # every header before any output
        check_output(out_dir, folder=True, force=force, inputs=images)
        cropper = ganenc.create(
            "cropper", attention, **parse_key_values(crop_options, "--crop-option")
        )
        target_device = resolve_device(device)
        targets = _preview_paths(paths, out_dir)
        created = not out_dir.exists()
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            failed = _draw_previews(paths, targets, cropper, size, target_device)
            if len(failed) == len(paths):
                raise GanencError("no image decodes: " + "; ".join(failed.values()))
        except BaseException:
            if created and not any(out_dir.iterdir()):  # a failed start leaves nothing behind
                out_dir.rmdir()
            raise
        for reason in {**skipped, **failed}.values():  # listed, as invert lists them
            click.echo(f"skipped: {reason}")
    except GanencError as exc:
        raise click.ClickException(str(exc)) from None


def _preview_paths(images: list[Path], out_dir: Path) -> list[Path]:
    """``<stem>_crops.png`` per image (``<stem>_2_crops.png`` for a repeated stem); none may
    be one of the images, ``--force`` or not."""
    from ganenc.errors import GanencError

    inputs = {path.resolve() for path in images}
    used: set[str] = set()
    targets = []
    for path in images:
        name = f"{path.stem}_crops.png"
        counter = 1
        while name in used:  # two inputs with one stem (from different folders)
            counter += 1
            name = f"{path.stem}_{counter}_crops.png"
        used.add(name)
        target = out_dir / name
        if target.resolve() in inputs:
            raise GanencError(
                f"the preview of {path} would overwrite the input {target}; choose another --out"
                " (nothing was written)"
            )
        targets.append(target)
    return targets


def _draw_previews(paths, targets, cropper, size, device) -> dict[str, str]:
    """Each image with its boxes drawn, saved to its target, decoded one at a time (memory
    follows one image, not the folder); returns the images whose pixels do not decode."""
    import numpy as np
    import torch
    from PIL import Image

    from ganenc.data import load_image_uint8, unit_range
    from ganenc.errors import ImageReadError
    from ganenc.files import atomic_path
    from ganenc.images import open_image

    failed: dict[str, str] = {}
    for path, target in zip(paths, targets, strict=True):
        try:
            if size is not None:  # as training and invert read images: centre crop, then resize
                pixels = load_image_uint8(path, size)
                image = Image.fromarray(pixels.permute(1, 2, 0).numpy())
            else:
                image = open_image(path)
                pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1)  # a writable copy
        except ImageReadError as exc:
            failed[str(path)] = str(exc)
            continue
        tensor = unit_range(pixels[None]).to(device)
        with torch.no_grad():
            levels = cropper.boxes(tensor)
        boxes = [tuple(int(v) for v in level[0].tolist()) for level in levels]
        with atomic_path(target) as staged:  # a link at the target is replaced, not followed
            draw_boxes(image, boxes).save(staged, format="PNG")
        described = "  ".join(f"AT{i + 1} {box}" for i, box in enumerate(boxes))
        click.echo(f"{path}: {described} -> {target}")
    return failed
