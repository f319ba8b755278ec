"""The PGGAN model zoo: weights tags of this plugin (data only, no torch).

``register_weights`` (in plugin.py) registers every entry below; see
:mod:`ganenc.weights` for how tags are downloaded, verified and cached.

Sources:

- facebookresearch/pytorch_GAN_zoo's hub files (``gan-zoo-pth``) on
  dl.fbaipublicfiles.com; their torch.hub names carry a sha256 prefix, which
  is checked (the full digest is recorded at the first download).
- The genforce model zoo (``genforce-pth``): NVIDIA's official PGGANs
  converted to PyTorch.  Its links are OneDrive shares; when they refuse a
  script, the download error says where to place the file fetched with a browser.
"""

from __future__ import annotations

import re

from ganenc.weights import WeightsEntry, WeightsFile, register_entries

GAN_ZOO_BASE = "https://dl.fbaipublicfiles.com/gan_zoo/PGAN/"
GAN_ZOO_SOURCE = "https://github.com/facebookresearch/pytorch_GAN_zoo/blob/main/hubconf.py"
GAN_ZOO_LICENCE = "BSD-3-Clause (pytorch_GAN_zoo)"

# Deliberately alike: published model-zoo tables (data); plugins never import each other
GENFORCE_BASE = "https://mycuhk-my.sharepoint.com/:u:/g/personal/1155082926_link_cuhk_edu_hk/"
GENFORCE_SOURCE = "https://github.com/genforce/genforce/blob/master/MODEL_ZOO.md"
GENFORCE_LICENCE = (
    "CC BY-NC 4.0 (NVIDIA progressive_growing_of_gans release); conversion by genforce (MIT)"
)
GENFORCE_NOTE = "OneDrive link: if it refuses the download, fetch it with a browser"

#: pytorch_GAN_zoo PGAN files: (tag name, file, resolution, what).
GAN_ZOO = [
    ("celebahq-256", "celebaHQ_s6_i80000-6196db68.pth", 256, "CelebA-HQ"),
    ("celebahq-512", "celebaHQ16_december_s7_i96000-9c72988c.pth", 512, "CelebA-HQ"),
    ("celeba-cropped-128", "celebaCropped_s5_i83000-2b0acc76.pth", 128, "CelebA, cropped"),
    ("dtd-128", "testDTD_s5_i96000-04efa39f.pth", 128, "Describable Textures (DTD)"),
]

#: genforce MODEL_ZOO (models/model_zoo.py at 197feee): (model name, resolution, share id).
GENFORCE_PGGAN = [
    ("pggan_celebahq1024", 1024, "EW_3jQ6E7xlKvCSHYrbmkQQBAB8tgIv5W5evdT6-GuXiWw?e=gRifVa&download=1"),
    ("pggan_bedroom256", 256, "EUZQWGz2GT5Bh_GJLalP63IBvCsXDTOxDFIC_ZBsmoEacA?e=VNXiDb&download=1"),
    ("pggan_livingroom256", 256, "Efzh6qQv6QtCm0YN1lulH-YByqdE3AqlI-E6US_hXMuiig?e=ppdyB2&download=1"),
    ("pggan_diningroom256", 256, "EcLb3_hGUkdClompZo27xk0BNmotgbFqdIeu-ZOGJsBMRg?e=xjYpN3&download=1"),
    ("pggan_kitchen256", 256, "ESCyg6hpNn1LlHVX_un1wLsBZAORUNkW9MO2kU1X5kafAQ?e=09TbGC&download=1"),
    ("pggan_church256", 256, "EQ8cKujs2TVGjCL_j6bsnk8BqD9REF2ME2lBnpbTPsqIvA?e=zH55fT&download=1"),
    ("pggan_tower256", 256, "EeyBJvgRVGJClKr1KKYDF_cBT1FDepRU1-GLqYNh8W9-fQ?e=nrpa5N&download=1"),
    ("pggan_bridge256", 256, "EZ2QScfPy19PiDERLJQ3gPMBP4WmvZHwhNFLzfaP2YD8hQ?e=bef1U9&download=1"),
    ("pggan_restaurant256", 256, "ERvJ4pz8jgtMrcuJXUfcOQEBDugZ099_TetCQs-9-ILCVg?e=qYsVdQ&download=1"),
    ("pggan_classroom256", 256, "EUU9SCOPUxhMoUS4Ceo9kl0BQkVK7d69lA-JeOP-zOWvXw?e=YIB4no&download=1"),
    ("pggan_conferenceroom256", 256, "EX8AF0_6NoJAl5vKFewHWnsBk0r4PK4WsqsMrJyj84TrqQ?e=oNQIZS&download=1"),
    ("pggan_person256", 256, "EWu4SqR42YpCoqsVJOcM2cMBcdfXA0j5wZ2hno9X0R9ydQ?e=KuDRns&download=1"),
    ("pggan_cat256", 256, "EQdveyUNOMtAue52n6BxoHoB6Yup5-PTvBDmyfUn7Un4Hw?e=7acGbT&download=1"),
    ("pggan_dog256", 256, "ESaKyXA5fGlOvXJYDDFbT2kB9c0HlXh9n_wnyhiP05nhow?e=d4aKDV&download=1"),
    ("pggan_bird256", 256, "Ef2p4Pd3AKVCmSm00YikCIABhylh2dLPaFjPfPVn3RiTXA?e=9bRitp&download=1"),
    ("pggan_horse256", 256, "EXwCPdv6XqJFtuvFFoswRScBmLJbhKzaC5D_iovl1GFOTw?e=WDdD77&download=1"),
    ("pggan_sheep256", 256, "ER6J5EKjAUNFtm9VwLf-uUsBZ5dnqxeKsPxY9ijiPtMhcQ?e=OKtfva&download=1"),
    ("pggan_cow256", 256, "ERZLxw7N7xJPm72FyePTbpcByzrr0pH-Fg7qyLt5tYGXwQ?e=ovIPCl&download=1"),
    ("pggan_car256", 256, "EfGc2we47aFDtAY1548pRvsByIju-uXRbkZEFpJotuPKZw?e=DQqVj8&download=1"),
    ("pggan_bicycle256", 256, "Ed1dN_FgwmdBgeNWhaRUry8BgwT88-n2ppicSDPx-f7f_Q?e=bxTxnf&download=1"),
    ("pggan_motorbike256", 256, "EV3yQdeJXIdPjZbMO0mp2-MBJbKuuBdypzBL4gnedO57Dw?e=tXdvtD&download=1"),
    ("pggan_bus256", 256, "Ed7-OYLnq0RCqRlM8qK8wZ8B87dz_NUxIKBrvyFUwRCEbg?e=VP5bmX&download=1"),
    ("pggan_train256", 256, "EedE2cozKOVAkhvbdLd4SfwBknFW8vWZnKiqgeIBbAvCCA?e=BrLpTl&download=1"),
    ("pggan_boat256", 256, "Eb39waqQFr9Bp4wO0rC5NHwB0Vz2NGCuqbRPucguBIkDrg?e=lddSyL&download=1"),
    ("pggan_airplane256", 256, "Ee6FzIx3KjNDhxrS5mDvpCEB3iQ7TgErmKhbwbV-eF07iw?e=xflPXa&download=1"),
    ("pggan_bottle256", 256, "EWhoy2AFCTZGtEG1UoayWjcB9Kdc_wreJ8p4RlBB93nbNg?e=DMZceU&download=1"),
    ("pggan_chair256", 256, "EbQRTfwdostBhXG30Uacn7ABsEUFa-tEW3oxiM5zDYQbRw?e=FkB7T0&download=1"),
    ("pggan_pottedplant256", 256, "EWg7hnoGATBOuJvXWr4m7CQBJL9o7nqnD6nOMRhtH2SKXg?e=Zi3hjD&download=1"),
    ("pggan_tvmonitor256", 256, "EVXwttoJVtBMuhHNDdK3cMwBdMiZARJV38PMTsL6whnFlA?e=RbG0ru&download=1"),
    ("pggan_diningtable256", 256, "EXVzBkbmTCVImMtuHLCTBeMBXZmv0RWyx5KXQQAe7-7D5w?e=6RYSnm&download=1"),
    ("pggan_sofa256", 256, "EaADQYDXwY9NrzbiUFcRYRgBOu1GdJMG8YgNZZmbNjbn-Q?e=DqKrXG&download=1"),
]  # fmt: skip


def genforce_tag_name(model: str) -> str:
    """``pggan_celebahq1024`` -> ``celebahq-1024``."""
    match = re.match(r"^[a-z0-9]+?_(.+?)(\d+)$", model)
    if match is None:
        raise ValueError(f"unexpected genforce model name {model!r}")
    return f"{match.group(1).replace('_', '-')}-{match.group(2)}"


def all_entries() -> list[WeightsEntry]:
    """Every tag this plugin registers."""
    entries = [
        WeightsEntry(
            tag=f"pggan:{name}",
            files=(WeightsFile.from_hub_url(GAN_ZOO_BASE + filename),),
            format="gan-zoo-pth",
            description=f"PGGAN {what}, {resolution} px (pytorch_GAN_zoo)",
            resolution=resolution,
            licence=GAN_ZOO_LICENCE,
            source=GAN_ZOO_SOURCE,
        )
        for name, filename, resolution, what in GAN_ZOO
    ]
    for model, resolution, share in GENFORCE_PGGAN:
        entries.append(
            WeightsEntry(
                tag=f"pggan:{genforce_tag_name(model)}",
                files=(WeightsFile(f"{model}.pth", (GENFORCE_BASE + share,)),),
                format="genforce-pth",
                description=f"NVIDIA's official PGGAN, converted by genforce ({model},"
                f" {resolution} px)",
                resolution=resolution,
                latents={"z": 512},
                licence=GENFORCE_LICENCE,
                source=GENFORCE_SOURCE,
                notes=GENFORCE_NOTE,
            )
        )
    return entries


def register_all(register) -> None:
    """What plugin.py's ``register_weights`` hook calls."""
    register_entries(register, all_entries())
