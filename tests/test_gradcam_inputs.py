"""What the Grad-CAM cropper is given: weights files, the loss's weights, a failed start."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from training_helpers import TINY_GENERATOR

from ganenc.cli.main import cli
from ganenc.cropping import build_cropper
from ganenc.emoji.classifier import EmojiCNN, packaged_weights
from ganenc.errors import CheckpointError
from ganenc.features import (
    RandomFeatureWeightsWarning,
    build_feature_network,
    load_state_dict_into,
    load_weights_file,
)


@pytest.mark.parametrize(
    ("spoil", "message"),
    [(float("nan"), r"NaN or inf \(features.0.weight\)"), (0.0, "all zero")],
)
def test_weights_with_nan_or_only_zeros_are_refused(tmp_path, spoil, message):
    state = torch.load(packaged_weights(), weights_only=True)
    path = tmp_path / "spoilt.pt"
    torch.save({k: v * spoil if v.is_floating_point() else v for k, v in state.items()}, path)
    with pytest.raises(CheckpointError, match=f"spoilt.pt is damaged: its weights.*{message}"):
        load_weights_file(path)
    with pytest.raises(CheckpointError, match="damaged"):
        build_cropper("gradcam", {"classifier": "emoji-cnn", "feature_weights": str(path)}, None)


def test_a_mismatched_state_dict_names_a_few_keys_not_hundreds():
    state = {f"layer{i}.weight": torch.ones(1) for i in range(50)}
    with pytest.raises(CheckpointError) as info:
        load_state_dict_into(EmojiCNN(), state, "other.pth")
    text = str(info.value)
    assert "other.pth does not fit EmojiCNN (missing: features.0.weight," in text
    assert "and 47 more" in text and "layer49" not in text and len(text) < 400
    assert "\n" not in text


def test_the_loss_feature_weights_reach_only_a_vgg16_classifier(tmp_path, recwarn):
    foreign = tmp_path / "vgg16.pth"  # the loss's file, for another network than emoji-cnn
    torch.save({"features.0.weight": torch.ones(1)}, foreign)
    for weights in (str(foreign), "random"):
        cropper = build_cropper("gradcam", {"classifier": "emoji-cnn"}, weights)
        shipped = build_feature_network("emoji-cnn").state_dict()
        assert torch.equal(cropper.classifier.features[0].weight, shipped["features.0.weight"])
    assert not [w for w in recwarn if issubclass(w.category, RandomFeatureWeightsWarning)]
    for classifier in ("vgg16", "features:vgg16"):  # the network LPIPS uses still gets them
        with pytest.warns(RandomFeatureWeightsWarning, match="vgg16"):
            build_cropper("gradcam", {"classifier": classifier, "classifier_size": 32}, "random")


def test_train_with_a_target_layer_without_maps_leaves_nothing(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "--gan",
            "stylegan2",
            "--resolution",
            str(TINY_GENERATOR["resolution"]),
            "-O",
            f"channel_max={TINY_GENERATOR['channel_max']}",
            "--iterations",
            "1",
            "--feature-weights",
            "random",
            "--attention",
            "gradcam",
            "--crop-option",
            "classifier=emoji-cnn",
            "--crop-option",
            "target_layer=groups",
            "--out",
            str(out),
            "--no-progress",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 1
    assert "target_layer 'groups' (Linear) gives [1, 9], not [N, C, H, W]" in result.output
    assert "Traceback" not in result.output and "unexpected error" not in result.output
    assert not out.exists()
