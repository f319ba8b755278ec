"""The five sections of a benchmark run; each returns plain data (rows and notes).

``generator``  images/s of every family at a small and a large size, relative
               to StyleGAN2 at the same size and batch;
``inversion``  seconds per image: encoder alone, encoder + per-image
               refinement, and latent optimisation until it reaches the
               encoder's quality; the speed ratio at equal quality;
``pretrain``   pre-training images/s and peak memory, step cost in generator forwards;
``finetune``   per-image fine-tuning it/s and peak memory (the paper's
               3,500 iterations per 1024 px image at 2.08 it/s and 7,670 MB);
``options``    each speed option against the code before it (``baseline``)
               and against today's default: speed ratio, memory, and how far
               its loss and gradients lie from the baseline's;
``folders``    peak memory of ``ganenc invert`` and ``ganenc eval`` on folders of
               two sizes: chunk by chunk (today) against all images at once (before).
"""

from __future__ import annotations

import gc
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import ganenc

from .cases import (
    CaseSpec,
    FinetuneIteration,
    GeneratorCache,
    GeneratorForward,
    PretrainStep,
    compare_numerics,
)
from .measure import Budget, measure_memory, ratio, time_interleaved
from .plans import Plan

#: The paper's fine-tuning memory on a V100, and the target of half of it.
PAPER_FINETUNE_MB = 7670
TARGET_FINETUNE_MB = PAPER_FINETUNE_MB / 2
PAPER_FINETUNE_IT_S = 2.08

Log = Callable[[str], None]


def _skipped(what: str, budget: Budget) -> dict[str, Any]:
    return {"skipped": what, "reason": f"time budget of {budget.seconds:.0f} s spent"}


def _release() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# -- generator forward ----------------------------------------------------------------------


def generator_section(plan: Plan, device: torch.device, budget: Budget, log: Log) -> dict:
    """Images/s of each family, relative to StyleGAN2 at the same resolution and batch."""
    by_resolution: dict[int, list[str]] = {}
    for family, sizes in plan.generator_sizes.items():
        for size in sizes:
            by_resolution.setdefault(size, []).append(family)
    rows, skipped = [], []
    for resolution in sorted(by_resolution):
        families = by_resolution[resolution]
        listed = "stylegan2" in families
        if not listed:
            families = ["stylegan2", *families]
        if budget.spent():
            skipped.append(_skipped(f"generators at {resolution} px", budget))
            continue
        batch = plan.batch_for(resolution)
        cases = {}
        for family in families:
            try:
                generator = ganenc.load_generator(
                    family, resolution=resolution, **plan.generator_options.get(family, {})
                )
            except Exception as exc:  # noqa: BLE001 - the other families are still measured
                rows.append({"family": family, "resolution": resolution, **_failure(exc)})
                continue
            cases[family] = GeneratorForward(generator.to(device).freeze(), batch)
        log(f"generator forward at {resolution} px, batch {batch}: {', '.join(cases)}")
        for family in list(cases):  # a family whose forward fails is dropped, not the size
            try:
                cases[family]()
            except Exception as exc:  # noqa: BLE001
                log(f"generator {family} at {resolution} px failed: {type(exc).__name__}: {exc}")
                rows.append({"family": family, "resolution": resolution, **_failure(exc)})
                del cases[family]
        timings = time_interleaved(
            cases, repeats=plan.generator_repeats, warmup=plan.warmup, device=device, budget=budget
        )
        reference = timings.get("stylegan2")
        for family, timing in timings.items():
            row = {
                "family": family,
                "resolution": resolution,
                "batch": batch,
                "images_per_s": batch / timing.median,
                "timing": timing.to_dict(),
            }
            if reference is not None:
                row["speed_vs_stylegan2"] = ratio(reference, timing).to_dict()
            if family == "stylegan2" and not listed:
                row["reference_only"] = True
            rows.append(row)
        del cases
        _release()
    return {"rows": rows, "skipped": skipped}


# -- inversion --------------------------------------------------------------------------------


def _psnr(reconstruction: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    from ganenc import metrics

    return metrics.psnr(reconstruction.float().cpu(), images.float().cpu())


class _LatentOptimization:
    """Plain W+ optimisation (Adam, lr 0.01) from the average latent, until a PSNR is reached.

    The baseline users would otherwise pick (Image2StyleGAN-style): each image's
    own MSE, summed over the batch; it stops at the first step whose
    reconstructions reach ``goal`` dB mean PSNR (``ganenc.metrics.psnr``, as
    for the encoder); MSE, the quality measure itself, is its objective: the
    most favourable setting for the baseline.
    """

    def __init__(self, generator, options, images, goal: float, max_steps: int, lr: float = 0.01):
        self.generator, self.options, self.images = generator, options, images
        self.goal, self.max_steps, self.lr = goal, max_steps, lr
        self.average = generator.average_latents(images.shape[0])
        self.steps = 0
        self.psnr = float("nan")
        self.reached = False

    def __call__(self) -> None:
        from ganenc import metrics

        latents = {k: v.clone().requires_grad_(True) for k, v in self.average.items()}
        optimizer = torch.optim.Adam(latents.values(), lr=self.lr)
        self.reached = False
        for step in range(self.max_steps + 1):
            reconstruction = self.generator.synthesize(latents, **self.options)
            per_image = (reconstruction - self.images).pow(2).flatten(1).mean(1)
            psnr = float(metrics.psnr(reconstruction, self.images).clamp(max=100).mean())
            self.steps, self.psnr = step, psnr
            if psnr >= self.goal:
                self.reached = True
                return
            if step == self.max_steps:
                return
            optimizer.zero_grad(set_to_none=True)
            per_image.sum().backward()
            optimizer.step()


#: The loss of the benchmark's own encoder training and of every refinement: no VGG16.
FAST_LOSS = {"image_terms": {"mse": 5.0, "cosine": 3.0, "ssim": 1.0}}


def _pretrained_here(config: dict[str, Any], device: torch.device, log: Log) -> dict[str, Any]:
    """Pre-train a StyleGAN2 encoder for ``pretrain_steps`` or ``pretrain_seconds``."""
    from ganenc.training.pretrain import Pretrainer
    from ganenc.training.settings import TrainSettings

    resolution = config["resolution"]
    limit = config.get("pretrain_seconds")
    with tempfile.TemporaryDirectory(prefix="ganenc-bench-") as folder:
        settings = TrainSettings(
            gan="stylegan2",
            generator_options={"resolution": resolution, **config["generator_options"]},
            encoder_options=dict(config["encoder_options"]),
            attention="center",
            loss=FAST_LOSS,
            batch_size=config["pretrain_batch"],
            iterations=config["pretrain_steps"],
            out=Path(folder) / "run",
            device=str(device),
            progress=False,
        )
        trainer = Pretrainer(settings)
        log(
            f"inversion: pre-training a {resolution} px encoder for {settings.iterations} steps"
            + (f" or {limit:.0f} s" if limit else "")
        )
        began = time.perf_counter()
        steps = 0
        for step in range(settings.iterations):
            trainer.train_step(step)
            steps = step + 1
            if limit and time.perf_counter() - began >= limit:
                break
        seconds = time.perf_counter() - began
    seeds = list(range(settings.val_seed_start, settings.val_seed_start + config["images"]))
    _, images = trainer.synthesize_batch(seeds)  # held-out seeds: never trained on
    return {
        "generator": trainer.generator,
        "encoder": trainer.encoder.eval(),
        "options": trainer.synthesis_options,
        # as pre-training and val.json see them (the metrics clamp to [-1, 1] themselves):
        # clamped inputs, which the encoder never saw in training, cost it about 3 dB
        "images": images.detach(),
        "source": {
            "encoder": f"pre-trained here for {steps} steps ({seconds:.0f} s)",
            "steps": steps,
            "batch": settings.batch_size,
            "seconds": seconds,
            "loss": "5 MSE + 3 cosine + 1 SSIM, centre attentions",
            "images": f"{config['images']} held-out generated images",
        },
    }


def _given_encoder(
    config: dict[str, Any], device: torch.device, encoder: Path, images: Path | None, log: Log
) -> dict[str, Any]:
    """A trained encoder (run folder or file) and its generator; real images if given."""
    from ganenc.data import load_image_folder
    from ganenc.inversion import Inverter

    inverter = Inverter.from_encoder(encoder, device=device, loss=FAST_LOSS)
    generator = inverter.generator
    count = config["images"]
    if images is not None:
        folder = load_image_folder(images, generator.resolution)
        batch = folder.images[:count].to(device)
        what = f"{batch.shape[0]} images of {images}"
    else:
        from ganenc.training.loop import synthesize_for_seeds
        from ganenc.training.settings import TrainSettings

        start = TrainSettings.model_fields["val_seed_start"].default  # held out in training
        seeds = list(range(start, start + count))
        _, batch = synthesize_for_seeds(
            generator,
            seeds,
            generator.device,
            generator.training_truncation(),
            inverter.synthesis_options,
        )
        what = f"{count} generated images (seeds {start}+, never trained on)"
    log(f"inversion: encoder {encoder} on {what}")
    return {
        "generator": generator,
        "encoder": inverter.encoder.eval(),
        "options": inverter.synthesis_options,
        "images": batch.float(),
        "source": {"encoder": str(encoder), "images": what},
    }


def inversion_section(
    plan: Plan,
    device: torch.device,
    budget: Budget,
    log: Log,
    encoder: Path | None = None,
    images: Path | None = None,
) -> dict:
    """Encoder vs encoder + refinement vs latent optimisation, at equal quality.

    By default the encoder is one this section pre-trains briefly on a random
    generator (the only kind available offline); ``encoder`` (``--encoder
    RUN``) measures a trained one instead, on real ``images`` if given.
    """
    from ganenc.inversion import Inverter

    config = plan.inversion
    if encoder is None:
        setup = _pretrained_here(config, device, log)
    else:
        setup = _given_encoder(config, device, Path(encoder), images, log)
    generator, model, options = setup["generator"], setup["encoder"], setup["options"]
    images_t = setup["images"]
    count = images_t.shape[0]
    resolution = generator.resolution
    with torch.no_grad():
        encoded = model(images_t)
        encoder_psnr = float(_psnr(generator.synthesize(encoded, **options), images_t).mean())
        average = generator.average_latents(count)
        average_psnr = float(_psnr(generator.synthesize(average, **options), images_t).mean())
    log(f"inversion: encoder {encoder_psnr:.2f} dB, average latent {average_psnr:.2f} dB")

    inner = 10  # encoder passes per timed call (one pass is too short to time alone)

    def encode() -> None:
        with torch.inference_mode():
            for _ in range(inner):
                model(images_t)

    baseline = _LatentOptimization(
        generator, options, images_t, encoder_psnr, config["max_optimize_steps"]
    )
    # A fixed number of optimisation steps, never stopped early: the cost of one step.
    fixed_steps = 10
    fixed = _LatentOptimization(generator, options, images_t, math.inf, fixed_steps)
    # One warm-up round: on a GPU the first calls pay for cuDNN autotuning and kernel
    # loading (the first GPU run timed it into latent optimisation: 527x instead of ~65x).
    timings = time_interleaved(
        {"encoder": encode, "latent_optimization": baseline, "optimization_steps": fixed},
        repeats=config["repeats"],
        warmup=1,
        device=device,
        budget=budget,
    )
    encoder_seconds = [t / inner / count for t in timings["encoder"].seconds]
    optimization_seconds = [t / count for t in timings["latent_optimization"].seconds]
    speedup = ratio(timings["latent_optimization"], timings["encoder"])
    speedup.values = [v * inner for v in speedup.values]
    # One optimisation step (generator forward + backward, Adam) in encoder passes: the
    # steps optimisation may take before the encoder is 1000x faster at equal quality.
    step_cost = ratio(timings["optimization_steps"], timings["encoder"])
    step_cost.values = [v * inner / fixed_steps for v in step_cost.values]
    rows = [
        {
            "method": "encoder",
            "seconds_per_image": _median(encoder_seconds),
            "spread": timings["encoder"].spread,
            "psnr": encoder_psnr,
        },
        {
            "method": "latent optimisation to the encoder's PSNR (W+, Adam, MSE)",
            "seconds_per_image": _median(optimization_seconds),
            "spread": timings["latent_optimization"].spread,
            "psnr": baseline.psnr,
            "steps": baseline.steps,
            "reached": baseline.reached,
        },
    ]
    inverter = Inverter(
        model,
        generator,
        loss=FAST_LOSS,
        cropper=ganenc.create("cropper", "center"),
        device=device,
        synthesis_options=options,
    )
    refine_steps = config["refine_steps"]
    for refine in ("finetune", "optimize"):
        if budget.spent():
            rows.append(_skipped(f"encoder + {refine}", budget))
            continue
        log(f"inversion: encoder + {refine} ({refine_steps} steps per image)")
        result = inverter.invert(images_t, refine=refine, steps=refine_steps, batch_size=count)
        rows.append(
            {
                "method": f"encoder + {refine} ({refine_steps} steps)",
                "seconds_per_image": result.seconds_per_image,
                "psnr": float(_psnr(result.reconstructions, images_t).mean()),
            }
        )
    rows.append({"method": "average latent (no inversion)", "psnr": average_psnr})
    source = setup["source"]
    return {
        "resolution": resolution,
        "images": count,
        "source": source,
        "rows": rows,
        "equal_quality_speedup": {
            **speedup.to_dict(),
            "reached": baseline.reached,
            "target": 1000,
            "optimization_step_in_encoder_passes": step_cost.median,
            "optimization_step_in_encoder_passes_range": step_cost.to_dict(),
            "steps_needed_for_target": 1000 / step_cost.median,
            "note": (
                "latent optimisation time to reach the encoder's PSNR / encoder time"
                + ("" if baseline.reached else " (not reached: a lower bound)")
            ),
        },
    }


def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values) if values else float("nan")


# -- training steps ---------------------------------------------------------------------------


def _model_options(plan: Plan) -> dict[str, Any]:
    """Generator, encoder and loss options of the training cases (StyleGAN2)."""
    options: dict[str, Any] = {
        "generator_options": dict(plan.generator_options.get("stylegan2", {})),
        "encoder_options": dict(plan.encoder_options),
    }
    if plan.loss is not None:
        options["loss"] = dict(plan.loss)
    return options


def _memory(case: Any, device: torch.device) -> dict[str, Any]:
    """Peak memory of one step; on CUDA after a warm-up step (cuDNN autotuning allocates)."""
    if device.type == "cuda":
        case()
    return measure_memory(
        case,
        device,
        state=case.state,
        free_gradients=case.free_gradients,
        track_tensors=not case.spec.speed.compile,
    )


def _beside_generator_forward(
    name: str,
    case: Any,
    generator: Any,
    batch: int,
    repeats: int,
    device: torch.device,
    budget: Budget,
) -> dict:
    """Time ``case`` interleaved with a generator forward of the same batch (its unit of cost)."""
    forward = GeneratorForward(generator, batch)
    forward()  # warm-up
    return time_interleaved(
        {name: case, "generator_forward": forward},
        repeats=repeats,
        warmup=0,
        device=device,
        budget=budget,
    )


def pretrain_section(plan: Plan, device: torch.device, budget: Budget, log: Log) -> dict:
    """Images/s and peak memory of pre-training steps; step cost in generator forwards."""
    rows, skipped = [], []
    for resolution, batch, repeats in plan.pretrain:
        if budget.spent():
            skipped.append(_skipped(f"pre-training at {resolution} px", budget))
            continue
        log(f"pre-training step at {resolution} px, batch {batch}")
        try:
            rows.append(_pretrain_row(plan, device, budget, resolution, batch, repeats))
        except Exception as exc:  # noqa: BLE001 - the other sizes are still measured
            log(f"pre-training at {resolution} px failed: {type(exc).__name__}: {exc}")
            rows.append({"resolution": resolution, "batch": batch, **_failure(exc)})
        _release()
    return {"rows": rows, "skipped": skipped}


def _pretrain_row(
    plan: Plan, device: torch.device, budget: Budget, resolution: int, batch: int, repeats: int
) -> dict[str, Any]:
    case = PretrainStep(
        CaseSpec.parse("default"), resolution, batch, device, **_model_options(plan)
    )
    try:
        memory = _memory(case, device)  # also the warm-up step
        timings = _beside_generator_forward(
            "step", case, case.trainer.generator, batch, repeats, device, budget
        )
    finally:
        case.close()
    step = timings["step"]
    return {
        "resolution": resolution,
        "batch": batch,
        "images_per_s": batch / step.median,
        "step": step.to_dict(),
        "generator_forward": timings["generator_forward"].to_dict(),
        "step_in_generator_forwards": ratio(step, timings["generator_forward"]).to_dict(),
        "memory": memory,
    }


def finetune_section(
    plan: Plan, device: torch.device, budget: Budget, log: Log, generators: GeneratorCache
) -> dict:
    """Per-image fine-tuning it/s and peak memory; extra cases (checkpointing ...) beside."""
    rows, skipped = [], []
    for resolution, repeats in plan.finetune:
        names = ["default", *plan.finetune_cases.get(resolution, [])]
        for name in names:
            if budget.spent():
                skipped.append(_skipped(f"fine-tuning {name} at {resolution} px", budget))
                continue
            spec = CaseSpec.parse(name)
            if spec.speed.precision != "fp32" and device.type != "cuda":
                continue
            log(f"fine-tuning iteration at {resolution} px: {name}")
            try:
                rows.append(
                    _finetune_row(plan, device, budget, generators, spec, resolution, repeats)
                )
            except Exception as exc:  # noqa: BLE001 - the other cases are still measured
                log(f"fine-tuning {name} at {resolution} px failed: {type(exc).__name__}: {exc}")
                rows.append({"resolution": resolution, "case": name, **_failure(exc)})
            _release()
        generators.clear()
    return {
        "rows": rows,
        "skipped": skipped,
        "paper": {"iterations_per_s": PAPER_FINETUNE_IT_S, "memory_mb": PAPER_FINETUNE_MB},
    }


def _finetune_row(
    plan: Plan,
    device: torch.device,
    budget: Budget,
    generators: GeneratorCache,
    spec: CaseSpec,
    resolution: int,
    repeats: int,
) -> dict[str, Any]:
    name = spec.name
    case = FinetuneIteration(spec, generators, resolution, **_model_options(plan))
    memory = _memory(case, device)
    row: dict[str, Any] = {"resolution": resolution, "case": name, "memory": memory}
    if name == "default" or plan.name == "gpu":  # extras: memory only on the CPU
        timings = _beside_generator_forward(
            "iteration", case, case.generator, 1, repeats, device, budget
        )
        iteration = timings["iteration"]
        row.update(
            {
                "iterations_per_s": 1.0 / iteration.median,
                "iteration": iteration.to_dict(),
                "generator_forward": timings["generator_forward"].to_dict(),
                "iteration_in_generator_forwards": ratio(
                    iteration, timings["generator_forward"]
                ).to_dict(),
            }
        )
        if resolution == 1024:
            row["minutes_per_image_3500_iterations"] = 3500 / row["iterations_per_s"] / 60
    peak = memory.get("cuda_max_allocated_mb", memory.get("tensor_peak_mb"))
    if resolution == 1024 and peak is not None:
        row["within_target_3835_mb"] = peak <= TARGET_FINETUNE_MB
    return row


def options_section(
    plan: Plan,
    device: torch.device,
    budget: Budget,
    log: Log,
    generators: GeneratorCache,
    options: dict[str, tuple[int, int, int, list[str]]] | None = None,
) -> dict:
    """Each speed option vs the code before (``baseline``) and today's ``default``.

    ``options`` defaults to the plan's; the ``compile`` section passes the
    plan's ``compile_options`` (compilation is slow to start: measured last).
    A case that fails is a row with its error; the others are still compared.
    """
    result: dict[str, Any] = {}
    chosen = plan.options if options is None else options
    for section, (resolution, batch, repeats, extra) in chosen.items():
        if budget.spent():
            result[section] = _skipped(f"options of {section}", budget)
            continue
        names = ["baseline", "default"] if section == "finetune" else ["default"]
        names += [o for o in extra if o != "cached_target" and o not in names]
        names = [
            n for n in names if device.type == "cuda" or CaseSpec.parse(n).speed.precision == "fp32"
        ]
        log(f"options ({section} at {resolution} px): {', '.join(names)}")
        cases: dict[str, Any] = {}
        numerics: dict[str, Any] = {}
        memory: dict[str, Any] = {}
        failed: dict[str, dict[str, Any]] = {}
        for name in names:
            if budget.spent() and name not in ("baseline", "default"):
                failed[name] = _skipped(name, budget)
                continue
            spec = CaseSpec.parse(name)
            case = None
            try:
                if section == "finetune":
                    case = FinetuneIteration(spec, generators, resolution, **_model_options(plan))
                else:
                    case = PretrainStep(spec, resolution, batch, device, **_model_options(plan))
                numerics[name] = case.loss_and_gradients(seed=0)  # before any update: same weights
                memory[name] = _memory(case, device)
            except Exception as exc:  # noqa: BLE001 - the other options are still measured
                log(f"options: {name} failed: {type(exc).__name__}: {exc}")
                failed[name] = _failure(exc)
                numerics.pop(name, None)
                if case is not None and hasattr(case, "close"):
                    case.close()
                _release()
                continue
            cases[name] = case
        timings = time_interleaved(cases, repeats=repeats, warmup=0, device=device, budget=budget)
        rows = []
        for name in names:
            if name in failed:
                rows.append({"case": name, **failed[name]})
                continue
            # Each case against the code before with the same attention (or the first case).
            reference = CaseSpec.parse(name).baseline
            reference = reference if reference in cases else next(iter(cases))
            row = {
                "case": name,
                "reference": reference,
                "per_s": (batch if section == "pretrain" else 1) / timings[name].median,
                "timing": timings[name].to_dict(),
                "speed_vs_reference": ratio(timings[reference], timings[name]).to_dict(),
                "memory": memory[name],
                "numerics_vs_reference": compare_numerics(numerics[reference], numerics[name]),
            }
            if "default" in timings:
                row["speed_vs_default"] = ratio(timings["default"], timings[name]).to_dict()
            peak = memory[name].get("cuda_max_allocated_mb", memory[name].get("tensor_peak_mb"))
            if section == "finetune" and resolution == 1024 and peak is not None:
                row["within_target_3835_mb"] = peak <= TARGET_FINETUNE_MB
            rows.append(row)
        for case in cases.values():
            if hasattr(case, "close"):
                case.close()
        del cases
        generators.clear()
        _release()
        result[section] = {
            "resolution": resolution,
            "batch": batch,
            "unit": "images/s" if section == "pretrain" else "it/s",
            "rows": rows,
        }
    return result


# -- folders ------------------------------------------------------------------------------------


def folders_section(plan: Plan, device: torch.device, budget: Budget, log: Log) -> dict:
    """Peak memory of inverting and evaluating a folder, chunked vs all at once, at two sizes.

    The baseline is what ``invert_folder`` and ``evaluate_folders`` did before: every image
    (and every reconstruction) decoded into one float32 tensor. Random weights: memory, not
    quality.
    """
    import ganenc.data
    from ganenc.data import load_image, load_image_folder
    from ganenc.evaluation import (
        evaluate_folders,
        evaluate_images,
        pair_folders,
        per_image_metrics,
    )
    from ganenc.images import save_image
    from ganenc.inversion import Inverter, invert_folder

    config = plan.folders
    if not config:
        return {"rows": [], "skipped": [], "note": f"not measured in plan {plan.name!r}"}
    resolution = config["resolution"]
    generator = ganenc.load_generator(
        "stylegan2", resolution=resolution, **config.get("generator_options", {})
    ).freeze()
    encoder = ganenc.build_encoder(generator, **config.get("encoder_options", {}))
    inverter = Inverter(encoder, generator, device=device)
    rows, skipped = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for count in config["counts"]:
            if budget.spent():
                skipped.append(_skipped(f"folders of {count} images", budget))
                continue
            log(f"folders: {count} images at {resolution} px")
            folder = Path(tmp) / f"images-{count}"
            with torch.no_grad():
                for start in range(0, count, 16):
                    n = min(16, count - start)
                    latents = generator.sample_latents(n, seed=start)
                    for i, image in enumerate(generator.synthesize(latents)):
                        save_image(image, folder / f"{start + i:05d}.png")

            def chunked(count=count, folder=folder):
                invert_folder(inverter, folder, Path(tmp) / f"inverted-{count}")

            def all_at_once(folder=folder):
                images = load_image_folder(folder, resolution).images
                result = inverter.invert(images)
                per_image_metrics(result.reconstructions, images)

            recon = Path(tmp) / f"inverted-{count}" / "reconstructions"

            def eval_lazy(folder=folder, recon=recon):
                saved = ganenc.data.PRELOAD_BYTES
                ganenc.data.PRELOAD_BYTES = 0  # as a folder above the 2 GiB threshold is read
                try:
                    evaluate_folders(folder, recon, metrics=["psnr", "ssim", "mse"])
                finally:
                    ganenc.data.PRELOAD_BYTES = saved

            def eval_kept(folder=folder, recon=recon):
                evaluate_folders(folder, recon, metrics=["psnr", "ssim", "mse"])

            def eval_at_once(folder=folder, recon=recon):
                pairs = pair_folders(folder, recon)
                real = torch.stack([load_image(p[1], resolution) for p in pairs])
                fake = torch.stack([load_image(p[2], resolution) for p in pairs])
                evaluate_images(real, fake, [p[0] for p in pairs], metrics=["psnr", "ssim", "mse"])

            row: dict[str, Any] = {
                "images": count,
                "resolution": resolution,
                "decoded_mb": count * 3 * resolution**2 * 4 / 2**20,
            }
            for name, step in (
                ("invert", chunked),
                ("invert_before", all_at_once),
                ("eval", eval_lazy),
                ("eval_kept", eval_kept),
                ("eval_before", eval_at_once),
            ):
                began = time.perf_counter()
                row[name] = measure_memory(step, device, state=lambda: 0)
                row[name]["seconds"] = time.perf_counter() - began
            for name in ("invert", "eval"):
                ours, before = row[name]["tensor_peak_mb"], row[f"{name}_before"]["tensor_peak_mb"]
                row[f"{name}_memory_ratio"] = before / ours if ours else None
            rows.append(row)
            _release()
    return {"rows": rows, "skipped": skipped, "chunk_images": ganenc.inversion.CHUNK_IMAGES}


SECTIONS = ("generator", "inversion", "pretrain", "finetune", "options", "compile", "folders")


def run_sections(
    plan: Plan,
    device: torch.device,
    sections: list[str],
    budget: Budget,
    log: Log,
    *,
    inversion_source: dict[str, Any] | None = None,
    on_update: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run ``sections`` in order; a section that raises is recorded and the next one runs.

    ``on_update(results)`` is called after each section, so that a run cut
    short (a lent machine's time limit) still leaves what it measured.
    """
    generators = GeneratorCache(device)
    results: dict[str, Any] = {}
    for name in sections:
        began = time.perf_counter()
        if budget.spent():
            results[name] = _skipped(name, budget)
            continue
        try:
            if name == "generator":
                results[name] = generator_section(plan, device, budget, log)
            elif name == "inversion":
                results[name] = inversion_section(
                    plan, device, budget, log, **(inversion_source or {})
                )
            elif name == "pretrain":
                results[name] = pretrain_section(plan, device, budget, log)
            elif name == "finetune":
                results[name] = finetune_section(plan, device, budget, log, generators)
            elif name == "options":
                results[name] = options_section(plan, device, budget, log, generators)
            elif name == "folders":
                results[name] = folders_section(plan, device, budget, log)
            elif name == "compile":
                results[name] = options_section(
                    plan, device, budget, log, generators, options=plan.compile_options
                )
            else:
                raise ValueError(f"unknown section {name!r}; known: {', '.join(SECTIONS)}")
        except Exception as exc:  # noqa: BLE001 - one broken section must not lose the others
            log(f"section {name} failed: {type(exc).__name__}: {exc}")
            results[name] = _failure(exc)
        generators.clear()
        results[name]["seconds"] = round(time.perf_counter() - began, 1)
        _release()
        if on_update is not None:
            on_update(results)
    return results


def _failure(exc: BaseException) -> dict[str, Any]:
    import traceback

    return {
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(traceback.format_exception(exc))[-4000:],
    }


def finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
