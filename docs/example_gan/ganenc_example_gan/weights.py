"""The plugin's weights tag: a checkpoint shipped next to this file, fetched through file://."""

from __future__ import annotations

from pathlib import Path

from ganenc.weights import WeightsEntry, WeightsFile

#: Written by ``python -m ganenc_example_gan.generator tinygan-demo.pt`` (seed 1, 32 px).
DEMO_FILE = Path(__file__).with_name("tinygan-demo.pt")

DEMO = WeightsEntry(
    tag="tinygan:demo",
    files=(
        WeightsFile(
            "tinygan-demo.pt",
            (DEMO_FILE.as_uri(),),  # a local file; https:// mirrors work the same way
            sha256="f3d0348f1b2e6465f5e01c2fc10d38f18e5baadad2181217f0174eb21ddf132d",
            size=53297,
        ),
    ),
    format="tinygan-pt",
    resolution=32,
    latents={"z": 16},
    licence="MIT",
    source="docs/example_gan in the ganenc repository",
    notes="random weights standing in for a trained model",
)
