"""Hook implementations of this plugin: registrations only, no torch import here."""

from __future__ import annotations

from ganenc import hookimpl


@hookimpl
def register_croppers(register):
    register(
        "gradcam",
        "ganenc_attention_gradcam.cropper:GradCAMCropper",
        options="ganenc_attention_gradcam.cropper:GradCAMCropperOptions",
        description="AT1/AT2 boxes from Grad-CAM heat maps of a classifier (misaligned images)",
        # contract checks run offline: random VGG16 weights (warned), small classifier input
        check_options={"feature_weights": "random", "classifier_size": 32},
    )
