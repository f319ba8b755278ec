"""The studio knows no GAN family: a PGGAN encoder (latent z, no layers) works the same way."""

from __future__ import annotations

import pytest
import torch

import ganenc
from ganenc_studio.session import EXAMPLES_DIR


@pytest.fixture(scope="module")
def pggan_studio(tmp_path_factory):
    from ganenc.editing import Direction
    from ganenc.training.pretrain import pretrain
    from ganenc.training.settings import TrainSettings
    from ganenc_studio.session import Studio

    root = tmp_path_factory.mktemp("pggan-studio")
    run = pretrain(
        TrainSettings(
            gan="pggan",
            generator_options={"resolution": 16, "z_dim": 16, "fmaps_base": 128, "fmaps_max": 16},
            encoder_options={"max_channels": 16},
            attention="none",
            loss={"image_terms": {"mse": 1.0}},
            iterations=2,
            batch_size=2,
            out=root / "run",
            progress=False,
            val_samples=2,
            device="cpu",
        )
    )
    (root / "directions").mkdir()
    vector = torch.linspace(-1, 1, 16)
    Direction("round", "z", vector / vector.norm(), {}).save(root / "directions" / "round.pt")
    studio = Studio.open(str(run), root / "directions", device="cpu")
    yield studio
    studio.close()


def test_a_pggan_encoder_inverts_edits_samples_and_downloads(pggan_studio):
    from ganenc.latents import read_latent_file

    studio = pggan_studio
    info = studio.info()
    assert (info["gan"], info["resolution"], info["layers"]) == ("pggan", 16, None)
    subject = studio.add_example(sorted(p.name for p in EXAMPLES_DIR.glob("*.png"))[0])
    result = studio.invert(subject.id, "optimize", 2)
    assert result["refined"]["steps"] == 2 and result["encoder"]["image"].startswith("data:")
    plain = studio.edit(subject.id, {"round": 0})["image"]
    assert studio.edit(subject.id, {"round": 5})["image"] != plain
    with pytest.raises(ganenc.ConfigError, match="no layers"):
        studio.edit(subject.id, {"round": 1}, [0, 0])
    sample = studio.sample(3, 0.5)
    assert set(sample.latents) == {"z"}
    payload = read_latent_file(studio.export(sample.id, "latents", {"round": 2}))
    assert payload["gan"] == "pggan" and set(payload["latents"]) == {"z"}
