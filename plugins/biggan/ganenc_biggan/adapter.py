"""The BigGAN-deep generator behind ganenc's :class:`~ganenc.adapters.GeneratorAdapter`.

Latents are ``{"z": [N, z_dim], "class": [N, num_classes]}``.  ``"class"`` may be
one-hot, a soft (probability) vector, or an integer tensor ``[N]`` of class
indices; ``{"z", "class_logits"}`` is accepted too and soft-maxed (an encoder
head outputs logits).

Truncation in BigGAN is *not* a transform of the latents: besides scaling the
sampled ``z`` (``z = t * truncnorm(-2, 2)``) it selects the batch-norm
statistics the generator runs with.  So, unlike StyleGAN, ``encoder_targets``
leaves the latents as they are and the truncation stays an argument of
``synthesize``::

    g.synthesize(g.encoder_targets(latents, t), truncation=t) == g.synthesize(latents, t)

Every ``truncation`` argument defaults to ``None``, meaning
``adapter.default_truncation`` (0.4, the reference's sampling value, settable
with the ``default_truncation`` option).  A training loop that leaves the
truncation at its default everywhere (sample, targets, synthesis of the
encoder's output) therefore keeps sampling and synthesis consistent; one that
picks another ``t`` must pass that same ``t`` when it synthesizes the encoder's
output (or set ``adapter.default_truncation = t`` once).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ganenc.adapters import (
    GeneratorAdapter,
    Latents,
    check_count,
    check_noise_mode,
    seeded_generator,
)
from ganenc.adapters import check_truncation as check_truncation_setting
from ganenc.checkpoints import build_checked
from ganenc.config import PathText, Seed, Settings, builds_from, random_only
from ganenc.errors import ConfigError
from ganenc.geometry import GeneratorGeometry

from .formats import load_hf, read_config
from .model import BigGAN, BigGANConfig, check_truncation

#: The reference samples (and synthesizes) BigGAN with truncation 0.4.
REFERENCE_TRUNCATION = 0.4

#: ``truncnorm(-2, 2)``: the reference's noise bounds before scaling by the truncation.
NOISE_BOUND = 2.0


class BigGANOptions(Settings):
    """Options of the ``biggan`` generator.

    With ``checkpoint`` the architecture comes from the checkpoint's
    ``config.json``, and an architecture field below that contradicts it is refused
    (``ganenc.load_generator``); without it a generator with random weights is built
    from them (or from ``config``).
    """

    checkpoint: PathText | None = None
    """A HuggingFace folder (config.json + pytorch_model.bin) or the path of pytorch_model.bin."""
    config: PathText | None = None
    """Explicit config.json path (default: the one beside the weights)."""
    default_truncation: float = REFERENCE_TRUNCATION
    """Truncation used wherever a method gets ``truncation=None``."""
    resolution: int = random_only(128, "output size")
    channel_width: int = random_only(128, "base channel width")
    z_dim: int = random_only(128, "latent z size")
    num_classes: int = random_only(1000, "number of classes")
    n_stats: int = random_only(51, "truncation levels of the class-conditional batch norm")
    eps: float = random_only(1e-4, "batch-norm epsilon")
    layers: list[tuple[bool, int, int]] | None = random_only(
        None, "(upsample, in_multiplier, out_multiplier) per block (default: by resolution)"
    )
    attention_layer_position: int | None = random_only(None, "block index of self-attention")
    seed: Seed = random_only(0, "seed of the random weights")


class BigGANAdapter(GeneratorAdapter):
    """BigGAN-deep as a ganenc generator (family ``"biggan"``)."""

    family = "biggan"

    def __init__(self, model: BigGAN, default_truncation: float = REFERENCE_TRUNCATION) -> None:
        super().__init__()
        self.model = model
        self.config: BigGANConfig = model.config
        self.resolution = self.config.output_dim
        self.z_dim = self.config.z_dim
        self.num_classes = self.config.num_classes
        self.default_truncation = check_truncation(default_truncation)
        #: the truncation sampled z is drawn at, set by :meth:`follow_truncation`
        self.sampling_truncation: float | None = None

    # -- contract -----------------------------------------------------------------------
    def geometry(self) -> GeneratorGeometry:
        return GeneratorGeometry(
            family=self.family,
            resolution=self.resolution,
            encoder_latents={"z": (self.z_dim,), "class": (self.num_classes,)},
            extra={
                "z_dim": self.z_dim,
                "num_classes": self.num_classes,
                "default_truncation": self.default_truncation,
            },
        )

    def sample_latents(
        self,
        n: int,
        seed: int | None = None,
        device: torch.device | str | None = None,
        classes: int | Sequence[int] | torch.Tensor | None = None,
        truncation: float | None = None,
    ) -> Latents:
        """``z = t * truncnorm(-2, 2)`` and one-hot classes (random, or the given indices).

        ``t``: ``truncation``, else the one followed (:meth:`follow_truncation`), else the
        default: the reference scales z by the same t its batch norm runs with.
        """
        if truncation is None:
            truncation = self.sampling_truncation
        truncation = self._truncation(truncation)
        n = check_count(n)
        generator = seeded_generator(seed)
        z = truncated_normal((n, self.z_dim), generator) * truncation
        if classes is None:
            indices = torch.randint(0, self.num_classes, (n,), generator=generator)
        else:
            indices = torch.as_tensor(classes, dtype=torch.long).reshape(-1)
            if indices.numel() == 1:
                indices = indices.expand(n)
            if indices.shape != (n,):
                raise ValueError(f"classes must be one index or {n} indices, got {indices.numel()}")
        class_vector = self._one_hot(indices)
        device = device if device is not None else self.device
        return {"z": z.to(device), "class": class_vector.to(device)}

    def synthesize(
        self,
        latents: Latents,
        truncation: float | None = None,
        truncation_layers: int | None = None,
        noise_mode: str = "const",
    ) -> torch.Tensor:
        """Images ``[N, 3, H, W]`` in float32; ``truncation`` picks the batch-norm statistics."""
        truncation = self._truncation(truncation, truncation_layers)
        check_noise_mode(noise_mode)
        z, class_vector = self._inputs(latents)
        dtype = self.model.embeddings.weight.dtype
        images = self.model(z.to(dtype), class_vector.to(dtype), truncation)
        return images.float()

    def encoder_targets(
        self,
        latents: Latents,
        truncation: float | None = None,
        truncation_layers: int | None = None,
    ) -> Latents:
        """``{"z", "class"}`` with a probability class vector; the truncation is not baked in.

        Synthesize the targets with the same ``truncation`` (see the module docstring).
        """
        self._truncation(truncation, truncation_layers)
        z, class_vector = self._inputs(latents)
        return {"z": z, "class": class_vector}

    def follow_truncation(self, truncation: float | None) -> None:
        """Sample z at ``truncation`` from now on (checked: BigGAN's range is (0, 1])."""
        self.sampling_truncation = None if truncation is None else self._truncation(truncation)

    # -- helpers ------------------------------------------------------------------------
    def synthesis_options(
        self, truncation: float | None = None, truncation_layers: int | None = None
    ) -> dict:
        """BigGAN keeps its truncation at synthesis: it selects the batch-norm statistics."""
        self._truncation(truncation, truncation_layers)
        return {} if truncation is None else {"truncation": truncation}

    def _truncation(self, truncation: float | None, truncation_layers: int | None = None) -> float:
        if truncation_layers is not None:
            raise ConfigError(
                "BigGAN has no per-layer truncation: truncation_layers must be None,"
                f" got {truncation_layers!r} (leave out --truncation-layers)"
            )
        if truncation is None:
            return self.default_truncation
        value = check_truncation_setting(truncation)  # a number, finite: as every family's
        try:
            return check_truncation(value)  # BigGAN's own range, (0, 1]
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def _one_hot(self, indices: torch.Tensor) -> torch.Tensor:
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.num_classes):
            raise ValueError(
                f"class indices must be in [0, {self.num_classes}),"
                f" got {indices.min().item()}..{indices.max().item()}"
            )
        return F.one_hot(indices.long(), self.num_classes).float()

    def _inputs(self, latents: Latents) -> tuple[torch.Tensor, torch.Tensor]:
        """Validated ``(z [N, z_dim], class_vector [N, num_classes])`` on the model's device."""
        if not isinstance(latents, dict):
            raise TypeError(f"latents must be a dict of tensors, got {type(latents).__name__}")
        keys = set(latents)
        if keys not in ({"z", "class"}, {"z", "class_logits"}):
            raise ValueError(
                f"BigGAN latents need 'z' and exactly one of 'class' / 'class_logits';"
                f" got keys {sorted(keys)}"
            )
        device = self.device
        z = latents["z"]
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"latent 'z' must be a tensor [N, {self.z_dim}], got {_shape(z)}")
        if not z.is_floating_point():
            raise TypeError(f"latent 'z' must be a float tensor, got {z.dtype}")
        n = z.shape[0]
        key = "class" if "class" in latents else "class_logits"
        value = latents[key]
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"latent {key!r} must be a tensor, got {type(value).__name__}")
        if key == "class" and not value.is_floating_point():
            if value.shape != (n,):
                raise ValueError(
                    f"integer latent 'class' must hold {n} class indices [N], got {_shape(value)}"
                )
            class_vector = self._one_hot(value.to(device))
        else:
            if value.shape != (n, self.num_classes):
                raise ValueError(
                    f"latent {key!r} must be a float tensor [{n}, {self.num_classes}]"
                    f" (or integer indices [{n}] for 'class'), got {_shape(value)}"
                )
            class_vector = value.to(device)
            if key == "class_logits":
                class_vector = torch.softmax(class_vector, dim=1)
        return z.to(device), class_vector


def _shape(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"shape {list(value.shape)} ({value.dtype})"
    return type(value).__name__


def truncated_normal(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Standard normal samples redrawn until they lie in [-2, 2] (``truncnorm(-2, 2)``, CPU)."""
    values = torch.randn(shape, generator=generator)
    outside = values.abs() > NOISE_BOUND
    while outside.any():
        values[outside] = torch.randn(int(outside.sum()), generator=generator)
        outside = values.abs() > NOISE_BOUND
    return values


@builds_from(BigGANOptions, "generator 'biggan'")
def load_biggan(options: BigGANOptions) -> BigGANAdapter:
    """The ``biggan`` factory: a HuggingFace checkpoint, or random weights for tests."""
    if options.checkpoint is not None:
        model = load_hf(options.checkpoint, options.config)
    else:
        if options.config is not None:
            config = read_config(options.config)
        else:
            try:
                config = BigGANConfig.for_resolution(
                    resolution=options.resolution,
                    channel_width=options.channel_width,
                    z_dim=options.z_dim,
                    num_classes=options.num_classes,
                    n_stats=options.n_stats,
                    eps=options.eps,
                    layers=options.layers,
                    attention_layer_position=options.attention_layer_position,
                )
            except ValueError as exc:
                raise ConfigError(f"invalid BigGAN architecture options: {exc}") from None
        model = build_checked(lambda: BigGAN(config), "the generator options")
        model = model.init_random_weights(options.seed).eval()
    try:
        adapter = BigGANAdapter(model, default_truncation=options.default_truncation)
    except ValueError as exc:
        raise ConfigError(f"generator 'biggan': default_truncation: {exc}") from None
    return adapter.freeze()
