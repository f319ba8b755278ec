"""Safe checkpoint reading: weights_only always, one clear error per failure."""

from __future__ import annotations

import argparse
import os
import pickle

import pytest
import torch

from ganenc.checkpoints import describe_checkpoint, read_checkpoint
from ganenc.errors import CheckpointError


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/ganenc-pwned",))


def test_reads_plain_tensors_and_allow_listed_classes(tmp_path):
    torch.save({"g_ema": {"w": torch.ones(2)}}, tmp_path / "a.pt")
    assert read_checkpoint(tmp_path / "a.pt")["g_ema"]["w"].sum() == 2
    torch.save({"args": argparse.Namespace(size=32)}, tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match="needs code execution"):
        read_checkpoint(tmp_path / "b.pt")
    assert read_checkpoint(tmp_path / "b.pt", safe_globals=[argparse.Namespace])["args"].size == 32


def test_refuses_code_execution_without_running_it(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": Exploit()}, path)
    if os.path.exists("/tmp/ganenc-pwned"):
        os.remove("/tmp/ganenc-pwned")
    with pytest.raises(CheckpointError, match="needs code execution"):
        read_checkpoint(path)
    assert not os.path.exists("/tmp/ganenc-pwned")
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(CheckpointError):
        read_checkpoint(raw)
    assert not os.path.exists("/tmp/ganenc-pwned")


def test_missing_empty_truncated_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="directory"):
        read_checkpoint(tmp_path)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_checkpoint(tmp_path / "empty.pt")
    torch.save({"w": torch.randn(1000)}, tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_checkpoint(tmp_path / "cut.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        read_checkpoint(tmp_path / "junk.pt")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        read_checkpoint(tmp_path / "photo.png")
    # what a foreign file is shows in its first bytes, not in the unpickler's opcode number
    (tmp_path / "page.pt").write_bytes(b"<!DOCTYPE html><html>sign in</html>")
    with pytest.raises(CheckpointError, match=r"it starts with b'<!DOCTYPE html") as caught:
        read_checkpoint(tmp_path / "page.pt")
    assert "operand" not in str(caught.value) and "weights_only" not in str(caught.value)
    (tmp_path / "notes.pt").write_bytes(b"hello\n")
    with pytest.raises(CheckpointError, match=r"it starts with b'hello\\n'"):
        read_checkpoint(tmp_path / "notes.pt")


def test_describe_names_known_formats():
    assert "StyleGAN2" in describe_checkpoint({"g_ema": {}, "latent_avg": None})
    assert "PGGAN" in describe_checkpoint({"config": {}, "netG": {}, "avgG": {}})
    assert "encoder" in describe_checkpoint({"format": "ganenc-encoder/1"})
    assert "genforce PGGAN" in describe_checkpoint(
        {"generator_smooth": {"layer0.weight": 1, "lod": 0}}
    )
    sg2 = {"synthesis.early_layer.const": 1, "mapping.dense0.weight": 1}
    assert "genforce StyleGAN2" in describe_checkpoint({"generator": sg2})
    sg1 = {"synthesis.layer0.const": 1, "synthesis.layer0.apply_noise.weight": 1}
    assert "genforce StyleGAN1" in describe_checkpoint({"generator_smooth": sg1})


def test_random_bytes_are_always_a_checkpoint_error(tmp_path):
    """A stranger's bytes may break the parser anywhere; the user still gets one clear error."""
    source = torch.Generator().manual_seed(0)
    zipped = tmp_path / "valid.pt"
    torch.save({"w": torch.ones(3)}, zipped)
    valid = zipped.read_bytes()
    for index in range(150):
        size = int(torch.randint(1, 400, (1,), generator=source))
        data = bytes(torch.randint(0, 256, (size,), generator=source, dtype=torch.uint8).tolist())
        if index % 3 == 0:  # a valid pickle or zip header followed by garbage
            data = (b"\x80\x02" if index % 2 else valid[:40]) + data
        path = tmp_path / f"junk-{index}.pt"
        path.write_bytes(data)
        with pytest.raises(CheckpointError):
            read_checkpoint(path)
