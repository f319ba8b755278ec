"""Registrations only: keep this module free of torch so `ganenc list` stays fast."""

from __future__ import annotations

from ganenc import hookimpl


@hookimpl
def register_croppers(register):
    register(
        "fractions",
        "ganenc_example_cropper.cropper:FractionCropper",
        options="ganenc_example_cropper.cropper:FractionCropperOptions",
        description="Attention boxes at fixed fractions of the image (example plugin)",
    )
