"""The StyleGAN model zoo: weights tags of this plugin (data only, no torch).

``register_weights`` (in plugin.py) registers every entry below; see
:mod:`ganenc.weights` for how tags are downloaded, verified and cached.

Sources:

- NVIDIA's stylegan2-ada-pytorch pickles (``nvidia-pkl``) on NVIDIA's CDN:
  ``stylegan2:ffhq-1024`` is the original StyleGAN2 config-F FFHQ generator.
- NVIDIA's NGC pickles of the StyleGAN3 release (``stylegan3:*`` and the
  retrained ``stylegan2:ngc-*``).
- The genforce model zoo (``genforce-pth``): StyleGAN1 and StyleGAN2 converted
  from NVIDIA's TensorFlow releases, plus models genforce trained.  Its links
  are OneDrive shares; when they refuse a script, the download error says where
  to place the file fetched with a browser.

No sha256 is published for any of these files: the digest is recorded at the
first download (and checked from then on).  NVIDIA pickles need the
``ganenc_stylegan.checkpoints.nvidia_pickle`` reader.

One tag ships inside this distribution (``assets/``), so it works offline:
``stylegan2:emoji-64``, a small StyleGAN2 that ganenc trained on the Noto emoji
images (``examples/train_emoji_gan.py``, ``docs/emoji-models.md``).
"""

from __future__ import annotations

import re

from ganenc.weights import WeightsEntry, WeightsFile, register_entries

STYLEGAN_LATENTS = {"z": 512, "w": 512}

NVIDIA_ADA_BASE = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
NVIDIA_ADA_SOURCE = "https://github.com/NVlabs/stylegan2-ada-pytorch#data-repository"
NVIDIA_ADA_LICENCE = "NVIDIA Source Code License-NC (non-commercial), stylegan2-ada-pytorch"

NGC_STYLEGAN3_BASE = (
    "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/"
)
NGC_STYLEGAN2_BASE = (
    "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
)
NGC_SOURCE = "https://github.com/NVlabs/stylegan3#additional-material"
NGC_LICENCE = "NVIDIA Source Code License-NC (non-commercial), see the NGC model card"

# Deliberately alike: published model-zoo tables (data), one per release
GENFORCE_BASE = "https://mycuhk-my.sharepoint.com/:u:/g/personal/1155082926_link_cuhk_edu_hk/"
GENFORCE_SOURCE = "https://github.com/genforce/genforce/blob/master/MODEL_ZOO.md"
GENFORCE_NOTE = "OneDrive link: if it refuses the download, fetch it with a browser"

#: stylegan2-ada-pytorch pretrained pickles: (tag name, file, resolution, what).
NVIDIA_ADA = [
    ("ffhq-1024", "ffhq.pkl", 1024, "FFHQ, original StyleGAN2 config F"),
    ("metfaces-1024", "metfaces.pkl", 1024, "MetFaces, transfer from FFHQ with ADA"),
    ("afhqcat-512", "afhqcat.pkl", 512, "AFHQ Cat, ADA from scratch"),
    ("afhqdog-512", "afhqdog.pkl", 512, "AFHQ Dog, ADA from scratch"),
    ("afhqwild-512", "afhqwild.pkl", 512, "AFHQ Wild, ADA from scratch"),
    ("brecahad-512", "brecahad.pkl", 512, "BreCaHAD, ADA from scratch"),
]

#: StyleGAN2 pickles of the StyleGAN3 release (stylegan3 code base), unconditional ones.
NGC_STYLEGAN2 = [
    ("ffhq", 1024), ("ffhq", 512), ("ffhq", 256), ("ffhqu", 1024), ("ffhqu", 256),
    ("metfaces", 1024), ("metfacesu", 1024), ("afhqv2", 512), ("afhqcat", 512),
    ("afhqdog", 512), ("afhqwild", 512), ("brecahad", 512), ("celebahq", 256),
    ("lsundog", 256),
]  # fmt: skip

#: StyleGAN3 pickles: (config, dataset, resolution).
NGC_STYLEGAN3 = [
    (config, dataset, resolution)
    for config in ("t", "r")
    for dataset, resolution in (
        ("ffhq", 1024), ("ffhqu", 1024), ("ffhqu", 256), ("metfaces", 1024),
        ("metfacesu", 1024), ("afhqv2", 512),
    )
]  # fmt: skip

#: genforce MODEL_ZOO (models/model_zoo.py at 197feee): (model name, resolution, share id).
GENFORCE_STYLEGAN1 = [
    ("stylegan_ffhq1024", 1024, "EdfMxgb0hU9BoXwiR3dqYDEBowCSEF1IcsW3n4kwfoZ9OQ?e=VwIV58&download=1"),
    ("stylegan_celebahq1024", 1024, "EcCdXHddE7FOvyfmqeOyc9ABqVuWh8PQYFnV6JM1CXvFig?e=1nUYZ5&download=1"),
    ("stylegan_bedroom256", 256, "Ea6RBPddjcRNoFMXm8AyEBcBUHdlRNtjtclNKFe89amjBw?e=Og8Vff&download=1"),
    ("stylegan_cat256", 256, "EVjX8u9HuehLip3z0hRfIHcB7QtoFkTB7NiRDb8nrKOl2w?e=lHcp1B&download=1"),
    ("stylegan_car512", 512, "EcRJNNzzUzJGjI2X53S9HjkBhXkKT5JRd6Q3IIhCY1AyRw?e=FvMRNj&download=1"),
    ("stylegan_celeba_partial256", 256, "ET2etKNzMS9JmHj5j60fqMcBRJfQfYNvqUrujaIXxCvKDQ?e=QReLE6&download=1"),
    ("stylegan_ffhq256", 256, "ES-NAUCC2qdHg87BftvlBiQBVpbJ8-005Q4TNr5KrOxQEw?e=00AnWt&download=1"),
    ("stylegan_ffhq512", 512, "EZYrrwOiEgVOg-PfGv7QTegBzFQ9yq2v7o1WxNq5JJ9KNA?e=SZU8PI&download=1"),
    ("stylegan_livingroom256", 256, "EfFCYLHjqbFDmjOvCCFJgDcBZ1QYgETfZJxp4ZTHjLxZBg?e=InVd0n&download=1"),
    ("stylegan_diningroom256", 256, "ERsUza_hSFRIm4iZCag7P0kBQ9EIdfQKByw4QYt_ay97lg?e=Cimh7S&download=1"),
    ("stylegan_kitchen256", 256, "ERcYvoingQNKix35lUs0vUkBQQkAZMp1rtDxjwNlOJAoaA?e=a1Tcwr&download=1"),
    ("stylegan_apartment256", 256, "EfurPNSB2BRFtXdqGkmDD6YBwyKN8YK2v7nKwnJQdsbf6A?e=w3oYa4&download=1"),
    ("stylegan_church256", 256, "ETMgG1_d06tAlbUkJD1qA9IBaLZ9zJKPkG2kO-4jxhVV5w?e=Dbkb7o&download=1"),
    ("stylegan_tower256", 256, "Ebm9QMgqB2VDqyIE5rFhreEBgZ_RyKcRf8bQ333K453u3w?e=if8sDj&download=1"),
    ("stylegan_bridge256", 256, "Ed9QM6OP9sVHnazSp4cqPSEBb-ALfBPXRxP1hD7FsTYh8w?e=3vv06p&download=1"),
    ("stylegan_restaurant256", 256, "ESDhYr01WtlEvBNFrVpFezcB2l9lF1rBYuHFoeNpBr5B7A?e=uFWFNh&download=1"),
    ("stylegan_classroom256", 256, "EbWnI3oto9NPk-lxwZlWqPQB2atWpGiTWMIT59MzF9ij9Q?e=KvcNBg&download=1"),
    ("stylegan_conferenceroom256", 256, "Eb1gVi3pGa9PgJ4XYYu_6yABQZ0ZcGDak4FEHaTHaeYFzw?e=0BeE8t&download=1"),
    ("stylegan_animeface512", 512, "EWDWflY6lBpGgX0CGQpd2Z4B5wTEVamTOA9JRYne7zdCvA?e=tOzgYA&download=1"),
    ("stylegan_animeportrait512", 512, "EXBvhTBi-v5NsnQtrxhFEKsBin4xg-Dud9Jr62AEwFTIxg?e=bMGK7r&download=1"),
    ("stylegan_artface512", 512, "Eca0OiGqhyZMmoPbKahSBWQBWvcAH4q2CE3zdZJflp2jkQ?e=h4rWAm&download=1"),
]  # fmt: skip
GENFORCE_STYLEGAN2 = [
    ("stylegan2_ffhq1024", 1024, "EX0DNWiBvl5FuOQTF4oMPBYBNSalcxTK0AbLwBn9Y3vfgg?e=Q0sZit&download=1"),
    ("stylegan2_church256", 256, "EQzDtJUdQ4ROunMGn2sZouEBmNeFX4QWvxjermVE5cZvNA?e=tQ7r9r&download=1"),
    ("stylegan2_cat256", 256, "EUKXeBwUUbZJr6kup7PW4ekBx2-vmTp8FjcGb10v8bgJxQ?e=nkerMF&download=1"),
    ("stylegan2_horse256", 256, "EconoT6tb69OuAIqfXRtGlsBZz4vBx01UmmFO-JAS356Jg?e=bcSCC4&download=1"),
    ("stylegan2_car512", 512, "EYSnUsxU8KJFuMHhZm-JLWoB0nHxdlbrLHNZ_Qkoe3b9LA?e=Ycjp5A&download=1"),
]  # fmt: skip

#: genforce models converted from NVIDIA's releases (genforce trained the others).
GENFORCE_OFFICIAL = {
    "stylegan_ffhq1024", "stylegan_celebahq1024", "stylegan_bedroom256", "stylegan_cat256",
    "stylegan_car512", "stylegan2_ffhq1024", "stylegan2_church256", "stylegan2_cat256",
    "stylegan2_horse256", "stylegan2_car512",
}  # fmt: skip
GENFORCE_THIRD_PARTY = {"stylegan_animeface512", "stylegan_animeportrait512", "stylegan_artface512"}


def genforce_tag_name(model: str) -> str:
    """``stylegan_celeba_partial256`` -> ``celeba-partial-256``."""
    match = re.match(r"^[a-z0-9]+?_(.+?)(\d+)$", model)
    if match is None:
        raise ValueError(f"unexpected genforce model name {model!r}")
    return f"{match.group(1).replace('_', '-')}-{match.group(2)}"


def _genforce_entry(
    family: str, model: str, resolution: int, share: str, prefix: str = ""
) -> WeightsEntry:
    version = "StyleGAN2" if family == "stylegan2" else "StyleGAN"
    if model in GENFORCE_OFFICIAL:
        origin = f"NVIDIA's official {version}, converted by genforce"
        licence = (
            "CC BY-NC 4.0 (NVIDIA StyleGAN release)"
            if family == "stylegan1"
            else "NVIDIA Source Code License-NC (NVIDIA StyleGAN2 release)"
        ) + "; conversion by genforce (MIT)"
    elif model in GENFORCE_THIRD_PARTY:
        origin = "third-party StyleGAN, converted by genforce"
        licence = "third-party weights: see genforce's MODEL_ZOO.md for their origin"
    else:
        origin = f"{version} trained by genforce"
        licence = "genforce model zoo (code MIT); see MODEL_ZOO.md"
    note = GENFORCE_NOTE
    if "car" in model:
        note += "; the car images are 512x384 padded to 512x512"
    return WeightsEntry(
        tag=f"{family}:{prefix}{genforce_tag_name(model)}",
        files=(WeightsFile(f"{model}.pth", (GENFORCE_BASE + share,)),),
        format="genforce-pth",
        description=f"{origin} ({model}, {resolution} px)",
        resolution=resolution,
        latents=STYLEGAN_LATENTS,
        licence=licence,
        source=GENFORCE_SOURCE,
        notes=note,
    )


#: ``stylegan2:emoji-64``: the shipped file and its digest (updated when the file is re-exported).
EMOJI_64_FILE = "stylegan2-emoji-64.pt"
EMOJI_64_SHA256 = "3b3fb9b19bce1b6e278dffabe756dd98d0dae7df8f15ada307e97fcd6986667b"
EMOJI_64 = WeightsEntry(
    tag="stylegan2:emoji-64",
    files=(WeightsFile(EMOJI_64_FILE, (), sha256=EMOJI_64_SHA256),),
    format="rosinality-pt",
    description="StyleGAN2 trained by ganenc on 3,357 Noto emoji, 64 px (shipped, offline)",
    resolution=64,
    latents={"z": 128, "w": 128},
    licence="MIT (ganenc); trained on Noto Color Emoji renders (OFL-1.1 font)",
    source="examples/train_emoji_gan.py (docs/emoji-models.md)",
    cache="package",
    package="ganenc_stylegan.assets",
)


#: The pre-trained encoder of ``stylegan2:emoji-64`` (``--encoder encoder:stylegan2-emoji-64``).
EMOJI_64_ENCODER_FILE = "encoder-stylegan2-emoji-64.pt"
EMOJI_64_ENCODER_SHA256 = "c3335c3aab2bed5ef2ab54be14755a0775e9e17e7be20625b9bf5d16e3de2485"
EMOJI_64_ENCODER = WeightsEntry(
    tag="encoder:stylegan2-emoji-64",
    files=(WeightsFile(EMOJI_64_ENCODER_FILE, (), sha256=EMOJI_64_ENCODER_SHA256),),
    format="ganenc-encoder",
    description="ganenc's encoder for stylegan2:emoji-64, pre-trained with Grad-CAM crops"
    " of features:emoji-cnn (shipped, offline)",
    resolution=64,
    licence="MIT (ganenc)",
    source="examples/emoji-encoder.yaml, examples/ship_emoji_encoder.py (docs/emoji-models.md)",
    cache="package",
    package="ganenc_stylegan.assets",
)


def stylegan2_entries() -> list[WeightsEntry]:
    """Tags of the ``stylegan2`` generator."""
    entries = [EMOJI_64] + [
        WeightsEntry(
            tag=f"stylegan2:{name}",
            files=(WeightsFile(filename, (NVIDIA_ADA_BASE + filename,)),),
            format="nvidia-pkl",
            description=f"{what}, {resolution} px (NVIDIA stylegan2-ada-pytorch)",
            resolution=resolution,
            latents=STYLEGAN_LATENTS,
            licence=NVIDIA_ADA_LICENCE,
            source=NVIDIA_ADA_SOURCE,
        )
        for name, filename, resolution, what in NVIDIA_ADA
    ]
    for dataset, resolution in NGC_STYLEGAN2:
        entries.append(
            _ngc_entry(
                f"stylegan2:ngc-{dataset}-{resolution}",
                NGC_STYLEGAN2_BASE,
                f"stylegan2-{dataset}-{resolution}x{resolution}.pkl",
                f"StyleGAN2 {dataset} {resolution} px retrained for the StyleGAN3 paper",
                resolution,
                notes="pickle of the stylegan3 code base (training/networks_stylegan2.py)",
            )
        )
    for model, resolution, share in GENFORCE_STYLEGAN2:
        # The FFHQ file is the same network as stylegan2:ffhq-1024 in genforce's format.
        prefix = "genforce-" if model == "stylegan2_ffhq1024" else ""
        entries.append(_genforce_entry("stylegan2", model, resolution, share, prefix))
    return entries


def stylegan1_entries() -> list[WeightsEntry]:
    """Tags of the ``stylegan1`` generator (genforce's converted files)."""
    return [
        _genforce_entry("stylegan1", model, resolution, share)
        for model, resolution, share in GENFORCE_STYLEGAN1
    ]


def stylegan3_entries() -> list[WeightsEntry]:
    """Tags of the ``stylegan3`` generator (NVIDIA NGC pickles)."""
    return [
        _ngc_entry(
            f"stylegan3:{config}-{dataset}-{resolution}",
            NGC_STYLEGAN3_BASE,
            f"stylegan3-{config}-{dataset}-{resolution}x{resolution}.pkl",
            f"StyleGAN3-{config.upper()} {dataset} {resolution} px (NVIDIA)",
            resolution,
        )
        for config, dataset, resolution in NGC_STYLEGAN3
    ]


def _ngc_entry(
    tag: str, base: str, filename: str, description: str, resolution: int, notes: str = ""
) -> WeightsEntry:
    """A pickle of NVIDIA's NGC catalogue (StyleGAN3 paper's models and retrained StyleGAN2s)."""
    return WeightsEntry(
        tag=tag,
        files=(WeightsFile(filename, (base + filename,)),),
        format="nvidia-pkl",
        description=description,
        resolution=resolution,
        latents=STYLEGAN_LATENTS,
        licence=NGC_LICENCE,
        source=NGC_SOURCE,
        notes=notes,
    )


def all_entries() -> list[WeightsEntry]:
    """Every tag this plugin registers."""
    return stylegan2_entries() + stylegan1_entries() + stylegan3_entries() + [EMOJI_64_ENCODER]


def register_all(register) -> None:
    """What plugin.py's ``register_weights`` hook calls."""
    register_entries(register, all_entries())
