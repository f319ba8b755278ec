"""The benchmark machinery: memory counting, interleaving, reports (no timing is asserted)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import cases, measure, report  # noqa: E402
from benchmarks.__main__ import main  # noqa: E402
from benchmarks.plans import PLANS, Plan  # noqa: E402

pytest_plugins = ("inversion_fixtures",)
pytestmark = pytest.mark.filterwarnings("ignore:.*RANDOM feature weights")
TINY = {"channel_max": 32}
TINY_ENCODER = {"max_channels": 32}
FAST_LOSS = {"image_terms": {"mse": 5.0, "cosine": 3.0, "ssim": 1.0}}


def test_tensor_memory_counts_storages_once_and_frees_them():
    with measure.TensorMemory() as tracker:
        a = torch.zeros(256, 1024)  # 1 MiB
        view = a[:128]  # a view: no new storage
        a.add_(1)  # in place: no new storage
        b = a * 2  # 1 MiB more
        del b
        c = torch.ones(128, 1024)  # 0.5 MiB, after b was freed
    assert tracker.peak == 2 * measure.MB
    assert tracker.current == int(1.5 * measure.MB)
    assert view.shape == (128, 1024) and c.sum() > 0


def test_tensor_memory_sees_activations_and_gradients():
    layer = torch.nn.Linear(512, 512)
    x = torch.randn(64, 512)

    def step():
        layer.zero_grad(set_to_none=True)
        layer(x).relu().sum().backward()

    result = measure.measure_memory(
        step, torch.device("cpu"), state=lambda: measure.state_bytes([layer], [], [x])
    )
    weights = (512 * 512 + 512 + 64 * 512) * 4 / measure.MB
    assert result["state_mb"] == pytest.approx(weights)
    # + the gradients (as large as the weights) and the activations (64 x 512, twice)
    assert result["tensor_peak_mb"] >= weights + (512 * 512 * 4) / measure.MB
    assert "rss_growth_mb" in result or not Path("/proc/self/clear_refs").exists()


def test_interleaved_timing_rotates_the_order_and_respects_the_budget():
    calls = []
    timings = measure.time_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        repeats=3,
        warmup=1,
        device=torch.device("cpu"),
    )
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert [len(t.seconds) for t in timings.values()] == [3, 3]
    spent = measure.Budget(0.0)
    short = measure.time_interleaved(
        {"a": lambda: None}, repeats=5, warmup=0, device=torch.device("cpu"), budget=spent
    )
    assert len(short["a"].seconds) == 1
    paired = measure.ratio(measure.Timing([2.0, 4.0, 9.0]), measure.Timing([1.0, 1.0, 3.0]))
    assert paired.median == 3.0 and paired.to_dict()["min"] == 2.0


def test_case_names_parse_into_speed_options():
    spec = cases.CaseSpec.parse("channels_last+gradient_checkpointing+bf16")
    assert spec.speed.channels_last and spec.speed.gradient_checkpointing
    assert spec.speed.precision == "bf16" and spec.cached_target
    assert not cases.CaseSpec.parse("baseline").cached_target
    with pytest.raises(ValueError, match="unknown case option"):
        cases.CaseSpec.parse("turbo")


def test_finetune_cases_agree_numerically_and_report_memory():
    """baseline (target recomputed), default (prepared once), checkpointing: one result."""
    generators = cases.GeneratorCache(torch.device("cpu"))
    results = {}
    for name in ("baseline", "default", "gradient_checkpointing"):
        case = cases.FinetuneIteration(
            cases.CaseSpec.parse(name),
            generators,
            32,
            generator_options=TINY,
            encoder_options=TINY_ENCODER,
            loss=FAST_LOSS,  # LPIPS's prepared target: tests/test_speed_options.py
        )
        results[name] = case.loss_and_gradients(seed=0)
        memory = measure.measure_memory(
            case, torch.device("cpu"), state=case.state, free_gradients=case.free_gradients
        )
        assert memory["tensor_peak_mb"] > memory["state_mb"] > 0
    for name in ("default", "gradient_checkpointing"):
        difference = cases.compare_numerics(results["baseline"], results[name])
        assert difference["loss_abs_diff"] <= 1e-6, (name, difference)
        assert difference["grad_max_rel_diff"] <= 1e-5, (name, difference)


def test_a_tiny_plan_runs_every_section_and_writes_json_and_markdown(tmp_path, monkeypatch):
    tiny = Plan(
        name="tiny",
        generator_sizes={"stylegan2": (32,), "pggan": (32,)},
        generator_batch={1024: 1},
        generator_repeats=1,
        inversion={
            "resolution": 32,
            "generator_options": TINY,
            "encoder_options": TINY_ENCODER,
            "pretrain_steps": 2,
            "pretrain_batch": 2,
            "images": 2,
            "refine_steps": 1,
            "max_optimize_steps": 2,
            "repeats": 1,
        },
        pretrain=[(32, 1, 1)],
        finetune=[(32, 1)],
        finetune_cases={32: ["gradient_checkpointing"]},
        options={"finetune": (32, 1, 1, ["cached_target", "channels_last"])},
        budget_s=600.0,
        generator_options={"stylegan2": TINY, "pggan": {"fmaps_max": 32}},
        encoder_options=TINY_ENCODER,
        loss=FAST_LOSS,
        folders={
            "resolution": 32,
            "counts": [4],
            "generator_options": TINY,
            "encoder_options": TINY_ENCODER,
        },
    )
    monkeypatch.setitem(PLANS, "tiny", tiny)
    results = main(["--plan", "tiny", "--device", "cpu", "--out", str(tmp_path)])
    assert set(results["sections"]) == {
        "generator",
        "inversion",
        "pretrain",
        "finetune",
        "options",
        "folders",
    }
    assert (tmp_path / "tiny.json").is_file()
    text = (tmp_path / "tiny.md").read_text()
    for heading in (
        "Generator forward",
        "Inversion at 32 px",
        "Pre-training step",
        "fine-tuning",
        "Folders at 32 px",
    ):
        assert heading in text, heading
    assert "python -m" in text and "torch" in text  # the command and the versions
    rows = results["sections"]["options"]["finetune"]["rows"]
    assert [row["case"] for row in rows] == ["baseline", "default", "channels_last"]
    assert rows[1]["reference"] == "baseline"
    assert rows[1]["numerics_vs_reference"]["loss_abs_diff"] <= 1e-6
    assert report.markdown(results) == text


def _tiny_plan(**changes) -> Plan:
    from dataclasses import replace

    base = Plan(
        name="tiny",
        generator_sizes={"stylegan2": (32,)},
        generator_batch={1024: 1},
        generator_repeats=1,
        inversion={
            "resolution": 32,
            "generator_options": TINY,
            "encoder_options": TINY_ENCODER,
            "pretrain_steps": 2,
            "pretrain_batch": 2,
            "images": 2,
            "refine_steps": 1,
            "max_optimize_steps": 2,
            "repeats": 1,
        },
        pretrain=[(32, 1, 1)],
        finetune=[(32, 1)],
        finetune_cases={},
        options={},
        budget_s=600.0,
        generator_options={"stylegan2": TINY},
        encoder_options=TINY_ENCODER,
        loss=FAST_LOSS,
    )
    return replace(base, **changes)


def test_a_failing_section_is_recorded_and_the_others_still_run(tmp_path, monkeypatch):
    """One broken measurement (a CUDA-only bug, say) must not lose a lent machine's run."""
    from benchmarks import sections

    monkeypatch.setitem(PLANS, "tiny", _tiny_plan())
    written = []

    def broken(*args, **kwargs):
        written.append(json.loads((tmp_path / "tiny.json").read_text()) if written else None)
        raise RuntimeError("planted failure")

    real_write = report.write

    def recording_write(results, json_path, markdown_path):
        text = real_write(results, json_path, markdown_path)
        written.append(set(results["sections"]))
        return text

    monkeypatch.setattr(sections, "pretrain_section", broken)
    monkeypatch.setattr(report, "write", recording_write)
    results = main(
        ["--plan", "tiny", "--device", "cpu", "--out", str(tmp_path), "--sections",
         "finetune,pretrain,generator"]
    )  # fmt: skip
    failed = results["sections"]["pretrain"]
    assert failed["error"] == "RuntimeError: planted failure"
    assert "planted failure" in failed["traceback"]
    assert results["sections"]["finetune"]["rows"][0]["iterations_per_s"] > 0
    assert results["sections"]["generator"]["rows"][0]["images_per_s"] > 0
    # written after every section (a run cut short keeps what it measured), then complete
    assert {"finetune"} in written and {"finetune", "pretrain"} in written
    saved = json.loads((tmp_path / "tiny.json").read_text())
    assert saved["complete"] is True
    assert (
        "section pretrain failed: RuntimeError: planted failure"
        in (tmp_path / "tiny.md").read_text()
    )


def test_a_failing_option_case_is_a_row_and_the_other_cases_are_compared(tmp_path, monkeypatch):
    from benchmarks import sections

    plan = _tiny_plan(options={"finetune": (32, 1, 1, ["channels_last", "gradient_checkpointing"])})
    real = sections.FinetuneIteration

    def sometimes_broken(spec, *args, **kwargs):
        if spec.name == "channels_last":
            raise RuntimeError("no such kernel")
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(sections, "FinetuneIteration", sometimes_broken)
    result = sections.options_section(
        plan, torch.device("cpu"), measure.Budget(600), lambda _: None,
        cases.GeneratorCache(torch.device("cpu")),
    )  # fmt: skip
    rows = {row["case"]: row for row in result["finetune"]["rows"]}
    assert rows["channels_last"]["error"] == "RuntimeError: no such kernel"
    assert rows["gradient_checkpointing"]["numerics_vs_reference"]["loss_abs_diff"] <= 1e-6
    text = report.markdown(
        {
            "plan": "tiny",
            "machine": {"device": "cpu", "cpu": "x", "cpu_cores": 1, "torch_threads": 1,
                        "memory_gb": 1, "command": "c", "date": "d", "versions": {}},
            "elapsed_s": 1.0,
            "sections": {"options": result},
        }
    )  # fmt: skip
    assert "| channels_last | failed: RuntimeError: no such kernel |" in text


def test_inversion_section_measures_a_given_encoder_on_given_images(tmp_path, tiny_run, capsys):
    """--encoder RUN --images DIR: a trained encoder and real images instead of the brief one."""
    from inversion_fixtures import write_photos

    import ganenc
    from benchmarks import sections

    generator = ganenc.load_generator("stylegan2", resolution=32, channel_max=32)
    photos = write_photos(generator, tmp_path / "photos", count=3)
    plan = _tiny_plan()
    result = sections.inversion_section(
        plan, torch.device("cpu"), measure.Budget(600), lambda _: None,
        encoder=tiny_run, images=photos,
    )  # fmt: skip
    assert result["images"] == 2  # the plan's count, taken from the folder
    assert result["source"]["encoder"] == str(tiny_run) and "photos" in result["source"]["images"]
    methods = [row["method"] for row in result["rows"]]
    assert methods[0] == "encoder" and methods[-1] == "average latent (no inversion)"
    speed = result["equal_quality_speedup"]
    assert speed["optimization_step_in_encoder_passes"] > 0
    assert speed["steps_needed_for_target"] == pytest.approx(
        1000 / speed["optimization_step_in_encoder_passes"]
    )
    with pytest.raises(SystemExit):
        main(["--plan", "quick", "--device", "cpu", "--no-write", "--images", str(photos)])
    assert "error: --images needs --encoder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--budget", "nan"], "--budget: must be a finite number > 0"),
        (["--threads", "0"], "--threads: must be an integer >= 1"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--sections", "generator,nope"], "unknown section(s) ['nope']"),
        (["--sections", ","], "--sections names none; choose from"),
        (["--encoder", "{tmp}/no-run"], "encoder not found"),
        (["--out", "{tmp}/file/x"], "is a file, not a folder"),
    ],
)
def test_bad_options_stop_before_anything_is_measured(tmp_path, capsys, options, says):
    (tmp_path / "file").write_text("")
    options = [o.replace("{tmp}", str(tmp_path)) for o in options]
    with pytest.raises(SystemExit) as stopped:
        main(["--plan", "quick", *options])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and says in err.splitlines()[-1]
    assert "plan quick" not in err  # stopped before the first measurement's log line


def test_report_gives_the_memory_target_verdict_and_marks_a_partial_run():
    memory = {"state_mb": 590.0, "cuda_peak_mb": 2700.0, "cuda_max_allocated_mb": 2776.0}
    row = {
        "case": "gradient_checkpointing",
        "reference": "baseline",
        "per_s": 6.4,
        "timing": {},
        "speed_vs_reference": {"median": 0.7, "min": 0.6, "max": 0.8},
        "memory": memory,
        "numerics_vs_reference": {"loss_abs_diff": 0.0, "grad_max_rel_diff": 0.0},
        "within_target_3835_mb": True,
    }
    text = report.markdown(
        {
            "plan": "gpu",
            "complete": False,
            "machine": {
                "device": "cuda",
                "cpu": "x",
                "cpu_cores": 1,
                "torch_threads": 1,
                "memory_gb": 1,
                "command": "c",
                "date": "d",
                "versions": {},
            },
            "elapsed_s": 1.0,
            "sections": {
                "options": {
                    "finetune": {"resolution": 1024, "batch": 1, "unit": "it/s", "rows": [row]}
                },
                "generator": {"error": "RuntimeError: boom", "traceback": "..."},
            },
        }
    )
    assert "Within 3,835 MB" in text and "gradient_checkpointing yes" in text
    assert "**partial**" in text
    assert "section generator failed: RuntimeError: boom" in text


def test_folders_memory_stays_flat_chunked_and_grows_all_at_once(monkeypatch):
    import ganenc.inversion
    from benchmarks import sections

    monkeypatch.setattr(ganenc.inversion, "CHUNK_IMAGES", 8)
    plan = _tiny_plan(
        folders={
            "resolution": 32,
            "counts": [16, 64],
            "generator_options": TINY,
            "encoder_options": TINY_ENCODER,
        }
    )
    result = sections.folders_section(
        plan, torch.device("cpu"), measure.Budget(600), lambda _: None
    )
    small, large = result["rows"]
    assert large["invert_memory_ratio"] > 1.2 and large["eval_memory_ratio"] > 1.1
    for name in ("invert", "eval"):  # 4x the images: today's peak barely moves
        assert large[name]["tensor_peak_mb"] < 1.2 * small[name]["tensor_peak_mb"]
        assert large[f"{name}_before"]["tensor_peak_mb"] > large[name]["tensor_peak_mb"]
