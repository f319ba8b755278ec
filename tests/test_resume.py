"""Resume is robust (issue 18, item 5): repeated commands, moved runs, per-image, interrupts."""

from __future__ import annotations

import json
import os
import shutil
import signal

import pytest
import torch
from click.testing import CliRunner
from training_helpers import PHOTOS, tiny_train_settings

from ganenc.cli.main import cli
from ganenc.errors import GanencError
from ganenc.training.pretrain import Pretrainer, pretrain


def run_cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _weights(run):
    return torch.load(run / "encoder.pt", weights_only=True)["state_dict"]


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_repeating_the_start_command_with_resume_works_wherever_the_run_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text("loss: {image_terms: {mse: 5.0}}\nval_samples: 2\n")
    command = [
        "train", "--config", "train.yaml", "--gan", "stylegan2", "--resolution", 32,
        "-O", "channel_max=32", "--encoder-option", "max_channels=32", "--batch-size", 2,
        "--feature-weights", "random", "--no-progress",
    ]  # fmt: skip
    first = run_cli(*command, "--iterations", 1, "--out", "run")
    assert first.exit_code == 0, first.output
    # the same command, --resume added: partial loss settings compare as resolved settings
    again = run_cli(*command, "--iterations", 2, "--out", "./run", "--resume")
    assert again.exit_code == 0, again.output
    absolute = run_cli(*command, "--iterations", 3, "--out", tmp_path / "run", "--resume")
    assert absolute.exit_code == 0, absolute.output
    shutil.copytree(tmp_path / "run", tmp_path / "elsewhere" / "copy")
    moved = run_cli(
        "train", "--resume", "--out", "elsewhere/copy", "--iterations", 4, "--no-progress"
    )
    assert moved.exit_code == 0, moved.output
    assert torch.load("elsewhere/copy/encoder.pt", weights_only=True)["step"] == 4
    # config.json records the longer run, so --resume alone goes on to the same end, and a
    # shorter --iterations than the run has done is refused before anything is written
    assert json.loads((tmp_path / "elsewhere/copy/config.json").read_text())["iterations"] == 4
    files = {p: p.read_bytes() for p in (tmp_path / "elsewhere/copy").rglob("*") if p.is_file()}
    behind = run_cli(
        "train", "--resume", "--out", "elsewhere/copy", "--iterations", 2, "--no-progress"
    )
    assert (
        behind.exit_code == 1 and "is at step 4, past the 2 iterations asked for" in behind.output
    )
    assert {p: p.read_bytes() for p in files} == files
    # a finished run is not redone: validation and every file stay as they are
    done = run_cli("train", "--resume", "--out", "elsewhere/copy", "--no-progress")
    assert done.exit_code == 1 and "finished at step 4 (val.json is written)" in done.output
    assert {p: p.read_bytes() for p in files} == files
    # a setting that does change is still refused, with the resolved values
    changed = run_cli(*command, "--iterations", 5, "--out", "run", "--resume", "--lr", 0.1)
    assert changed.exit_code == 1 and "cannot change: optimizer" in changed.output
    other = run_cli("train", "--resume", "--out", "run", "--feature-weights", "vgg.pth")
    assert other.exit_code == 1 and "cannot change: loss" in other.output


def test_per_image_finetuning_resumes_with_the_command_it_prints(tmp_path):
    images = tmp_path / "two"
    images.mkdir()
    for name in ("astronaut.png", "coffee.png"):
        shutil.copy(PHOTOS / name, images / name)
    (images / "broken.png").write_bytes(b"not an image")
    encoder = pretrain(tiny_train_settings(tmp_path / "pre", iterations=2))
    out = tmp_path / "pi"
    common = ["--iterations", 2, "--device", "cpu", "--no-progress"]
    started = run_cli(
        "finetune", "--encoder", encoder, "--images", images, "--mode", "per-image",
        "--out", out, *common,
    )  # fmt: skip
    assert started.exit_code == 0, started.output
    assert f"skipped 1 unreadable file(s): see {out / 'skipped.json'}" in started.output
    finished = torch.load(out / "latents" / "coffee.pt", weights_only=True)["latents"]
    metrics = out / "metrics.csv"
    rows = metrics.read_text().splitlines()
    assert [row.split(",")[0] for row in rows] == ["image", "astronaut.png", "coffee.png"]

    def killed_before_the_last_row():  # its latents and reconstruction written, not its row
        metrics.write_text("\n".join(rows[:2]) + "\n")
        (out / "reconstructions" / "coffee.png").unlink()

    killed_before_the_last_row()
    resumed = run_cli("finetune", "--mode", "per-image", "--resume", "--out", out)
    assert resumed.exit_code == 0, resumed.output
    again = torch.load(out / "latents" / "coffee.pt", weights_only=True)["latents"]
    assert all(torch.equal(finished[k], again[k]) for k in finished)
    assert metrics.read_text().splitlines() == rows  # the image done again, its row once
    # per image, --iterations is each image's steps: the images would differ, so it is fixed
    killed_before_the_last_row()
    longer = run_cli("finetune", "--mode", "per-image", "--resume", "--out", out, "--iterations", 5)
    assert longer.exit_code == 1 and "cannot change: iterations (2 -> 5)" in longer.output


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_inside_a_step_checkpoints_at_the_step_boundary(tmp_path, signum):
    """Interrupted-and-resumed equals uninterrupted, bit for bit (periodic checkpoints do too)."""
    straight = pretrain(tiny_train_settings(tmp_path / "straight", iterations=5))
    trainer = Pretrainer(tiny_train_settings(tmp_path / "run", iterations=5, checkpoint_every=100))
    encoder_forward = trainer.model.forward

    def forward_then_signal(*args, **kwargs):  # the encoder's noise is drawn: mid-step
        out = encoder_forward(*args, **kwargs)
        if trainer.step == 2:
            os.kill(os.getpid(), signum)
        return out

    trainer.model.forward = forward_then_signal
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match="interrupted at step 3; (.|\n)*--resume"):
        trainer.fit()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    resumed = pretrain(tiny_train_settings(tmp_path / "run", iterations=5, resume=True))
    assert _same(_weights(straight), _weights(resumed))


def test_dataset_finetuning_resumes_exactly(tmp_path):
    from ganenc.training.finetune import finetune
    from ganenc.training.settings import FinetuneSettings

    encoder = pretrain(tiny_train_settings(tmp_path / "pre", iterations=2))

    def settings(out, iterations, **more):
        return FinetuneSettings(
            encoder=encoder, images=PHOTOS, out=out, iterations=iterations, batch_size=2,
            held_out=0.0, device="cpu", progress=False, checkpoint_every=100, **more,
        )  # fmt: skip

    straight = finetune(settings(tmp_path / "straight", 4))
    finetune(settings(tmp_path / "resumed", 2))
    resumed = finetune(settings(tmp_path / "resumed", 4, resume=True))
    assert _same(_weights(straight), _weights(resumed))


def test_a_batch_larger_than_the_images_is_said(tmp_path, caplog):
    from ganenc.training.finetune import finetune
    from ganenc.training.settings import FinetuneSettings

    encoder = pretrain(tiny_train_settings(tmp_path / "pre", iterations=1))
    with caplog.at_level("WARNING", logger="ganenc.training.finetune"):
        finetune(
            FinetuneSettings(
                encoder=encoder,
                images=PHOTOS,
                out=tmp_path / "ft",
                iterations=1,
                batch_size=64,
                held_out=0.0,
                device="cpu",
                progress=False,
            )  # fmt: skip
        )
    count = len(list(PHOTOS.glob("*.png")))
    assert f"{count} training image(s): batches hold {count}, not --batch-size 64" in caplog.text


def test_relative_paths_a_run_records_work_from_any_folder(tmp_path, monkeypatch):
    import ganenc
    from ganenc_stylegan.formats import save_rosinality

    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    generator = ganenc.load_generator("stylegan2", resolution=32, channel_max=32, seed=1)
    save_rosinality(generator.model, project / "g.pt")
    shutil.copytree(PHOTOS, project / "photos")
    trained = run_cli(
        "train", "--gan", "stylegan2", "--checkpoint", "g.pt", "--iterations", 1,
        "--batch-size", 2, "--val-samples", 2, "--encoder-option", "max_channels=32",
        "--loss-option", "image_terms={mse: 1}", "--out", "run", "--no-progress",
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert json.loads((project / "run/config.json").read_text())["checkpoint"] == str(
        project / "g.pt"
    )
    tuned = run_cli(
        "finetune", "--encoder", "run", "--images", "photos", "--iterations", 1,
        "--batch-size", 2, "--out", "tuned", "--no-progress",
    )  # fmt: skip
    assert tuned.exit_code == 0, tuned.output
    monkeypatch.chdir(tmp_path)  # another folder: the records name g.pt, run and photos
    for command in (
        ["train", "--resume", "--out", "project/run", "--iterations", 2, "--no-progress"],
        ["finetune", "--resume", "--out", "project/tuned", "--iterations", 2, "--no-progress"],
        ["invert", "--encoder", "project/tuned", "--images", "project/photos", "--out", "inv"],
    ):
        result = run_cli(*command)
        assert result.exit_code == 0, result.output
    assert (tmp_path / "inv" / "index.json").is_file()


def test_a_folder_too_large_to_keep_decoded_fine_tunes_to_the_same_encoder(tmp_path, monkeypatch):
    import ganenc.data
    from ganenc.training.finetune import finetune
    from ganenc.training.settings import FinetuneSettings

    encoder = pretrain(tiny_train_settings(tmp_path / "pre", iterations=1))

    def run(out):
        return finetune(
            FinetuneSettings(
                encoder=encoder,
                images=PHOTOS,
                out=out,
                iterations=3,
                batch_size=2,
                held_out=0.5,
                device="cpu",
                progress=False,
                checkpoint_every=100,
            )  # fmt: skip
        )

    kept = run(tmp_path / "kept")
    monkeypatch.setattr(ganenc.data, "PRELOAD_BYTES", 0)  # every batch decoded when it is used
    streamed = run(tmp_path / "streamed")
    assert _same(_weights(kept), _weights(streamed))
    assert json.loads((kept / "val.json").read_text()) == json.loads(
        (streamed / "val.json").read_text()
    )
    assert (kept / "val.png").read_bytes() == (streamed / "val.png").read_bytes()


def test_an_image_set_decodes_on_demand_and_names_a_file_that_stopped_decoding(tmp_path):
    from ganenc.data import ImageSet

    folder = tmp_path / "photos"
    shutil.copytree(PHOTOS, folder)
    kept, lazy = ImageSet(folder, 32), ImageSet(folder, 32, preload=False)
    assert kept.preloaded and not lazy.preloaded and kept.names == lazy.names
    assert kept._decoded.dtype == torch.uint8  # held at 8 bits: a quarter of float32
    assert torch.equal(kept[[3, 1]], lazy[[3, 1]]) and torch.equal(kept[1:3], lazy[1:3])
    assert torch.equal(kept[0], lazy[0]) and lazy[[]].shape == (0, 3, 32, 32)
    with pytest.raises(GanencError, match="is a file; give the folder that holds the images"):
        ImageSet(folder / kept.names[0], 32)
    broken = folder / kept.names[2]
    broken.write_bytes(broken.read_bytes()[:200])  # header intact, pixels cut off
    with pytest.raises(
        GanencError, match=rf"{kept.names[2]}.*remove it from .* and run again \(or resume\)"
    ):
        lazy[[2]]


def test_ctrl_c_after_the_last_step_says_how_to_finish_the_run(tmp_path, monkeypatch):
    settings = tiny_train_settings(tmp_path / "run", iterations=2, val_samples=2)

    def interrupted(self, batch_size=16):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Pretrainer, "validate", interrupted)
        with pytest.raises(
            KeyboardInterrupt, match="Continue with:\n  ganenc train --resume --out"
        ):
            pretrain(settings)
    assert (tmp_path / "run" / "encoder.pt").is_file() and not (
        tmp_path / "run" / "val.json"
    ).exists()
    pretrain(settings.model_copy(update={"resume": True}))  # repairs: validation only
    assert json.loads((tmp_path / "run" / "val.json").read_text())["step"] == 2


def _started_run(path):
    """What a run writes before its first checkpoint."""
    path.mkdir()
    (path / "config.json").write_text("{}")
    (path / "metrics.jsonl").write_text('{"step": 1}\n')
    return path


def test_a_second_process_is_refused_a_folder_a_live_run_writes(tmp_path):
    """It took the live run's early files for a failed start's and deleted them."""
    import subprocess
    import sys

    from ganenc.training.runs import RunDirectory

    run = _started_run(tmp_path / "run")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         "fd = os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX)\n"
         "print('locked', flush=True); time.sleep(60)", str(run)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        for resume in (False, True):
            with pytest.raises(GanencError, match="another process is writing to"):
                RunDirectory(run, resume=resume)
        assert (run / "metrics.jsonl").is_file()
    finally:
        holder.kill()
        holder.wait()
    # the kernel dropped the lock with the process: the folder is a failed start again
    reused = RunDirectory(run, resume=False)
    assert not (run / "metrics.jsonl").exists()
    reused.claim()
    probe = subprocess.run(
        [sys.executable, "-c", "import fcntl, os, sys\n"
         "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)", str(run)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert probe.returncode != 0 and "Resource temporarily unavailable" in probe.stderr
    reused.close()


def test_files_half_written_by_a_kill_neither_block_nor_stay(tmp_path):
    """A kill inside atomic_path left '.NAME.xxx.tmp/' folders: the run could neither start
    again ('already holds files') nor resume ('missing config.json'), and resumes kept them."""
    from ganenc.training.runs import RunDirectory

    first = tmp_path / "first"
    (first / ".config.json.k1.tmp").mkdir(parents=True)
    (first / ".config.json.k1.tmp" / "config.json").write_text("{")
    RunDirectory(first, resume=False)
    assert os.listdir(first) == []
    resumed = _started_run(tmp_path / "resumed")
    staged = resumed / "checkpoints" / ".step-00000002.pt.k2.tmp"
    staged.mkdir(parents=True)
    (staged / "step-00000002.pt").write_bytes(b"half a checkpoint")
    RunDirectory(resumed, resume=True)
    assert os.listdir(resumed / "checkpoints") == []


def test_resuming_drops_the_records_logged_after_the_checkpoint(tmp_path):
    from ganenc.training.runs import RunDirectory

    run = _started_run(tmp_path / "run")
    lines = [json.dumps({"step": step, "loss": 1.0 / step}) for step in range(1, 7)]
    (run / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 7, "lo')  # cut by a kill
    RunDirectory(run, resume=True)._forget_records_after(4)
    assert (run / "metrics.jsonl").read_text().splitlines() == lines[:4]


def test_a_full_disk_inside_torch_save_is_said_as_a_full_disk(tmp_path, monkeypatch):
    """torch's zip writer raised RuntimeError('unexpected pos'): an 'unexpected error'."""
    import errno
    from collections import namedtuple

    from ganenc import files

    def failing_save(payload, path):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 18432")

    monkeypatch.setattr(torch, "save", failing_save)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(files.shutil, "disk_usage", lambda path: usage(10, 10, 0))
    with pytest.raises(OSError) as raised:
        files.torch_save({}, tmp_path / "x.pt")
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(tmp_path / "x.pt")
    monkeypatch.setattr(files.shutil, "disk_usage", lambda path: usage(1 << 40, 0, 1 << 40))
    with pytest.raises(RuntimeError, match="unexpected pos"):  # not a full disk: not said as one
        files.torch_save({}, tmp_path / "x.pt")
    assert os.listdir(tmp_path) == []


def test_resuming_another_commands_run_is_one_line(tmp_path):
    """train --resume on a finetune run printed fifteen validation messages."""
    run = tmp_path / "finetune-run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"images": "photos", "mode": "per-image"}))
    result = CliRunner().invoke(cli, ["train", "--resume", "--out", str(run)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1, result.output
    assert "records settings this command has not ('images', 'mode')" in result.output


def test_a_resume_asked_in_a_config_file_or_in_python_is_checked_the_same(tmp_path):
    """resume: true in --config (or TrainSettings(resume=True)) trained on with another lr,
    batch size and loss, and rewrote config.json with them; out: in the file was ignored."""
    import yaml

    first = tiny_train_settings(tmp_path / "run", iterations=2, checkpoint_every=1)
    pretrain(first)
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    changed = {**stored, "resume": True, "iterations": 3, "optimizer": {"lr": 0.5}}
    config = tmp_path / "resume.yaml"
    config.write_text(yaml.safe_dump(changed))
    result = CliRunner().invoke(cli, ["train", "--config", str(config)])
    assert result.exit_code == 1 and "these cannot change: optimizer" in result.output
    settings = first.model_copy(update={"resume": True, "iterations": 3, "batch_size": 1})
    with pytest.raises(GanencError, match="these cannot change: batch_size"):
        pretrain(settings)
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == stored
    config.write_text(yaml.safe_dump({"out": str(tmp_path / "run"), "iterations": 3}))
    resumed = CliRunner().invoke(cli, ["train", "--config", str(config), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["iterations"] == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--precision", "bf16"], "bf16"),
        (["--attention", "none", "--crop-option", "at1_margin_x=0.1"], "given with attention"),
        (["--gan", "pggan", "-O", "resolution=32", "--truncation-layers", "4"], "no per-layer"),
    ],
)
def test_refusals_found_late_leave_no_run_folder(tmp_path, options, message):
    """bf16 on a CPU, crop options without a cropper and PGGAN's per-layer truncation were
    refused at the first step, or silently ignored, after config.json was written."""
    family = ["--gan", "stylegan2", "-O", "resolution=32", "-O", "channel_max=16"]
    if "pggan" in options:
        family = ["-O", "fmaps_max=16", "-O", "z_dim=16"]
    command = ["train", *family, "--encoder-option", "max_channels=16", "--iterations", "1"]
    command += ["--batch-size", "2", "--feature-weights", "random", "--device", "cpu"]
    result = CliRunner().invoke(
        cli, [*command, "--no-progress", *options, "--out", str(tmp_path / "run")]
    )
    assert result.exit_code != 0 and message in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_per_image_fine_tuning_refuses_the_options_of_dataset_mode(tmp_path):
    result = CliRunner().invoke(
        cli,
        ["finetune", "--encoder", str(tmp_path), "--images", str(tmp_path), "--mode",
         "per-image", "--held-out", "0.5", "--checkpoint-every", "1", "--out", str(tmp_path / "o")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--held-out, --checkpoint-every shape(s) dataset fine-tuning" in result.output
    assert not (tmp_path / "o").exists()
