"""The BigGAN model zoo: weights tags of this plugin (data only, no torch).

``register_weights`` (in plugin.py) registers every entry below; see
:mod:`ganenc.weights` for how tags are downloaded, verified and cached.

The files are HuggingFace's pytorch-pretrained-BigGAN conversions of DeepMind's
BigGAN-deep TF-Hub modules (the archive maps in its ``model.py``).  Each tag is
two files, ``config.json`` and ``pytorch_model.bin``, stored in one folder: the
checkpoint path is that folder, which is what the ``biggan`` generator reads.
No sha256 is published: the digests are recorded at the first download.
"""

from __future__ import annotations

from ganenc.weights import WeightsEntry, WeightsFile, register_entries

HF_BASE = "https://s3.amazonaws.com/models.huggingface.co/biggan/"
HF_SOURCE = "https://github.com/huggingface/pytorch-pretrained-BigGAN"
HF_LICENCE = (
    "Apache-2.0 (DeepMind's BigGAN-deep TF-Hub modules); conversion by HuggingFace"
    " (pytorch-pretrained-BigGAN, MIT)"
)
RESOLUTIONS = (128, 256, 512)


def all_entries() -> list[WeightsEntry]:
    """Every tag this plugin registers: ``biggan:deep-128``, ``deep-256``, ``deep-512``."""
    return [
        WeightsEntry(
            tag=f"biggan:deep-{resolution}",
            files=(
                WeightsFile("config.json", (f"{HF_BASE}biggan-deep-{resolution}-config.json",)),
                WeightsFile(
                    "pytorch_model.bin", (f"{HF_BASE}biggan-deep-{resolution}-pytorch_model.bin",)
                ),
            ),
            format="hf-biggan",
            description=f"BigGAN-deep ImageNet {resolution} px (HuggingFace conversion)",
            resolution=resolution,
            latents={"z": 128, "class": 1000},
            licence=HF_LICENCE,
            source=HF_SOURCE,
        )
        for resolution in RESOLUTIONS
    ]


def register_all(register) -> None:
    """What plugin.py's ``register_weights`` hook calls."""
    register_entries(register, all_entries())
