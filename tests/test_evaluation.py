"""``ganenc eval`` and its metrics: known cases, folder pairing, FID's weights and limits, K folds."""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

from ganenc.cli.evaluate import eval_command
from ganenc.cli.main import cli
from ganenc.errors import ConfigError, GanencError, WeightsNotFoundError
from ganenc.evaluation import (
    PER_IMAGE_METRICS,
    evaluate_encoder,
    evaluate_images,
    fid,
    fid_metric,
    fid_weights_file,
    kfold_indices,
    lpips_metric,
    mean_std,
    pair_folders,
    per_image_metrics,
    plan_metrics,
)
from ganenc.features import RandomFeatureWeightsWarning
from ganenc.images import save_image, to_uint8

pytest_plugins = ("inversion_fixtures",)
#: the number of photos (see inversion_fixtures)
PHOTOS = 4


def _random_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_identical_images_psnr_infinite_ssim_one_lpips_zero():
    images = _random_images(3)
    with pytest.warns(RandomFeatureWeightsWarning):
        lpips = lpips_metric("random")  # LPIPS(x, x) is 0 for any weights
    rows = per_image_metrics(images, images.clone(), lpips)
    for row in rows:
        assert math.isinf(row["psnr"]) and row["psnr"] > 0
        assert row["ssim"] == pytest.approx(1.0, abs=1e-6)
        assert row["mse"] == 0.0
        assert row["lpips"] == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("delta", [0.01, 0.05, 0.1])
def test_psnr_matches_the_formula_for_a_known_noise_level(delta):
    # images in [0.2, 0.8] (unit range) plus +-delta: no clipping, so MSE is exactly delta^2
    generator = torch.Generator().manual_seed(1)
    clean = 0.2 + 0.6 * torch.rand(4, 3, 48, 48, generator=generator)
    signs = torch.randint(0, 2, clean.shape, generator=generator).float() * 2 - 1
    noisy = clean + delta * signs
    rows = per_image_metrics(noisy * 2 - 1, clean * 2 - 1)
    expected = 10 * math.log10(1 / delta**2)
    for row in rows:
        assert abs(row["psnr"] - expected) < 0.01
        assert row["mse"] == pytest.approx(delta**2, rel=1e-4)
        assert row["ssim"] < 1.0


def _folder(path, names, images):
    path.mkdir(parents=True, exist_ok=True)
    for name, image in zip(names, images, strict=True):
        save_image(image, path / name)
    return path


def test_eval_pairs_folders_by_name_and_lists_every_unmatched_name(tmp_path):
    images = _random_images(3)
    real = _folder(tmp_path / "real", ["a.png", "b.png", "c.png"], images)
    recon = _folder(tmp_path / "recon", ["a.png", "c.png", "d.png"], images)
    result = CliRunner().invoke(
        eval_command, ["--real", str(real), "--recon", str(recon), "--metrics", "psnr"]
    )
    assert isinstance(result.exception, GanencError)
    message = str(result.exception)
    assert "1 only in" in message and ": b" in message and ": d" in message
    with pytest.raises(GanencError, match="differ only by extension"):
        _folder(tmp_path / "clash", ["a.png", "a.jpg"], images[:2])
        pair_folders(tmp_path / "clash", recon)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """No weights in torch's hub cache, and any download attempt fails the test."""
    import ganenc.weights.resolve as resolve  # fetch's downloader: the only one of feature weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))
    monkeypatch.delenv("GANENC_OFFLINE", raising=False)
    monkeypatch.setattr(
        resolve, "download_file", lambda *a, **k: pytest.fail("an optional metric downloaded")
    )
    return tmp_path / "empty-hub" / "hub" / "checkpoints"


def _strict_json(text: str):
    """JSON that is standard: NaN and Infinity are refused."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))


def test_eval_without_metrics_computes_what_it_can_offline_and_says_why_not_the_rest(
    tmp_path, empty_hub
):
    images = _random_images(3)
    real = _folder(tmp_path / "real", ["a.png", "b.png", "c.png"], images)
    recon = _folder(tmp_path / "recon", ["a.png", "b.png", "c.png"], images * 0.5)
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli, ["eval", "--real", str(real), "--recon", str(recon), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "PSNR" in result.output and "SSIM" in result.output and "MSE" in result.output
    assert "LPIPS" in result.output and "not computed" in result.output
    flat = " ".join(result.output.split())  # rich wraps long notes
    assert "vgg16-397923af.pth" in flat and "pt_inception-2015-12-05-6726825d.pth" in flat
    report = _strict_json(out.read_text())
    assert set(report["summary"]) == {"psnr", "ssim", "mse", "lpips"}
    assert report["summary"]["lpips"] is None and report["fid"] is None
    assert report["summary"]["psnr"]["mean"] > 0
    lpips_reason, fid_reason = report["not_computed"]["lpips"], report["not_computed"]["fid"]
    # the missing file and where to put it: torch's hub cache
    assert "vgg16-397923af.pth" in lpips_reason and str(empty_hub) in lpips_reason
    assert "pt_inception-2015-12-05-6726825d.pth" in fid_reason and str(empty_hub) in fid_reason
    assert not empty_hub.exists() or not any(empty_hub.iterdir())  # nothing fetched


@pytest.mark.parametrize("metric", ["lpips", "fid"])
def test_eval_asked_for_a_metric_without_its_weights_is_one_clear_line(
    tmp_path, monkeypatch, empty_hub, metric
):
    monkeypatch.setenv("GANENC_OFFLINE", "1")
    images = _random_images(2)
    real = _folder(tmp_path / "real", ["a.png", "b.png"], images)
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli,
        ["eval", "--real", str(real), "--recon", str(real), "--metrics", f"psnr,{metric}"]
        + ["--fid-min-images", "2", "--json", str(out)],
    )
    assert result.exit_code != 0
    assert "Traceback" not in result.output and result.output.startswith("Error: ")
    expected = "vgg16-397923af.pth" if metric == "lpips" else "pt_inception-2015-12-05"
    assert expected in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_one_rule_decides_which_metrics_are_computed(tmp_path, empty_hub):
    plan = plan_metrics()
    assert plan.computed == ("psnr", "ssim", "mse")
    assert set(plan.not_computed) == {"lpips", "fid"}
    assert plan.fill({"psnr": 1.0}) == {"psnr": 1.0, "lpips": None, "fid": None}
    plan = plan_metrics(offered=PER_IMAGE_METRICS, feature_weights="random")
    assert set(plan.not_computed) == {"lpips"} and plan.lpips_term is None
    with pytest.warns(RandomFeatureWeightsWarning):  # asked for by name, with random weights
        plan = plan_metrics(["lpips"], feature_weights="random")
    assert plan.computed == ("lpips",) and plan.lpips_term is not None
    with pytest.raises(ConfigError, match="unknown metric"):
        plan_metrics(["psnr", "sharpness"])
    with pytest.raises(ConfigError, match="FID refused: 3 image"):
        plan_metrics(["fid"], image_count=3)


@pytest.mark.parametrize("option", ["--fid-weights", "--feature-weights"])
def test_eval_json_never_overwrites_a_weights_file_it_reads(tmp_path, option):
    """With --force, --json onto the evaluated encoder or weights file replaced it."""
    images = _random_images(2)
    real = _folder(tmp_path / "real", ["x.png", "y.png"], images)
    recon = _folder(tmp_path / "recon", ["x.png", "y.png"], images)
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"weights")
    result = CliRunner().invoke(
        eval_command,
        ["--real", str(real), "--recon", str(recon), "--metrics", "psnr", option, str(weights)]
        + ["--json", str(weights), "--force", "--device", "cpu"],
    )
    assert result.exit_code != 0 and "is the input" in str(result.exception)
    assert weights.read_bytes() == b"weights"


def test_eval_pairs_command_reports_a_table_and_json(tmp_path):
    images = _random_images(3)
    real = _folder(tmp_path / "real", ["x.png", "y.png", "z.png"], images)
    # reconstructions under other extensions pair by name: x.bmp holds image z, z.bmp image x
    recon = _folder(
        tmp_path / "recon", ["x.bmp", "y.png", "z.bmp"], [images[2], images[1] * 0.5, images[0]]
    )
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        eval_command,
        ["--real", str(real), "--recon", str(recon), "--metrics", "psnr,ssim,mse"]
        + ["--json", str(out), "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "PSNR" in result.output and "mean ± std" in result.output
    report = json.loads(out.read_text())
    by_name = {row["image"]: row for row in report["images"]}
    assert by_name["y.png"]["psnr"] < 30  # the real file's name, as in --encoder mode
    assert report["pairs"] == 3 and report["fid"] is None
    expected = per_image_metrics(images[2:3], images[0:1])[0]["psnr"]
    assert by_name["x.png"]["psnr"] == pytest.approx(expected, abs=1e-3)
    assert set(report["summary"]) == {"psnr", "ssim", "mse"}


def test_fid_is_refused_below_the_minimum_and_missing_weights_are_a_clear_error(
    tmp_path, monkeypatch
):
    images = _random_images(5)
    with pytest.raises(ConfigError, match="FID refused: 5 image"):
        fid(images, images, min_images=10)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("GANENC_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="inception") as missing:
        fid(images, images, min_images=2)
    # it names FID's own option and offers no random weights (FID refuses them)
    assert "--fid-weights PATH" in str(missing.value)
    assert "--feature-weights" not in str(missing.value) and "random" not in str(missing.value)
    with pytest.raises(WeightsNotFoundError, match="not found at .* --fid-weights"):
        fid(images, images, weights=tmp_path / "nowhere.pth", min_images=2)
    with pytest.raises(ConfigError, match="random inception-fid weights are refused"):
        fid_weights_file("random")
    with pytest.raises(ConfigError, match="random"):
        fid_metric("random")
    # with every metric asked for implicitly, too few images skip FID with the reason
    report = evaluate_images(images, images, list("abcde"), feature_weights="random")
    assert report.fid is None and "needs >= 50 images, got 5" in report.not_computed["fid"]
    # random feature weights make LPIPS meaningless: optional, so left out (no warning)
    assert "random" in report.not_computed["lpips"] and report.summary["lpips"] is None
    # asked for explicitly, it is an error
    with pytest.raises(ConfigError, match="FID refused"):
        evaluate_images(images, images, list("abcde"), metrics=["psnr", "fid"])


@pytest.fixture(scope="module")
def random_inception_file(tmp_path_factory):
    """torch-fidelity's Inception layout with random (He-scaled) weights: a stand-in file."""
    from unittest import mock

    import torch_fidelity.feature_extractor_inceptionv3 as inception

    with (
        mock.patch.object(inception, "load_state_dict_from_url", return_value={}),
        mock.patch.object(
            inception.FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None
        ),
    ):
        network = inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, value in network.state_dict().items():
        if key.endswith("conv.weight"):
            value = torch.randn(value.shape, generator=generator) * (2 / value[0].numel()) ** 0.5
        state[key] = value
    path = tmp_path_factory.mktemp("inception") / "inception.pth"
    torch.save(state, path)
    return path


def test_fid_runs_torchmetrics_on_the_given_weights(random_inception_file):
    metric = fid_metric(random_inception_file)
    same, other = _random_images(2, seed=3), torch.zeros(2, 3, 32, 32)
    other[:, 0] = 0.8

    def features(images):
        return to_uint8(images).permute(0, 3, 1, 2)

    metric.update(features(same), real=True)
    metric.update(features(same), real=False)
    assert abs(float(metric.compute())) < 1e-3
    metric.reset()
    metric.update(features(same), real=True)
    metric.update(features(other), real=False)
    assert float(metric.compute()) > 1.0


def test_kfold_indices_partition_the_images():
    folds = kfold_indices(10, 3, seed=1)
    assert sorted(i for fold in folds for i in fold) == list(range(10))
    assert sorted(len(f) for f in folds) == [3, 3, 4]
    assert folds == kfold_indices(10, 3, seed=1) and folds != kfold_indices(10, 3, seed=2)
    with pytest.raises(ConfigError):
        kfold_indices(2, 3)
    assert mean_std([1.0, 3.0]) == {"mean": 2.0, "std": pytest.approx(math.sqrt(2)), "n": 2}


def test_eval_encoder_with_folds(tiny_run, tiny_inverter, photos, tmp_path, empty_hub, monkeypatch):
    default = evaluate_encoder(tiny_inverter, photos, folds=2)  # no weights: LPIPS, FID left out
    assert set(default.not_computed) == {"lpips", "fid"}
    assert set(default.fold_summary) == {"psnr", "ssim", "mse"}
    assert "fid" not in default.folds[0] and default.summary["lpips"] is None
    with monkeypatch.context() as patch:  # asked for by name: an error, before inverting
        patch.setenv("GANENC_OFFLINE", "1")
        patch.setattr(tiny_inverter, "invert", lambda *a, **k: pytest.fail("inverted first"))
        with pytest.raises(WeightsNotFoundError, match="vgg16-397923af.pth"):
            evaluate_encoder(tiny_inverter, photos, metrics=["lpips"])
    report = evaluate_encoder(tiny_inverter, photos, folds=2, metrics=["psnr", "ssim", "mse"])
    assert len(report.folds) == 2 and sum(f["images"] for f in report.folds) == PHOTOS
    fold_means = [f["psnr"] for f in report.folds]
    assert report.fold_summary["psnr"]["mean"] == pytest.approx(sum(fold_means) / 2)
    assert report.fold_summary["psnr"]["n"] == 2
    assert report.details["count"] == PHOTOS and report.details["seconds_per_image"] > 0
    out = tmp_path / "cv.json"
    result = CliRunner().invoke(
        eval_command,
        ["--encoder", str(tiny_run), "--images", str(photos), "--folds", "2"]
        + ["--metrics", "psnr,ssim,mse", "--device", "cpu", "--json", str(out)],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "Folds" in result.output and "over 2 folds" in result.output
    data = json.loads(out.read_text())
    assert data["fold_summary"]["psnr"]["mean"] == pytest.approx(
        report.fold_summary["psnr"]["mean"], rel=1e-5
    )
    assert len(data["images"]) == PHOTOS and data["folds"][0]["images"] == 2


def test_folders_too_large_to_keep_decoded_are_evaluated_batch_by_batch_alike(
    tmp_path, monkeypatch
):
    import ganenc.data
    from ganenc.evaluation import evaluate_folders, load_pairs

    names = [f"{i}.png" for i in range(5)]
    real = _folder(tmp_path / "real", names, _random_images(5, seed=1))
    recon = _folder(tmp_path / "recon", names, _random_images(5, seed=2))
    kept = evaluate_folders(real, recon, metrics=["psnr", "ssim", "mse"]).to_dict()
    monkeypatch.setattr(ganenc.data, "PRELOAD_BYTES", 0)
    real_set, recon_set, _ = load_pairs(pair_folders(real, recon))
    assert not real_set.preloaded and not recon_set.preloaded
    assert real_set.subset([4, 0]).names == ["4.png", "0.png"]
    assert evaluate_folders(real, recon, metrics=["psnr", "ssim", "mse"]).to_dict() == kept
    (recon / "3.png").write_bytes(b"not a png")
    with pytest.raises(GanencError, match=r"unreadable image\(s\): .*3\.png"):
        load_pairs(pair_folders(real, recon))


def test_an_encoder_is_evaluated_alike_on_a_folder_decoded_batch_by_batch(
    tiny_inverter, photos, monkeypatch
):
    import ganenc.data

    options = {"metrics": ["psnr", "ssim", "mse"], "folds": 2}
    kept = evaluate_encoder(tiny_inverter, photos, **options).to_dict()
    monkeypatch.setattr(ganenc.data, "PRELOAD_BYTES", 0)
    streamed = evaluate_encoder(tiny_inverter, photos, **options).to_dict()
    kept.pop("seconds_per_image"), streamed.pop("seconds_per_image")
    assert streamed == kept


def test_invert_then_eval_of_the_folders_gives_the_folds_of_eval_encoder(
    tiny_inverter, photos, tmp_path
):
    from ganenc.evaluation import evaluate_folders
    from ganenc.inversion import invert_folder

    invert_folder(tiny_inverter, photos, tmp_path / "inverted")
    options = {"metrics": ["psnr", "ssim", "mse"], "folds": 2, "seed": 3}
    direct = evaluate_encoder(tiny_inverter, photos, **options)
    paired = evaluate_folders(photos, tmp_path / "inverted" / "reconstructions", **options)
    assert [f["images"] for f in paired.folds] == [f["images"] for f in direct.folds]
    for a, b in zip(paired.folds, direct.folds, strict=True):
        assert a["psnr"] == pytest.approx(b["psnr"], abs=0.1)  # 8-bit reconstruction files
    assert paired.to_dict()["folds"] is not None and paired.details["seed"] == 3
    result = CliRunner().invoke(
        eval_command,
        ["--real", str(photos), "--recon", str(tmp_path / "inverted" / "reconstructions")]
        + ["--folds", "2", "--metrics", "psnr"],
    )
    assert result.exit_code == 0, result.output
    assert "mean ± std over 2 folds" in result.output
