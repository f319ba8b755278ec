"""Hook implementations of this plugin: registrations only, no torch import here.

The GAN plugins' hook modules look alike on purpose (same hooks, their own
names): each is a separate distribution and none imports another plugin.
"""

from __future__ import annotations

from ganenc import hookimpl

#: A small configuration for the contract checks (ganenc plugins --check, ganenc.testing).
CHECK_OPTIONS = {"resolution": 32, "channel_width": 4, "z_dim": 16, "num_classes": 10}
ENCODER_CHECK_OPTIONS = {
    "start_channels": 8,
    "max_channels": 16,
    "embedding_dim": 8,
    "hidden_features": 16,
}


# Deliberately alike: each plugin registers its own hooks; plugins never import each other
@hookimpl
def register_generators(register):
    register(
        "biggan",
        "ganenc_biggan.adapter:load_biggan",
        options="ganenc_biggan.adapter:BigGANOptions",
        aliases=("biggan-deep",),
        description="BigGAN-deep generator (HuggingFace pytorch-pretrained-biggan files)",
        check_options=CHECK_OPTIONS,
    )


# Deliberately alike: each plugin registers its own hooks; plugins never import each other
@hookimpl
def register_encoders(register):
    register(
        "biggan-adaptive",
        "ganenc_biggan.encoder:build_biggan_encoder",
        options="ganenc_biggan.encoder:BigGANEncoderOptions",
        generators=("biggan",),
        description="Adaptive-block encoder with conditional batch norm to z and class (Table 10)",
        check_options=ENCODER_CHECK_OPTIONS,
    )


@hookimpl
def register_weights(register):
    """Pretrained weights tags (the model zoo), listed in ganenc_biggan/weights.py."""
    from .weights import register_all

    register_all(register)


@hookimpl
def identify_checkpoint(checkpoint):
    """Recognise this plugin's checkpoint files (wrong-``--gan`` hints elsewhere)."""
    from .identify import identify_biggan_file

    return identify_biggan_file(checkpoint)
