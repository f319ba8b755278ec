"""Hook implementations of this plugin: registrations only, no torch import here."""

from __future__ import annotations

from ganenc import hookimpl


@hookimpl
def register_croppers(register):
    register(
        "center",
        "ganenc_attention_center.cropper:CenterCropper",
        options="ganenc_attention_center.cropper:CenterCropperOptions",
        description="Fixed centre crops AT1/AT2 for aligned images (faces)",
    )
