"""Train the small StyleGAN2 behind the ``stylegan2:emoji-64`` weights tag.

Adversarial training on the *train* split of the offline Noto emoji dataset
(``shared/data/emoji``), with differentiable augmentation (DiffAugment:
colour, translation, cutout) because 3,357 images are few for a GAN, lazy R1
regularisation, style mixing and an exponential moving average of the
generator.  The generator is ganenc's own pure-PyTorch StyleGAN2, exported in
rosinality's ``.pt`` layout (the format ``ganenc.load_generator`` reads), with
fp16 storage.

    python examples/train_emoji_gan.py --data ../shared/data/emoji --out runs/emoji-gan \
        --minutes 60 --threads 2

It is seeded and resumable (``--out`` holds ``state.pt``, written every
``--save-every`` steps; run the same command again to continue; a run stopped
early is exported with ``--export-only``).  Every ``--sample-every`` steps it writes a grid of the EMA
generator's samples (fixed latents) to ``samples/``.

``--balance base`` draws each base emoji as often as any other (a person emoji's up to 26
skin-tone variants share one draw) instead of each image: People & Body falls from 59% of
the draws to 20%, and hearts, animals, food, objects and flags get twice as many.

``--projected W`` adds a second discriminator on frozen ``features:emoji-cnn``
features (Projected GAN) with weight W in the generator's loss.  It is off for the
shipped tag: tried from step 39,500, it lowered the FID in that classifier's own
features but not in a judge classifier's (docs/emoji-models.md).
"""

from __future__ import annotations

import argparse
import math
import pickle
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganenc.emoji import load_split
from ganenc.emoji.classifier import EmojiCNN, normalise
from ganenc.features import build_feature_network
from ganenc.files import torch_save
from ganenc.images import save_grid
from ganenc.nn.equalized import EqualizedConv2d, EqualizedLinear
from ganenc.scripts import (
    non_negative_float,
    one_line_errors,
    positive_float,
    positive_int,
    probability,
)
from ganenc_stylegan.average_latent import ensure_w_avg
from ganenc_stylegan.checkpoints.rosinality import save_rosinality
from ganenc_stylegan.stylegan2 import StyleGAN2Config, StyleGAN2Generator

#: The architecture of ``stylegan2:emoji-64``: narrow enough to train on 2 CPU cores (about
#: 21 images/s) and a ~3 MB fp16 file.  ``shared/emoji-gan/state.pt`` was trained with it.
EMOJI_CONFIG = {
    "resolution": 64,
    "z_dim": 128,
    "w_dim": 128,
    "mapping_layers": 4,
    "channels": {4: 256, 8: 128, 16: 64, 32: 32, 64: 16},
}


# -- DiffAugment (Zhao et al. 2020): the same random transform for real and fake ---------------
def diff_augment(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    device = x.device
    x = x + (torch.rand(n, 1, 1, 1, device=device) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, device=device) * 2) + mean  # saturation
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, device=device) + 0.5) + mean  # contrast
    x = _translate(x, 0.125)
    return _cutout(x, 0.5)


def _translate(x: torch.Tensor, ratio: float) -> torch.Tensor:
    n, _, h, w = x.shape
    shift = int(h * ratio + 0.5)
    dx = torch.randint(-shift, shift + 1, (n, 1, 1), device=x.device)
    dy = torch.randint(-shift, shift + 1, (n, 1, 1), device=x.device)
    grid_y, grid_x = torch.meshgrid(
        torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij"
    )
    ys = torch.clamp(grid_y[None] + dy + 1, 0, h + 1)
    xs = torch.clamp(grid_x[None] + dx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # borders read as zero (mid-grey in [-1, 1])
    flat = padded.permute(0, 2, 3, 1)[torch.arange(n, device=x.device)[:, None, None], ys, xs]
    return flat.permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float) -> torch.Tensor:
    n, _, h, w = x.shape
    size = int(h * ratio + 0.5)
    cy = torch.randint(0, h + (1 - size % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - size % 2), (n, 1, 1), device=x.device)
    grid_y, grid_x = torch.meshgrid(
        torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij"
    )
    inside = ((grid_y[None] - cy).abs() < size // 2) & ((grid_x[None] - cx).abs() < size // 2)
    return x * (~inside).unsqueeze(1).to(x.dtype)


# -- discriminator ----------------------------------------------------------------------------
class DiscriminatorBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv2 = EqualizedConv2d(in_channels, out_channels, 3)
        self.skip = EqualizedConv2d(in_channels, out_channels, 1, gain=1.0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv1(x), 0.2)
        y = F.avg_pool2d(F.leaky_relu(self.conv2(y), 0.2), 2)
        return (y + F.avg_pool2d(self.skip(x), 2)) / math.sqrt(2)


class Discriminator(nn.Module):
    """A residual discriminator with minibatch standard deviation, mirroring the generator."""

    def __init__(self, channels: dict[int, int], resolution: int = 64) -> None:
        super().__init__()
        self.from_rgb = EqualizedConv2d(3, channels[resolution], 1)
        blocks, r = [], resolution
        while r > 4:
            blocks.append(DiscriminatorBlock(channels[r], channels[r // 2]))
            r //= 2
        self.blocks = nn.Sequential(*blocks)
        c = channels[4]
        self.conv = EqualizedConv2d(c + 1, c, 3)
        self.fc = EqualizedLinear(c * 16, c, gain=math.sqrt(2))
        self.out = EqualizedLinear(c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.leaky_relu(self.from_rgb(x), 0.2))
        group = min(4, x.shape[0])
        n, c, h, w = x.shape
        std = x.view(group, -1, c, h, w).std(0, unbiased=False).mean([1, 2, 3])
        std = std.repeat(group).view(n, 1, 1, 1).expand(n, 1, h, w)
        x = F.leaky_relu(self.conv(torch.cat([x, std], 1)), 0.2)
        return self.out(F.leaky_relu(self.fc(x.flatten(1)), 0.2)).squeeze(1)


class ProjectedDiscriminator(nn.Module):
    """Discriminator heads on frozen ``features:emoji-cnn`` feature maps (Projected GAN).

    Sauer et al. 2021: a pretrained network's features let a discriminator learn from
    fewer images.  The classifier's activations at the end of each stage (32, 16 and
    8 px) go through fixed random 1x1 projections (cross-channel mixing) into small
    trainable heads with spectral norm; the logits of the heads are averaged per
    image.  The classifier stays frozen and in eval mode (batch-norm statistics
    unchanged).
    """

    def __init__(self, classifier: EmojiCNN, width: int = 64) -> None:
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        layers = list(classifier.features)
        #: Indices in ``features`` tapped: the last activation before each pooling, and the last.
        self.taps = [
            i
            for i, layer in enumerate(layers)
            if isinstance(layer, nn.ReLU)
            and (i + 1 == len(layers) or isinstance(layers[i + 1], nn.MaxPool2d))
        ]
        widths = [layers[i - 1].num_features for i in self.taps]  # their batch norms
        self.mix = nn.ModuleList(nn.Conv2d(c, width, 1, bias=False) for c in widths)
        self.mix.requires_grad_(False)  # random and fixed, as in the paper
        sn = nn.utils.parametrizations.spectral_norm
        heads = []
        for k in range(len(self.taps)):  # after the stride-2 stem each stage halves the side
            size, head = classifier.input_size // 2 ** (k + 1), []
            while size > 4:
                head += [sn(nn.Conv2d(width, width, 4, 2, 1)), nn.LeakyReLU(0.2)]
                size //= 2
            heads.append(nn.Sequential(*head, sn(nn.Conv2d(width, 1, 4))))
        self.heads = nn.ModuleList(heads)

    def train(self, mode: bool = True) -> ProjectedDiscriminator:
        super().train(mode)
        self.classifier.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = normalise(x, clamp=False)  # keep the gradient everywhere
        logits = []
        for i, layer in enumerate(self.classifier.features):
            h = layer(h)
            if i in self.taps:
                k = len(logits)
                logits.append(self.heads[k](self.mix[k](h)).flatten(1).mean(1))
        return torch.stack(logits, 1).mean(1)


# -- training ---------------------------------------------------------------------------------
def mixed_w_plus(generator: StyleGAN2Generator, n: int, mixing: float) -> torch.Tensor:
    device = generator.w_avg.device
    z = torch.randn(2, n, generator.z_dim, device=device)
    w = generator.mapping(z.flatten(0, 1)).view(2, n, -1)
    w_plus = w[0][:, None].repeat(1, generator.num_ws, 1)
    if mixing > 0:
        cut = torch.randint(1, generator.num_ws, (n,), device=device)
        use = (torch.rand(n, device=device) < mixing)[:, None] & (
            torch.arange(generator.num_ws, device=device)[None] >= cut[:, None]
        )
        w_plus = torch.where(use[..., None], w[1][:, None].expand_as(w_plus), w_plus)
    return w_plus


def discriminator_step(
    discriminator: nn.Module,
    optimizer: torch.optim.Optimizer,
    fake: torch.Tensor,
    real: torch.Tensor,
) -> torch.Tensor:
    """One logistic-loss step of ``discriminator`` on augmented fakes and reals; its loss."""
    loss = (
        F.softplus(discriminator(diff_augment(fake))).mean()
        + F.softplus(-discriminator(diff_augment(real))).mean()
    )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def sampling_weights(bases: list[str], balance: str) -> torch.Tensor | None:
    """Per-image draw weights for ``--balance`` (``None``: uniform over images)."""
    if balance == "none":
        return None
    counts = Counter(bases)
    return torch.tensor([1.0 / counts[base] for base in bases])


def check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What the options' types cannot say alone, refused before anything is read or written."""
    if args.batch_size > 4 and args.batch_size % 4:
        parser.error(  # the discriminator's minibatch-std groups are 4 images
            f"--batch-size must be a multiple of 4 above 4, got {args.batch_size}"
        )


def set_hyperparameters(
    g_opt: torch.optim.Adam, d_opt: torch.optim.Adam, lr: float, r1_ratio: float
) -> None:
    """Give the optimisers this command's learning rate and betas, also after a resume.

    Adam's ``load_state_dict`` restores the saved ones, which would silently ignore ``--lr`` and
    ``--r1-every`` on resume (the way to lower the learning rate late in a run).
    """
    for group in g_opt.param_groups:
        group["lr"], group["betas"] = lr, (0.0, 0.99)
    for group in d_opt.param_groups:  # lazy R1 rescales D's rate and momentum
        group["lr"], group["betas"] = lr * r1_ratio, (0.0, 0.99**r1_ratio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/emoji"))
    parser.add_argument("--out", type=Path, default=Path("runs/emoji-gan"))
    parser.add_argument(
        "--minutes", type=positive_float, default=60.0, help="stop (and export) after this long"
    )
    parser.add_argument("--max-steps", type=positive_int, default=1_000_000)
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument(
        "--lr",
        type=positive_float,
        default=0.0025,
        help="Adam learning rate; applies on resume too (the saved moments are kept)",
    )
    parser.add_argument("--r1-gamma", type=non_negative_float, default=0.2)
    parser.add_argument("--r1-every", type=positive_int, default=16)
    parser.add_argument(
        "--ema-kimg", type=positive_float, default=5.0, help="EMA half-life in thousands of images"
    )
    parser.add_argument("--mixing", type=probability, default=0.9)
    parser.add_argument(
        "--projected",
        type=non_negative_float,
        default=0.0,
        help="weight of a second, Projected-GAN discriminator on frozen features:emoji-cnn"
        " features (0: off, the recipe of the shipped tag)",
    )
    parser.add_argument(
        "--balance",
        default="none",
        choices=["none", "base"],
        help="none: every training image equally often (the shipped tag's recipe); base: every"
        " base emoji equally often, its skin-tone variants sharing one draw",
    )
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="auto: CUDA when available",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample-every", type=positive_int, default=200)
    parser.add_argument("--save-every", type=positive_int, default=200)
    parser.add_argument(
        "--export-only",
        action="store_true",
        help="write the EMA generator of --out/state.pt as stylegan2-emoji-64.pt and stop",
    )
    args = parser.parse_args()
    check_options(parser, args)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here; use --device cpu (or auto)")
    state_path = args.out / "state.pt"
    if args.export_only and not state_path.is_file():
        parser.error(f"--export-only needs a state to export: {state_path} does not exist")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    with one_line_errors(parser):  # everything that can fail on bad input, before writing
        train = load_split(args.data, "train")
        classifier = build_feature_network("emoji-cnn") if args.projected > 0 else None
    images = train.images.to(device)
    weights = sampling_weights(train.bases, args.balance)
    print(f"{images.shape[0]} training images, drawn with --balance {args.balance}")

    config = StyleGAN2Config(**EMOJI_CONFIG)
    generator = StyleGAN2Generator(config)
    ema = StyleGAN2Generator(config).eval().requires_grad_(False)
    ema.load_state_dict(generator.state_dict())
    discriminator = Discriminator(config.channels, config.resolution).to(device)
    generator.to(device)
    ema.to(device)
    r1_ratio = args.r1_every / (args.r1_every + 1)
    g_opt = torch.optim.Adam(generator.parameters())  # rates: set_hyperparameters below
    d_opt = torch.optim.Adam(discriminator.parameters())
    projected = projected_opt = None
    if classifier is not None:
        projected = ProjectedDiscriminator(classifier).to(device)
        projected_opt = torch.optim.Adam(projected.heads.parameters(), lr=0.002, betas=(0.0, 0.99))
    fixed_z = torch.randn(64, config.z_dim, generator=torch.Generator().manual_seed(123)).to(device)
    step = 0
    if state_path.is_file():
        try:
            state = torch.load(state_path, map_location=device, weights_only=True)
            generator.load_state_dict(state["generator"])
            ema.load_state_dict(state["ema"])
            discriminator.load_state_dict(state["discriminator"])
            if "g_opt" in state:  # a slim state (examples/emoji-gan-state): fresh Adam moments
                g_opt.load_state_dict(state["g_opt"])
                d_opt.load_state_dict(state["d_opt"])
            if projected is not None and "projected" in state:  # else its heads start fresh
                projected.load_state_dict(state["projected"])
                projected_opt.load_state_dict(state["projected_opt"])
            step = state["step"]
            torch.set_rng_state(state["rng"].cpu())
        except (OSError, RuntimeError, KeyError, ValueError, pickle.UnpicklingError) as error:
            detail = str(error).splitlines()[0] if str(error) else ""
            parser.error(
                f"{state_path} is not a state of this script ({type(error).__name__}: {detail});"
                " move it away to start"
                " afresh, or point --out at the run it belongs to"
            )
        print(f"resumed at step {step}")
    set_hyperparameters(g_opt, d_opt, args.lr, r1_ratio)
    if args.export_only:
        export(ema.cpu(), args.out / "stylegan2-emoji-64.pt")
        return
    try:
        (args.out / "samples").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        parser.error(f"cannot write to --out {args.out}: {error.strerror or error}")

    def save() -> None:
        torch_save(
            {
                "generator": generator.state_dict(),
                "ema": ema.state_dict(),
                "discriminator": discriminator.state_dict(),
                "g_opt": g_opt.state_dict(),
                "d_opt": d_opt.state_dict(),
                **(
                    {
                        "projected": projected.state_dict(),
                        "projected_opt": projected_opt.state_dict(),
                    }
                    if projected is not None
                    else {}
                ),
                "step": step,
                "rng": torch.get_rng_state(),
                "config": {k: v for k, v in EMOJI_CONFIG.items() if k != "channels"},
            },
            state_path,
        )

    started, first_step = time.time(), step
    ema_beta = 0.5 ** (args.batch_size / (args.ema_kimg * 1000))
    while step < args.max_steps and time.time() - started < args.minutes * 60:
        if weights is None:
            index = torch.randint(0, images.shape[0], (args.batch_size,))
        else:
            index = torch.multinomial(weights, args.batch_size, replacement=True)
        real = images[index.to(device)].float() / 127.5 - 1
        # discriminator
        with torch.no_grad():
            fake = generator.synthesis(mixed_w_plus(generator, args.batch_size, args.mixing))
        d_loss = discriminator_step(discriminator, d_opt, fake, real)
        if projected is not None:
            discriminator_step(projected, projected_opt, fake, real)
        if step % args.r1_every == 0:
            real_r1 = real.detach().requires_grad_(True)
            scores = discriminator(diff_augment(real_r1))
            (grad,) = torch.autograd.grad(scores.sum(), real_r1, create_graph=True)
            r1 = grad.pow(2).flatten(1).sum(1).mean()
            d_opt.zero_grad(set_to_none=True)
            (args.r1_gamma / 2 * r1 * args.r1_every).backward()
            d_opt.step()
        # generator
        fake = generator.synthesis(mixed_w_plus(generator, args.batch_size, args.mixing))
        g_loss = F.softplus(-discriminator(diff_augment(fake))).mean()
        if projected is not None:
            g_loss = g_loss + args.projected * F.softplus(-projected(diff_augment(fake))).mean()
        critics = [discriminator] + ([projected.heads] if projected is not None else [])
        g_opt.zero_grad(set_to_none=True)
        for critic in critics:  # no discriminator gradients from the generator's step
            critic.requires_grad_(False)
        g_loss.backward()
        for critic in critics:
            critic.requires_grad_(True)
        g_opt.step()
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), generator.parameters(), strict=True):
                p_ema.lerp_(p, 1 - ema_beta)
            for b_ema, b in zip(ema.buffers(), generator.buffers(), strict=True):
                b_ema.copy_(b)
        step += 1
        if step % 20 == 0:
            elapsed = time.time() - started
            rate = (step - first_step) / max(elapsed, 1e-9)
            print(
                f"step {step}  d {d_loss.item():.3f}  g {g_loss.item():.3f}  {rate:.2f} it/s"
                f"  {elapsed / 60:.1f} min",
                flush=True,
            )
        if step % args.sample_every == 0:
            with torch.no_grad():
                grid = ema.synthesis(ema.mapping(fixed_z)[:, None].repeat(1, ema.num_ws, 1))
            save_grid(grid, args.out / "samples" / f"step-{step:06d}.png", nrow=8)
        if step % args.save_every == 0:
            save()
    save()
    export(ema.cpu(), args.out / "stylegan2-emoji-64.pt")


def export(ema: StyleGAN2Generator, path: Path) -> Path:
    """The EMA generator in rosinality's layout, fp16 storage, with its average latent."""
    ensure_w_avg(ema)
    save_rosinality(ema, path)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["g_ema"] = {
        k: v.half() if v.is_floating_point() else v for k, v in checkpoint["g_ema"].items()
    }
    torch_save(checkpoint, path)
    print(f"exported {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return path


if __name__ == "__main__":
    main()
