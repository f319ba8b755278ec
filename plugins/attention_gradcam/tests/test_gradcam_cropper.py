"""Grad-CAM boxes: heat map -> boxes, a trained tiny CNN finds its square, classifier options."""

from __future__ import annotations

import sys
import time
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ganenc
from ganenc.cropping import attention_pairs
from ganenc.errors import ConfigError, WeightsNotFoundError
from ganenc.features import RandomFeatureWeightsWarning
from ganenc.testing import check_cropper
from ganenc_attention_gradcam.cropper import (
    FlatHeatmapWarning,
    GradCAMCropper,
    GradCAMCropperOptions,
    find_target_layer,
    heatmap_to_boxes,
)

SIZE = 32
SQUARE = 8


# -- heatmap_to_boxes ------------------------------------------------------------------------
def test_bounding_box_of_the_region_above_each_threshold():
    heat = torch.zeros(1, 20, 30)
    heat[0, 4:12, 10:25] = 0.5  # AT1 region
    heat[0, 6:9, 14:18] = 1.0  # AT2 region, inside
    at1, at2 = heatmap_to_boxes(heat, thresholds=(0.4, 0.9))
    assert at1.tolist() == [[10, 4, 25, 12]]
    assert at2.tolist() == [[14, 6, 18, 9]]
    assert at1.dtype == torch.int64


def test_normalisation_makes_thresholds_relative():
    heat = torch.zeros(2, 16, 16)
    heat[0, 2:5, 3:7] = 100.0
    heat[1] = -3.0
    heat[1, 10:12, 8:16] = -1.0  # the maximum of a negative map
    (boxes,) = heatmap_to_boxes(heat, thresholds=(0.5,))
    assert boxes.tolist() == [[3, 2, 7, 5], [8, 10, 16, 12]]


def test_gaussian_blob_gives_nested_boxes():
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    heat = torch.exp(-((ys - 10) ** 2 + (xs - 20) ** 2) / (2 * 4.0**2))[None]
    at1, at2 = heatmap_to_boxes(heat, thresholds=(0.3, 0.6))
    (x0, y0, x1, y1), (u0, v0, u1, v1) = at1[0].tolist(), at2[0].tolist()
    assert x0 <= u0 < u1 <= x1 and y0 <= v0 < v1 <= y1
    assert (u1 - u0) < (x1 - x0) and (v1 - v0) < (y1 - y0)
    assert x0 < 20 < x1 and y0 < 10 < y1


def test_min_size_grows_around_the_centre_and_stays_inside():
    heat = torch.zeros(2, 32, 32)
    heat[0, 15, 15] = 1.0  # one pixel in the middle
    heat[1, 0, 31] = 1.0  # one pixel in the top-right corner
    at1, at2 = heatmap_to_boxes(heat, thresholds=(0.5, 0.5), min_size=[10, (4, 6)])
    assert at1.tolist() == [[10, 10, 20, 20], [22, 0, 32, 10]]
    assert at2.tolist() == [[12, 13, 18, 17], [26, 0, 32, 4]]  # centre 15.5: floor
    (big,) = heatmap_to_boxes(heat, thresholds=(0.5,), min_size=100)  # larger than the image
    assert big.tolist() == [[0, 0, 32, 32]] * 2


def test_flat_or_broken_heat_maps_give_the_whole_image():
    heat = torch.stack([torch.zeros(8, 12), torch.full((8, 12), float("nan"))])
    for boxes in heatmap_to_boxes(heat, thresholds=(0.3, 0.6)):
        assert boxes.tolist() == [[0, 0, 12, 8]] * 2
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        heatmap_to_boxes(torch.zeros(8, 8))
    with pytest.raises(ValueError, match="entries"):
        heatmap_to_boxes(torch.zeros(1, 8, 8), thresholds=(0.3, 0.6), min_size=[1, 2, 3])


# -- a tiny CNN trained to find a bright square ------------------------------------------------
class SquareNet(nn.Module):
    """Two convs, global average pooling, linear: class 1 when a bright square is present."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()
        )
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def square_images(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Dim noise; half the images get a bright SQUARE x SQUARE square at a random place."""
    images = torch.rand(n, 3, SIZE, SIZE, generator=generator) * 0.4 - 0.9
    labels = torch.arange(n) % 2
    corners = torch.randint(0, SIZE - SQUARE + 1, (n, 2), generator=generator)
    for i in range(n):
        if labels[i]:
            y, x = corners[i].tolist()
            images[i, :, y : y + SQUARE, x : x + SQUARE] = 0.9
    return images, labels


@pytest.fixture(scope="module")
def trained_net() -> SquareNet:
    torch.manual_seed(0)
    net = SquareNet()
    preprocess = GradCAMCropper(classifier=nn.Conv2d(3, 1, 1), classifier_size=None).preprocess
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(0)
    for _ in range(150):
        images, labels = square_images(32, generator)
        loss = F.cross_entropy(net(preprocess(images)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test_images, test_labels = square_images(64, torch.Generator().manual_seed(123))
    with torch.no_grad():
        accuracy = (net(preprocess(test_images)).argmax(1) == test_labels).float().mean()
    assert accuracy > 0.95, f"the tiny CNN did not learn its task (accuracy {accuracy:.2f})"
    return net.eval()


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_at1_box_contains_the_off_centre_square(trained_net, method):
    cropper = ganenc.create(
        "cropper",
        "gradcam",
        classifier=trained_net,
        method=method,
        classifier_size=None,
        min_fraction=0.25,
    )
    images = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(7)) * 0.4 - 0.9
    squares = [(2, 21), (19, 3)]  # (y, x): top right, bottom left
    for i, (y, x) in enumerate(squares):
        images[i, :, y : y + SQUARE, x : x + SQUARE] = 0.9
    at1, at2 = cropper.boxes(images)
    for i, (y, x) in enumerate(squares):
        x0, y0, x1, y1 = at1[i].tolist()
        assert x0 <= x and y0 <= y and x + SQUARE <= x1 and y + SQUARE <= y1, (at1[i], (y, x))
        assert (x1 - x0) * (y1 - y0) < SIZE * SIZE / 2, "AT1 should localise, not take it all"
        u0, v0, u1, v1 = at2[i].tolist()
        assert u0 < x + SQUARE and x < u1 and v0 < y + SQUARE and y < v1, "AT2 misses the square"


def test_boxes_work_inside_no_grad_and_keep_crops_differentiable(trained_net):
    cropper = ganenc.create("cropper", "gradcam", classifier=trained_net, classifier_size=None)
    images, _ = square_images(2, torch.Generator().manual_seed(3))
    source = torch.zeros_like(images, requires_grad=True)
    reconstruction = images + source
    pairs = attention_pairs(cropper, images, reconstruction)  # boxes under torch.no_grad()
    assert [p.name for p in pairs] == ["whole", "at1", "at2"]
    sum(p.reconstruction.square().mean() for p in pairs).backward()
    assert source.grad.abs().sum() > 0
    assert not any(p.grad is not None for p in trained_net.parameters())


def test_contract_and_resizing_to_the_classifier_size(trained_net):
    check_cropper(
        ganenc.create("cropper", "gradcam", classifier=trained_net, classifier_size=16),
        resolution=SIZE,
    )
    cropper = GradCAMCropper(classifier=trained_net, classifier_size=16)
    assert cropper.preprocess(torch.zeros(1, 3, 40, 40)).shape[-1] == 16
    assert cropper.heatmaps(torch.zeros(1, 3, 40, 24)).shape == (1, 40, 24)


# -- classifier options ----------------------------------------------------------------------
def test_default_vgg16_without_weights_offline_fails_fast_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("GANENC_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(WeightsNotFoundError) as info:
        ganenc.create("cropper", "gradcam")
    assert time.monotonic() - start < 5
    assert str(tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth") in str(info.value)


def test_vgg16_with_random_weights_hooks_features_28():
    with pytest.warns(RandomFeatureWeightsWarning):
        cropper = ganenc.create(
            "cropper", "gradcam", classifier="vgg16", feature_weights="random", classifier_size=32
        )
    assert cropper.target_layer is cropper.classifier.get_submodule("features.28")
    assert not any(m.inplace for m in cropper.classifier.modules() if isinstance(m, nn.ReLU))
    boxes = cropper.boxes(torch.rand(1, 3, 48, 48) * 2 - 1)
    assert len(boxes) == 2 and boxes[0].shape == (1, 4)


def test_module_factory_with_a_weights_file(tmp_path, monkeypatch):
    (tmp_path / "tiny_factory_for_gradcam.py").write_text(
        "from torch import nn\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),\n"
        "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tiny_factory_for_gradcam", raising=False)
    torch.manual_seed(1)
    from tiny_factory_for_gradcam import build

    state = build().state_dict()
    weights = tmp_path / "tiny.pth"
    torch.save(state, weights)
    cropper = ganenc.create(
        "cropper",
        "gradcam",
        classifier="tiny_factory_for_gradcam:build",
        feature_weights=str(weights),
        classifier_size=None,
    )
    assert torch.equal(cropper.classifier[0].weight, state["0.weight"])
    assert cropper.target_layer is cropper.classifier[0]
    check_cropper(cropper, resolution=16)
    with pytest.raises(ConfigError, match="cannot import"):
        ganenc.create("cropper", "gradcam", classifier="tiny_factory_for_gradcam:missing")


def test_option_errors():
    with pytest.raises(ConfigError, match="no layer 'features.99'"):
        ganenc.create("cropper", "gradcam", classifier=SquareNet(), target_layer="features.99")
    with pytest.raises(ConfigError, match="min_fraction has 3 values"):
        ganenc.create("cropper", "gradcam", classifier=SquareNet(), min_fraction=(0.1, 0.2, 0.3))
    with pytest.raises(ConfigError, match="thresholds"):
        ganenc.create("cropper", "gradcam", classifier=SquareNet(), thresholds=(0.0, 0.5))
    with pytest.raises(ConfigError, match="must not decrease.*AT2 is cropped inside AT1"):
        ganenc.create("cropper", "gradcam", classifier=SquareNet(), thresholds=(0.9, 0.1))
    with pytest.raises(ConfigError, match="unknown setting"):
        ganenc.create("cropper", "gradcam", classifier=SquareNet(), colour="red")
    with pytest.raises(ConfigError, match="no Conv2d"):
        find_target_layer(nn.Linear(2, 2), None)
    assert GradCAMCropperOptions().classifier == "vgg16"


# -- weights and target layers refused at construction ----------------------------------------
EMOJI_FACTORY = "ganenc.emoji.classifier:EmojiCNN"


def test_factory_classifier_needs_weights_or_the_loud_random_opt_in():
    from ganenc.emoji.classifier import packaged_weights

    with pytest.raises(ConfigError, match="random initial weights.*feature_weights=PATH"):
        ganenc.create("cropper", "gradcam", classifier=EMOJI_FACTORY)
    with pytest.warns(RandomFeatureWeightsWarning):
        ganenc.create("cropper", "gradcam", classifier=EMOJI_FACTORY, feature_weights="random")
    trained = ganenc.create(
        "cropper", "gradcam", classifier=EMOJI_FACTORY, feature_weights=str(packaged_weights())
    )
    shipped = ganenc.create("cropper", "gradcam", classifier="features:emoji-cnn")  # the tag form
    for ours, theirs in zip(
        trained.classifier.state_dict().values(),
        shipped.classifier.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(ours.float(), theirs.float())


def test_a_module_keeps_its_own_weights_and_refuses_the_random_opt_in(trained_net):
    with pytest.raises(ConfigError, match="does not apply to a classifier module"):
        ganenc.create("cropper", "gradcam", classifier=trained_net, feature_weights="random")
    cropper = ganenc.create("cropper", "gradcam", classifier=trained_net, classifier_size=None)
    assert cropper.classifier is trained_net


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"target_layer": "groups"}, r"'groups' \(Linear\) gives \[1, 9\], not \[N, C, H, W\]"),
        ({"target_layer": "attributes"}, "not used by the classifier's forward"),
        ({"target_layer": "pool"}, "1x1 maps at classifier_size 64"),
        ({"classifier_size": 8}, "1x1 maps at classifier_size 8"),
    ],
)
def test_target_layers_without_spatial_maps_are_refused_at_construction(options, message):
    with pytest.raises(ConfigError, match=message):
        ganenc.create("cropper", "gradcam", classifier="emoji-cnn", **options)


def test_flat_heat_maps_warn_once(caplog):
    cropper = ganenc.create(
        "cropper", "gradcam", classifier="emoji-cnn", target_layer="pool", classifier_size=None
    )  # 1x1 at any size: not refusable without a fixed size, so warned when it happens
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with pytest.warns(FlatHeatmapWarning, match="'pool' are flat for all 2 image"):
        boxes = cropper.boxes(images)
    assert boxes[0].tolist() == [[0, 0, 32, 32]] * 2
    assert "flat" in caplog.text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cropper.boxes(images)  # once per cropper, not once per training step
