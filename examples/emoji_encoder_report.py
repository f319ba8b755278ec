"""Held-out real-emoji quality of an encoder of ``stylegan2:emoji-64`` next to the average latent.

Inverts every image of the held-out split (298 real Noto emoji the generator and
the encoder never saw) with the encoder alone and decodes the average latent as
the baseline; PSNR and SSIM come from ``ganenc.metrics`` (torchmetrics).  Writes
``encoder-report.json`` and a grid (real | average latent | encoder) to ``--out``.

    python examples/emoji_encoder_report.py --encoder encoder:stylegan2-emoji-64 --out docs/emoji
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
from ganenc.images import save_grid


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
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.time()
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
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "encoder-report.json").write_text(json.dumps(report, indent=2) + "\n")
    rows = torch.stack([heldout[:16], average[:16], encoder[:16]], dim=1).flatten(0, 1)
    save_grid(rows, args.out / "encoder-heldout.png", nrow=6)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
