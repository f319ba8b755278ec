"""``python -m benchmarks``: measure ganenc's speed and memory against its baselines.

Run from the repository root (``benchmarks/`` is not installed with ganenc)::

    python -m benchmarks                      # the CPU plan, a few minutes on 2 cores
    python -m benchmarks --quick              # every section small, under two minutes
    python -m benchmarks --sections pretrain,finetune --device cuda
    python -m benchmarks.gpu                  # the GPU plan (CUDA), under five minutes

Results go to ``docs/benchmarks/<plan>.json`` and ``.md`` (``--out`` to
change, ``--no-write`` for none) and the tables are printed.  Every number
is a median over repeats with its spread, and every comparison is a ratio of
cases timed in the same run, round by round.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args(
    argv: list[str] | None = None, prog: str = "python -m benchmarks"
) -> argparse.Namespace:
    """The options, checked before anything is measured (a bad one is one ``error:`` line)."""
    from ganenc.devices import resolve_device
    from ganenc.encoder_runs import encoder_file
    from ganenc.errors import GanencError
    from ganenc.files import check_output
    from ganenc.scripts import one_line_errors, positive_float, positive_int

    from .plans import PLANS
    from .sections import SECTIONS

    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run (< 2 min)")
    parser.add_argument(
        "--plan",
        choices=sorted(PLANS),
        help="sizes and repeats (default: gpu on CUDA, else cpu; --quick: quick)",
    )
    parser.add_argument(
        "--sections",
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all, in the plan's order)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument(
        "--budget", type=positive_float, help="seconds; later measurements are skipped past it"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "benchmarks",
        help="folder for <plan>.json and <plan>.md (default docs/benchmarks)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only, write no files")
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--encoder",
        type=Path,
        help="inversion section: a trained encoder (run folder or file) instead of the one"
        " the section pre-trains briefly; its generator is loaded from what the run records",
    )
    parser.add_argument(
        "--images",
        type=Path,
        help="inversion section, with --encoder: real images (a folder) instead of generated ones",
    )
    args = parser.parse_args(argv)
    if args.sections is not None:  # the chosen names, as a list from here on
        args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
        if not args.sections:
            parser.error(f"--sections names none; choose from {', '.join(SECTIONS)}")
        unknown = sorted(set(args.sections) - set(SECTIONS))
        if unknown:
            parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    if args.images is not None and args.encoder is None:
        parser.error(
            "--images needs --encoder (the benchmark's own encoder is for generated images)"
        )
    with one_line_errors(parser):
        resolve_device(args.device)
        if args.encoder is not None:
            encoder_file(args.encoder)
        if args.images is not None and not args.images.is_dir():
            raise GanencError(f"--images: image folder not found: {args.images}")
        if not args.no_write:  # the plan's files are replaced (that is what --out is for)
            check_output(args.out, folder=True, force=True)
    return args


def main(argv: list[str] | None = None, default_plan: str | None = None) -> dict:
    return measure(parse_args(argv), default_plan)


def measure(args: argparse.Namespace, default_plan: str | None = None) -> dict:
    """Run the sections ``args`` (:func:`parse_args`'s) choose, print and write the tables."""
    import torch

    from ganenc.devices import resolve_device

    from . import cases, machine, report
    from .measure import Budget
    from .plans import PLANS
    from .sections import run_sections

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    name = args.plan or ("quick" if args.quick else default_plan)
    if name is None:
        name = "gpu" if device.type == "cuda" else "cpu"
    plan = PLANS[name]
    sections = args.sections or list(plan.order)
    cases.quiet_random_weights_warning()
    budget = Budget(args.budget if args.budget is not None else plan.budget_s)
    began = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f} s] {message}", file=sys.stderr, flush=True)

    info = machine.describe(device)
    log(f"plan {plan.name} on {info.get('gpu') or info['cpu']}: {', '.join(sections)}")
    out = None if args.no_write else args.out
    results: dict = {
        "format": "ganenc-benchmarks/1",
        "plan": plan.name,
        "machine": info,
        "notes": [
            "Random weights everywhere (generators, encoders, and the VGG16 inside LPIPS):"
            " the networks and so the timings are those of the pretrained ones.",
            *plan.notes,
        ],
        "sections": {},
    }

    def save(sections: dict, finished: bool) -> str:
        results["sections"] = sections
        results["elapsed_s"] = time.perf_counter() - began
        results["load_average_at_end"] = machine.load_average()
        results["complete"] = finished
        return report.write(
            results,
            None if out is None else out / f"{plan.name}.json",
            None if out is None else out / f"{plan.name}.md",
        )

    source = {"encoder": args.encoder, "images": args.images}
    sections_done = run_sections(
        plan,
        device,
        sections,
        budget,
        log,
        inversion_source=source,
        on_update=lambda partial: save(partial, finished=False),  # a run cut short keeps these
    )
    print(save(sections_done, finished=True))
    return results


if __name__ == "__main__":
    main()
