"""``ganenc eval``: reconstruction metrics of paired folders, or of an encoder with K folds."""

from __future__ import annotations

import os

import click

from ganenc.geometry import MAX_RESOLUTION

from .invert import build_inverter, refinement_options
from .options import SEED, given_options

#: Options of an encoder's inversion, which paired folders (already reconstructed) do not use.
ENCODER_ONLY = (
    "gan",
    "checkpoint",
    "gen_options",
    "refine",
    "steps",
    "lr",
    "anchor_weight",
    "loss_terms",
    "loss_options",
    "attention",
    "crop_options",
    "batch_size",
)


@click.command("eval")
@click.option("--real", type=click.Path(file_okay=False), help="Folder of original images.")
@click.option(
    "--recon",
    type=click.Path(file_okay=False),
    help="Folder of reconstructions, paired with --real by file name (extension ignored).",
)
@click.option("--encoder", type=click.Path(), help="Training run directory or encoder file.")
@click.option(
    "--images", type=click.Path(file_okay=False), help="Folder to invert (with --encoder)."
)
@click.option(
    "--folds",
    type=click.IntRange(min=2),
    help="K random folds, reported as mean ± std over folds (each image is inverted on its"
    " own, so the folds of 'invert' + '--real/--recon' equal those of '--encoder').",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the folds.")
@click.option(
    "--metrics",
    help="Comma-separated subset of psnr,ssim,mse,lpips,fid, each required (an error if it"
    " cannot be computed). Default: every metric computable offline; the others are reported"
    " as not computed, with the missing file and where to put it.",
)
@click.option(
    "--fid-weights", type=click.Path(dir_okay=False), help="FID InceptionV3 weights file."
)
@click.option(
    "--fid-min-images",
    type=click.IntRange(min=2),
    default=50,
    show_default=True,
    help="FID is refused below this many images.",
)
@click.option(
    "--resolution",
    type=click.IntRange(min=8, max=MAX_RESOLUTION),
    help="With --real/--recon: compare at this size (default: the reconstructions').",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the report here as JSON ('-': to stdout, the table then to stderr).",
)
@click.option("--force", is_flag=True, help="Overwrite the --json file if it exists.")
@refinement_options
def eval_command(
    real,
    recon,
    encoder,
    images,
    folds,
    seed,
    metrics,
    fid_weights,
    fid_min_images,
    resolution,
    json_path,
    force,
    refine,
    steps,
    batch_size,
    feature_weights,
    progress,
    device,
    **options,
):
    """Evaluate reconstructions: PSNR, SSIM, MSE, LPIPS and FID.

    \b
    Either paired folders (names must match; unmatched names are an error):
      ganenc eval --real photos/ --recon inverted/reconstructions/
    or an encoder on a folder, with K-fold mean ± std (the paper's Table 2):
      ganenc eval --encoder runs/train-... --images photos/ --folds 10 --refine optimize
    For long refinements, invert first (resumable), then evaluate the folders with --folds.
    """
    from ganenc.devices import resolve_device
    from ganenc.evaluation import evaluate_encoder, evaluate_folders, render_report
    from ganenc.files import check_output, json_text, write_json
    from ganenc.progress import stderr_console

    from .options import table_console

    if json_path and json_path != "-":
        # every file the command reads, weights included: --force never writes over one (a
        # run folder's report may go beside its encoder.pt, not onto it)
        encoder_read = encoder
        if encoder is not None and os.path.isdir(encoder):
            from ganenc.encoder_runs import encoder_file

            encoder_read = encoder_file(encoder)
        given = (real, recon, images, encoder_read, fid_weights, feature_weights)
        read = [path for path in given if path is not None and os.path.exists(path)]
        check_output(json_path, force=force, option="--json", inputs=read, dash=True)
    pairs_mode = real is not None or recon is not None
    encoder_mode = encoder is not None or images is not None
    if pairs_mode == encoder_mode:
        raise click.UsageError("give either --real and --recon, or --encoder and --images")
    if metrics is not None and not metrics.strip(", "):
        raise click.BadParameter("name at least one metric, e.g. psnr,ssim", param_hint="--metrics")
    chosen = [m for m in metrics.split(",")] if metrics else None
    common = {
        "metrics": chosen,
        "feature_weights": feature_weights,
        "fid_weights": fid_weights,
        "fid_min_images": fid_min_images,
    }
    if pairs_mode:
        if real is None or recon is None:
            raise click.UsageError("--real and --recon go together")
        if unused := given_options(*ENCODER_ONLY):
            raise click.UsageError(
                f"{', '.join(unused)} change(s) how --encoder inverts --images; --real/--recon"
                " compare reconstructions already made: drop them, or invert with them first"
                " ('ganenc invert ... --refine optimize') and compare its reconstructions"
            )
        report = evaluate_folders(
            real,
            recon,
            resolution=resolution,
            folds=folds,
            seed=seed,
            device=resolve_device(device),
            **common,
        )
    else:
        if encoder is None or images is None:
            raise click.UsageError("--encoder and --images go together")
        if resolution is not None:
            raise click.UsageError(
                "--resolution applies to --real/--recon; with --encoder the reconstructions are"
                " compared at the generator's resolution"
            )
        inverter = build_inverter(
            encoder,
            refine=refine,
            feature_weights=feature_weights,
            device=device,
            steps=steps,
            **options,
        )
        report = evaluate_encoder(
            inverter,
            images,
            folds=folds,
            seed=seed,
            refine=refine,
            steps=steps,
            batch_size=batch_size,
            progress=progress,
            **common,
        )
    # the file first: a table the terminal cannot show must not cost the report
    if json_path == "-":
        click.echo(json_text(report.to_dict()), nl=False)
        render_report(report, console=stderr_console())
        return
    written = write_json(json_path, report.to_dict()) if json_path else None
    render_report(report, console=table_console())
    if written:
        click.echo(f"report: {written}")
