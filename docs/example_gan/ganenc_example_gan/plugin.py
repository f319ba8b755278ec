"""Registrations only: keep this module free of torch so `ganenc list` stays fast."""

from __future__ import annotations

from ganenc import hookimpl


@hookimpl
def register_generators(register):
    register(
        "tinygan",
        "ganenc_example_gan.generator:load_tinygan",
        options="ganenc_example_gan.generator:TinyGANOptions",
        description="A tiny style-modulated GAN (example plugin)",
        check_options={"resolution": 16},  # what `ganenc plugins --check` builds
    )


@hookimpl
def register_encoders(register):
    register(
        "tinygan-encoder",
        "ganenc_example_gan.encoder:build_tiny_encoder",
        options="ganenc_example_gan.encoder:TinyEncoderOptions",
        generators=("tinygan",),  # build_encoder picks this builder for tinygan generators
        description="Convolutional encoder to the tiny GAN's w+ (example plugin)",
    )


@hookimpl
def register_weights(register):
    from ganenc.weights import register_entries

    from .weights import DEMO

    register_entries(register, [DEMO])
