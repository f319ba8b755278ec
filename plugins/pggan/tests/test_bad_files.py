"""Every bad file gives one clear CheckpointError, and pickled code never runs."""

from __future__ import annotations

import os

import pytest
import torch

import ganenc
from ganenc import CheckpointError
from ganenc_pggan.formats import save_gan_zoo, save_genforce
from ganenc_pggan.model import PGGANConfig, PGGANGenerator


def _load(path):
    return ganenc.load_generator("pggan", path)


@pytest.fixture
def tiny_gan_zoo_file(tmp_path):
    path = tmp_path / "tiny.pth"
    save_gan_zoo(PGGANGenerator(PGGANConfig.gan_zoo(z_dim=8, channels=(4, 4))), path)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        _load(tmp_path / "absent.pth")


def test_empty_file(tmp_path):
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        _load(tmp_path / "empty.pth")


def test_truncated_file(tiny_gan_zoo_file, tmp_path):
    data = tiny_gan_zoo_file.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        _load(tmp_path / "cut.pth")


def test_random_bytes(tmp_path):
    (tmp_path / "noise.pth").write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint|not a readable"):
        _load(tmp_path / "noise.pth")


def test_stylegan2_file_names_its_family(tmp_path):
    path = tmp_path / "ffhq.pt"
    torch.save({"g_ema": {"style.1.weight": torch.zeros(4, 4)}, "latent_avg": torch.zeros(4)}, path)
    with pytest.raises(CheckpointError, match="StyleGAN2") as info:
        _load(path)
    assert "--gan stylegan2" in str(info.value)


def test_genforce_stylegan_file_names_its_family(tmp_path):
    state = {
        "mapping.dense0.weight": torch.zeros(4, 4),
        "truncation.w_avg": torch.zeros(4),
        "synthesis.layer0.noise_strength": torch.zeros(()),
        "synthesis.layer0.style.weight": torch.zeros(4, 4),
        "synthesis.layer0.epilogue.x": torch.zeros(1),
    }
    torch.save({"generator_smooth": state}, tmp_path / "stylegan_genforce.pth")
    with pytest.raises(CheckpointError, match="StyleGAN") as info:
        _load(tmp_path / "stylegan_genforce.pth")
    assert "--gan stylegan" in str(info.value)


def test_unrelated_objects(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(CheckpointError, match="Tensor object, not a PGGAN"):
        _load(tmp_path / "tensor.pth")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a PGGAN generator checkpoint"):
        _load(tmp_path / "other.pth")


def test_unsupported_layouts(tmp_path, tiny_gan_zoo_file):
    torch.save({"netG": {"foo.weight": torch.zeros(2)}, "config": {}}, tmp_path / "foo.pth")
    with pytest.raises(
        CheckpointError, match="unsupported pytorch_GAN_zoo PGGAN layout.*formatLayer"
    ):
        _load(tmp_path / "foo.pth")

    torch.save({"netG": {}, "avgG": {}, "config": {}}, tmp_path / "hollow.pth")
    with pytest.raises(CheckpointError, match="empty"):
        _load(tmp_path / "hollow.pth")

    ckpt = torch.load(tiny_gan_zoo_file, weights_only=True)
    ckpt["avgG"]["groupScale0.0.module.weight"] = torch.zeros(4, 5, 3, 3)
    torch.save(ckpt, tmp_path / "mismatch.pth")
    with pytest.raises(CheckpointError, match=r"groupScale0.0.module.weight is \[4, 5, 3, 3\]"):
        _load(tmp_path / "mismatch.pth")

    ckpt = torch.load(tiny_gan_zoo_file, weights_only=True)
    del ckpt["avgG"]["toRGBLayers.1.module.bias"]
    ckpt["avgG"]["extra.module.weight"] = torch.zeros(1)
    torch.save(ckpt, tmp_path / "keys.pth")
    with pytest.raises(CheckpointError, match="missing.*toRGBLayers.1.module.bias.*unexpected"):
        _load(tmp_path / "keys.pth")

    ckpt = torch.load(tiny_gan_zoo_file, weights_only=True)
    ckpt["config"]["categoryVectorDim"] = 5
    torch.save(ckpt, tmp_path / "acgan.pth")
    with pytest.raises(CheckpointError, match="conditional"):
        _load(tmp_path / "acgan.pth")


def test_genforce_unsupported_layouts(tmp_path):
    path = tmp_path / "g.pth"
    save_genforce(PGGANGenerator(PGGANConfig.genforce(z_dim=8, channels=(4, 6))), path)
    ckpt = torch.load(path, weights_only=True)
    fused = dict(ckpt["generator_smooth"])
    fused["layer2.weight"] = fused["layer2.weight"].transpose(0, 1)  # fused_scale layout
    torch.save({"generator_smooth": fused}, tmp_path / "fused.pth")
    with pytest.raises(CheckpointError, match="unsupported genforce PGGAN layout.*layer2.weight"):
        _load(tmp_path / "fused.pth")
    torch.save({"generator_smooth": {}}, tmp_path / "hollow.pth")
    with pytest.raises(CheckpointError, match="unsupported genforce PGGAN layout.*empty"):
        _load(tmp_path / "hollow.pth")
    bad_lod = dict(ckpt["generator_smooth"], lod=torch.tensor(3.0))
    torch.save({"generator_smooth": bad_lod}, tmp_path / "lod.pth")
    with pytest.raises(CheckpointError, match="lod = 3.0"):
        _load(tmp_path / "lod.pth")


def test_grey_scale_generator_is_refused(tmp_path):
    path = tmp_path / "grey.pth"
    save_gan_zoo(
        PGGANGenerator(PGGANConfig.gan_zoo(z_dim=8, channels=(4,), image_channels=1)), path
    )
    with pytest.raises(CheckpointError, match="3-channel"):
        _load(path)


class _RunsCommand:
    """Unpickling this would run a shell command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    state = {"formatLayer.module.weight": torch.zeros(64, 8)}
    torch.save({"config": _RunsCommand(f"touch {marker}"), "netG": state}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="code execution"):
        _load(tmp_path / "evil.pth")
    torch.save(_RunsCommand(f"touch {marker}"), tmp_path / "evil2.pth")
    with pytest.raises(CheckpointError, match="code execution"):
        _load(tmp_path / "evil2.pth")
    assert not marker.exists()


def test_config_class_name_cannot_smuggle_calls(tmp_path, fake_gan_zoo_module):
    """A payload under GAN zoo's config class name builds only the inert stand-in."""
    marker = tmp_path / "pwned"
    base = fake_gan_zoo_module.BaseConfig

    class Disguised(base):
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    Disguised.__module__, Disguised.__qualname__ = base.__module__, base.__qualname__
    generator = PGGANGenerator(PGGANConfig.gan_zoo(z_dim=8, channels=(4,)))
    save_gan_zoo(generator, tmp_path / "ok.pth")
    ckpt = torch.load(tmp_path / "ok.pth", weights_only=True)

    ckpt["config"] = Disguised()
    fake_gan_zoo_module(ckpt, tmp_path / "disguised.pth")
    with pytest.raises(CheckpointError, match="code execution"):
        _load(tmp_path / "disguised.pth")

    class CalledWithArguments(base):
        def __reduce__(self):  # REDUCE on the allowed name: calls the stand-in, harmlessly
            return (base, (f"touch {marker}",))

    ckpt["config"] = CalledWithArguments()
    fake_gan_zoo_module(ckpt, tmp_path / "called.pth")
    adapter = _load(tmp_path / "called.pth")
    assert adapter.resolution == 4
    assert not marker.exists()
