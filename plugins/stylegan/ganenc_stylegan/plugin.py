"""Hook implementations of this plugin: registrations only, no torch import here.

The GAN plugins' hook modules look alike on purpose (same hooks, their own
names): each is a separate distribution and none imports another plugin.
"""

from __future__ import annotations

from ganenc import hookimpl

#: A small configuration for the contract checks (ganenc plugins --check, ganenc.testing).
CHECK_OPTIONS = {"resolution": 32, "channel_base": 256, "channel_max": 16, "z_dim": 16, "w_dim": 16}
ENCODER_CHECK_OPTIONS = {"start_channels": 8, "max_channels": 16}


# Deliberately alike: each plugin registers its own hooks; plugins never import each other
@hookimpl
def register_generators(register):
    register(
        "stylegan2",
        "ganenc_stylegan.adapter:load_stylegan2",
        options="ganenc_stylegan.adapter:StyleGAN2Options",
        description="StyleGAN2 config-F generator (rosinality .pt, genforce .pth, NVIDIA .pkl)",
        check_options=CHECK_OPTIONS,
    )
    register(
        "stylegan1",
        "ganenc_stylegan.adapter:load_stylegan1",
        options="ganenc_stylegan.adapter:StyleGAN1Options",
        aliases=("stylegan",),
        description="StyleGAN1 generator (genforce .pth)",
        check_options=CHECK_OPTIONS,
    )
    register(
        "stylegan3",
        "ganenc_stylegan.adapter:load_stylegan3",
        options="ganenc_stylegan.adapter:StyleGAN3Options",
        description="StyleGAN3 config T/R generator (NVIDIA .pkl)",
        check_options=CHECK_OPTIONS,
    )


# Deliberately alike: each plugin registers its own hooks; plugins never import each other
@hookimpl
def register_encoders(register):
    register(
        "stylegan-adaptive",
        "ganenc_stylegan.encoder:build_stylegan_encoder",
        options="ganenc_stylegan.encoder:StyleGANEncoderOptions",
        generators=("stylegan1", "stylegan2", "stylegan3"),
        description="Adaptive-block encoder to w+ (and the 4x4 constant) (paper Table 9)",
        check_options=ENCODER_CHECK_OPTIONS,
    )


@hookimpl
def register_weights(register):
    """Pretrained weights tags (the model zoo), listed in ganenc_stylegan/weights.py."""
    from .weights import register_all

    register_all(register)


@hookimpl
def identify_checkpoint(checkpoint):
    """Recognise this plugin's checkpoint files (wrong-``--gan`` hints elsewhere)."""
    from .identify import identify_stylegan_file

    return identify_stylegan_file(checkpoint)


@hookimpl
def register_commands(cli):
    """``ganenc convert``: a StyleGAN2 generator into another tool's checkpoint layout."""
    from .convert import convert_command

    cli.add_command(convert_command)
