"""The emoji GAN training script runs a step, resumes, and exports a file ganenc loads.

Its refusals of bad options are with the other example scripts' (test_example_scripts.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ganenc

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "emoji"
needs_data = pytest.mark.skipif(
    not (DATA / "labels.csv").is_file(), reason="emoji data not beside the checkout"
)
SCRIPT = ROOT / "examples" / "train_emoji_gan.py"


def test_balance_base_draws_each_base_emoji_equally_often(emoji_gan_script):
    bases = ["person"] * 26 + ["heart", "flag"]  # one person emoji in 26 skin tones
    assert emoji_gan_script.sampling_weights(bases, "none") is None
    weights = emoji_gan_script.sampling_weights(bases, "base")
    torch.manual_seed(0)
    drawn = torch.multinomial(weights, 30_000, replacement=True)
    person = (drawn < 26).float().mean().item()
    assert abs(person - 1 / 3) < 0.02  # not 26/28
    assert abs((drawn == 26).float().mean().item() - 1 / 3) < 0.02


@needs_data
def test_balance_base_lowers_people_from_most_of_the_draws_to_a_fifth(emoji_gan_script):
    from ganenc.emoji import GROUPS, load_split

    train = load_split(DATA, "train")
    people = (train.groups == GROUPS.index("People & Body")).float()
    weights = emoji_gan_script.sampling_weights(train.bases, "base")
    assert people.mean() > 0.55
    assert 0.15 < (weights * people).sum() / weights.sum() < 0.25


@needs_data
def test_a_foreign_state_file_is_refused_in_one_line(tmp_path):
    (tmp_path / "state.pt").write_bytes(b"not a torch file")
    command = [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--threads", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not a state of this script" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]  # untouched, no samples/


@pytest.mark.slow
@needs_data
def test_two_steps_resume_and_export(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "examples" / "train_emoji_gan.py"),
        "--data",
        str(DATA),
        "--out",
        str(tmp_path),
        "--batch-size",
        "4",
        "--threads",
        "1",
        "--max-steps",
        "1",
        "--sample-every",
        "1",
        "--save-every",
        "1",
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    command[command.index("--max-steps") + 1] = "2"
    assert torch.load(tmp_path / "state.pt", weights_only=True)["g_opt"]["param_groups"][0][
        "lr"
    ] == pytest.approx(0.0025)
    # a resumed run may change how images are drawn, and lower its learning rate (Adam's
    # load_state_dict would restore the saved rate)
    command += ["--balance", "base", "--lr", "0.001"]
    result = subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
    assert "resumed at step 1" in result.stdout
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert state["step"] == 2
    assert state["g_opt"]["param_groups"][0]["lr"] == pytest.approx(0.001)
    d_group = state["d_opt"]["param_groups"][0]
    assert d_group["lr"] == pytest.approx(0.001 * 16 / 17)  # lazy R1 every 16 steps
    assert d_group["betas"][1] == pytest.approx(0.99 ** (16 / 17))
    generator = ganenc.load_generator("stylegan2", str(tmp_path / "stylegan2-emoji-64.pt"))
    assert (generator.resolution, generator.w_dim, generator.num_ws) == (64, 128, 10)
    assert (tmp_path / "samples" / "step-000002.png").is_file()


@pytest.mark.slow
@needs_data
def test_projected_discriminator_state_is_saved_and_resumed(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "examples" / "train_emoji_gan.py"),
        *("--data", str(DATA), "--out", str(tmp_path), "--batch-size", "4", "--threads", "1"),
        *("--sample-every", "10", "--save-every", "10", "--projected", "1", "--max-steps", "1"),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    heads = torch.load(tmp_path / "state.pt", weights_only=True)["projected"]
    command[-1] = "2"
    result = subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
    assert "resumed at step 1" in result.stdout
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert state["step"] == 2 and set(state["projected"]) == set(heads)
    changed = [
        k for k in heads if "heads." in k and not torch.equal(heads[k], state["projected"][k])
    ]
    assert changed  # the resumed heads kept training
    frozen = [k for k in heads if k.startswith("classifier.")]
    assert frozen and all(torch.equal(heads[k], state["projected"][k]) for k in frozen)
