"""The offline emoji models: real networks trained on the Noto emoji images.

No pretrained GAN or ImageNet network can be downloaded everywhere, so ganenc
ships small ones trained on the Noto emoji data set (``shared/data/emoji``):
the classifier ``features:emoji-cnn`` (Grad-CAM boxes, FID/KID features), the
generator ``stylegan2:emoji-64`` (in ``ganenc-stylegan``) and a pre-trained
encoder for it.  This package holds the data-set reader, the classifier and a
few held-out images for tests and the demo; see ``docs/emoji-models.md``.
"""

from .data import (
    ATTRIBUTES,
    GROUPS,
    EmojiSplit,
    heldout_examples,
    load_split,
    read_labels,
    skin_tone_examples,
)

__all__ = [
    "ATTRIBUTES",
    "GROUPS",
    "EmojiSplit",
    "heldout_examples",
    "load_split",
    "read_labels",
    "skin_tone_examples",
]
