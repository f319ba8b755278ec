"""Speed options change how the work is done, never its result (no timings asserted here)."""

from __future__ import annotations

import copy

import pytest
import torch
from training_helpers import PHOTOS, tiny_train_settings

import ganenc
from ganenc.losses.composite import CompositeLoss, PreparedTarget
from ganenc.losses.perceptual import LPIPSLoss, LPIPSTarget
from ganenc.training.finetune import real_image_loss
from ganenc.training.settings import FinetuneSettings, TrainSettings
from ganenc.training.speed import SpeedOptions, set_gradient_checkpointing

pytestmark = pytest.mark.filterwarnings("ignore:.*RANDOM feature weights")


def _generator(resolution: int = 32, channel_max: int = 32):
    return ganenc.load_generator(
        "stylegan2", resolution=resolution, channel_max=channel_max
    ).freeze()


def _images(seed: int, n: int = 2, size: int = 32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


# -- the target prepared once ------------------------------------------------------------------


def test_cached_lpips_target_gives_the_lpips_value_and_gradient():
    term = LPIPSLoss(feature_weights="random")
    target = _images(0)
    prediction = _images(1).requires_grad_(True)
    plain = term(prediction, target)
    (plain_grad,) = torch.autograd.grad(plain, prediction)
    prepared = term.prepare_target(target)
    assert isinstance(prepared, LPIPSTarget) and len(prepared.features) == 5
    cached = term(prediction, prepared)
    (cached_grad,) = torch.autograd.grad(cached, prediction)
    assert abs(float(cached) - float(plain)) <= 1e-6
    assert torch.allclose(cached_grad, plain_grad, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="does not match the prepared target"):
        term(_images(2, n=1), prepared)


def test_prepared_target_gives_every_part_of_the_composite_loss():
    loss = CompositeLoss({"feature_weights": "random"})  # the paper's terms, LPIPS included
    cropper = ganenc.create("cropper", "center")
    target = _images(3, n=1)
    reconstruction = _images(4, n=1).requires_grad_(True)
    latents = {"w_plus": torch.randn(1, 4, 8)}
    plain_total, plain_parts = loss(
        reconstruction, target, cropper=cropper, predicted_latents=latents, target_latents=latents
    )
    (plain_grad,) = torch.autograd.grad(plain_total, reconstruction)
    prepared = loss.prepare_target(target, cropper=cropper)
    assert isinstance(prepared, PreparedTarget) and len(prepared.boxes) == 2
    total, parts = loss(reconstruction, prepared, predicted_latents=latents, target_latents=latents)
    (grad,) = torch.autograd.grad(total, reconstruction)
    assert set(parts) == set(plain_parts)
    for name, value in plain_parts.items():
        assert abs(float(parts[name]) - float(value)) <= 1e-6, name
    assert torch.allclose(grad, plain_grad, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="carries its boxes"):
        loss(reconstruction, prepared, cropper=cropper)


def test_real_image_loss_with_a_prepared_target_is_the_same_loss():
    generator = _generator()
    torch.manual_seed(0)
    encoder = ganenc.build_encoder(generator, max_channels=32).eval()
    loss = CompositeLoss({"feature_weights": "random"}).requires_grad_(False)
    image = _images(5, n=1)
    boxes = ganenc.create("cropper", "center").boxes(image)
    options = {"cycle_weight": 1.0, "latent_l2": 3e-4}
    plain, plain_parts, _ = real_image_loss(encoder, generator, loss, image, boxes, **options)
    plain.backward()
    plain_grads = _grads(encoder)
    encoder.zero_grad(set_to_none=True)
    target = loss.prepare_target(image, boxes=boxes)
    cached, parts, _ = real_image_loss(
        encoder, generator, loss, image, boxes, target=target, **options
    )
    cached.backward()
    assert abs(float(cached) - float(plain)) <= 1e-6
    assert set(parts) == set(plain_parts)
    for name, grad in _grads(encoder).items():
        assert torch.allclose(grad, plain_grads[name], atol=1e-6, rtol=1e-5), name


# -- gradient checkpointing ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_gradient_checkpointing_gives_the_same_values_and_gradients(mode):
    generator = _generator()
    torch.manual_seed(1)
    encoder = getattr(ganenc.build_encoder(generator, max_channels=32), mode)()
    with torch.no_grad():  # non-zero noise weights: the redrawn noise must be the same noise
        for name, parameter in encoder.named_parameters():
            if "noise" in name:
                parameter.normal_(0, 0.5)
    twin = copy.deepcopy(encoder)
    assert set_gradient_checkpointing(twin) == 1
    images = _images(6)
    speed = SpeedOptions(gradient_checkpointing=True)

    def run(model, synthesize):
        torch.manual_seed(7)  # the encoder's noise in training mode
        latents = model(images)
        out = synthesize(latents)
        out.square().mean().backward()
        return out.detach()

    plain = run(encoder, lambda w: generator.synthesize(w))
    checkpointed = run(twin, lambda w: speed.synthesize(generator, w))
    assert torch.allclose(plain, checkpointed, atol=1e-6, rtol=0)
    plain_grads, checkpointed_grads = _grads(encoder), _grads(twin)
    assert set(plain_grads) == set(checkpointed_grads) and plain_grads
    for name, grad in plain_grads.items():
        assert torch.allclose(checkpointed_grads[name], grad, atol=1e-5, rtol=1e-5), name
    assert all(p.grad is None for p in generator.parameters())


def test_checkpointing_keeps_fewer_activations():
    """The saved-for-backward tensors shrink: what the memory saving is made of."""
    generator = _generator(64, 32)
    torch.manual_seed(2)
    encoder = ganenc.build_encoder(generator, max_channels=32).train()
    images = _images(8, n=1, size=64)

    def saved_bytes(model, speed):
        total = 0

        def pack(tensor):
            nonlocal total
            total += tensor.numel() * tensor.element_size()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            speed.synthesize(generator, model(images)).sum()
        return total

    twin = copy.deepcopy(encoder)
    set_gradient_checkpointing(twin)
    plain = saved_bytes(encoder, SpeedOptions())
    checkpointed = saved_bytes(twin, SpeedOptions(gradient_checkpointing=True))
    assert checkpointed < 0.5 * plain, (checkpointed, plain)


def test_batch_norm_blocks_are_not_recomputed_in_training():
    """BigGAN's conditional batch norm: checkpointing must not update running stats twice."""
    generator = ganenc.load_generator("biggan", resolution=128, channel_width=8).freeze()
    torch.manual_seed(3)
    encoder = ganenc.build_encoder(generator, max_channels=32).train()
    twin = copy.deepcopy(encoder)
    set_gradient_checkpointing(twin)
    images = _images(9, n=2, size=128)
    for model in (encoder, twin):
        torch.manual_seed(4)
        sum(v.float().square().mean() for v in model(images).values()).backward()
    for (name, buffer), other in zip(encoder.named_buffers(), twin.buffers(), strict=True):
        assert torch.allclose(buffer.float(), other.float(), atol=1e-6), name


# -- channels-last ------------------------------------------------------------------------------


def test_channels_last_gives_the_same_outputs_and_gradients():
    generator = _generator()
    torch.manual_seed(5)
    encoder = ganenc.build_encoder(generator, max_channels=32).eval()
    speed = SpeedOptions(channels_last=True)
    twin = speed.prepare_encoder(copy.deepcopy(encoder))
    twin_generator = speed.prepare_generator(copy.deepcopy(generator))
    image = _images(10, n=1)  # batch 1: where PyTorch's CPU instance norm went wrong
    plain = generator.synthesize(encoder(image))
    fast = twin_generator.synthesize(twin(speed.images(image)))
    assert torch.allclose(plain, fast, atol=1e-5, rtol=0)
    plain.square().mean().backward()
    fast.square().mean().backward()
    scale = max(float(g.abs().max()) for g in _grads(encoder).values())
    for name, grad in _grads(encoder).items():
        difference = float((_grads(twin)[name] - grad).abs().max())
        assert difference <= 1e-4 * scale, (name, difference, scale)


# -- frozen generator, settings -------------------------------------------------------------------


def test_refinements_leave_no_gradient_on_the_generator_or_the_loss(tmp_path):
    from ganenc.inversion import Inverter

    generator = _generator()
    torch.manual_seed(6)
    encoder = ganenc.build_encoder(generator, max_channels=32)
    inverter = Inverter(
        encoder,
        generator,
        loss={"feature_weights": "random"},
        cropper=ganenc.create("cropper", "center"),
        device="cpu",
        speed=SpeedOptions(gradient_checkpointing=True),
    )
    images = _images(11)
    inverter.invert(images, refine="optimize", steps=2)
    inverter.invert(images[:1], refine="finetune", steps=2)
    frozen = [*generator.parameters(), *inverter.loss.parameters()]
    assert frozen and all(p.grad is None for p in frozen)
    assert all(not p.requires_grad for p in frozen)


def test_finetuner_per_image_prepares_each_target_once(tmp_path, monkeypatch):
    """Boxes (Grad-CAM: a VGG pass) and LPIPS target features once per image, not per step."""
    from ganenc.training.finetune import Finetuner
    from ganenc.training.pretrain import pretrain

    run = pretrain(tiny_train_settings(tmp_path / "pre", iterations=1, val_samples=2))
    settings = FinetuneSettings(
        encoder=run,
        images=PHOTOS,
        mode="per-image",
        iterations=3,
        out=tmp_path / "tune",
        progress=False,
        gradient_checkpointing=True,
    )
    tuner = Finetuner(settings)
    calls = []
    boxes = tuner.cropper.boxes
    monkeypatch.setattr(tuner.cropper, "boxes", lambda images: calls.append(1) or boxes(images))
    tuner.fit()
    images = len(tuner.names)
    assert images >= 2 and len(calls) == images  # once per image, not once per iteration
    assert all(p.grad is None for p in tuner.generator.parameters())


def test_speed_settings_are_validated_and_reach_the_modules(tmp_path):
    settings = tiny_train_settings(
        tmp_path / "run", channels_last=True, gradient_checkpointing=True, iterations=1
    )
    assert SpeedOptions.from_settings(settings) == SpeedOptions(
        channels_last=True, gradient_checkpointing=True
    )
    with pytest.raises(ValueError):
        TrainSettings(gan="stylegan2", gradient_checkpointing="sometimes")
    from ganenc.training.pretrain import Pretrainer

    trainer = Pretrainer(settings)
    trainer.train_step(0)
    trunks = [m for m in trainer.encoder.modules() if hasattr(m, "gradient_checkpointing")]
    assert trunks and all(t.gradient_checkpointing for t in trunks)
    assert trainer.encoder.trunk.from_rgb.conv.weight.is_contiguous(
        memory_format=torch.channels_last
    )
    assert all(p.grad is None for p in trainer.generator.parameters())
    compiled = SpeedOptions(compile=True).compiled(torch.nn.Linear(2, 2))
    assert compiled is not None and hasattr(compiled, "_orig_mod")  # compiled lazily, not run


def test_pretraining_with_checkpointing_takes_the_same_step(tmp_path):
    from ganenc.training.pretrain import Pretrainer

    results = []
    for name, flag in (("plain", False), ("checkpointed", True)):
        trainer = Pretrainer(
            tiny_train_settings(tmp_path / name, gradient_checkpointing=flag, iterations=1)
        )
        torch.manual_seed(0)
        parts, *_ = trainer.train_step(0)
        results.append((float(parts["total"]), trainer.encoder.state_dict()))
    (loss_a, state_a), (loss_b, state_b) = results
    assert abs(loss_a - loss_b) <= 1e-6
    for key, value in state_a.items():
        assert torch.allclose(value, state_b[key], atol=1e-5, rtol=0), key


def test_mixed_precision_of_finetuning_and_inversion_needs_a_gpu(tmp_path):
    from ganenc.errors import ConfigError
    from ganenc.inversion import Inverter
    from ganenc.training.finetune import Finetuner
    from ganenc.training.pretrain import pretrain

    generator = _generator()
    encoder = ganenc.build_encoder(generator, max_channels=32)
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        Inverter(encoder, generator, device="cpu", speed=SpeedOptions(precision="bf16"))
    run = pretrain(tiny_train_settings(tmp_path / "pre", iterations=1, val_samples=2))
    settings = FinetuneSettings(
        encoder=run, images=PHOTOS, out=tmp_path / "tune", device="cpu", precision="fp16"
    )
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        Finetuner(settings)


def test_ssim_term_stays_float32_under_bf16_autocast():
    """SSIM's local variances E[x^2] - E[x]^2 cancel in bf16: bright flat regions blew up.

    Before the term forced float32, CPU bf16 autocast gave 0.61 instead of 0.18 here
    (and 22x the largest gradient entry); fp32 values must stay pytorch-msssim's exactly.
    """
    from pytorch_msssim import ssim

    from ganenc.losses.terms import SSIMLoss

    def bright_low_contrast(seed: int) -> torch.Tensor:
        low = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(seed)) * 2 - 1
        return 0.9 + 0.1 * torch.nn.functional.interpolate(low, size=32, mode="bilinear")

    target = bright_low_contrast(0).clamp(-1, 1)
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(2))
    prediction = (bright_low_contrast(1) + 0.02 * noise).requires_grad_(True)
    term = SSIMLoss()
    reference = term(prediction, target)
    (reference_grad,) = torch.autograd.grad(reference, prediction)
    library = 1.0 - ssim(prediction + 1, target + 1, data_range=2.0, win_size=11, K=(0.01, 0.03))
    assert float(reference.detach()) == float(library.detach())  # fp32: unchanged
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = term(prediction, target)
    (mixed_grad,) = torch.autograd.grad(mixed, prediction)
    assert mixed.dtype == torch.float32
    assert abs(float(mixed.detach()) - float(reference.detach())) <= 1e-5
    assert float((mixed_grad - reference_grad).abs().max()) <= 1e-4 * float(
        reference_grad.abs().max()
    )
