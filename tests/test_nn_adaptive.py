"""The adaptive block and the encoder trunk: widths of the paper's tables, data flow, w+ order."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganenc.errors import ConfigError
from ganenc.nn import AdaptiveBlock, AdaptiveEncoderTrunk, adaptive_widths

torch.set_num_threads(1)

# Paper Table 9, 256 px column: (in, out) of every 3x3 conv, block by block.
TABLE_9_AT_256 = [
    [(64, 64), (64, 128)],
    [(128, 128), (128, 256)],
    [(256, 256), (256, 512)],
    [(512, 512), (512, 512)],
    [(512, 512), (512, 512)],
    [(512, 512), (512, 512)],
    [(512, 512)],  # the 4x4 block: one conv, then the second style head
]


def test_widths_follow_tables_9_and_10():
    assert adaptive_widths(256) == [64, 128, 256, 512, 512, 512, 512]
    assert adaptive_widths(512) == [32, 64, 128, 256, 512, 512, 512, 512]
    assert adaptive_widths(1024) == [16, 32, 64, 128, 256, 512, 512, 512, 512]
    assert adaptive_widths(128) == [128, 256, 512, 512, 512, 512]  # Table 10, BigGAN 128
    # Extension to small images: start = 16384 / R, capped at max_channels.
    assert adaptive_widths(64) == [256, 512, 512, 512, 512]
    assert adaptive_widths(32) == [512, 512, 512, 512]
    assert adaptive_widths(32, start_channels=4, max_channels=16) == [4, 8, 16, 16]
    assert adaptive_widths(64, max_channels=32) == [32, 32, 32, 32, 32]


@pytest.mark.parametrize("resolution", [0, 4, 48, 100])
def test_widths_reject_resolutions_that_are_not_powers_of_two(resolution):
    with pytest.raises(ConfigError, match="power of two"):
        adaptive_widths(resolution)


def test_trunk_convolutions_match_table_9_at_256():
    trunk = AdaptiveEncoderTrunk(256, style_dim=512)
    assert len(trunk.blocks) == 7
    for block, convs in zip(trunk.blocks, TABLE_9_AT_256, strict=True):
        found = [(block.conv_1.in_channels, block.conv_1.out_channels)]
        if block.conv_2 is not None:
            found.append((block.conv_2.in_channels, block.conv_2.out_channels))
        assert found == convs
        c = block.in_channels
        # Both style heads read 2c statistics and write a 512-d code: FC(2c, 512).
        assert block.style_1.linear.in_features == 2 * c
        assert block.style_2.linear.in_features == 2 * c
        assert block.style_2.linear.out_features == 512
    assert trunk.blocks[-1].final and trunk.out_channels == 512


def test_trunk_parameter_count_at_1024_matches_the_reference_encoder():
    trunk = AdaptiveEncoderTrunk(1024, style_dim=512)
    count = sum(p.numel() for p in trunk.parameters())
    assert abs(count - 24.28e6) / 24.28e6 < 0.10, count
    assert trunk.style_layers == 18


def test_block_halves_the_size_and_merges_with_the_residual():
    torch.manual_seed(0)
    block = AdaptiveBlock(4, 8, style_dim=6).eval()
    x = torch.randn(2, 4, 8, 8)
    out, w1, w2 = block(x)
    assert out.shape == (2, 8, 4, 4) and w1.shape == (2, 6) and w2.shape == (2, 6)
    # Silence the main path: what is left is 0.889 * conv1x1(avgpool(x)).
    with torch.no_grad():
        block.conv_2.weight.zero_()
    out, _, _ = block(x)
    assert torch.allclose(out, 0.889 * block.bypass(F.avg_pool2d(x, 2)), atol=1e-6)


def test_block_without_channel_change_has_no_bypass_conv():
    block = AdaptiveBlock(4, 4, noise=False).eval()
    assert block.bypass is None and block.noise_1 is None and block.style_1 is None
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        block.conv_2.weight.zero_()
    out, w1, w2 = block(x)
    assert w1 is None and w2 is None
    assert torch.allclose(out, 0.889 * F.avg_pool2d(x, 2), atol=1e-6)


def test_final_block_keeps_4x4_and_its_width():
    block = AdaptiveBlock(8, 16, final=True, style_dim=5).eval()
    assert block.conv_2 is None and block.out_channels == 8
    out, w1, w2 = block(torch.randn(3, 8, 4, 4))
    assert out.shape == (3, 8, 4, 4) and w1.shape == w2.shape == (3, 5)


def test_block_blur_variant_filters_before_the_second_conv():
    block = AdaptiveBlock(4, 4, blur=True).eval()
    assert block.blur is not None
    seen = {}
    block.conv_2.register_forward_pre_hook(lambda m, args: seen.setdefault("input", args[0]))
    block.blur.register_forward_hook(lambda m, args, out: seen.setdefault("blurred", out))
    block(torch.randn(1, 4, 8, 8))
    assert torch.equal(seen["input"], seen["blurred"])


def test_conditional_block_needs_an_embedding():
    block = AdaptiveBlock(4, 8, norm="conditional_batch", embedding_dim=3).eval()
    with pytest.raises(ValueError, match="embedding"):
        block(torch.randn(2, 4, 8, 8))
    out, _, _ = block(torch.randn(2, 4, 8, 8), torch.randn(2, 3))
    assert out.shape == (2, 8, 4, 4)


def _tiny_trunk(**kwargs) -> AdaptiveEncoderTrunk:
    return AdaptiveEncoderTrunk(32, start_channels=4, max_channels=8, **kwargs)


def test_trunk_stacks_w_plus_lowest_resolution_first():
    torch.manual_seed(0)
    trunk = _tiny_trunk(style_dim=6).eval()
    assert trunk.num_blocks == 4 and trunk.style_layers == 8
    seen = {}
    for index, block in enumerate(trunk.blocks):
        block.style_1.register_forward_hook(lambda m, a, out, i=index: seen.update({(i, 1): out}))
        block.style_2.register_forward_hook(lambda m, a, out, i=index: seen.update({(i, 2): out}))
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    features, styles = trunk(images)
    assert features.shape == (2, 8, 4, 4) and styles.shape == (2, 8, 6)
    expected_order = [(3, 2), (3, 1), (2, 2), (2, 1), (1, 2), (1, 1), (0, 2), (0, 1)]
    for layer, key in enumerate(expected_order):
        assert torch.equal(styles[:, layer], seen[key]), f"layer {layer} is not {key}"


def test_trunk_with_fewer_style_layers_builds_only_their_heads():
    full = _tiny_trunk(style_dim=6).eval()
    short = _tiny_trunk(style_dim=6, style_layers=5).eval()
    short.load_state_dict(full.state_dict(), strict=False)
    missing = set(full.state_dict()) - set(short.state_dict())
    # Layers 5, 6, 7 are the first block's w1, w2 and the second block's w1.
    assert missing == {
        "blocks.0.style_1.linear.weight",
        "blocks.0.style_1.linear.bias",
        "blocks.0.style_2.linear.weight",
        "blocks.0.style_2.linear.bias",
        "blocks.1.style_1.linear.weight",
        "blocks.1.style_1.linear.bias",
    }
    images = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(short(images).styles, full(images).styles[:, :5])
    with pytest.raises(ConfigError, match="style_layers"):
        _tiny_trunk(style_dim=6, style_layers=9)


def test_trunk_rejects_images_of_the_wrong_size():
    trunk = _tiny_trunk()
    with pytest.raises(ValueError, match=r"\[N, 3, 32, 32\]"):
        trunk(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"\[N, 3, 32, 32\]"):
        trunk(torch.zeros(3, 32, 32))
