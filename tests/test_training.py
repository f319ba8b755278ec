"""Pre-training and fine-tuning: run layout, resume, interruption, bad input, learning."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner
from training_helpers import FAST_LOSS, PHOTOS, TINY_GENERATOR, tiny_train_settings

import ganenc
from ganenc.cli.main import cli
from ganenc.training.finetune import finetune
from ganenc.training.pretrain import Pretrainer, pretrain
from ganenc.training.settings import FinetuneSettings


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    """A short pre-training run shared by the fine-tuning tests."""
    return pretrain(tiny_train_settings(tmp_path_factory.mktemp("pre") / "run", iterations=40))


def test_a_run_directory_holds_everything_people_look_at(pretrained_run):
    run = pretrained_run
    for name in (
        "config.json",
        "versions.json",
        "metrics.jsonl",
        "encoder.pt",
        "val.json",
        "val.png",
        "curves.png",
    ):
        assert (run / name).is_file(), name
    assert (run / "checkpoints" / "last.pt").is_file()
    assert (run / "checkpoints" / "step-00000039.pt").is_file()
    assert (run / "images" / "step-00000039.png").is_file()
    config = json.loads((run / "config.json").read_text())
    assert config["gan"] == "stylegan2" and config["optimizer"]["lr"] == 0.0015
    assert config["optimizer"]["betas"] == [0.0, 0.99]
    versions = json.loads((run / "versions.json").read_text())
    assert versions["packages"]["ganenc-stylegan"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 41))
    assert {"loss/total", "loss/whole/mse", "loss/at1/mse", "loss/at2/mse", "loss/latent"} <= set(
        records[0]
    )
    val = json.loads((run / "val.json").read_text())
    assert set(val["encoder"]) == {"psnr", "ssim", "mse", "lpips"}
    assert set(val["average_latent_baseline"]) == {"psnr", "ssim", "mse", "lpips"}
    # no LPIPS in the loss and no VGG16 weights asked for: LPIPS only when they are cached
    assert (val["encoder"]["lpips"] is None) == ("lpips" in val["not_computed"])
    assert val["val_seeds"] == [30000, 30007]
    checkpoint = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["step"] == 40 and "optimizer" in checkpoint and "rng" in checkpoint
    encoder = ganenc.load_encoder(run / "encoder.pt")
    assert encoder.ganenc_meta["geometry"]["family"] == "stylegan2"


def test_training_uses_the_reference_truncation_and_disjoint_seeds(tmp_path):
    trainer = Pretrainer(tiny_train_settings(tmp_path / "run"))
    assert trainer.truncation == {"truncation": 0.7, "truncation_layers": 8}
    seeds = {s for step in range(50) for s in trainer.schedule.seeds(step)}
    assert max(seeds) < 30_000
    with pytest.raises(ValueError, match="inside the training seeds"):
        tiny_train_settings(tmp_path / "x", train_seeds=100, val_seed_start=50)


def test_generator_gets_no_gradients_and_every_encoder_parameter_does(tmp_path):
    trainer = Pretrainer(tiny_train_settings(tmp_path / "run"))
    trainer.train_step(0)
    assert all(p.grad is None for p in trainer.generator.parameters())
    missing = [
        n for n, p in trainer.encoder.named_parameters() if p.grad is None or not p.grad.abs().sum()
    ]
    assert missing == []


def test_resume_continues_exactly(tmp_path):
    straight = pretrain(tiny_train_settings(tmp_path / "straight", iterations=6))
    first = pretrain(tiny_train_settings(tmp_path / "resumed", iterations=3))
    resumed = pretrain(tiny_train_settings(first, iterations=6, resume=True))
    a = torch.load(straight / "encoder.pt", weights_only=True)["state_dict"]
    b = torch.load(resumed / "encoder.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [
        json.loads(line)["step"] for line in (resumed / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_resume_reads_the_checkpoint_onto_the_cpu(tmp_path, monkeypatch):
    """torch takes RNG states only as CPU tensors: reading onto the GPU broke resume there.

    Found by the CUDA smoke (benchmarks/cuda_smoke.sh) on an H100: "RNG state
    must be a torch.ByteTensor". load_state_dict moves the weights and the
    optimizer state to the encoder's device itself.
    """
    first = pretrain(tiny_train_settings(tmp_path / "run", iterations=2))
    places = []
    real_load = torch.load

    def spying_load(*args, **kwargs):
        places.append(kwargs.get("map_location"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spying_load)
    pretrain(tiny_train_settings(first, iterations=3, resume=True))
    # "cpu" itself, not the training device (which is the CPU in this test too)
    assert places and all(place == "cpu" and isinstance(place, str) for place in places), places


def test_interrupt_saves_a_checkpoint_and_says_how_to_resume(tmp_path, monkeypatch):
    trainer = Pretrainer(tiny_train_settings(tmp_path / "run", checkpoint_every=100))
    original = trainer.train_step

    def interrupted(step):
        if step == 2:
            raise KeyboardInterrupt
        return original(step)

    monkeypatch.setattr(trainer, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt, match="interrupted at step 2(.|\n)*--resume"):
        trainer.fit()
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)["step"] == 2


def run_cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_bad_input_is_one_clear_line_and_overwrites_nothing(tmp_path, pretrained_run):
    missing = run_cli(
        "train", "--gan", "stylegan2", "--checkpoint", tmp_path / "nope.pt", "--out", tmp_path / "a"
    )
    assert missing.exit_code == 1 and "checkpoint not found" in missing.output
    assert "Traceback" not in missing.output

    no_run = run_cli("train", "--resume", "--out", tmp_path / "empty")
    assert no_run.exit_code == 1 and "no run to resume" in no_run.output

    before = sorted(p.name for p in pretrained_run.iterdir())
    again = run_cli("train", "--gan", "stylegan2", "--out", pretrained_run)
    assert again.exit_code == 1 and "already holds files" in again.output
    assert sorted(p.name for p in pretrained_run.iterdir()) == before

    (tmp_path / "empty_images").mkdir()
    (tmp_path / "empty_images" / "notes.txt").write_text("not an image")
    empty = run_cli(
        "finetune",
        "--encoder",
        pretrained_run,
        "--images",
        tmp_path / "empty_images",
        "--out",
        tmp_path / "f",
    )
    assert (
        empty.exit_code == 1
        and "no readable images" in empty.output
        and "notes.txt" in empty.output
    )

    other = run_cli(
        "finetune",
        "--encoder",
        pretrained_run,
        "--images",
        PHOTOS,
        "--gan",
        "pggan",
        "--out",
        tmp_path / "g",
    )
    assert other.exit_code == 1
    assert "the encoder was trained for stylegan2" in other.output and "pggan" in other.output


def test_cli_train_with_config_file_and_overrides(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(
        "gan: stylegan2\n"
        "generator_options: {resolution: 32, channel_max: 32}\n"
        "encoder_options: {max_channels: 32}\n"
        "loss: {image_terms: {mse: 5.0}}\n"
        "iterations: 50\nbatch_size: 2\nval_samples: 2\n"
    )
    result = run_cli(
        "train",
        "--config",
        config,
        "--iterations",
        2,
        "--attention",
        "none",
        "--out",
        tmp_path / "run",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (stored["iterations"], stored["attention"], stored["loss"]["image_terms"]) == (
        2,
        "none",
        {"mse": 5.0},
    )
    changed = run_cli("train", "--resume", "--out", tmp_path / "run", "--batch-size", 4)
    assert changed.exit_code == 1 and "cannot change: batch_size" in changed.output
    extended = run_cli(
        "train", "--resume", "--out", tmp_path / "run", "--iterations", 3, "--no-progress"
    )
    assert extended.exit_code == 0, extended.output
    assert torch.load(tmp_path / "run" / "encoder.pt", weights_only=True)["step"] == 3


def test_every_registered_family_trains_with_the_same_loop(tmp_path):
    cases = {
        "pggan": {"resolution": 32, "fmaps_max": 32},
        "biggan": {"resolution": 32, "channel_width": 4, "num_classes": 10, "z_dim": 16},
        "stylegan1": {"resolution": 32, "channel_max": 32},
    }
    for gan, options in cases.items():
        run = pretrain(
            tiny_train_settings(
                tmp_path / gan,
                gan=gan,
                generator_options=options,
                iterations=2,
                encoder_options={"max_channels": 32},
                checkpoint_every=2,
            )
        )
        assert ganenc.load_encoder(run / "encoder.pt").ganenc_meta["geometry"]["family"] == gan


def test_finetune_dataset_mode_lowers_the_loss_on_real_photographs(tmp_path, pretrained_run):
    images = tmp_path / "photos"
    shutil.copytree(PHOTOS, images)
    (images / "broken.png").write_bytes(b"not really a png")
    run = finetune(
        FinetuneSettings(
            encoder=pretrained_run,
            images=images,
            held_out=0.0,
            iterations=25,
            batch_size=4,
            optimizer={"lr": 0.002},
            out=tmp_path / "ft",
            progress=False,
            checkpoint_every=100,
            image_every=100,
            log_every=1,
        )
    )
    val = json.loads((run / "val.json").read_text())
    assert val["after"]["mse"] < val["before"]["mse"]
    assert (val["after"]["lpips"] is None) == ("lpips" in val["not_computed"])
    assert (run / "curves.png").stat().st_size > 5_000
    assert "broken.png" in json.loads((run / "skipped.json").read_text())
    losses = [
        json.loads(line)["loss/total"] for line in (run / "metrics.jsonl").read_text().splitlines()
    ]
    assert sum(losses[-5:]) < sum(losses[:5])


def test_finetune_per_image_saves_latents_and_reconstructions(
    tmp_path, pretrained_run, monkeypatch
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))  # no VGG16: LPIPS left out
    images = tmp_path / "two"
    images.mkdir()
    for name in ("astronaut.png", "coffee.png"):
        shutil.copy(PHOTOS / name, images / name)
    run = finetune(
        FinetuneSettings(
            encoder=pretrained_run / "encoder.pt",
            images=images,
            mode="per-image",
            iterations=8,
            out=tmp_path / "pi",
            progress=False,
        )
    )
    assert sorted(p.name for p in (run / "latents").iterdir()) == ["astronaut.pt", "coffee.pt"]
    assert sorted(p.name for p in (run / "reconstructions").iterdir()) == [
        "astronaut.png",
        "coffee.png",
    ]
    saved = torch.load(run / "latents" / "astronaut.pt", weights_only=True)
    assert saved["latents"]["w_plus"].shape == (1, 8, 512)
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("image,first_loss,final_loss") and len(rows) == 3
    table = list(csv.DictReader(rows))
    assert table[0]["lpips_after"] == "" and float(table[0]["psnr_after"]) > 0
    reasons = json.loads((run / "not_computed.json").read_text())
    assert "vgg16-397923af.pth" in reasons["lpips"]
    assert (run / "grid.png").is_file()


def test_pretraining_learns_to_beat_the_average_latent(tmp_path):
    """Under a minute on 2 CPU cores: held-out PSNR clearly above decoding the mean latent."""
    run = pretrain(
        tiny_train_settings(
            tmp_path / "learn",
            iterations=300,
            batch_size=8,
            val_samples=32,
            checkpoint_every=1000,
            image_every=1000,
            log_every=50,
        )
    )
    val = json.loads((run / "val.json").read_text())
    encoder, baseline = val["encoder"], val["average_latent_baseline"]
    assert encoder["psnr"] > baseline["psnr"] + 1.0, val
    assert encoder["mse"] < 0.8 * baseline["mse"], val


def test_ddp_with_two_gloo_processes(tmp_path):
    """torchrun with two CPU processes: one run directory, written once, trained in sync."""
    config = tmp_path / "ddp.yaml"
    config.write_text(
        "gan: stylegan2\n"
        f"generator_options: {json.dumps(TINY_GENERATOR)}\n"
        "encoder_options: {max_channels: 16}\n"
        f"loss: {json.dumps(FAST_LOSS)}\n"
        "iterations: 3\nbatch_size: 2\nval_samples: 2\ncheckpoint_every: 3\nlog_every: 1\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "ganenc",
        "train",
        "--config",
        str(config),
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    assert torch.load(run / "encoder.pt", weights_only=True)["step"] == 3
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]  # rank 0 alone writes
    assert records[-1]["images_per_s"] > 0


def test_mixed_precision_and_cuda_need_a_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    bf16 = run_cli(
        "train",
        "--gan",
        "stylegan2",
        "--resolution",
        32,
        "-O",
        "channel_max=32",
        "--precision",
        "bf16",
        "--device",
        "cpu",
        "--iterations",
        1,
        "--out",
        tmp_path / "a",
        "--no-progress",
        "--attention",
        "none",
        "--feature-weights",
        "random",
    )
    assert bf16.exit_code == 1 and "precision 'bf16' needs a CUDA device" in bf16.output
    cuda = run_cli("train", "--gan", "stylegan2", "--device", "cuda", "--out", tmp_path / "b")
    assert cuda.exit_code == 1 and "no CUDA GPU is available" in cuda.output


def test_torchrun_processes_check_the_device_and_environment_like_one(monkeypatch):
    """Under torchrun, --device cuda without a GPU fell back to the CPU; bad counts were tracebacks."""
    from ganenc.errors import ConfigError
    from ganenc.training.distributed import DistributedContext

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ConfigError, match="no CUDA GPU is available"):
        DistributedContext.from_env("cuda")
    with pytest.raises(ConfigError, match="unknown device"):
        DistributedContext.from_env("gpu")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="WORLD_SIZE=.two. is not a whole number"):
        DistributedContext.from_env("cpu")
