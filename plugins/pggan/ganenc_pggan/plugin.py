"""Hook implementations of this plugin: registrations only, no torch import here.

The GAN plugins' hook modules look alike on purpose (same hooks, their own
names): each is a separate distribution and none imports another plugin.
"""

from __future__ import annotations

from ganenc import hookimpl

#: A small configuration for the contract checks (ganenc plugins --check, ganenc.testing).
CHECK_OPTIONS = {"resolution": 16, "z_dim": 16, "fmaps_base": 64, "fmaps_max": 8}
ENCODER_CHECK_OPTIONS = {"start_channels": 8, "max_channels": 16}


# Deliberately alike: each plugin registers its own hooks; plugins never import each other
@hookimpl
def register_generators(register):
    register(
        "pggan",
        "ganenc_pggan.adapter:load_pggan",
        options="ganenc_pggan.adapter:PGGANOptions",
        description="PGGAN generator (pytorch_GAN_zoo .pth, genforce .pth)",
        check_options=CHECK_OPTIONS,
    )


# Deliberately alike: each plugin registers its own hooks; plugins never import each other
@hookimpl
def register_encoders(register):
    register(
        "pggan-adaptive",
        "ganenc_pggan.encoder:build_pggan_encoder",
        options="ganenc_pggan.encoder:PGGANEncoderOptions",
        generators=("pggan",),
        description="Adaptive-block encoder to z, no style heads (paper Table 9)",
        check_options=ENCODER_CHECK_OPTIONS,
    )


@hookimpl
def register_weights(register):
    """Pretrained weights tags (the model zoo), listed in ganenc_pggan/weights.py."""
    from .weights import register_all

    register_all(register)


@hookimpl
def identify_checkpoint(checkpoint):
    """Recognise this plugin's checkpoint files (wrong-``--gan`` hints elsewhere)."""
    from .identify import identify_pggan_file

    return identify_pggan_file(checkpoint)
