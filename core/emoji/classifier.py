"""``features:emoji-cnn``: a small CNN that tells the Unicode group of a 64 px emoji.

It stands in for the ImageNet VGG16 of the paper where no pretrained network can
be downloaded: its last convolution gives the Grad-CAM heat maps that choose the
AT1/AT2 boxes, and its pooled features are the feature space of the emoji
FID/KID.  Inputs are RGB in [0, 1] normalised with ImageNet's mean and std (what
the Grad-CAM cropper feeds every classifier), at 64 px (``input_size``).  A
second head predicts the binary attributes of ``labels.csv``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..features import IMAGENET_MEAN, IMAGENET_STD
from .data import ATTRIBUTES, GROUPS

#: The shipped weights (fp16 state dict), registered as ``features:emoji-cnn``.
WEIGHTS_FILE = "emoji-cnn.pt"


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


class EmojiCNN(nn.Module):
    """Stem (stride 2), three conv stages (64 -> 32 -> 16 -> 8 px), global pooling, two heads.

    ``forward`` returns the group logits (what Grad-CAM explains);
    :meth:`embed` the pooled features; :meth:`attribute_logits` the attributes.
    """

    #: The side the network was trained at (the Grad-CAM cropper resizes to it).
    input_size = 64

    def __init__(self, widths: tuple[int, int, int, int] = (24, 48, 96, 160)) -> None:
        super().__init__()
        w0, w1, w2, w3 = widths
        layers: list[nn.Module] = [*_conv(3, w0, stride=2)]
        layers += [*_conv(w0, w1), *_conv(w1, w1), nn.MaxPool2d(2)]
        layers += [*_conv(w1, w2), *_conv(w2, w2), nn.MaxPool2d(2)]
        layers += [*_conv(w2, w3), *_conv(w3, w3)]
        self.features = nn.Sequential(*layers)
        #: Grad-CAM's layer: the last block's activation (8x8 at 64 px).
        self.gradcam_layer = f"features.{len(layers) - 1}"
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.groups = nn.Linear(w3, len(GROUPS))
        self.attributes = nn.Linear(w3, len(ATTRIBUTES))
        self.num_features = w3

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``[N, 160]`` of normalised images."""
        return self.pool(self.features(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.groups(self.dropout(self.embed(x)))

    def attribute_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.attributes(self.embed(x))


def normalise(images: torch.Tensor, clamp: bool = True) -> torch.Tensor:
    """[-1, 1] (float) or uint8 [0, 255] images -> the network's input.

    ``clamp=False`` keeps out-of-range values (and their gradient), for a generator
    trained through the network.
    """
    x = images.float() / 255.0 if images.dtype == torch.uint8 else (images.float() + 1) / 2
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x.clamp(0, 1) if clamp else x) - mean) / std


def load_emoji_cnn(path: str | os.PathLike) -> EmojiCNN:
    """The classifier with the weights in ``path`` (read with ``weights_only``), eval mode."""
    from ..features import load_state_dict_into, load_weights_file

    network = EmojiCNN()
    state_dict = {k: v.float() for k, v in load_weights_file(path).items()}
    load_state_dict_into(network, state_dict, path)
    return network.eval().requires_grad_(False)


class EmojiFeatures(nn.Module):
    """uint8 images -> emoji-CNN features: the ``feature`` network of torchmetrics' FID/KID."""

    def __init__(self, network: EmojiCNN) -> None:
        super().__init__()
        self.network = network.eval()
        self.num_features = network.num_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = normalise(images)
        if x.shape[-1] != EmojiCNN.input_size:
            x = nn.functional.interpolate(
                x, size=(EmojiCNN.input_size,) * 2, mode="bilinear", antialias=True
            )
        return self.network.embed(x).double()


def packaged_weights() -> Path:
    """Where the shipped weights lie (inside this package)."""
    return Path(__file__).with_name(WEIGHTS_FILE)
