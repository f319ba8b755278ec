"""The demo's one picture and table: real | encoder | refined | edits, and PSNR/SSIM/time.

Reads what the demo's commands wrote under RUN (``invert/``, ``refined/``,
``edits/``, ``train/val.json``) and writes ``RUN/summary.png``; the average
latent's scores are measured here, on the same 16 held-out emoji.

    python examples/demo_summary.py runs/demo
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from PIL import Image, ImageDraw

import ganenc
from ganenc import metrics
from ganenc.data import load_image
from ganenc.emoji import heldout_examples
from ganenc.images import open_image

SCALE = 2  # 64 px emoji drawn at 128 px


def tile(path: Path) -> Image.Image:
    image = open_image(path)
    return image.resize((image.width * SCALE, image.height * SCALE), Image.NEAREST)


def main(run: Path) -> None:
    names = sorted(p.stem for p in heldout_examples().glob("*.png"))
    real = torch.stack([load_image(heldout_examples() / f"{n}.png", 64) for n in names])
    spec = json.loads((run / "invert" / "index.json").read_text())["generator"]
    generator = ganenc.load_generator(spec["gan"], spec["checkpoint"], **spec["generator_options"])
    with torch.no_grad():
        average = generator.freeze().synthesize(generator.average_latents(len(names))).clamp(-1, 1)
    rows = {
        "average latent": {
            "psnr": metrics.psnr(average, real).mean().item(),
            "ssim": metrics.ssim(average, real).mean().item(),
            "seconds": 0.0,
        }
    }
    for label, folder in (("encoder", "invert"), ("encoder + 50 optimisation steps", "refined")):
        index = json.loads((run / folder / "index.json").read_text())
        rows[label] = {
            "psnr": index["metrics"]["psnr"]["mean"],
            "ssim": index["metrics"]["ssim"]["mean"],
            "seconds": index["seconds_per_image"],
        }

    shown = names[:8]
    strip = tile(run / "edits" / "strips" / f"{shown[0]}.png")
    columns = ["real", "encoder", "refined", "edit: has_skin_tone (-2 .. +4)"]
    cell = 64 * SCALE
    width, height = 3 * (cell + 8) + strip.width + 8, 28 + len(shown) * (cell + 8)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    x_positions = [0, cell + 8, 2 * (cell + 8), 3 * (cell + 8)]
    for x, title in zip(x_positions, columns, strict=True):
        draw.text((x + 4, 8), title, fill="black")
    for row, name in enumerate(shown):
        y = 28 + row * (cell + 8)
        sheet.paste(tile(heldout_examples() / f"{name}.png"), (x_positions[0], y))
        sheet.paste(tile(run / "invert" / "reconstructions" / f"{name}.png"), (x_positions[1], y))
        sheet.paste(tile(run / "refined" / "reconstructions" / f"{name}.png"), (x_positions[2], y))
        sheet.paste(tile(run / "edits" / "strips" / f"{name}.png"), (x_positions[3], y))
    sheet.save(run / "summary.png")

    val = json.loads((run / "train" / "val.json").read_text())
    print()
    print(f"16 held-out real emoji ({run / 'summary.png'}):")
    print(f"  {'method':34s} {'PSNR':>7s} {'SSIM':>6s} {'s/image':>8s}")
    for label, row in rows.items():
        print(f"  {label:34s} {row['psnr']:7.2f} {row['ssim']:6.3f} {row['seconds']:8.3f}")
    print(
        f"the short training run (train/val.json, generated held-out samples): encoder PSNR"
        f" {val['encoder']['psnr']:.2f} vs average latent {val['average_latent_baseline']['psnr']:.2f}"
    )


# what the demo's commands (``make demo``) leave in the run folder, read here
DEMO_OUTPUTS = ["train/val.json", "invert/index.json", "refined/index.json", "edits/strips"]

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, nargs="?", default=Path("runs/demo"))
    args = parser.parse_args()
    missing = [name for name in DEMO_OUTPUTS if not (args.run / name).exists()]
    if missing:
        parser.error(
            f"{args.run} lacks {', '.join(missing)}: give the folder 'make demo' wrote"
            " (DEMO_OUT, runs/demo by default), or run 'make demo' first"
        )
    main(args.run)
