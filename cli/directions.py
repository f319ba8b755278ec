"""``ganenc directions``: learn one latent direction per labelled attribute (InterFaceGAN-style)."""

from __future__ import annotations

import click

from .options import SEED, FiniteFloat, table_console


# Deliberately alike: click option blocks of different commands (own help, types and defaults)
@click.command("directions")
@click.option(
    "--latents",
    required=True,
    type=click.Path(exists=True),
    help="Folder of latent files (or the output folder of 'ganenc invert').",
)
@click.option(
    "--labels",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="CSV: an image-name column (image, name, file, filename or path; of several, the"
    " one naming the latent files) and one column per attribute.",
)
@click.option(
    "--space",
    help="A latent key (w_plus, z...) or the per-layer space of a layer-wise one (w: the"
    " layer mean of w_plus). Default: the per-layer space of the layer-wise code (w for"
    " StyleGAN), else the first latent (z for PGGAN and BigGAN).",
)
@click.option(
    "--attribute",
    "attributes",
    multiple=True,
    help="Only these label columns (repeatable; default: all).",
)
@click.option(
    "--orthogonal",
    is_flag=True,
    help="Make each direction orthogonal to all other attributes (conditional manipulation).",
)
@click.option(
    "--condition",
    "conditions",
    multiple=True,
    help="Make directions orthogonal to this attribute's (repeatable).",
)
@click.option(
    "--classifier",
    type=click.Choice(["logistic", "svm"]),
    default="logistic",
    show_default=True,
    help="Logistic regression (the paper's code) or a linear SVM (InterFaceGAN), scikit-learn.",
)
@click.option("--C", "C", type=FiniteFloat(min=0, min_open=True), default=1.0, show_default=True)
@click.option(
    "--validation",
    type=FiniteFloat(min=0, max=0.9),
    default=0.2,
    show_default=True,
    help="Fraction of samples held out for the reported accuracy.",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the split.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="directions",
    show_default=True,
    help="New folder for <attribute>.pt files and directions.json.",
)
def directions_command(
    latents, labels, space, attributes, orthogonal, conditions, classifier, C, validation, seed, out
):
    """Learn a unit direction per attribute from labelled latents.

    Label rows are matched to latent files by name (extension ignored); names
    found on one side only are counted and listed in directions.json.

    \b
    Example:
      ganenc directions --latents inverted/ --labels labels.csv --space w --orthogonal
    """
    from rich.table import Table
    from rich.text import Text

    from ganenc.editing import learn_directions, save_directions
    from ganenc.files import check_output
    from ganenc.progress import literal, stderr_console

    if orthogonal and conditions:
        raise click.UsageError("use --orthogonal or --condition, not both")
    check_output(out, folder=True)
    condition = "all" if orthogonal else (list(conditions) or None)
    directions, report = learn_directions(
        latents,
        labels,
        space=space,
        attributes=list(attributes) or None,
        condition=condition,
        classifier=classifier,
        C=C,
        validation=validation,
        seed=seed,
    )
    paths = save_directions(directions, report, out)
    # attribute and file names are the user's (a CSV header, --out): shown as written, never
    # as markup, in characters the console can show; the warnings go to stderr
    console, notes = table_console(), stderr_console()
    title = (
        f"Directions in {report['space']} {report['latent_shape']} ({report['matched']} latents)"
    )
    table = Table(title=literal(console, title))
    for column in ("attribute", "pos/neg", "train acc", "held-out acc", "orthogonal to", "file"):
        table.add_column(column, overflow="fold")
    for direction, path in zip(directions, paths, strict=True):
        meta = direction.metadata
        held = meta["validation_accuracy"]
        table.add_row(
            literal(console, direction.attribute),
            f"{meta['positive']}/{meta['negative']}",
            f"{meta['train_accuracy']:.3f}",
            "-" if held is None else f"{held:.3f} (n={meta['validation_samples']})",
            literal(console, ", ".join(meta["conditioned_on"]) or "-"),
            literal(console, path),
        )
    console.print(table)
    for key, what in (
        ("labels_without_latents", "label rows without a latent file"),
        ("latents_without_labels", "latent files without a label row"),
    ):
        if report[key]:
            shown = ", ".join(report[key][:10]) + (" ..." if len(report[key]) > 10 else "")
            notes.print(
                Text.assemble((f"{len(report[key])} {what}:", "yellow"), " ", literal(notes, shown))
            )
    unvalidated = [d.attribute for d in directions if d.metadata["validation_accuracy"] is None]
    if unvalidated and validation > 0:
        notes.print(
            Text.assemble(
                ("no held-out accuracy for ", "yellow"),
                literal(notes, ", ".join(unvalidated), "yellow"),
                (":", "yellow"),
                f" the smaller class times --validation {validation:g} is under one sample;"
                " label more latents (or raise --validation) to measure it",
            )
        )
