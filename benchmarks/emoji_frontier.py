"""The inversion quality-time frontier on real held-out emoji (issue 16, item 3).

On the 16 held-out emoji shipped with ganenc (real images the shipped networks
never saw), with ``encoder:stylegan2-emoji-64`` and ``stylegan2:emoji-64``:
the encoder alone; encoder + K latent-optimisation steps (hybrid); optimisation
from the average latent; the paper's per-image encoder fine-tuning (on the
first ``--finetune-images`` images: it is the slowest).  Every arm uses the
run's loss (the paper's without LPIPS) and Grad-CAM boxes.  Writes
``frontier.json`` and ``frontier.png`` (PSNR against seconds per image) to ``--out``.

    python -m benchmarks.emoji_frontier --out docs/benchmarks --force
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

import ganenc
from ganenc import metrics
from ganenc.data import load_image
from ganenc.emoji import heldout_examples
from ganenc.files import write_json
from ganenc.scripts import check_outputs, one_line_errors, positive_int, positive_int_list


def scores(reconstruction: torch.Tensor, real: torch.Tensor, seconds: float) -> dict:
    reconstruction = reconstruction.float().clamp(-1, 1)
    return {
        "psnr": metrics.psnr(reconstruction, real).mean().item(),
        "ssim": metrics.ssim(reconstruction, real).mean().item(),
        "seconds_per_image": seconds,
        "images": len(real),
    }


def comparisons(rows: dict[str, dict], optimize_steps: list[int]) -> dict:
    """The encoder against the longest optimisation (the most ``--optimize-steps``, in
    whatever order they were given), and the fastest method that reaches its PSNR."""
    reference = rows[f"optimisation from the average latent, {max(optimize_steps)} steps"]
    matching = [
        (name, row)
        for name, row in rows.items()
        if not name.startswith("optimisation")
        and row["images"] == reference["images"]  # the per-image rows see fewer images
        and row["psnr"] >= reference["psnr"]
    ]
    fastest = min(matching, key=lambda item: item[1]["seconds_per_image"], default=None)
    return {
        "encoder_vs_longest_optimisation": {
            "speed_up": reference["seconds_per_image"] / rows["encoder"]["seconds_per_image"],
            "psnr_difference_db": rows["encoder"]["psnr"] - reference["psnr"],
        },
        "fastest_reaching_longest_optimisation_psnr": None
        if fastest is None
        else {
            "method": fastest[0],
            "speed_up": reference["seconds_per_image"] / fastest[1]["seconds_per_image"],
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    parser.add_argument("--hybrid-steps", type=positive_int_list, default="10,50,200")
    parser.add_argument("--optimize-steps", type=positive_int_list, default="50,200,1000")
    parser.add_argument("--finetune-steps", type=positive_int_list, default="100,500")
    parser.add_argument("--finetune-images", type=positive_int, default=4)
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--force", action="store_true", help="replace the frontier in --out")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    json_path, plot_path = check_outputs(
        parser, args.out, ["frontier.json", "frontier.png"], args.force
    )
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    files = sorted(heldout_examples().glob("*.png"))
    with one_line_errors(parser):
        real = torch.stack([load_image(f, 64) for f in files])
        inverter = ganenc.Inverter.from_encoder("encoder:stylegan2-emoji-64", device="cpu")
    rows: dict[str, dict] = {}

    result = inverter.invert(real, batch_size=16)
    rows["encoder"] = scores(result.reconstructions, real, result.seconds_per_image)
    for steps in args.hybrid_steps:
        result = inverter.invert(real, refine="optimize", steps=steps, batch_size=16)
        rows[f"encoder + {steps} optimisation steps"] = scores(
            result.reconstructions, real, result.seconds_per_image
        )
    average = inverter.generator.average_latents(len(real))
    for steps in args.optimize_steps:
        began = time.perf_counter()
        latents, _ = inverter.optimize(real, average, steps)
        with torch.no_grad():
            reconstruction = inverter.synthesize(latents)
        seconds = (time.perf_counter() - began) / len(real)
        rows[f"optimisation from the average latent, {steps} steps"] = scores(
            reconstruction, real, seconds
        )
    subset = real[: args.finetune_images]
    for steps in args.finetune_steps:
        result = inverter.invert(subset, refine="finetune", steps=steps, batch_size=1)
        rows[f"per-image fine-tuning, {steps} iterations ({len(subset)} images)"] = scores(
            result.reconstructions, subset, result.seconds_per_image
        )

    report = {
        "rows": rows,
        **comparisons(rows, args.optimize_steps),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, CPU",
        "command": shlex.join(["python", "-m", "benchmarks.emoji_frontier", *argv]),
    }
    write_json(json_path, report)
    plot(rows, plot_path)
    for name, row in rows.items():
        print(
            f"{name:60s} {row['psnr']:6.2f} dB  {row['ssim']:.3f}  {row['seconds_per_image']:8.3f} s"
        )
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=2))


def plot(rows: dict[str, dict], path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5))
    axes = figure.subplots()
    for family, marker in (("encoder", "o"), ("optimisation", "s"), ("per-image", "^")):
        chosen = {n: r for n, r in rows.items() if n.startswith(family)}
        axes.plot(
            [r["seconds_per_image"] for r in chosen.values()],
            [r["psnr"] for r in chosen.values()],
            marker=marker,
            label={
                "encoder": "encoder (+ K optimisation steps)",
                "optimisation": "optimisation from the average latent",
                "per-image": "per-image fine-tuning",
            }[family],
        )
    axes.set_xscale("log")
    axes.set_xlabel("seconds per image (CPU, log scale)")
    axes.set_ylabel("PSNR on held-out real emoji (dB)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
