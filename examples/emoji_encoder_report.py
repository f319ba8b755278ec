"""Held-out real-emoji quality of an encoder of ``stylegan2:emoji-64`` next to the average latent.

Inverts every image of the held-out split (298 real Noto emoji the generator and
the encoder never saw) with the encoder alone and decodes the average latent as
the baseline; PSNR and SSIM come from ``ganenc.metrics`` (torchmetrics).  Writes
``encoder-report.json`` and a grid (real | average latent | encoder) to ``--out``.

    python examples/emoji_encoder_report.py --encoder encoder:stylegan2-emoji-64 --out docs/emoji \
        --force
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import ganenc
from ganenc import metrics
from ganenc.emoji import load_split
from ganenc.files import write_json
from ganenc.images import save_grid
from ganenc.scripts import check_outputs, one_line_errors, positive_int


def scores(prediction: torch.Tensor, target: torch.Tensor) -> dict:
    psnr, ssim = metrics.psnr(prediction, target), metrics.ssim(prediction, target)
    return {
        "psnr": psnr.mean().item(),
        "psnr_std": psnr.std().item(),
        "ssim": ssim.mean().item(),
        "ssim_std": ssim.std().item(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/emoji"))
    parser.add_argument("--encoder", default="encoder:stylegan2-emoji-64")
    parser.add_argument("--out", type=Path, default=Path("docs/emoji"))
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--force", action="store_true", help="replace the report in --out")
    args = parser.parse_args()
    report_path, grid_path = check_outputs(
        parser, args.out, ["encoder-report.json", "encoder-heldout.png"], args.force
    )
    torch.set_num_threads(args.threads)
    started = time.time()
    with one_line_errors(parser):
        heldout = load_split(args.data, "heldout").images.float() / 127.5 - 1
        inverter = ganenc.Inverter.from_encoder(args.encoder, device="cpu")
    result = inverter.invert(heldout, batch_size=32)
    encoder = result.reconstructions.clamp(-1, 1)
    with torch.no_grad():
        average = inverter.synthesize(inverter.generator.average_latents(len(heldout)))
    average = average.float().clamp(-1, 1)
    report = {
        "encoder": args.encoder,
        "heldout_images": len(heldout),
        "encoder_only": scores(encoder, heldout),
        "average_latent": scores(average, heldout),
        "encoder_seconds_per_image": result.encoder_seconds / len(heldout),
    }
    report["psnr_gain_db"] = report["encoder_only"]["psnr"] - report["average_latent"]["psnr"]
    report["seconds"] = round(time.time() - started, 1)
    report["machine"] = f"{platform.machine()}, {torch.get_num_threads()} threads"
    write_json(report_path, report)
    rows = torch.stack([heldout[:16], average[:16], encoder[:16]], dim=1).flatten(0, 1)
    save_grid(rows, grid_path, nrow=6)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
