"""What each kind of run measures: sizes, batch sizes, repeats, time budget.

``cpu`` is ``python -m benchmarks`` (a few minutes on 2 cores), ``quick`` its
smoke version (``--quick``, under two minutes), ``gpu`` what
``python -m benchmarks.gpu`` runs on a CUDA machine (under five minutes on an
H100).  Numbers that differ from the paper's setting say why in ``notes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Plan:
    name: str
    #: family -> (small, large) resolution of the generator forward benchmark.
    generator_sizes: dict[str, tuple[int, ...]]
    generator_batch: dict[int, int]  # resolution -> batch size (default: smallest key above)
    generator_repeats: int
    #: inversion: resolution, generator options, encoder options, pre-training steps/batch.
    inversion: dict[str, Any]
    #: (resolution, batch size, repeats) of pre-training steps.
    pretrain: list[tuple[int, int, int]]
    #: (resolution, repeats) of per-image fine-tuning iterations.
    finetune: list[tuple[int, int]]
    #: extra cases measured beside the default in the fine-tuning section, by resolution.
    finetune_cases: dict[int, list[str]]
    #: the speed options compared one by one: section -> (resolution, batch, repeats, cases).
    options: dict[str, tuple[int, int, int, list[str]]]
    budget_s: float
    warmup: int = 1
    notes: list[str] = field(default_factory=list)
    #: ``torch.compile`` cases, as ``options``: a section of their own, run last, since
    #: compiling takes long and the other sections must not wait for it.
    compile_options: dict[str, tuple[int, int, int, list[str]]] = field(default_factory=dict)
    #: the order sections run in (the most wanted first: a spent budget skips the last).
    #: ``compile`` is not among them: ``--sections compile`` (slow to start, see the docs).
    order: tuple[str, ...] = (
        "finetune",
        "inversion",
        "pretrain",
        "generator",
        "options",
        "folders",
    )
    #: generator options by family (default: the architectures of the public checkpoints).
    generator_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: encoder options and loss settings of the training cases (default: the paper's).
    encoder_options: dict[str, Any] = field(default_factory=dict)
    loss: dict[str, Any] | None = None
    #: folders: resolution, image counts, generator and encoder options (memory of
    #: ``invert``/``eval`` on a folder, chunked vs all at once); empty: not measured.
    folders: dict[str, Any] = field(default_factory=dict)

    def batch_for(self, resolution: int) -> int:
        for limit in sorted(self.generator_batch):
            if resolution <= limit:
                return self.generator_batch[limit]
        return self.generator_batch[max(self.generator_batch)]


CPU = Plan(
    name="cpu",
    generator_sizes={
        "stylegan2": (64, 256),
        "stylegan1": (64, 256),
        "stylegan3": (32, 64),
        "pggan": (64, 256),
        "biggan": (128, 256),
    },
    generator_batch={64: 2, 1024: 1},
    generator_repeats=3,
    inversion={
        "resolution": 32,
        "generator_options": {"channel_max": 32},
        "encoder_options": {"max_channels": 32},
        "pretrain_steps": 300,
        "pretrain_batch": 8,
        "images": 8,
        "refine_steps": 20,
        "max_optimize_steps": 1000,
        "repeats": 3,
    },
    pretrain=[(64, 4, 3), (256, 1, 2), (1024, 1, 2)],
    finetune=[(256, 2), (1024, 2)],
    finetune_cases={1024: ["gradient_checkpointing"]},
    options={
        "finetune": (
            64,
            1,
            3,
            ["channels_last", "gradient_checkpointing", "baseline+gradcam", "gradcam"],
        ),
        "pretrain": (64, 2, 3, ["channels_last", "gradient_checkpointing"]),
    },
    folders={
        "resolution": 128,
        "counts": [128, 384],
        "generator_options": {"channel_max": 32},
        "encoder_options": {"max_channels": 32},
    },
    budget_s=480.0,
    notes=[
        "stylegan3 runs at 32/64 px on the CPU: its filtered up/down-sampling takes"
        " about 20 s per 256 px image on 2 cores.",
        "Steps at 256 and 1024 px take 5-25 s on 2 cores: 2 repeats there, 3 elsewhere;"
        " the extra fine-tuning cases at 1024 px are measured for memory only.",
    ],
)

QUICK = Plan(
    name="quick",
    generator_sizes={
        "stylegan2": (32, 64),
        "stylegan1": (32, 64),
        "pggan": (32, 64),
        "biggan": (128,),
    },
    generator_batch={64: 2, 1024: 1},
    generator_repeats=3,
    inversion={
        "resolution": 32,
        "generator_options": {"channel_max": 32},
        "encoder_options": {"max_channels": 32},
        "pretrain_steps": 60,
        "pretrain_batch": 8,
        "images": 4,
        "refine_steps": 5,
        "max_optimize_steps": 300,
        "repeats": 2,
    },
    pretrain=[(64, 2, 3)],
    finetune=[(64, 3)],
    finetune_cases={64: ["gradient_checkpointing"]},
    options={
        "finetune": (64, 1, 2, ["channels_last"]),
    },
    folders={
        "resolution": 32,
        "counts": [64, 192],
        "generator_options": {"channel_max": 32},
        "encoder_options": {"max_channels": 32},
    },
    budget_s=100.0,
    notes=["--quick: small sizes only, a smoke run of every section; not for publishing."],
)

GPU = Plan(
    name="gpu",
    generator_sizes={
        "stylegan2": (256, 1024),
        "stylegan1": (256, 1024),
        "stylegan3": (256, 1024),
        "pggan": (256, 1024),
        "biggan": (128, 512),
    },
    generator_batch={256: 16, 512: 8, 1024: 4},
    generator_repeats=3,
    inversion={
        "resolution": 256,
        "generator_options": {},
        "encoder_options": {},
        "pretrain_steps": 100_000,
        "pretrain_seconds": 30.0,
        "pretrain_batch": 8,
        "images": 8,
        "refine_steps": 20,
        "max_optimize_steps": 300,
        "repeats": 3,
    },
    pretrain=[(64, 8, 5), (256, 8, 5), (1024, 2, 5)],
    finetune=[(256, 5), (1024, 5)],
    finetune_cases={},  # the 1024 px options below carry the memory cases and the target
    options={
        "finetune": (
            1024,
            1,
            5,
            ["channels_last", "gradient_checkpointing", "bf16", "bf16+gradient_checkpointing"],
        ),
        "pretrain": (256, 8, 5, ["bf16"]),
    },
    compile_options={
        "finetune": (1024, 1, 5, ["compile"]),
        "pretrain": (256, 8, 5, ["compile"]),
    },
    budget_s=290.0,
    notes=[
        "The paper: 1024 px per-image fine-tuning at about 2.08 it/s, 7,670 MB, V100.",
        "Inversion: the encoder is pre-trained here for at most 30 s on a random 256 px"
        " generator (no pretrained one offline): `--encoder RUN [--images DIR]` measures a"
        " trained one.",
    ],
)

PLANS = {plan.name: plan for plan in (CPU, QUICK, GPU)}
