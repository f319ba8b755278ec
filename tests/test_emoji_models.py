"""The shipped emoji models: offline tags that load, and networks that learned something."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import torch

import ganenc
from ganenc import weights
from ganenc.data import load_image
from ganenc.emoji import GROUPS, heldout_examples
from ganenc.emoji.classifier import normalise
from ganenc.features import build_feature_network

#: Per-channel mean and std of the train split's 3,357 images in [-1, 1] (computed once).
TRAIN_MEAN = (0.5516, 0.4379, 0.3406)
TRAIN_STD = (0.6039, 0.6021, 0.7107)


@pytest.fixture(scope="module")
def heldout():
    folder = heldout_examples()
    with folder.with_name("heldout.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    images = torch.stack([load_image(folder / row["file"], 64) for row in rows])
    return images, torch.tensor([GROUPS.index(row["group"]) for row in rows])


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("GANENC_OFFLINE", "1")


@pytest.mark.parametrize(
    "tag", ["stylegan2:emoji-64", "features:emoji-cnn", "encoder:stylegan2-emoji-64"]
)
def test_tags_resolve_offline_to_shipped_files_that_verify(tag):
    path = weights.fetch(tag)
    assert path.is_file() and path.stat().st_size < 10_000_000
    assert [r.status for r in weights.verify(tag)] == ["ok"]
    assert weights.cache_status(weights.weights_entry(tag)) == "packaged"


@pytest.mark.parametrize(
    "tag", ["stylegan2:emoji-64", "features:emoji-cnn", "encoder:stylegan2-emoji-64"]
)
def test_the_source_a_tag_names_exists_in_the_repository(tag):
    # A user who wants to retrain a shipped network follows this field: no dead paths.
    root = Path(__file__).resolve().parents[1]
    paths = re.findall(r"(?:examples|docs)/[\w./-]+\w", weights.weights_entry(tag).source)
    assert paths, weights.weights_entry(tag).source
    assert [p for p in paths if not (root / p).exists()] == []


@torch.no_grad()
def test_generator_samples_look_like_emoji_not_constant_not_noise():
    generator = ganenc.load_generator("stylegan2", "stylegan2:emoji-64").freeze()
    assert generator.resolution == 64
    images = generator.synthesize(generator.sample_latents(64, seed=0)).clamp(-1, 1)
    mean, std = images.mean(dim=(0, 2, 3)), images.std(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.tensor(TRAIN_MEAN), atol=0.2), mean
    assert torch.allclose(std, torch.tensor(TRAIN_STD), rtol=0.3), std
    assert images.std(dim=0).mean() > 0.3, "samples barely differ from each other"
    # Emoji are smooth shapes on white: neighbouring pixels differ far less than noise would.
    roughness = (images[..., 1:] - images[..., :-1]).abs().mean()
    assert roughness < 0.25 * images.std(), roughness
    # a tag alone names its family
    by_tag = ganenc.load_generator("stylegan2:emoji-64").freeze()
    again = by_tag.synthesize(generator.sample_latents(2, seed=0)).clamp(-1, 1)
    assert torch.allclose(again, images[:2], atol=1e-4)  # batch of 2, not 64: float rounding


@torch.no_grad()
def test_classifier_beats_chance_on_shipped_heldout_emoji(heldout):
    images, groups = heldout
    network = build_feature_network("emoji-cnn")
    accuracy = (network(normalise(images)).argmax(1) == groups).float().mean().item()
    majority = torch.bincount(groups).max().item() / len(groups)
    assert accuracy >= max(0.6, 3 * majority), accuracy


def test_gradcam_with_the_emoji_classifier_gives_image_dependent_boxes(heldout):
    images, _ = heldout
    cropper = ganenc.create("cropper", "gradcam", classifier="emoji-cnn")
    at1, at2 = cropper.boxes(images)
    for boxes in (at1, at2):
        assert ((boxes[:, :2] >= 0) & (boxes[:, 2:] <= 64) & (boxes[:, 2:] > boxes[:, :2])).all()
    assert len({tuple(box.tolist()) for box in at2}) > 3, "AT2 boxes do not depend on the image"


def test_packaged_encoder_beats_the_average_latent_on_heldout_emoji(heldout):
    images, _ = heldout
    inverter = ganenc.Inverter.from_encoder("encoder:stylegan2-emoji-64", device="cpu")
    result = inverter.invert(images)
    average = inverter.generator.average_latents(len(images))
    with torch.no_grad():
        baseline = inverter.synthesize(average).clamp(-1, 1)
    encoder_mse = (result.reconstructions.clamp(-1, 1) - images).pow(2).mean().item()
    baseline_mse = (baseline - images).pow(2).mean().item()
    assert encoder_mse < 0.8 * baseline_mse, (encoder_mse, baseline_mse)
    # the Python API takes the tag too, and gives the same encoder
    loaded = ganenc.load_encoder("encoder:stylegan2-emoji-64").eval()
    with torch.no_grad():
        assert torch.equal(loaded(images)["w_plus"], inverter.encode(images)["w_plus"].cpu())
