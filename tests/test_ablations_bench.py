"""The ablation benchmark's bookkeeping: equal budgets, K-fold summaries, its tables."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import emoji_ablations as ablations  # noqa: E402
from ganenc.data import load_image  # noqa: E402
from ganenc.emoji import heldout_examples  # noqa: E402


def test_arms_differ_only_in_the_ablated_setting():
    for name, (_table, attention, weights, terms) in ablations.ARMS.items():
        assert attention in {"none", "center", "gradcam"}
        if "without SSIM" in name:
            assert terms == {"mse": 5.0, "cosine": 3.0}
        else:
            assert terms == ablations.PAPER_TERMS
        if name.startswith("AT1,"):
            assert weights == [1.0, 5.0, 0.0]  # AT2 computed but not counted
        elif name.startswith("AT1+AT2"):
            assert weights == [1.0, 5.0, 9.0]
        else:
            assert weights == [1.0]
    assert len({ablations.slug(name) for name in ablations.ARMS}) == len(ablations.ARMS)


@pytest.fixture(scope="module")
def scorer():
    files = sorted(heldout_examples().glob("*.png"))
    real = torch.stack([load_image(f, 64) for f in files])
    return ablations.Scorer(real, folds=4)


def test_folds_partition_the_images_and_summaries_are_fold_means(scorer):
    everything = torch.cat(scorer.folds).sort().values
    assert everything.tolist() == list(range(len(scorer.real)))
    values = torch.arange(len(scorer.real), dtype=torch.float32)
    index = torch.arange(len(scorer.real))
    summary = scorer.summary({"psnr": values}, index)
    expected = [values[fold].mean().item() for fold in scorer.folds]
    assert summary["psnr"]["folds"] == pytest.approx(expected)
    assert summary["psnr"]["mean"] == pytest.approx(sum(expected) / len(expected))
    assert summary["psnr"]["std"] == pytest.approx(torch.tensor(expected).std().item())
    # a subset: each fold's mean over the subset's images only
    subset = torch.tensor([0, 3, 5, 9])
    part = scorer.summary({"psnr": values[subset]}, subset)
    assert part["images"] == 4
    assert part["psnr"]["mean"] == pytest.approx(
        torch.tensor(
            [
                values[[i for i in f.tolist() if i in subset]].mean()
                for f in scorer.folds
                if any(i in subset for i in f.tolist())
            ]
        )
        .mean()
        .item()
    )


def test_perfect_reconstructions_score_infinite_psnr_and_unit_ssim(scorer):
    index = torch.arange(len(scorer.real))
    per_image = scorer.per_image(scorer.real.clone(), index)
    assert set(per_image) == {"psnr", "ssim", "psnr_at1", "psnr_at2"}
    assert torch.all(per_image["ssim"] > 0.999)
    worse = scorer.per_image(scorer.real * 0.5, index)
    assert torch.all(worse["psnr"] < per_image["psnr"])
    assert torch.all(worse["psnr_at2"] < per_image["psnr_at2"])


def test_markdown_lists_every_arm(scorer):
    index = torch.arange(len(scorer.real))
    row = scorer.summary(scorer.per_image(scorer.real * 0.9, index), index)
    row["seconds_per_image"] = 0.01
    text = ablations.markdown({"tables": {"6": {"no attention": row, "AT1, centre": row}}})
    assert "### Table 6" in text
    assert "| no attention |" in text and "| AT1, centre |" in text
