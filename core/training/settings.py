"""Settings of ``ganenc train`` and ``ganenc finetune``: pydantic only, no torch.

Defaults follow the reference (see the paper's notes): Adam lr 0.0015, betas
(0, 0.99), eps 1e-8; training latents from seeds 0-29,999 and validation
latents from seeds 30,000 on; the paper's composite loss and attention weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from ..config import ABSOLUTE_IF_PRESENT, MAX_SEED, RecordedPath, Seed, Settings, Truncation
from ..losses.options import LossSettings
from ..weights.entries import is_tag
from ..weights.resolve import generator_family


class GeneratorSpec(Settings):
    """Which generator, from which file (``random``: random weights), with which options."""

    gan: str
    checkpoint: RecordedPath = "random"
    generator_options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _family_from_tag(cls, data: Any) -> Any:
        """A weights tag names its family: ``--checkpoint stylegan2:emoji-64`` needs no ``--gan``.

        A ``--gan`` that contradicts the tag is refused when the tag is resolved.
        """
        if isinstance(data, dict) and data.get("gan") is None and is_tag(data.get("checkpoint")):
            return {**data, "gan": generator_family(data["checkpoint"])}
        return data

    def record(self) -> dict[str, Any]:
        """``{"gan", "checkpoint", "generator_options"}`` as encoder and latent files record it,
        the family by its registered name (``stylegan`` -> ``stylegan1``): files compared later
        must not tell one generator's two spellings apart."""
        from ..encoder_runs import generator_name

        record = self.model_dump(mode="json", include={"gan", "checkpoint", "generator_options"})
        return {**record, "gan": generator_name(self.gan)}

    def load(self):
        """The frozen generator adapter this spec names."""
        import ganenc

        path = None if self.checkpoint == "random" else self.checkpoint
        return ganenc.load_generator(self.gan, path, **self.generator_options).freeze()


#: An Adam beta: a decay rate in [0, 1).
Beta = Annotated[float, Field(ge=0, lt=1)]
#: Most training seeds a pool may have: the pool is shuffled in memory every epoch.
MAX_TRAIN_SEEDS = 10_000_000


class OptimizerSettings(Settings):
    lr: float = Field(0.0015, gt=0, le=1, description="Adam learning rate (above 1 diverges)")
    betas: tuple[Beta, Beta] = (0.0, 0.99)
    eps: float = Field(1e-8, gt=0, le=1)


class RunSettings(Settings):
    """What every training-like command shares: device, precision, speed, outputs, cadence."""

    out: Path | None = None
    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = Field(
        False, description="run convolutions in channels-last layout (faster on some GPUs)"
    )
    compile: bool = Field(
        False, description="torch.compile the encoder (slow first steps; faster on CUDA)"
    )
    gradient_checkpointing: bool = Field(
        False,
        description="recompute encoder blocks and the generator in the backward pass:"
        " far less memory at high resolution, about a third more time",
    )
    seed: Seed = 0
    checkpoint_every: int = Field(1000, ge=1)
    image_every: int = Field(500, ge=1)
    log_every: int = Field(10, ge=1)
    resume: bool = False
    progress: bool = True


class TrainSettings(RunSettings, GeneratorSpec):
    """Self-supervised pre-training of an encoder on images the generator synthesises."""

    attention: str = "center"
    cropper_options: dict[str, Any] = Field(default_factory=dict)
    encoder: RecordedPath | None = None
    encoder_options: dict[str, Any] = Field(default_factory=dict)
    loss: LossSettings = Field(default_factory=LossSettings)
    optimizer: OptimizerSettings = Field(default_factory=OptimizerSettings)
    iterations: int = Field(210_000, ge=1)
    batch_size: int = Field(8, ge=1)
    truncation: Truncation | None = None
    truncation_layers: int | None = Field(None, ge=1)
    train_seeds: int = Field(
        30_000, ge=1, le=MAX_TRAIN_SEEDS, description="training latents use seeds [0, train_seeds)"
    )
    val_seed_start: Seed = 30_000
    val_samples: int = Field(64, ge=1, le=100_000)

    @model_validator(mode="after")
    def _disjoint_seeds(self) -> TrainSettings:
        if self.val_seed_start < self.train_seeds:
            raise ValueError(
                f"validation seeds start at {self.val_seed_start}, inside the training seeds"
                f" [0, {self.train_seeds}); set val_seed_start >= train_seeds"
            )
        if self.val_seed_start + self.val_samples - 1 > MAX_SEED:
            raise ValueError(
                f"validation seeds [{self.val_seed_start}, {self.val_seed_start + self.val_samples})"
                f" go past the largest seed {MAX_SEED}; lower val_seed_start"
            )
        return self


class FinetuneSettings(RunSettings):
    """Fine-tuning an encoder on real images (one encoder for a folder, or one per image)."""

    encoder: Annotated[Path, ABSOLUTE_IF_PRESENT]
    images: Annotated[Path, ABSOLUTE_IF_PRESENT]
    mode: Literal["dataset", "per-image"] = "dataset"
    gan: str | None = None
    checkpoint: RecordedPath | None = None
    generator_options: dict[str, Any] | None = None
    attention: str | None = None
    cropper_options: dict[str, Any] | None = None
    loss: LossSettings | None = None
    optimizer: OptimizerSettings = Field(default_factory=lambda: OptimizerSettings(lr=0.005))
    iterations: int = Field(1500, ge=1)
    batch_size: int = Field(4, ge=1)
    held_out: float = Field(0.2, ge=0, lt=1)
    cycle_weight: float = Field(
        1.0, ge=0, description="times the latent loss of E(G(E(x))) vs E(x) (already x0.01)"
    )
    latent_l2: float = Field(3e-4, ge=0)


#: How ``invert``/``eval`` refine the encoder's latents, per image.
REFINE_MODES = ("none", "optimize", "finetune")


class RefinementSettings(Settings):
    """Per-image refinement of ``invert``/``eval``: steps and Adam lr of each mode.

    Fine-tuning is the paper's per-image fine-tuning, the same as ``finetune
    --mode per-image``, so its defaults are :class:`FinetuneSettings`'.
    """

    optimize_steps: int = Field(200, ge=1)
    optimize_lr: float = Field(0.01, gt=0, le=1)
    finetune_steps: int = Field(
        default_factory=lambda: FinetuneSettings.model_fields["iterations"].default, ge=1
    )
    finetune_lr: float = Field(
        default_factory=lambda: FinetuneSettings.model_fields["optimizer"].default_factory().lr,
        gt=0,
        le=1,
    )
    anchor_weight: float = Field(
        0.0, ge=0, le=1e6, description="optimize: weight keeping latents near the encoder's"
    )
